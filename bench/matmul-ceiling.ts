// The matmul ceiling on this machine: the best GFLOP/s a plain gpu.js matmul
// kernel reaches (one output element per thread) on webasm, webasm with
// threads and headlessgl, against gptc's WebAssembly GEMM on one and two
// threads, for the bench's dominant shapes.
//   npx tsx bench/matmul-ceiling.ts [--backends webasm,webasm-threads,headlessgl] [--reps 3]
// (headlessgl needs a display: run under `xvfb-run -a`.)
import type { GemmPlan } from "../src/codegen/gemm-plan.js";
import { gpujs } from "../src/runtime/backend.js";
import { Gemm } from "../src/runtime/gemm.js";

const argv = process.argv.slice(2);
const opt = (name: string, d: string) => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : d;
};
const backends = opt("--backends", "webasm,webasm-threads,headlessgl").split(",");
const reps = Number(opt("--reps", "3"));

/** [M, K, N, B transposed]: the forward shapes and the backward forms of the head. */
const shapes: [number, number, number, boolean][] = [
  [512, 256, 768, false], // c_attn forward
  [512, 256, 50257, true], // tied head forward: x @ wteᵀ
  [512, 50257, 256, false], // head backward, dx = dlogits @ wte
  [256, 512, 50257, false], // head backward, dwte = xᵀ @ dlogits
];

async function best(run: () => unknown): Promise<number> {
  await run(); // compile / warm up
  let ms = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    await run();
    ms = Math.min(ms, performance.now() - t);
  }
  return ms;
}

process.stdout.write("GFLOP/s, best of " + reps + "\n");
for (const [M, K, N, bT] of shapes) {
  const flops = 2 * M * N * K;
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i) * 0.1);
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i) * 0.1);
  const cells: string[] = [`${M}x${K} @ ${K}x${N}${bT ? " (Bᵀ stored)" : ""}`];
  for (const name of backends) {
    const [mode, threads] = name === "webasm-threads" ? ["webasm", true] : [name, false];
    try {
      const { GPU } = gpujs();
      const gpu = new GPU({ mode });
      // The plain one-output-per-thread kernel, as gpu.js kernels are written.
      const src = bT
        ? `function (a, b) { let s = 0.0; for (let k = 0; k < ${K}; k++) { s += a[this.thread.y * ${K} + k] * b[this.thread.x * ${K} + k]; } return s; }`
        : `function (a, b) { let s = 0.0; for (let k = 0; k < ${K}; k++) { s += a[this.thread.y * ${K} + k] * b[k * ${N} + this.thread.x]; } return s; }`;
      const k = gpu.createKernel(src, {
        output: [N, M],
        precision: "single",
        tactic: "precision",
        asyncMode: threads,
      });
      const ms = await best(() => k(a, b));
      cells.push(`${name} ${(flops / ms / 1e6).toFixed(2)}`);
      gpu.destroy?.();
    } catch (e) {
      cells.push(`${name} n/a (${(e as Error).message.split("\n")[0].slice(0, 60)})`);
    }
  }
  for (const threads of [1, 2]) {
    const g = new Gemm(threads);
    const plan: GemmPlan = {
      a: { buffer: 0, offsets: [0], rowStride: K, colStride: 1, resident: false },
      b: bT
        ? { buffer: 1, offsets: [0], rowStride: 1, colStride: K, resident: false }
        : { buffer: 1, offsets: [0], rowStride: N, colStride: 1, resident: false },
      batch: 1,
      M,
      N,
      K,
      product: 2,
      prologue: [],
    };
    // Let the helper thread start before timing.
    await new Promise((r) => setTimeout(r, 100));
    const ms = await best(() => g.run(plan, a, b));
    cells.push(`gptc GEMM ${threads}T ${(flops / ms / 1e6).toFixed(2)}`);
    g.close();
  }
  process.stdout.write(cells.join(" | ") + "\n");
}
process.exit(0);
