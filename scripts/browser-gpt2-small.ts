// gpt2-small (124M parameters, random init, seed 1) in headless Chromium on
// the page's GPU backends against the WebAssembly engine in the same worker:
// the forward pass at B=1, T=16 and 32 (logits), greedy generation of 8 tokens after
// a 4-token prompt through the KV cache (the tokens), and
// one training step at B=1, T=16 (loss and every gradient), with `gptc
// verify`'s tolerances. Chromium here renders with SwiftShader (software), so
// this is slow: by hand, not in CI.
//
//   node --import tsx scripts/browser-gpt2-small.ts [webgl2,webgpu] [--checks forward,decode,train]
//
// Exits 1 when a check is outside its tolerance or a backend fails.
import { openPlayground } from "../test/helpers/browser.js";

interface Check {
  name: string;
  err: number;
  tol: number;
  ms: number;
}

async function main() {
  const backends = (process.argv[2] ?? "webgl2,webgpu").split(",");
  const at = process.argv.indexOf("--checks");
  const checks = (at >= 0 ? process.argv[at + 1] : "forward,decode,train").split(",");
  const pg = await openPlayground();
  let failed = 0;
  const started = performance.now();
  try {
    for (const backend of backends) {
      const r = await pg.evalInWorker(
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        async (gptc: any, _fs: unknown, a: { backend: string; checks: string[] }) => {
          const out: Check[] = [];
          const relErr = (x: ArrayLike<number>, y: ArrayLike<number>) => {
            let d = 0;
            let m = 0;
            for (let i = 0; i < y.length; i++) {
              d = Math.max(d, Math.abs(x[i] - y[i]));
              m = Math.max(m, Math.abs(y[i]));
            }
            return x.length === y.length && Number.isFinite(d) ? d / (m || 1) : Infinity;
          };
          const set = { embd_pdrop: "0", attn_pdrop: "0", resid_pdrop: "0" };
          const m = gptc.compile({ file: "/specs/gpt2-small.model" }, { set });
          const ref = await m.open({ backend: "webasm", seed: 1 });
          const gpu = await m.open({ backend: a.backend, seed: 1 });
          const describe = gpu.backend?.describe ?? a.backend;
          let x = 12345;
          const ids = (n: number) =>
            Float32Array.from(
              { length: n },
              () => (x = (x * 1103515245 + 12345) % 2 ** 31) % 50257,
            );
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          const timed = async (f: () => Promise<any>): Promise<[any, number]> => {
            const t = performance.now();
            const v = await f();
            return [v, performance.now() - t];
          };
          if (a.checks.includes("forward"))
            for (const T of [16, 32]) {
              const tokens = ids(T);
              const dims = { B: 1, T };
              const [g, ms] = await timed(() => gpu.runtime.forward(gpu.weights, { tokens }, dims));
              const r = await ref.runtime.forward(ref.weights, { tokens }, dims);
              // Where the logits differ most: the (position, vocabulary id) of the worst.
              let worst = 0;
              let bad = 0;
              for (let i = 0; i < r.logits.length; i++) {
                const e = Math.abs(g.logits[i] - r.logits[i]);
                if (e > 1e-3) bad++;
                if (e > Math.abs(g.logits[worst] - r.logits[worst])) worst = i;
              }
              const V = r.logits.length / T;
              out.push({
                name: `forward logits B=1 T=${T}${bad ? ` (${bad} off by > 1e-3; worst at t ${Math.floor(worst / V)}, id ${worst % V})` : ""}`,
                err: relErr(g.logits, r.logits),
                tol: 1e-4,
                ms,
              });
            }
          if (a.checks.includes("decode")) {
            const prompt = Array.from(ids(4));
            // The library's generate() hands out tokens, not logits: the tokens are compared.
            const run = async (s: any) => {
              const [res] = await s.generate([prompt], {
                maxNewTokens: 8,
                temperature: 0,
                stopAtEnd: false,
              });
              return { tokens: res.tokens as number[] };
            };
            const [g, ms] = await timed(() => run(gpu));
            const r = await run(ref);
            const same =
              g.tokens.length === r.tokens.length &&
              g.tokens.every((t: number, i: number) => t === r.tokens[i]);
            out.push({
              name: "greedy tokens (prompt 4 + 8, KV cache)",
              err: same ? 0 : Infinity,
              tol: 0,
              ms,
            });
          }
          if (a.checks.includes("train")) {
            const tokens = ids(16);
            const targets = ids(16);
            const dims = { B: 1, T: 16 };
            const [g, ms] = await timed(() =>
              gpu.runtime.lossAndGrads(gpu.weights, { tokens, targets }, dims),
            );
            const r = await ref.runtime.lossAndGrads(ref.weights, { tokens, targets }, dims);
            out.push({
              name: "training step loss B=1 T=16",
              err: Math.abs(g.loss - r.loss),
              tol: 1e-5 * Math.max(1, Math.abs(r.loss)),
              ms,
            });
            let worst = 0;
            for (const [k, v] of r.grads) worst = Math.max(worst, relErr(g.grads.get(k), v));
            out.push({ name: "every gradient (worst)", err: worst, tol: 1e-3, ms: 0 });
          }
          gpu.close();
          ref.close();
          return { describe, out };
        },
        { backend, checks },
      );
      console.log(`${r.describe} against webasm, gpt2-small 124M`);
      for (const c of r.out) {
        const ok = c.err <= c.tol;
        if (!ok) failed++;
        console.log(
          `${ok ? "PASS" : "FAIL"}  ${c.name.padEnd(40)} err ${c.err.toExponential(2)} (<= ${c.tol.toExponential(0)})${c.ms ? `  ${(c.ms / 1000).toFixed(1)} s` : ""}`,
        );
      }
    }
  } catch (e) {
    failed++;
    console.log(`FAIL  ${(e as Error).message.split("\n")[0]}`);
  } finally {
    await pg.close();
  }
  console.log(
    `${failed ? `${failed} FAILED` : "all passed"} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  process.exit(failed ? 1 : 0);
}

main();
