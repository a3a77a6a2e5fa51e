// gptc's WebAssembly GEMM (the webasm backend's matmuls): the registry's view
// rules against the ops' own float64 semantics, the packed kernel against a
// float64 product on shapes that hit every edge (rows not a multiple of 4,
// columns not a multiple of 8, depth over one block, several column blocks,
// transposed / sliced / broadcast operands), and the executor's two matmul
// paths (GEMM and gpu.js loop) against each other on GPT-2's training graph.
import { describe, expect, it } from "vitest";
import { gemmPlan, type GemmPlan } from "../src/codegen/gemm-plan.js";
import { KC, NC, PANELS } from "../src/codegen/wasm/gemm.js";
import { shapeEval, shapeOf } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import { getOp } from "../src/ir/ops/registry.js";
import { strides } from "../src/ir/ops/tensor.js";
import type { Tensor, View } from "../src/ir/ops/types.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { Executor } from "../src/runtime/executor.js";
import { createBackend } from "../src/runtime/backend.js";
import { Gemm } from "../src/runtime/gemm.js";
import { relaxedSimd } from "../src/runtime/wasm-features.js";
import { weightChanged } from "../src/runtime/weights.js";
import { backend, F32_EPS, relError } from "./helpers/backend.js";
import { gpt2Tiny } from "./helpers/backend.js";
import { rng } from "./helpers/ir.js";

/** Reads a tensor of `shape` through a strided view of `data`. */
function readView(data: ArrayLike<number>, view: View, shape: number[]): number[] {
  const out: number[] = [];
  const idx = new Array(shape.length).fill(0);
  const total = shape.reduce((p, q) => p * q, 1);
  for (let n = 0; n < total; n++) {
    out.push(data[view.offset + idx.reduce((a, i, d) => a + i * view.strides[d], 0)]);
    for (let d = shape.length - 1; d >= 0; d--)
      if (++idx[d] < shape[d] || ((idx[d] = 0), false)) break;
  }
  return out;
}

describe("view rules of the movement ops", () => {
  it("a view reads exactly what the op's float64 semantics computes, over random chains", () => {
    const r = rng(11);
    const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
    let checked = 0;
    let refused = 0;
    for (let trial = 0; trial < 300; trial++) {
      let shape = [pick([1, 2, 3]), pick([2, 4, 6]), pick([1, 5, 8])];
      const size = shape.reduce((p, q) => p * q, 1);
      let data: Tensor = { shape, data: Float64Array.from({ length: size }, (_, i) => i) };
      const base = data.data;
      let view: View | undefined = { offset: 0, strides: strides(shape) };
      for (let step = 0; step < 4 && view; step++) {
        const rank = shape.length;
        const kind = pick(["reshape", "permute", "slice", "expand"]);
        let attrs: Record<string, unknown>;
        let out: number[];
        if (kind === "permute") {
          const perm = [...Array(rank).keys()].sort(() => r() - 0.5);
          attrs = { perm };
          out = perm.map((p) => shape[p]);
        } else if (kind === "slice") {
          const axis = Math.floor(r() * rank);
          const start = Math.floor(r() * shape[axis]);
          const end = start + 1 + Math.floor(r() * (shape[axis] - start));
          attrs = { axis, start, end };
          out = shape.map((d, i) => (i === axis ? end - start : d));
        } else if (kind === "expand") {
          out = [pick([1, 3]), ...shape.map((d) => (d === 1 ? pick([1, 4]) : d))];
          attrs = { shape: out.map((d) => shapeOf(d)[0]) };
        } else {
          // A random factorization of the element count, in order.
          const n = shape.reduce((p, q) => p * q, 1);
          out = [];
          let rest = n;
          for (const f of [2, 3, 2, 5, 2])
            if (rest % f === 0 && r() < 0.5) (out.push(f), (rest /= f));
          out.push(rest);
          attrs = { shape: out.map((d) => shapeOf(d)[0]) };
        }
        const def = getOp(kind);
        const next = def.eval([data], attrs as never, out, { bindings: {} });
        view = def.view!(view, attrs as never, shape, out);
        if (view) {
          expect(readView(base, view, out), `${kind} ${JSON.stringify(attrs)}`).toEqual([
            ...next.data,
          ]);
          checked++;
        } else refused++;
        data = next;
        shape = out;
      }
    }
    // Most chains have strides; a reshape merging permuted axes has none.
    expect(checked).toBeGreaterThan(600);
    expect(refused).toBeGreaterThan(0);
  });
});

function plan(M: number, N: number, K: number, aT: boolean, bT: boolean, batch = 1): GemmPlan {
  return {
    a: {
      buffer: 0,
      offsets: Array.from({ length: batch }, (_, m) => m * M * K + 3),
      rowStride: aT ? 1 : K,
      colStride: aT ? M : 1,
      resident: false,
    },
    b: {
      buffer: 1,
      // Broadcast over the batch: every matrix reads the same B.
      offsets: new Array(batch).fill(5),
      rowStride: bT ? 1 : N,
      colStride: bT ? K : 1,
      resident: false,
    },
    batch,
    M,
    N,
    K,
    product: 2,
    prologue: [],
  };
}

/** float64 product through the plan's views. */
function reference(p: GemmPlan, a: Float32Array, b: Float32Array): Float64Array {
  const out = new Float64Array(p.batch * p.M * p.N);
  for (let m = 0; m < p.batch; m++)
    for (let i = 0; i < p.M; i++)
      for (let j = 0; j < p.N; j++) {
        let s = 0;
        for (let k = 0; k < p.K; k++)
          s +=
            a[p.a.offsets[m] + i * p.a.rowStride + k * p.a.colStride] *
            b[p.b.offsets[m] + k * p.b.rowStride + j * p.b.colStride];
        out[(m * p.M + i) * p.N + j] = s;
      }
  return out;
}

describe("WebAssembly GEMM", () => {
  const gemm = new Gemm();
  const r = rng(5);
  // Both micro-kernels: separate f32x4 multiplies and adds, and relaxed SIMD's
  // fused multiply-add (what `new Gemm()` picks where it validates).
  const kernels: [string, Gemm][] = [["mul+add", new Gemm(undefined, false)]];
  if (relaxedSimd()) kernels.push(["relaxed_madd", new Gemm(undefined, true)]);

  it("finds relaxed SIMD on this Node.js (enabled by flag on Node 20, default from 22)", () => {
    // GPTC_RELAXED_SIMD=0 turns it off.
    expect(relaxedSimd()).toBe(process.env.GPTC_RELAXED_SIMD !== "0");
  });
  const cases: [number, number, number, boolean, boolean, number][] = [
    [1, 1, 1, false, false, 1],
    [3, 7, 5, false, false, 1],
    [4, 8, 1, true, false, 2],
    [5, 9, KC + 1, false, true, 1],
    [17, NC + 13, 33, true, true, 3],
    [2, 2 * NC + 8, 2 * KC + 7, false, true, 1],
    [33, 40, 64, false, false, 4],
    // One row panel (decoding): the whole depth in one block, deeper than KC.
    [1, 24, 2 * KC + 7, false, true, 1],
    [4, 9, KC + 3, true, false, 2],
    // One row times a matrix that is no weight (decoding's attention), read in
    // place: B's rows contiguous (scores @ values) or its columns (query @ keysᵀ);
    // columns and depth off the SIMD widths, batches of heads.
    [1, 37, 79, false, false, 3],
    [1, 79, 64, false, true, 12],
    [1, 11, 67, false, true, 2], // keysᵀ: columns four at a time and one by one, k's tail
    [1, 16, 5, false, false, 1],
    [1, 3, 3, true, true, 2],
  ];
  for (const [M, N, K, aT, bT, batch] of cases)
    for (const [kind, engine] of kernels)
      it(`${batch} x [${M}x${K}${aT ? " (transposed)" : ""} @ ${K}x${N}${bT ? " (transposed)" : ""}], ${kind}`, () => {
        const p = plan(M, N, K, aT, bT, batch);
        const a = Float32Array.from({ length: batch * M * K + 3 }, () => r() * 2 - 1);
        const b = Float32Array.from({ length: K * N + 5 }, () => r() * 2 - 1);
        const got = engine.run(p, a, b);
        expect(got.length).toBe(batch * M * N);
        // Each output sums K float32 products: error grows like K * eps at worst.
        expect(relError(got, reference(p, a, b))).toBeLessThan(4 * K * F32_EPS + 1e-6);
      });

  // Into a view of the engine's memory (an executor's arena): C is written in
  // place, rows N apart, the last partial 8-column panel through a tile; the
  // floats around the output must stay as they were.
  for (const [M, N, K, aT, bT, batch] of [...cases, [6, 50, 300, false, true, 2] as const])
    for (const [kind, engine] of kernels)
      it(`in place: ${batch} x [${M}x${K} @ ${K}x${N}], ${kind}`, () => {
        const p = plan(M, N, K, aT, bT, batch);
        const a = Float32Array.from({ length: batch * M * K + 3 }, () => r() * 2 - 1);
        const b = Float32Array.from({ length: K * N + 5 }, () => r() * 2 - 1);
        const size = batch * M * N;
        const arena = engine.reserve((size + 32) * 4);
        const guard = engine.view(arena, size + 32).fill(7);
        const out = engine.view(arena + 64, size);
        expect(engine.run(p, a, b, out)).toBe(out);
        expect(relError(out, reference(p, a, b))).toBeLessThan(4 * K * F32_EPS + 1e-6);
        expect([...guard.subarray(0, 16)]).toEqual(new Array(16).fill(7));
        expect([...guard.subarray(16 + size)]).toEqual(new Array(16).fill(7));
        engine.release(arena);
      });

  // A weight at one row (decoding): packed once, its panels run PANELS at a
  // time, the last few one by one; split with the helper thread or not.
  for (const [N, K, bT] of [
    [8 * PANELS * 3 + 8 * 3 + 5, 77, false],
    [8 * PANELS * 128, KC + 9, true], // over the size split with the helper
  ] as const)
    for (const threads of [1, 2])
      it(`one row times a weight, [1x${K} @ ${K}x${N}], ${threads} thread(s)`, async () => {
        const engine = new Gemm(threads);
        for (let i = 0; i < 200 && threads > 1 && !engine.parallel(); i++)
          await new Promise((r) => setTimeout(r, 10));
        const p = plan(1, N, K, false, bT);
        p.b.resident = true;
        const a = Float32Array.from({ length: K + 3 }, () => r() * 2 - 1);
        const b = Float32Array.from({ length: K * N + 5 }, () => r() * 2 - 1);
        expect(relError(engine.run(p, a, b), reference(p, a, b))).toBeLessThan(4 * K * F32_EPS);
        engine.close();
      });

  // A batch of small products (attention's per-head ones in training) on two
  // threads: each thread takes whole items (gemm_items). The same numbers as
  // one thread's item-by-item run; into a new array, in place (rows a
  // multiple of 8: C straight into the arena) and with a padded C.
  it("a batch of small products shared by items between two threads", async () => {
    const two = new Gemm(2);
    const one = new Gemm(1);
    for (let i = 0; i < 200 && !two.parallel(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(two.parallel()).toBe(true);
    for (const [M, N, K, aT, bT, batch] of [
      [37, 129, 70, false, false, 6],
      [64, 128, 64, false, true, 16],
      [128, 64, 128, true, false, 5],
      [3, 40, 300, true, true, 400],
    ] as const) {
      const p = plan(M, N, K, aT, bT, batch);
      // Every item its own B here.
      p.b.offsets = p.b.offsets.map((_, m) => m * K * N + 5);
      const a = Float32Array.from({ length: batch * M * K + 3 }, () => r() * 2 - 1);
      const b = Float32Array.from({ length: batch * K * N + 5 }, () => r() * 2 - 1);
      const want = one.run(p, a, b);
      expect(relError(want, reference(p, a, b))).toBeLessThan(4 * K * F32_EPS + 1e-6);
      expect(Array.from(two.run(p, a, b))).toEqual(Array.from(want));
      const size = batch * M * N;
      const arena = two.reserve((size + 32) * 4);
      const guard = two.view(arena, size + 32).fill(7);
      const out = two.view(arena + 64, size);
      expect(two.run(p, a, b, out)).toBe(out);
      expect(Array.from(out)).toEqual(Array.from(want));
      expect([...guard.subarray(0, 16)]).toEqual(new Array(16).fill(7));
      expect([...guard.subarray(16 + size)]).toEqual(new Array(16).fill(7));
      two.release(arena);
    }
    // Both operands the same array (q @ qᵀ-like).
    const p = plan(32, 32, 64, false, true, 8);
    p.b.offsets = p.a.offsets.slice();
    const a = Float32Array.from({ length: 8 * 32 * 64 + 3 }, () => r() * 2 - 1);
    expect(Array.from(two.run(p, a, a))).toEqual(Array.from(one.run(p, a, a)));
    two.close();
    one.close();
  });

  it("hold: zeros where scratch was written, past the memory's old end too", () => {
    const engine = new Gemm(1);
    // Scratch sits where the next arena goes: fill it with junk, then hold
    // arrays that start inside it and run past the memory's end (grown: zeros).
    const s = engine.scratch(1 << 20);
    engine.view(s, 1 << 18).fill(3);
    const held = engine.hold([1 << 17, 1 << 20])!;
    expect(held.arrays[0].byteOffset).toBe(s);
    for (const a of held.arrays) expect(a.every((v) => v === 0)).toBe(true);
    held.release();
    engine.close();
  });

  it("hold: zeroed arrays in one arena; its release frees it once, never a later tenant", () => {
    const engine = new Gemm(1);
    // The held arena (64 + 1216 bytes) reuses this freed one, garbage and all
    // (an arena above it keeps it from returning to scratch).
    const dirty = engine.reserve(2048);
    engine.reserve(4096);
    engine.view(dirty, 512).fill(9);
    engine.release(dirty);
    const held = engine.hold([5, 300])!;
    expect(held.arrays[0].byteOffset).toBe(dirty);
    expect(held.arrays.map((a) => a.length)).toEqual([5, 300]);
    expect(held.arrays.every((a) => a.every((v) => v === 0))).toBe(true);
    expect(held.arrays.every((a) => engine.owns(a))).toBe(true);
    held.release();
    const tenant = engine.reserve(1280);
    expect(tenant).toBe(dirty);
    held.release(); // must not free the tenant's arena
    expect(engine.reserve(1280)).not.toBe(tenant);
    engine.close();
  });

  it("both operands in one buffer (Q Kᵀ from one qkv buffer)", () => {
    const buf = Float32Array.from({ length: 6 * 10 }, () => r() * 2 - 1);
    // A = rows 0..5 x cols 0..3, B = (cols 5..8)ᵀ: both views of buf.
    const p: GemmPlan = {
      a: { buffer: 0, offsets: [0], rowStride: 10, colStride: 1, resident: false },
      b: { buffer: 0, offsets: [5], rowStride: 1, colStride: 10, resident: false },
      batch: 1,
      M: 6,
      N: 6,
      K: 4,
      product: 1,
      prologue: [],
    };
    expect(relError(gemm.run(p, buf, buf), reference(p, buf, buf))).toBeLessThan(1e-6);
  });

  it("a resident (weight) operand is packed once and repacked when its version moves", () => {
    const p = plan(5, 12, 9, false, true);
    p.b.resident = true;
    const a = Float32Array.from({ length: 5 * 9 + 3 }, () => r() * 2 - 1);
    const b = Float32Array.from({ length: 9 * 12 + 5 }, () => r() * 2 - 1);
    const first = gemm.run(p, a, b);
    expect(relError(first, reference(p, a, b))).toBeLessThan(1e-6);
    // Changed in place without telling: the kept pack is used (proof it is kept).
    b.fill(0.5);
    expect([...gemm.run(p, a, b)]).toEqual([...first]);
    // Told (as the optimizer does): repacked.
    weightChanged(b);
    expect(relError(gemm.run(p, a, b), reference(p, a, b))).toBeLessThan(1e-6);
    // A product with another row count reuses the pack (a prompt, then one token).
    const one = plan(1, 12, 9, false, true);
    one.b.resident = true;
    b.fill(0.25); // not told: still the kept pack, now shared by the 1-row product
    expect(
      relError(
        gemm.run(one, a, b),
        reference(
          one,
          a,
          Float32Array.from(b, () => 0.5),
        ),
      ),
    ).toBeLessThan(1e-6);
    weightChanged(b);
    // Another array with the same view is another pack.
    const b2 = Float32Array.from(b, (x) => -x);
    expect(relError(gemm.run(p, a, b2), reference(p, a, b2))).toBeLessThan(1e-6);
  });

  it("a zero-depth product is zeros, even after other products", () => {
    const p = plan(3, 5, 0, false, false);
    expect([...gemm.run(p, new Float32Array(3), new Float32Array(5))]).toEqual(
      new Array(15).fill(0),
    );
  });
});

describe("matmul kernels on webasm: GEMM or gpu.js loop", () => {
  it("movement chains become views; a gathered operand is written out first", () => {
    const g = new Graph("gathered");
    const table = g.op("weight", [], { name: "table", shape: shapeOf(10, 4) });
    const ids = g.op("input", [], { name: "ids", shape: shapeOf(3), dtype: "i32" });
    const w = g.op("weight", [], { name: "w", shape: shapeOf(5, 4) });
    const rows = g.op("gather", [table, ids]);
    const wT = g.op("permute", [w], { perm: [1, 0] });
    g.output("y", g.op("matmul", [rows, wT]));
    g.output("z", g.op("matmul", [g.op("slice", [table], { axis: 0, start: 2, end: 5 }), wT]));
    const s = fuse(g);
    const [y, z] = s.kernels.filter((k) => k.kind === "matmul");
    const py = gemmPlan(g, y, {})!;
    expect(py.prologue.map((k) => k.output)).toEqual([rows]);
    expect(py.a).toEqual({
      buffer: rows,
      offsets: [0],
      rowStride: 4,
      colStride: 1,
      resident: false,
    });
    const pz = gemmPlan(g, z, {})!;
    expect(pz.prologue).toEqual([]);
    expect(pz.a).toEqual({
      buffer: table,
      offsets: [8],
      rowStride: 4,
      colStride: 1,
      resident: true,
    });
    expect(pz.b).toEqual({ buffer: w, offsets: [0], rowStride: 1, colStride: 4, resident: true });
  });

  it("GPT-2's training step: every kernel output agrees between the two paths", async () => {
    const { graphs } = gpt2Tiny();
    const g = graphs.training!;
    const s = fuse(g);
    const bindings = { B: 2, T: 5 };
    const r = rng(3);
    const feeds = new Map<number, Float32Array>();
    for (const n of g.nodes) {
      if (n.op !== "input" && n.op !== "weight") continue;
      const size = shapeEval(n.type.shape, bindings).reduce((p, q) => p * q, 1);
      const vocab = 64;
      feeds.set(
        n.id,
        Float32Array.from({ length: size }, () =>
          n.op === "input" ? Math.floor(r() * vocab) : (r() * 2 - 1) * 0.2,
        ),
      );
    }
    const want = s.kernels.map((k) => k.output);
    const viaGemm = new Executor(s, bindings, await backend("webasm"));
    // Every matmul, including those whose operand merges permuted axes (written out first).
    const matmuls = s.kernels.filter((k) => k.kind === "matmul").length;
    expect(viaGemm.kernels.filter((k) => k.gemm).length).toBe(matmuls);
    expect(viaGemm.kernels.some((k) => k.prologue?.length)).toBe(true);
    const loops = new Executor(s, bindings, { ...(await backend("webasm")), gemm: false });
    const [x, y] = [await viaGemm.run(feeds, want), await loops.run(feeds, want)];
    for (const k of s.kernels)
      expect(relError(x.get(k.output)!, y.get(k.output)!), k.name).toBeLessThan(1e-5);
  });
});

describe("buffers past 2^24 elements on webasm", () => {
  it("every element of a [3, 5592406] buffer is read from its own index (no float32 index rounding)", async () => {
    // 16,777,218 elements: gpu.js webasm computes a flat index in float32, so
    // without 2-D reads odd indices past 2^24 read their even neighbour.
    const g = new Graph("wide");
    const x = g.op("input", [], { name: "x", shape: shapeOf(3, 5592406), dtype: "f32" });
    g.output("y", g.op("add", [x, g.scalar(1)]));
    const s = fuse(g);
    const ex = new Executor(s, {}, await backend("webasm"));
    const data = Float32Array.from({ length: 3 * 5592406 }, (_, i) => i % 4093);
    const y = (await ex.run(new Map([[x, data]]))).get(g.outputs[0].id)!;
    let wrong = 0;
    for (let i = 0; i < data.length; i++) if (y[i] !== data[i] + 1) wrong++;
    expect(wrong).toBe(0);
    ex.destroy();
  });
});
