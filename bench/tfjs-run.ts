// The TensorFlow.js side of gptc's benchmark, on @tensorflow/tfjs-backend-wasm in Node.
//
//   npx tsx bench/tfjs-run.ts [--quick] [--only a,b,c,check] [--threads [N]]
//                             [--variants naive,tuned,tuned-alt,tuned+] [--steps 8] [--out FILE]
//
//   a      training step of the bench model (vocab 50257, 4 layers, 4 heads, d 256, ctx 1024;
//          16.3M parameters, tied head), B=4, T=128: forward + backward + AdamW. ms/step is the
//          median of steps 2..N (N = --steps, default 8); tokens/s = B*T / that.
//   b      greedy generation with the gpt2-124M shape (random init), batch 1, 16-token prompt,
//          64 new tokens, KV cache (concatenated per step). Run twice: cold, then warm.
//   c      one training step of gpt2-124M at B=1, T=128. Expected to fail on wasm (its heap is
//          capped at 4 GiB): the failure is caught and reported.
//   check  the model against the PyTorch fixture test/fixtures/tiny (bench/tfjs-check.ts).
//
// Each workload runs in its own child process, so its peak RSS (VmHWM, polled from
// /proc/<pid>/status by this parent and read by the child itself) is its own and a wasm abort
// cannot take the others down. Prints a table, writes JSON to --out (default
// bench/tfjs-results[-threads].json; with --quick only when --out is given) and prints the
// JSON as the last line of stdout.
//
// --quick: vocab 512, 2 layers, 2 heads, d 64, ctx 64; (a) B=2 T=32; (b) 8-token prompt,
// 8 new tokens; (c) one step of the quick model at B=1 T=32 (no failure expected).
// --threads [N]: force XNNPACK threads on (default N = number of CPUs); see bench/tfjs-wasm.ts.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { Rng } from "../src/runtime/rng.js";

type Workload = "a" | "b" | "c" | "check";
type VariantName = "naive" | "tuned" | "tuned-alt" | "tuned+";

interface Job {
  workload: Workload;
  variant: VariantName;
  quick: boolean;
  threads?: number;
  steps: number;
}

const SELF = fileURLToPath(import.meta.url);

function vmStatus(pid: number | "self"): { hwm: number; rss: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
    return { hwm: kb("VmHWM") / 1024, rss: kb("VmRSS") / 1024 };
  } catch {
    return { hwm: NaN, rss: NaN };
  }
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function errorText(e: unknown): string {
  const s = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return s.length > 600 ? s.slice(0, 600) + "..." : s;
}

// ---------------------------------------------------------------------------------------------
// Child: one workload.

async function child(job: Job): Promise<Record<string, unknown>> {
  const tf = await import("@tensorflow/tfjs");
  const { initWasm, wasmHeapBytes } = await import("./tfjs-wasm.js");
  const M = await import("./tfjs-gpt2.js");
  const log = (s: string) => process.stderr.write(`  [${job.workload}/${job.variant}] ${s}\n`);
  let rssMax = 0;
  const sample = () => (rssMax = Math.max(rssMax, process.memoryUsage().rss / 2 ** 20));
  const MiB = (b: number) => b / 2 ** 20;
  const out: Record<string, unknown> = { ...job, loadavgStart: loadavg() };
  const t0 = performance.now();
  out.backend = await initWasm(job.threads);
  out.backendInitMs = performance.now() - t0;
  // Calibration, to read the numbers against the machine's state (the load of other
  // processes matters a lot on 2 vCPUs): best of 10 XNNPACK matmuls [512,256] @ [256,1024].
  out.calibrationGflops = tf.tidy(() => {
    const a = tf.randomNormal([512, 256]) as import("@tensorflow/tfjs").Tensor2D;
    const b = tf.randomNormal([256, 1024]) as import("@tensorflow/tfjs").Tensor2D;
    let best = Infinity;
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      tf.matMul(a, b).dataSync();
      best = Math.min(best, performance.now() - t);
    }
    return (2 * 512 * 256 * 1024) / best / 1e6;
  });
  // tuned: per-head 2-D attention in training, batched attention in decoding (the faster of
  // each on this machine, see bench/README.md); tuned-alt: the other choice for both;
  // tuned+: tuned with the tied head's own gradient and a fused cross-entropy.
  const variantOptions: Record<VariantName, import("./tfjs-gpt2.js").DecodeOptions> = {
    naive: { variant: "naive" },
    tuned: { variant: "tuned", attn: "per-head", decodeAttn: "batched" },
    "tuned-alt": { variant: "tuned", attn: "batched", decodeAttn: "per-head" },
    "tuned+": {
      variant: "tuned",
      attn: "per-head",
      decodeAttn: "batched",
      head: "custom",
      ce: "fused",
    },
  };
  const opts = variantOptions[job.variant];
  out.options = opts;
  const finish = () => {
    sample();
    out.rssSampledMaxMiB = rssMax;
    out.vmHWMMiB = vmStatus("self").hwm;
    out.wasmHeapMiB = MiB(wasmHeapBytes());
    out.loadavgEnd = loadavg();
    return out;
  };

  if (job.workload === "check") {
    const { runFixtureCheck } = await import("./tfjs-check.js");
    const r = runFixtureCheck();
    out.ok = r.ok;
    out.check = r;
    return finish();
  }

  if (job.workload === "a" || job.workload === "c") {
    const cfg =
      job.workload === "a"
        ? job.quick
          ? M.QUICK_CONFIG
          : M.BENCH_CONFIG
        : job.quick
          ? M.QUICK_CONFIG
          : M.GPT2_124M_CONFIG;
    const [B, T] =
      job.workload === "a" ? (job.quick ? [2, 32] : [4, 128]) : job.quick ? [1, 32] : [1, 128];
    const steps = job.workload === "a" ? job.steps : 1;
    Object.assign(out, { config: cfg, parameters: M.parameterCount(cfg), B, T, steps });
    let stage = "init params";
    try {
      let t = performance.now();
      const params = M.initParams(cfg, 1);
      out.paramInitMs = performance.now() - t;
      stage = "init AdamW state";
      const opt = new M.AdamW(params);
      sample();
      log(
        `${M.parameterCount(cfg)} params, init ${(performance.now() - t).toFixed(0)} ms, rss ${(process.memoryUsage().rss / 2 ** 20) | 0} MiB`,
      );
      const gen = new Rng(7);
      const rnd = () => gen.next();
      const batch = () => {
        const xs = Array.from({ length: B }, () =>
          Array.from({ length: T }, () => Math.floor(rnd() * cfg.vocabSize)),
        );
        const ys = Array.from({ length: B }, () =>
          Array.from({ length: T }, () => Math.floor(rnd() * cfg.vocabSize)),
        );
        return [tf.tensor2d(xs, [B, T], "int32"), tf.tensor2d(ys, [B, T], "int32")] as const;
      };
      const stepMs: number[] = [];
      const fb: number[] = [];
      const op: number[] = [];
      const cpu: number[] = [];
      const losses: number[] = [];
      out.wasmHeapAfterInitMiB = MiB(wasmHeapBytes());
      if (job.workload === "c") {
        // Diagnostic: does the forward pass alone (no tape) fit? Then the failure is backward.
        stage = "forward only (no tape, diagnostic)";
        const [x, y] = batch();
        t = performance.now();
        const l = tf.tidy(() => M.lossFn(params, cfg, opts, x, y).dataSync()[0]);
        out.forwardOnly = { ms: performance.now() - t, loss: l, wasmHeapMiB: MiB(wasmHeapBytes()) };
        tf.dispose([x, y]);
        sample();
        log(
          `forward only: ${(performance.now() - t).toFixed(0)} ms, loss ${l.toFixed(4)}, wasm heap ${MiB(wasmHeapBytes()) | 0} MiB`,
        );
      }
      for (let s = 0; s < steps; s++) {
        const [x, y] = batch();
        stage = `training step ${s + 1}`;
        t = performance.now();
        const r = M.trainStep(params, opt, cfg, opts, x, y);
        const ms = performance.now() - t;
        tf.dispose([x, y]);
        sample();
        stepMs.push(ms);
        fb.push(r.fwdBwdMs);
        op.push(r.optMs);
        cpu.push(r.cpuMs);
        losses.push(r.loss);
        log(
          `step ${s + 1}/${steps}: ${ms.toFixed(0)} ms (fwd+bwd ${r.fwdBwdMs.toFixed(0)}, AdamW ${r.optMs.toFixed(0)}; cpu ${r.cpuMs.toFixed(0)}), loss ${r.loss.toFixed(4)}, rss ${(process.memoryUsage().rss / 2 ** 20) | 0} MiB, wasm heap ${MiB(wasmHeapBytes()) | 0} MiB`,
        );
      }
      const timed = steps > 1 ? stepMs.slice(1) : stepMs;
      out.stepMs = stepMs;
      out.losses = losses;
      out.msPerStep = median(timed);
      out.fwdBwdMs = median(steps > 1 ? fb.slice(1) : fb);
      out.adamwMs = median(steps > 1 ? op.slice(1) : op);
      out.cpuMsPerStep = median(steps > 1 ? cpu.slice(1) : cpu);
      out.tokensPerSec = (B * T * 1000) / (out.msPerStep as number);
      out.ok = losses.every(Number.isFinite);
      out.tensorsLive = tf.memory().numTensors;
      out.tfjsBytes = tf.memory().numBytes;
    } catch (e) {
      out.ok = false;
      out.failedAt = stage;
      out.error = errorText(e);
      log(`FAILED at ${stage}: ${out.error}`);
    }
    return finish();
  }

  // b: generation
  const cfg = job.quick ? M.QUICK_CONFIG : M.GPT2_124M_CONFIG;
  const promptLen = job.quick ? 8 : 16;
  const newTokens = job.quick ? 8 : 64;
  Object.assign(out, {
    config: cfg,
    parameters: M.parameterCount(cfg),
    promptLen,
    newTokens,
    kvCache: "tf.concat per step",
  });
  try {
    let t = performance.now();
    const params = M.initParams(cfg, 1);
    out.paramInitMs = performance.now() - t;
    sample();
    log(`${M.parameterCount(cfg)} params, init ${(performance.now() - t).toFixed(0)} ms`);
    const gen = new Rng(11);
    const rnd = () => gen.next();
    const prompt = Array.from({ length: promptLen }, () => Math.floor(rnd() * cfg.vocabSize));
    const runs: Record<string, unknown>[] = [];
    let firstTokens: number[] | undefined;
    for (const label of ["cold", "warm"]) {
      const c0 = process.cpuUsage();
      t = performance.now();
      const g = M.generateGreedy(params, cfg, opts, prompt, newTokens);
      const total = performance.now() - t;
      const c = process.cpuUsage(c0);
      sample();
      const decodeMs = g.stepMs.reduce((a, b) => a + b, 0);
      const r = {
        run: label,
        totalMs: total,
        cpuMs: (c.user + c.system) / 1000,
        prefillMs: g.prefillMs,
        decodeStepMedianMs: median(g.stepMs),
        tokensPerSec: (newTokens * 1000) / total,
        decodeTokensPerSec: (g.stepMs.length * 1000) / decodeMs,
      };
      runs.push(r);
      if (!firstTokens) firstTokens = g.tokens;
      else out.deterministic = JSON.stringify(firstTokens) === JSON.stringify(g.tokens);
      log(
        `${label}: ${newTokens} tokens in ${total.toFixed(0)} ms (prefill ${g.prefillMs.toFixed(0)} ms, decode step median ${r.decodeStepMedianMs.toFixed(1)} ms) = ${r.tokensPerSec.toFixed(2)} tok/s`,
      );
    }
    out.runs = runs;
    out.tokensPerSec = (runs[1] as { tokensPerSec: number }).tokensPerSec;
    out.decodeTokensPerSec = (runs[1] as { decodeTokensPerSec: number }).decodeTokensPerSec;
    out.tokens = firstTokens;
    out.ok = true;
  } catch (e) {
    out.ok = false;
    out.error = errorText(e);
    log(`FAILED: ${out.error}`);
  }
  return finish();
}

// ---------------------------------------------------------------------------------------------
// Parent.

function runChild(job: Job, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const started = performance.now();
    const cp = spawn(
      process.execPath,
      [...process.execArgv, SELF, "--child", JSON.stringify(job)],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    const stderrTail: string[] = [];
    let hwm = 0;
    const poll = setInterval(() => {
      const v = vmStatus(cp.pid!).hwm;
      if (Number.isFinite(v)) hwm = Math.max(hwm, v);
    }, 200);
    const timer = setTimeout(() => cp.kill("SIGKILL"), timeoutMs);
    cp.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    let partial = "";
    cp.stderr.on("data", (d: Buffer) => {
      partial += d.toString();
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        // Emscripten prints its whole minified glue on some crashes: keep lines short.
        const l = line.length > 300 ? line.slice(0, 300) + " ..." : line;
        if (l.startsWith("  [")) process.stderr.write(l + "\n");
        stderrTail.push(l);
        if (stderrTail.length > 40) stderrTail.shift();
      }
    });
    cp.on("close", (code, signal) => {
      clearInterval(poll);
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      const line = stdout.split("\n").find((l) => l.startsWith("@@RESULT "));
      if (line) {
        const r = JSON.parse(line.slice(9)) as Record<string, unknown>;
        resolve({ ...r, parentPeakRssMiB: hwm, wallMs, exit: code });
      } else {
        resolve({
          ...job,
          ok: false,
          error: `child exited (code ${code}, signal ${signal}) without a result`,
          stderrTail: stderrTail.slice(-12),
          parentPeakRssMiB: hwm,
          wallMs,
        });
      }
    });
  });
}

const f = (x: unknown, d = 0) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "-");

function table(results: Record<string, unknown>[]): string {
  const rows: string[][] = [
    [
      "workload",
      "variant",
      "threads",
      "result",
      "ms/step",
      "cpu ms",
      "tokens/s",
      "peak RSS MiB",
      "wasm heap MiB",
      "load avg",
      "calib GFLOP/s",
    ],
  ];
  for (const r of results) {
    const be = r.backend as { threads?: number } | undefined;
    const w = r.workload as string;
    let result = r.ok ? "ok" : "FAILED";
    let ms = "-";
    let cpuMs = "-";
    let tps = "-";
    if (w === "a" || w === "c") {
      ms = f(r.msPerStep);
      cpuMs = f(r.cpuMsPerStep);
      tps = f(r.tokensPerSec, 1);
      if (!r.ok) result = `FAILED at ${r.failedAt ?? "?"}: ${String(r.error ?? "").slice(0, 80)}`;
    } else if (w === "b") {
      const runs = (r.runs as Array<Record<string, number>> | undefined) ?? [];
      const warm = runs[1];
      ms = warm ? `${f(warm.decodeStepMedianMs, 1)}/tok` : "-";
      cpuMs = warm ? `${f(warm.cpuMs)}/run` : "-";
      tps = warm ? `${f(warm.tokensPerSec, 2)} (decode ${f(warm.decodeTokensPerSec, 2)})` : "-";
      if (!r.ok) result = `FAILED: ${String(r.error ?? "").slice(0, 80)}`;
    } else if (w === "check") {
      result = r.ok ? "PASS" : "FAIL";
    }
    const la = [r.loadavgStart, r.loadavgEnd]
      .map((x) => (Array.isArray(x) ? (x[0] as number).toFixed(1) : "?"))
      .join("->");
    const peak = Math.max(Number(r.vmHWMMiB) || 0, Number(r.parentPeakRssMiB) || 0);
    rows.push([
      w,
      String(r.variant),
      String(be?.threads ?? "-"),
      result,
      ms,
      cpuMs,
      tps,
      f(peak),
      f(r.wasmHeapMiB),
      la,
      f(r.calibrationGflops, 1),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n");
}

function checkReport(r: Record<string, unknown>): string {
  const c = r.check as import("./tfjs-check.js").FixtureCheck | undefined;
  if (!c) return `fixture check: ${r.error ?? "no result"}`;
  const fmt = (v: number | string) => (typeof v === "number" ? v.toExponential(2) : v);
  const lines = [`fixture check (${c.fixture}): ${c.ok ? "PASS" : "FAIL"}`];
  for (const i of c.common)
    lines.push(`  ${i.ok ? "ok  " : "FAIL"} ${i.what}: ${fmt(i.value)} (limit ${fmt(i.limit)})`);
  for (const v of c.variants) {
    lines.push(`  ${v.variant}: ${v.ok ? "PASS" : "FAIL"}`);
    for (const i of v.items)
      lines.push(
        `    ${i.ok ? "ok  " : "FAIL"} ${i.what}: ${fmt(i.value)} (limit ${fmt(i.limit)})`,
      );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const ci = argv.indexOf("--child");
  if (ci >= 0) {
    const job = JSON.parse(argv[ci + 1]) as Job;
    let r: Record<string, unknown>;
    try {
      r = await child(job);
    } catch (e) {
      r = { ...job, ok: false, error: errorText(e) };
    }
    process.stdout.write("@@RESULT " + JSON.stringify(r) + "\n");
    // Threaded runs keep worker threads alive; leave explicitly.
    process.exit(0);
  }
  const opt = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes("--quick");
  let threads: number | undefined;
  const ti = argv.indexOf("--threads");
  if (ti >= 0) {
    const n = Number(argv[ti + 1]);
    threads = Number.isInteger(n) && n > 0 ? n : cpus().length;
  }
  const only = (opt("--only") ?? "check,a,b,c").split(",") as Workload[];
  const variants = (opt("--variants") ?? "naive,tuned,tuned-alt,tuned+").split(
    ",",
  ) as VariantName[];
  const steps = Number(opt("--steps") ?? 8);
  const jobTimeoutMs = Number(opt("--job-timeout") ?? 540) * 1000;
  const jobs: Job[] = [];
  for (const w of only) {
    if (w === "check") jobs.push({ workload: w, variant: "tuned", quick, threads, steps });
    else if (w === "c") {
      // One training step of gpt2-124M; naive would fail the same way (the memory is the same).
      const v = variants.includes("tuned") ? "tuned" : variants[0];
      jobs.push({ workload: w, variant: v, quick, threads, steps });
    } else
      for (const v of variants) {
        // Decoding has no loss and no gradient: tuned+ decodes exactly as tuned.
        if (w === "b" && v === "tuned+") continue;
        jobs.push({ workload: w, variant: v, quick, threads, steps });
      }
  }
  const started = new Date().toISOString();
  const results: Record<string, unknown>[] = [];
  for (const job of jobs) {
    process.stderr.write(
      `running ${job.workload}/${job.variant}${threads ? ` (threads ${threads})` : ""} ...\n`,
    );
    const r = await runChild(job, jobTimeoutMs);
    results.push(r);
    if (r.workload === "check") process.stderr.write(checkReport(r) + "\n");
    else if (!r.ok) process.stderr.write(`  -> ${r.workload}/${r.variant} failed: ${r.error}\n`);
  }
  const summary = {
    tool: "bench/tfjs-run.ts",
    started,
    finished: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    quick,
    threadsRequested: threads ?? null,
    argv,
    results,
  };
  process.stdout.write("\n" + table(results) + "\n");
  const chk = results.find((r) => r.workload === "check");
  if (chk) process.stdout.write("\n" + checkReport(chk) + "\n");
  const outPath =
    opt("--out") ?? (quick ? undefined : `bench/tfjs-results${threads ? "-threads" : ""}.json`);
  if (outPath) {
    let text = JSON.stringify(summary, null, 2) + "\n";
    try {
      // Formatted as the repository's `prettier --check .` expects.
      const prettier = await import("prettier");
      text = await prettier.format(text, { parser: "json", printWidth: 100 });
    } catch {
      // prettier is a devDependency; without it the plain JSON is fine.
    }
    writeFileSync(outPath, text);
    process.stdout.write(`\nwrote ${outPath}\n`);
  }
  process.stdout.write(JSON.stringify(summary) + "\n");
  const expectedFailure = (r: Record<string, unknown>) => r.workload === "c" && !quick;
  process.exitCode = results.every((r) => r.ok || expectedFailure(r)) ? 0 : 1;
}

await main();
