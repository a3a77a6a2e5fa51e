// Per-kernel profile of one training step (forward + backward, no optimiser) of the bench
// model on the wasm backend, via tf.profile: where a variant's time goes.
//   npx tsx bench/tfjs-profile.ts [naive|tuned|tuned-alt|tuned+] [--threads N] [--quick]
// kernelTimeMs of a customGrad op ("forward") includes the kernels it runs, so the column
// sums to more than the step.
import * as tf from "@tensorflow/tfjs";
import * as M from "./tfjs-gpt2.js";
import { initWasm } from "./tfjs-wasm.js";

const argv = process.argv.slice(2);
const name = argv.find((a) => !a.startsWith("--") && !/^\d+$/.test(a)) ?? "tuned";
const ti = argv.indexOf("--threads");
const threads = ti >= 0 ? Number(argv[ti + 1]) : undefined;
const quick = argv.includes("--quick");
const options: Record<string, M.ModelOptions> = {
  naive: { variant: "naive" },
  tuned: { variant: "tuned", attn: "per-head" },
  "tuned-alt": { variant: "tuned", attn: "batched" },
  "tuned+": { variant: "tuned", attn: "per-head", head: "custom", ce: "fused" },
};
const o = options[name];
if (!o) throw new Error(`unknown variant ${name}`);
const info = await initWasm(threads);
const cfg = quick ? M.QUICK_CONFIG : M.BENCH_CONFIG;
const [B, T] = quick ? [2, 32] : [4, 128];
const P = M.initParams(cfg, 1);
const idx = tf.randomUniform([B, T], 0, cfg.vocabSize, "int32") as tf.Tensor2D;
const tgt = tf.randomUniform([B, T], 0, cfg.vocabSize, "int32") as tf.Tensor2D;
const step = () => {
  const r = tf.variableGrads(() => M.lossFn(P, cfg, o, idx, tgt), Object.values(P));
  r.value.dataSync();
  tf.dispose(r.grads);
  r.value.dispose();
};
for (let i = 0; i < 2; i++) {
  const t = performance.now();
  step();
  console.log(`warm-up ${i + 1}: ${(performance.now() - t).toFixed(0)} ms`);
}
const t0 = performance.now();
const prof = await tf.profile(step);
console.log(
  `${name}, threads ${info.threads}: profiled step ${(performance.now() - t0).toFixed(0)} ms, ` +
    `${prof.kernels.length} kernels`,
);
const agg = new Map<string, { ms: number; n: number }>();
for (const k of prof.kernels) {
  const ms = typeof k.kernelTimeMs === "number" ? k.kernelTimeMs : 0;
  const key = k.name === "BatchMatMul" ? `BatchMatMul ${JSON.stringify(k.inputShapes)}` : k.name;
  const e = agg.get(key) ?? { ms: 0, n: 0 };
  e.ms += ms;
  e.n++;
  agg.set(key, e);
}
console.log("    ms  calls  kernel");
for (const [k, v] of [...agg].sort((a, b) => b[1].ms - a[1].ms).slice(0, 30))
  console.log(`${v.ms.toFixed(0).padStart(6)} ${String(v.n).padStart(6)}  ${k}`);
process.exit(0);
