// Decoding's matrix-vector products alone: gptc's GEMM engine at one row
// (M = 1) on GPT-2 124M's weight shapes, float32 and the narrow packs, one and
// two threads, weights resident as in decoding. Reports GB/s of weight bytes
// read (decoding is bound by them) and GFLOP/s.
//   npx tsx bench/gemv.ts [--reps 20]
import type { GemmPlan } from "../src/codegen/gemm-plan.js";
import { Gemm } from "../src/runtime/gemm.js";
import { dequantize, quantize } from "../src/runtime/quantize.js";

const argv = process.argv.slice(2);
const reps = Number(argv.includes("--reps") ? argv[argv.indexOf("--reps") + 1] : "20");

/** [K, N, B transposed (the tied head: x @ wteᵀ)] */
const shapes: [number, number, boolean][] = [
  [768, 2304, false],
  [768, 3072, false],
  [3072, 768, false],
  [768, 50257, true],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

for (const threads of [1, 2]) {
  const g = new Gemm(threads);
  await new Promise((r) => setTimeout(r, 100));
  for (const [K, N, bT] of shapes) {
    const a = Float32Array.from({ length: K }, (_, i) => Math.sin(i));
    const w = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.37) * 0.1);
    const plan: GemmPlan = {
      a: { buffer: 0, offsets: [0], rowStride: K, colStride: 1, resident: false },
      b: bT
        ? { buffer: 1, offsets: [0], rowStride: 1, colStride: K, resident: true }
        : { buffer: 1, offsets: [0], rowStride: N, colStride: 1, resident: true },
      batch: 1,
      M: 1,
      N,
      K,
      product: 2,
      prologue: [],
    };
    const cells = [`${threads}T 1x${K} @ ${K}x${N}`];
    for (const dtype of ["f32", "int8", "f16"] as const) {
      const shape: [number, number] = bT ? [N, K] : [K, N];
      const b = dtype === "f32" ? w : dequantize(quantize(w, shape, bT ? 0 : 1, dtype, "w"));
      g.run(plan, a, b);
      const ms: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        g.run(plan, a, b);
        ms.push(performance.now() - t);
      }
      const m = median(ms);
      const bytes = K * N * { f32: 4, int8: 1, f16: 2 }[dtype];
      cells.push(
        `${dtype} ${m.toFixed(2)} ms ${(bytes / m / 1e6).toFixed(1)} GB/s ${((2 * K * N) / m / 1e6).toFixed(1)} GF/s`,
      );
    }
    console.log(cells.join(" | "));
  }
  g.close();
}
process.exit(0);
