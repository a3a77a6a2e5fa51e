// Weight-only quantization (runtime/quantize.ts) and the GEMM's int8 / float16
// packs (codegen/wasm/gemm.ts): the conversions against their definitions,
// and the engine's quantized products against a JavaScript reference of the
// dequantized math, exactly where every partial sum is an exact float32.
import { describe, expect, it } from "vitest";
import type { GemmPlan } from "../src/codegen/gemm-plan.js";
import { KC } from "../src/codegen/wasm/gemm.js";
import { BLOCK, ROW_MAX } from "../src/codegen/wasm/gemv-int8.js";
import { Gemm } from "../src/runtime/gemm.js";
import {
  dequantize,
  floatToHalf,
  foldQuantized,
  halfToFloat,
  normalHalf,
  quantize,
  quantizedForm,
  type QuantizedWeight,
} from "../src/runtime/quantize.js";
import { rng } from "./helpers/ir.js";

/** x [M, K] @ B: B is the weight [K, N] (axis 1) or the transpose of [N, K] (axis 0). */
function plan(M: number, K: number, N: number, axis: 0 | 1): GemmPlan {
  return {
    a: { buffer: 0, offsets: [0], rowStride: K, colStride: 1, resident: false },
    b: {
      buffer: 1,
      offsets: [0],
      rowStride: axis === 1 ? N : 1,
      colStride: axis === 1 ? 1 : K,
      resident: true,
    },
    batch: 1,
    M,
    N,
    K,
    product: 2,
    prologue: [],
  };
}

/** The float64 product of x with the weight's dequantized values. */
function reference(x: Float32Array, w: Float32Array, M: number, K: number, N: number, axis: 0 | 1) {
  const out = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[i * K + k] * w[axis === 1 ? k * N + n : n * K + k];
      out[i * N + n] = s;
    }
  return out;
}

describe("float16 conversions", () => {
  it("every half survives half -> float -> half, and floats round to the nearest half (ties to even)", () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = halfToFloat(h);
      if (Number.isNaN(v)) continue;
      expect(floatToHalf(v)).toBe(h);
    }
    // Halfway between 1 and the next half (1 + 2^-10) goes to the even one, 1.
    expect(halfToFloat(floatToHalf(1 + 2 ** -11))).toBe(1);
    expect(halfToFloat(floatToHalf(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
    // The smallest subnormal, and half of it (a tie: to even, zero).
    expect(halfToFloat(floatToHalf(2 ** -24))).toBe(2 ** -24);
    expect(floatToHalf(2 ** -25)).toBe(0);
    expect(floatToHalf(65520)).toBe(0x7c00); // rounds past the largest half
    const r = rng(3);
    for (let i = 0; i < 2000; i++) {
      const x = Math.fround((r() - 0.5) * 2 ** Math.floor(r() * 30 - 20));
      const h = halfToFloat(floatToHalf(x));
      // No other half is nearer.
      const up = halfToFloat(floatToHalf(x) + 1);
      expect(Math.abs(h - x)).toBeLessThanOrEqual(Math.abs(up - x));
    }
  });
});

describe("float16 weights without subnormals", () => {
  const isSubnormal = (h: number) => (h & 0x7c00) === 0 && (h & 0x3ff) !== 0;
  it("normal halves stay, subnormal ones go to the nearer of 0 and 2^-14, sign kept", () => {
    for (let h = 0; h < 0x10000; h++) {
      const n = normalHalf(h);
      expect(isSubnormal(n)).toBe(false);
      if (!isSubnormal(h)) expect(n).toBe(h);
      else {
        const [x, y] = [halfToFloat(h), halfToFloat(n)];
        expect(Math.sign(y) || (n & 0x8000 ? -1 : 1)).toBe(Math.sign(x));
        // Nearer of the two: |x - y| <= |x - other|.
        const other = y === 0 ? Math.sign(x) * 2 ** -14 : 0;
        expect(Math.abs(x - y)).toBeLessThanOrEqual(Math.abs(x - other));
      }
    }
  });

  it("quantize and a loaded F16 tensor round the same tiny values the same way", () => {
    const data = Float32Array.from([3.2e-5, -4e-5, 3e-5, -1e-6, 2 ** -14, 0.02, -0]);
    const want = [2 ** -14, -(2 ** -14), 0, -0, 2 ** -14, halfToFloat(floatToHalf(0.02)), -0];
    const q = quantize(data, [1, 7], 1, "f16", "w") as Extract<QuantizedWeight, { dtype: "f16" }>;
    expect(Array.from(q.bits).some(isSubnormal)).toBe(false);
    expect(Array.from(dequantize(q))).toEqual(want);
    // A file's F16 tensor (widened to float32 by the reader) holding subnormal halves.
    const file = new Map([
      [
        "w",
        {
          dtype: "F16",
          shape: [1, 7],
          data: Float32Array.from(data, (x) => halfToFloat(floatToHalf(x))),
        },
      ],
    ]);
    const folded = foldQuantized(file, "test").get("w")!.data as Float32Array;
    expect(Array.from(folded)).toEqual(want);
    expect(quantizedForm(folded)?.dtype).toBe("f16");
  });
});

describe("int8 quantization", () => {
  it("one scale per output channel: max |x| / 127, values within half a step", () => {
    const r = rng(5);
    const [R, C] = [7, 11];
    const data = Float32Array.from({ length: R * C }, () => (r() - 0.5) * (1 + r() * 4));
    for (const axis of [0, 1] as const) {
      const q = quantize(data, [R, C], axis, "int8", "w") as Extract<
        QuantizedWeight,
        { dtype: "int8" }
      >;
      expect(q.scales.length).toBe(axis === 0 ? R : C);
      const deq = dequantize(q);
      expect(quantizedForm(deq)).toBe(q);
      for (let i = 0; i < data.length; i++) {
        const s = q.scales[axis === 0 ? Math.floor(i / C) : i % C];
        expect(Math.abs(deq[i] - data[i])).toBeLessThanOrEqual(s / 2 + 1e-7);
      }
      // The largest value of each channel is exactly +-127 steps.
      for (let ch = 0; ch < q.scales.length; ch++) {
        let m = 0;
        for (let i = 0; i < data.length; i++)
          if ((axis === 0 ? Math.floor(i / C) : i % C) === ch) m = Math.max(m, Math.abs(q.q[i]));
        expect(m).toBe(127);
      }
    }
  });

  it("refuses non-finite weights and float16 overflow with a clear error", () => {
    expect(() => quantize(new Float32Array([1, NaN]), [1, 2], 1, "int8", "h.0.w")).toThrow(
      /h\.0\.w holds NaN/,
    );
    expect(() => quantize(new Float32Array([1e5, 0]), [1, 2], 1, "f16", "big")).toThrow(
      /beyond float16's range/,
    );
  });
});

/** A [K, N] weight of uniform values in [-0.5, 0.5) quantized to int8 per output channel. */
const int8Weight = (r: () => number, K: number, N: number) =>
  quantize(
    Float32Array.from({ length: K * N }, () => r() - 0.5),
    [K, N],
    1,
    "int8",
    "w",
  );
const maxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const f32 = Math.fround;
/** Rounds to the nearest integer, ties to even (f32x4.nearest). */
const nearest = (y: number) => {
  const r = Math.round(y);
  return r - y === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/**
 * One row x [K] times int8 weight q (B [K, N]: q itself for axis 1, its
 * transpose for axis 0) the way gemv-int8.ts defines it, every float32
 * rounding spelled out: x rounded to int16 with the row's scale, exact
 * integer sums of BLOCK pairs each converted to float32 and added, then
 * scaled by the column's scale (packed times 2^-24) times the row's (times 2^24).
 */
function intRowReference(
  x: Float32Array,
  q: Extract<QuantizedWeight, { dtype: "int8" }>,
  K: number,
  N: number,
) {
  const m = maxAbs(x);
  const inv = f32(ROW_MAX / m);
  const xq = Array.from(x, (v) => nearest(f32(v * inv)) || 0); // 0 * Infinity: NaN -> 0
  const rowScale = f32(m / ROW_MAX) * 2 ** 24;
  const wq = (k: number, n: number) => (q.axis === 1 ? q.q[k * N + n] : q.q[n * K + k]);
  const out = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let c = 0;
    for (let k0 = 0; k0 < K; k0 += 2 * BLOCK) {
      let sum = 0;
      for (let k = k0; k < Math.min(K, k0 + 2 * BLOCK); k++) sum += xq[k] * wq(k, n);
      c = k0 === 0 ? f32(sum) : f32(c + f32(sum));
    }
    out[n] = f32(c * f32(f32(q.scales[n] * 2 ** -24) * rowScale));
  }
  return out;
}

describe("the GEMM's narrow packs", () => {
  const engine = new Gemm(1);
  // Rows 1 (decoding), 3 and 9 (partial panels), depth over one block, columns not a multiple of 8.
  const shapes = [
    [1, 40, 24],
    [3, 17, 13],
    [9, KC + 30, 37],
    [1, 300, 70],
  ];

  it("int8: exactly the dequantized product where every partial sum is exact", () => {
    const r = rng(7);
    // (One row takes the integer path: its own test below.)
    for (const [M, K, N] of shapes.filter(([M]) => M > 1))
      for (const axis of [0, 1] as const) {
        const [R, C] = axis === 1 ? [K, N] : [N, K];
        // Small integers and power-of-two scales: every product and sum is exact in float32.
        const q: QuantizedWeight = {
          dtype: "int8",
          shape: [R, C],
          axis,
          q: Int8Array.from({ length: R * C }, () => Math.floor(r() * 255) - 127),
          scales: Float32Array.from(
            { length: axis === 0 ? R : C },
            () => 2 ** -Math.floor(r() * 8),
          ),
        };
        const w = dequantize(q);
        const x = Float32Array.from({ length: M * K }, () => Math.floor(r() * 17) - 8);
        const got = engine.run(plan(M, K, N, axis), x, w);
        expect(Array.from(got)).toEqual(Array.from(reference(x, w, M, K, N, axis)));
      }
  });

  it("int8 and float16 on random floats: the dequantized product to float32 rounding", () => {
    const r = rng(9);
    for (const dtype of ["int8", "f16"] as const)
      for (const [M, K, N] of shapes)
        for (const axis of [0, 1] as const) {
          const [R, C] = axis === 1 ? [K, N] : [N, K];
          const data = Float32Array.from({ length: R * C }, () => (r() - 0.5) * 0.2);
          const w = dequantize(quantize(data, [R, C], axis, dtype, "w"));
          const x = Float32Array.from({ length: M * K }, () => r() - 0.5);
          const got = engine.run(plan(M, K, N, axis), x, w);
          const want = reference(x, w, M, K, N, axis);
          // Bound: K roundings of sums no larger than sum |x w|; one int8 row
          // (integer path) adds its row's rounding to int16: at most half a
          // step (max |x| / 32767) per element, times |w|.
          const rowStep = M === 1 && dtype === "int8" ? maxAbs(x) / ROW_MAX : 0;
          for (let i = 0; i < got.length; i++) {
            let [mag, wSum] = [0, 0];
            for (let k = 0; k < K; k++) {
              const wk = w[axis === 1 ? k * N + (i % N) : (i % N) * K + k];
              mag += Math.abs(x[Math.floor(i / N) * K + k] * wk);
              wSum += Math.abs(wk);
            }
            const bound = mag * K * 2 ** -23 + wSum * rowStep * 0.5001 + 1e-30;
            expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(bound);
          }
          // float16 widens exactly: the same products as the float32 pack of a plain copy.
          if (dtype === "f16")
            expect(Array.from(got)).toEqual(
              Array.from(engine.run(plan(M, K, N, axis), x, Float32Array.from(w))),
            );
        }
  });

  it("int8, one row: bit for bit the integer product of the row rounded to int16", () => {
    const r = rng(23);
    // Odd K, K over one int32 block (BLOCK pairs) and over several, columns
    // in groups of PANELS panels and single panels and a partial one.
    const cases: [number, number][] = [
      [40, 24],
      [17, 13],
      [300, 70],
      [2 * BLOCK * 2 + 33, 40],
      [1001, 9],
    ];
    for (const [K, N] of cases)
      for (const axis of [0, 1] as const)
        for (const scale of [1, 1e-30, 3e4]) {
          const [R, C] = axis === 1 ? [K, N] : [N, K];
          const data = Float32Array.from({ length: R * C }, () => (r() - 0.5) * 0.2);
          const q = quantize(data, [R, C], axis, "int8", "w") as Extract<
            QuantizedWeight,
            { dtype: "int8" }
          >;
          const x = Float32Array.from({ length: K }, () => (r() - 0.5) * scale);
          const got = engine.run(plan(1, K, N, axis), x, dequantize(q));
          expect(Array.from(got)).toEqual(Array.from(intRowReference(x, q, K, N)));
        }
  });

  it("int8, one row of zeros, or with NaN or infinity: what the float product gives", () => {
    const r = rng(29);
    const [K, N] = [48, 16];
    const q = int8Weight(r, K, N);
    const w = dequantize(q);
    for (const special of [0, NaN, Infinity, -Infinity]) {
      const x = Float32Array.from({ length: K }, (_, k) =>
        special === 0 ? 0 : k === 5 ? special : r(),
      );
      const got = engine.run(plan(1, K, N, 1), x, w);
      expect(Array.from(got)).toEqual(Array.from(reference(x, w, 1, K, N, 1)));
    }
  });

  it("shared with the helper thread (large products): the same numbers as on one thread", async () => {
    const two = new Gemm(2);
    // The helper starts in the background.
    for (let i = 0; i < 200 && !two.parallel(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(two.parallel()).toBe(true);
    const r = rng(17);
    for (const dtype of ["int8", "f16"] as const)
      for (const [M, K, N] of [
        [1, 512, 2048],
        [6, KC + 8, 1200],
      ]) {
        const data = Float32Array.from({ length: K * N }, () => (r() - 0.5) * 0.2);
        const w = dequantize(quantize(data, [K, N], 1, dtype, "w"));
        const x = Float32Array.from({ length: M * K }, () => r() - 0.5);
        expect(Array.from(two.run(plan(M, K, N, 1), x, w))).toEqual(
          Array.from(engine.run(plan(M, K, N, 1), x, w)),
        );
      }
    two.close();
  });

  it("the pack is the narrow one: a changed float32 array is not read", () => {
    const r = rng(13);
    const [M, K, N] = [1, 64, 16];
    const q = int8Weight(r, K, N);
    const w = dequantize(q);
    const x = Float32Array.from({ length: M * K }, () => r() - 0.5);
    const before = Array.from(engine.run(plan(M, K, N, 1), x, w));
    // Scribbling over the float32 values (without bumping the version) changes nothing:
    // a first run from a fresh engine reads the int8 form, not these.
    const fresh = new Gemm(1);
    w.fill(1000);
    expect(Array.from(fresh.run(plan(M, K, N, 1), x, w))).toEqual(before);
    fresh.close();
  });
});
