// `npm run bench`: gptc and TensorFlow.js on the same workloads, in one run on
// one machine. Each workload runs in its own process (so peak RSS is its own).
//   npm run bench [-- --quick] [-- --profile] [-- --backends webasm,cpu,headlessgl] [-- --skip-tfjs] [-- --skip-torch] [-- --dropout]
// --dropout adds (e): the bench step with dropout 0.1 in GPT-2's three places against without.
// PyTorch (bench/torch-run.ts) runs each of (a) (b) (c) right after gptc's, where a Python imports torch.
// Writes bench/results.json and bench/results.md (with --quick: bench/results-quick.*).
import { spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { writeFileSync } from "node:fs";

const argv = process.argv.slice(2);
const quick = argv.includes("--quick");
const profile = argv.includes("--profile");
const skipTfjs = argv.includes("--skip-tfjs");
const skipTorch = argv.includes("--skip-torch");
const withDropout = argv.includes("--dropout");
const backendsAt = argv.indexOf("--backends");
const backends = backendsAt >= 0 ? argv[backendsAt + 1].split(",") : ["webasm"];

type Json = Record<string, unknown>;

/** Runs a TypeScript file under tsx in a child; returns its last JSON line. */
function child(file: string, args: string[], timeoutS: number): Json {
  const started = performance.now();
  const r = spawnSync(process.execPath, ["--import", "tsx", file, ...args], {
    encoding: "utf8",
    timeout: timeoutS * 1000,
    maxBuffer: 256 * 2 ** 20,
  });
  const lines = (r.stdout ?? "").trim().split("\n").reverse();
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    try {
      return JSON.parse(line) as Json;
    } catch {
      // not the result line
    }
  }
  const why = r.error
    ? String(r.error.message)
    : (r.stderr ?? "").trim().split("\n").slice(-3).join(" | ");
  return {
    failed: `exit ${r.status}${r.signal ? ` (${r.signal})` : ""} after ${((performance.now() - started) / 1000).toFixed(0)} s: ${why}`,
  };
}

// PyTorch: first its check (gptc's model.py and bench/torch_gpt2.py agree), which
// also says whether torch imports at all; then a job after each of gptc's.
const torch: Record<string, Json> = {};
let torchSkipped: string | undefined = skipTorch ? "--skip-torch" : undefined;
if (!torchSkipped) {
  process.stderr.write("PyTorch check ...\n");
  torch.check = child("bench/torch-run.ts", ["check"], 300);
  torchSkipped = (torch.check.skipped ?? torch.check.failed) as string | undefined;
}
if (torchSkipped) process.stderr.write(`PyTorch skipped: ${torchSkipped}\n`);

const gptc: Record<string, Json> = {};
for (const backend of backends)
  for (const w of [
    "train",
    "generate",
    "generate-bench",
    "train124m",
    "compile",
    ...(withDropout ? ["dropout"] : []),
  ]) {
    if (w === "compile" && backend !== backends[0]) continue;
    process.stderr.write(`gptc ${w} on ${backend} ...\n`);
    // A GPU backend on a software renderer makes gpt2-124M tokens in seconds
    // each: fp32 alone, one timed run, no ONNX Runtime (a CPU number the webasm
    // run has), so that (b) ends within its hour.
    const gpu = ["headlessgl", "webgl2", "webgpu"].includes(backend);
    const args = [
      w,
      "--backend",
      backend,
      ...(quick ? ["--quick"] : []),
      ...(profile ? ["--profile"] : []),
      ...(w === "generate" && gpu && !quick
        ? ["--dtypes", "f32", "--rounds", "1", "--no-ort"]
        : []),
    ];
    gptc[`${w}@${backend}`] = child("bench/gptc-run.ts", args, quick ? 300 : 3600);
    if (
      !torchSkipped &&
      backend === backends[0] &&
      ["train", "generate", "train124m"].includes(w)
    ) {
      process.stderr.write(`PyTorch ${w} ...\n`);
      torch[w] = child(
        "bench/torch-run.ts",
        [w, ...(quick ? ["--quick"] : [])],
        quick ? 300 : 3600,
      );
    }
  }

const tfjs: Record<string, Json> = {};
if (!skipTfjs)
  for (const threads of [false, true]) {
    process.stderr.write(`TF.js${threads ? " (threads)" : ""} ...\n`);
    const out = `bench/.tfjs-${threads ? "threads" : "single"}${quick ? "-quick" : ""}.json`;
    const summary = child(
      "bench/tfjs-run.ts",
      [...(quick ? ["--quick"] : []), ...(threads ? ["--threads"] : []), "--out", out],
      quick ? 300 : 3600,
    );
    for (const r of (summary.results as Json[] | undefined) ?? [])
      tfjs[`${r.workload}/${r.variant}${threads ? "+threads" : ""}`] = r;
    if (summary.failed) tfjs[`run${threads ? "+threads" : ""}`] = summary;
  }

// ---- report ---------------------------------------------------------------------

const num = (v: unknown, digits = 1) =>
  typeof v === "number" && Number.isFinite(v) ? v.toFixed(digits) : "—";
const rows: string[][] = [];
const ratio = (a: unknown, b: unknown) =>
  typeof a === "number" && typeof b === "number" && b > 0 ? (a / b).toFixed(2) : "—";

type Spread = { min: number; median: number; max: number };
const spread = (x: Spread | undefined, digits: number) =>
  x ? `${num(x.median, digits)} (${num(x.min, digits)}–${num(x.max, digits)})` : "—";
const torchEngine = String(torch.check?.engine ?? "PyTorch");
const torchVariants: Record<string, string> = {
  functional: "torch.nn.functional GPT-2",
  export: "gptc's exported model.py",
};
/**
 * PyTorch's rows for workload `w`, one per configuration, with gptc's speed over
 * PyTorch's (> 1: gptc faster) from gptc's time (ms, training) or tokens/s.
 */
function torchRows(w: "train" | "generate" | "train124m", gptcValue: unknown): string[][] {
  const j = torch[w];
  if (!j || j.skipped) return [];
  const what = { train: "(a)", generate: "(b)", train124m: "(c)" }[w];
  if (j.failed)
    return [[`${what} … PyTorch: failed: ${String(j.failed).slice(0, 80)}`, "", "", "", "", ""]];
  const threads = (n: string) => `${n} thread${n === "1" ? "" : "s"}`;
  if (w === "generate")
    return Object.entries((j.byThreads ?? {}) as Record<string, { tokensPerSec: Spread }>).map(
      ([n, x]) => [
        `(b) … ${torchEngine}, KV cache, ${threads(n)}: tokens/s median (min–max)`,
        spread(x.tokensPerSec, 2),
        "",
        "",
        "",
        `gptc fp32 / PyTorch ${ratio(gptcValue, x.tokensPerSec.median)}`,
      ],
    );
  return Object.entries(
    (j.byConfig ?? {}) as Record<
      string,
      { firstStepMs: number; steadyMs: Spread; stepsMs: number[] }
    >,
  ).map(([config, x]) => {
    const [variant, n] = config.split("/");
    const label = `${what} … ${torchEngine}, ${torchVariants[variant] ?? variant}, ${threads(n)}`;
    return w === "train"
      ? [
          `${label}: ms median (min–max) of steps 2–${x.stepsMs.length}`,
          spread(x.steadyMs, 0),
          "",
          "",
          "",
          `PyTorch ms / gptc ms ${ratio(x.steadyMs.median, gptcValue)}`,
        ]
      : [
          `${label}: first / steady median (min–max)`,
          `${num(x.firstStepMs, 0)} / ${spread(x.steadyMs, 0)}`,
          "",
          "",
          "",
          `PyTorch steady / gptc steady ${ratio(x.steadyMs.median, gptcValue)}`,
        ];
  });
}

const tfTrain = (variant: string) => tfjs[`a/${variant}`];
// --quick runs (b) and (c) on the quick model (gptc-run.ts), not on gpt2-124M.
const big = quick ? "quick model" : "gpt2-124M";
const tfGen = () => tfjs["b/tuned"] ?? tfjs["b/naive"];
for (const backend of backends) {
  const t = gptc[`train@${backend}`];
  rows.push([
    `(a) bench training step, ms (gptc ${backend})`,
    num(t.msPerStep, 0),
    num(tfTrain("naive")?.msPerStep, 0),
    num(tfTrain("tuned")?.msPerStep, 0),
    num(tfjs["a/tuned+threads"]?.msPerStep, 0),
    `${ratio(tfTrain("naive")?.msPerStep, t.msPerStep)} / ${ratio(tfTrain("tuned")?.msPerStep, t.msPerStep)}`,
  ]);
  rows.push(...torchRows("train", t.msPerStep));
  const g = gptc[`generate@${backend}`];
  rows.push([
    `(b) ${big} generation, tokens/s (gptc ${backend})`,
    num(g.tokensPerSec, 2),
    num(tfjs["b/naive"]?.tokensPerSec, 2),
    num(tfGen()?.tokensPerSec, 2),
    num(tfjs["b/tuned+threads"]?.tokensPerSec, 2),
    ratio(g.tokensPerSec, tfGen()?.tokensPerSec),
  ]);
  // Quantized weights, measured in the same process, rounds interleaved with fp32's.
  const byDtype = (g.byDtype ?? {}) as Record<string, { tokensPerSec: Json; agreeWithF32: number }>;
  for (const dtype of ["f16", "int8"]) {
    const q = byDtype[dtype];
    if (!q) continue;
    const t = q.tokensPerSec;
    rows.push([
      `(b) … with --weights-dtype ${dtype}: tokens/s median (min–max); × fp32`,
      `${num(t.median, 2)} (${num(t.min, 1)}–${num(t.max, 1)}); ×${ratio(t.median, byDtype.f32?.tokensPerSec.median)}`,
      "",
      "",
      "",
      ratio(t.median, tfGen()?.tokensPerSec),
    ]);
  }
  // ONNX Runtime on gptc's own model exported to ONNX (the same weights), its
  // rounds interleaved with gptc's in the same process.
  const ortBy = ((g.ort as Json | undefined)?.byThreads ?? {}) as Record<
    string,
    { tokensPerSec: Json; agreeWithGptc: number }
  >;
  const f32 = byDtype.f32?.tokensPerSec.median ?? g.tokensPerSec;
  for (const [threads, o] of Object.entries(ortBy))
    rows.push([
      `(b) … ONNX Runtime fp32, ${threads} thread${threads === "1" ? "" : "s"}, on gptc's exported model: tokens/s median (min–max)`,
      `${num(o.tokensPerSec.median, 2)} (${num(o.tokensPerSec.min, 1)}–${num(o.tokensPerSec.max, 1)})`,
      "",
      "",
      "",
      `gptc fp32 / ORT ${ratio(f32, o.tokensPerSec.median)}; int8 / ORT ${ratio(byDtype.int8?.tokensPerSec.median, o.tokensPerSec.median)}`,
    ]);
  rows.push(...torchRows("generate", f32));
  const gb = gptc[`generate-bench@${backend}`];
  const gbBy = (gb?.byDtype ?? {}) as Record<string, { tokensPerSec: Json }>;
  const gbOrt = ((gb?.ort as Json | undefined)?.byThreads ?? {}) as Record<
    string,
    { tokensPerSec: Json }
  >;
  if (gb)
    rows.push([
      `(b2) bench-model generation, tokens/s median: gptc fp32 / int8 (gptc ${backend})`,
      gb.failed
        ? `failed: ${String(gb.failed).slice(0, 60)}`
        : `${num(gbBy.f32?.tokensPerSec.median, 1)} / ${num(gbBy.int8?.tokensPerSec.median, 1)}`,
      "",
      "",
      "",
      Object.entries(gbOrt)
        .map(
          ([n, o]) =>
            `ORT ${n}T ${num(o.tokensPerSec.median, 1)}: gptc fp32 / ORT ${ratio(gbBy.f32?.tokensPerSec.median, o.tokensPerSec.median)}`,
        )
        .join("; ") || "—",
    ]);
  const c = gptc[`train124m@${backend}`];
  const tc = tfjs["c/tuned"] ?? tfjs["c/naive"];
  rows.push([
    `(c) ${big} training step B=1 T=${quick ? 16 : 128}, ms: first / steady median (gptc ${backend})`,
    c.failed
      ? `failed: ${String(c.failed).slice(0, 60)}`
      : `${num(c.firstStepMs, 0)} / ${num((c.steadyMs as Json | undefined)?.median, 0)}`,
    "",
    tc ? (tc.ok ? num(tc.msPerStep, 0) : `failed: ${String(tc.error ?? "").slice(0, 60)}`) : "—",
    "",
    "",
  ]);
  rows.push(...torchRows("train124m", (c.steadyMs as Json | undefined)?.median));
}
const comp = gptc[`compile@${backends[0]}`];
rows.push([
  "(d) compile gpt2-small / gpt2-xl, ms",
  `${num(comp.msSmall, 0)} / ${num(comp.msXl, 0)}`,
  "",
  "",
  "",
  "",
]);
const drop = gptc[`dropout@${backends[0]}`];
if (drop)
  rows.push([
    "(e) bench step with dropout 0.1 ×3 / without, ms (ratio)",
    `${num(drop.msPerStepDropout, 0)} / ${num(drop.msPerStepNoDropout, 0)} (${num(drop.ratio, 2)})`,
    "",
    "",
    "",
    "",
  ]);
const rss = (j?: Json) => num(j?.peakRssMiB ?? j?.parentPeakRssMiB ?? j?.rssSampledMaxMiB, 0);
rows.push([
  "peak RSS MiB: train / generate / 124M step (gptc)",
  `${rss(gptc[`train@${backends[0]}`])} / ${rss(gptc[`generate@${backends[0]}`])} / ${rss(gptc[`train124m@${backends[0]}`])}`,
  "",
  `${rss(tfTrain("tuned"))} / ${rss(tfGen())} / ${rss(tfjs["c/tuned"])}`,
  "",
  "",
]);

/** What the PyTorch rows are, how they were measured, or why there are none. */
function torchNote(): string {
  if (torchSkipped) return `PyTorch: not measured (${torchSkipped}).`;
  const c = torch.check;
  const load = (j?: Json) => {
    const l = j?.load as number[][] | undefined;
    return l ? `${num(l[0][0])}→${num(l[1][0])}` : "—";
  };
  return [
    `PyTorch: ${torchEngine} on the CPU (${String(c.python)}, BLAS ${[c.blas].flat().join(", ")}). Each of its jobs ran in a process of its own,`,
    "right after gptc's job for the same workload in this run (separate processes, not interleaved with gptc);",
    "inside a job its configurations alternate step by step (training) or run by run (generation), each with its own model",
    "and optimizer. N threads: torch.set_num_threads(N) and OpenBLAS's own pool (openblas_set_num_threads), which torch's",
    `setting does not reach; OMP_WAIT_POLICY ${String(c.ompWaitPolicy ?? "unset")}. Random init, the bench's shapes,`,
    "no dropout; AdamW as gptc's (lr 1e-4, betas 0.9/0.95, wd 0.1 on 2-D weights). The models: bench/torch_gpt2.py (torch.nn.functional; greedy decoding with a preallocated KV cache)",
    `and, for (a), gptc's own model.py (\`gptc export --format pytorch\`, one torch op per IR op). Check (same weights): loss`,
    `${num(c.lossFunctional, 6)} vs ${num(c.lossExport, 6)}, worst relative gradient difference ${Number(c.worstRelativeGradErr).toExponential(1)},`,
    `cached greedy = uncached: ${String(c.cachedEqualsUncached)} → ${c.ok ? "pass" : "FAIL"}. Load (1-min average) at start→end:`,
    `(a) ${load(torch.train)}, (b) ${load(torch.generate)}, (c) ${load(torch.train124m)}; peak RSS MiB (all of a job's configurations`,
    `in one process): ${rss(torch.train)} / ${rss(torch.generate)} / ${rss(torch.train124m)}.`,
  ].join("\n");
}

const header = [
  "workload",
  "gptc",
  "TF.js naive",
  "TF.js tuned",
  "TF.js tuned+threads",
  "speedup vs naive / tuned",
];
const md = [
  `# gptc vs TensorFlow.js${quick ? " (quick smoke sizes)" : ""}`,
  "",
  `${new Date().toISOString()}, node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, load ${loadavg()
    .map((x) => x.toFixed(1))
    .join(" ")}`,
  "",
  `| ${header.join(" | ")} |`,
  `| ${header.map(() => "---").join(" | ")} |`,
  ...rows.map((r) => `| ${r.join(" | ")} |`),
  "",
  "Speedup: TF.js time / gptc time for training, gptc tokens/s / TF.js tokens/s for generation (> 1: gptc faster); the same for the PyTorch and ONNX Runtime rows.",
  "",
  torchNote(),
  "",
  // Where a GPU backend ran on a software renderer, its numbers are CPU numbers.
  ...backends.map((b) => `gptc ${b}: ${String(gptc[`train@${b}`]?.describe ?? b)}`),
  "",
].join("\n");

// Other backends than the default get files of their own (the webasm results stay).
const base = `bench/results${quick ? "-quick" : ""}${backends.join(",") === "webasm" ? "" : `-${backends.join("-")}`}`;
writeFileSync(
  `${base}.json`,
  JSON.stringify({ quick, backends, gptc, tfjs, torch, torchSkipped }, null, 2) + "\n",
);
writeFileSync(`${base}.md`, md);
process.stdout.write(md);
for (const [k, v] of Object.entries(gptc))
  if (v.profileTable) process.stdout.write(`\nprofile ${k}:\n${v.profileTable}\n`);
// A workload that failed fails the run (CI runs the quick GL bench), after the files are written.
const failed = Object.entries(gptc).filter(([, v]) => v.failed);
for (const [k, v] of failed) process.stderr.write(`gptc ${k} failed: ${String(v.failed)}\n`);
if (failed.length) process.exitCode = 1;
