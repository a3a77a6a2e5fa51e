// Generated kernels against the float64 interpreter: every kernel family
// (elementwise chains, reductions, matmuls, movement chains, data-dependent
// indexing, masks, softmax over a GPT-2-sized vocabulary) through fuse ->
// kernel IR -> gpu.js / WebAssembly -> Executor on the cpu and webasm backends, on random
// shapes with odd sizes (1, 3, 7, 33, 1031, 50257, T = 3, ...).
//
// The interpreter gets the same float32-rounded inputs as the backend, so the
// error measured, err = max|x - ref| / max|ref|, is the backend's float32
// arithmetic alone: 1e-5 for short kernels, see `f32SumError` for long sums.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { frontend } from "../src/dsl/frontend.js";
import { specsDir } from "../src/dsl/load.js";
import { dimConst, shapeOf } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import { lowerProgram } from "../src/ir/lower.js";
import { allOps } from "../src/ir/ops/registry.js";
import type { DType } from "../src/ir/ops/types.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { compileGraphs, optimize } from "../src/ir/pipeline.js";
import type { BackendName } from "../src/runtime/backend.js";
import { Session } from "../src/runtime/session.js";
import { initWeights, weightSpecs } from "../src/runtime/weights.js";
import {
  F32_EPS,
  backend,
  compareOutputs,
  cpuBackends,
  input,
  reference,
  relError,
  runCompiled,
  toF32,
  type Feeds,
} from "./helpers/backend.js";
import { randInt, randn, rng, t, type Tensor } from "./helpers/ir.js";

/** Short kernels: a handful of float32 roundings on the way to each output. */
const TOL = 1e-5;

/**
 * Long reductions. A kernel adds the n terms of each output one by one in index
 * order (the loop nest of the kernel IR); on webasm the accumulator is a
 * float32, so every addition rounds (cpu mode accumulates in JavaScript doubles
 * and rounds once, at the store). No closed form fits that error well:
 *  - the worst case, |Σ δ_k s_k| <= (n - 1) u Σ|x| with u = 2^-24, is 3e-3
 *    relative for n = 50257 — so loose it would hide a real loss of precision;
 *  - the probabilistic estimate (Higham & Mary, SISC 2019: independent zero-mean
 *    roundings, σ ~ u √n / 3 relative for terms of one sign, 2.7e-5 at 6σ for
 *    n = 50257) is too tight for softmax: most exp(x - max) terms lie far below
 *    half an ulp of the running sum and are rounded away, always downwards
 *    (stagnation), so the error is one-sided — 4e-5 relative on the vocab below.
 * So the tolerance is derived from the data: `f32SumError` replays the float32
 * summation exactly (Math.fround after every addition is IEEE round-to-nearest)
 * and measures its error against the float64 sum. We allow twice that — for the
 * other roundings of the kernel (the terms' own exp, x - max, the final divide)
 * and for a backend that orders the additions differently — plus the 1e-5 of a
 * short kernel. An indexing or scoping bug is off by O(1), far above it.
 */
function f32SumError(rows: Iterable<ArrayLike<number>>): { abs: number; rel: number } {
  let abs = 0;
  let rel = 0;
  for (const row of rows) {
    let exact = 0;
    let f32 = 0;
    for (let k = 0; k < row.length; k++) {
      exact += row[k];
      f32 = Math.fround(f32 + Math.fround(row[k]));
    }
    abs = Math.max(abs, Math.abs(f32 - exact));
    if (exact !== 0) rel = Math.max(rel, Math.abs(f32 - exact) / Math.abs(exact));
  }
  return { abs, rel };
}

/** The rows a reduction over `axes` (ascending: the kernel's loop order) sums, in order. */
function reductionRows(x: Tensor, axes: number[]): Float64Array[] {
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = axes.reduce((p, a) => p * x.shape[a], 1);
  const rows = Array.from({ length: x.data.length / Math.max(n, 1) }, () => new Float64Array(n));
  const fill = new Array<number>(rows.length).fill(0);
  const st = keptShape.map((_, i) => keptShape.slice(i + 1).reduce((p, q) => p * q, 1));
  const idx = new Array<number>(x.shape.length).fill(0);
  for (let flat = 0; flat < x.data.length; flat++) {
    let o = 0;
    for (let a = 0; a < idx.length; a++) if (!axes.includes(a)) o += idx[a] * st[a];
    rows[o][fill[o]++] = x.data[flat];
    for (let a = idx.length - 1; a >= 0; a--) {
      if (++idx[a] < x.shape[a]) break;
      idx[a] = 0;
    }
  }
  return rows;
}

const maxAbsOf = (a: ArrayLike<number>) =>
  Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Uniform in [lo, hi). */
const uniform = (r: () => number, lo: number, hi: number) => lo + (hi - lo) * r();

/** A random tensor of `shape` from `gen` (N(0, 1) by default). */
function rand(r: () => number, shape: number[], gen: () => number = () => randn(r)): Tensor {
  return t(shape, () => gen());
}

const ids = (r: () => number, shape: number[], n: number): Tensor => t(shape, () => randInt(r, n));

async function expectClose(
  g: Graph,
  name: BackendName,
  feeds: Feeds,
  tol: Record<string, number> | number = TOL,
) {
  const { errors } = await compareOutputs(g, await backend(name), feeds);
  for (const [out, err] of Object.entries(errors)) {
    const limit = typeof tol === "number" ? tol : (tol[out] ?? TOL);
    expect(err, `${g.name}: output ${out}`).toBeLessThanOrEqual(limit);
  }
  return errors;
}

const oddSizes = [1, 2, 3, 5, 7, 9, 11, 13];

/** A random shape of rank 1..4 made of odd sizes (1 included). */
function randomShape(r: () => number): number[] {
  const rank = 1 + randInt(r, 4);
  return Array.from({ length: rank }, () => oddSizes[randInt(r, oddSizes.length)]);
}

/** `shape` as a broadcast operand: some leading axes dropped (possibly all: a scalar), some axes 1. */
function broadcastable(r: () => number, shape: number[]): number[] {
  const drop = randInt(r, shape.length + 1);
  return shape.slice(drop).map((d) => (r() < 0.3 ? 1 : d));
}

describe.each(cpuBackends)("generated kernels on %s", (name) => {
  // ---- elementwise ---------------------------------------------------------------------

  it("elementwise chains with broadcasting (size-1 axes, scalars) on random shapes", async () => {
    const r = rng(11);
    for (let trial = 0; trial < 8; trial++) {
      const shape = randomShape(r);
      const shapes = [shape, broadcastable(r, shape), broadcastable(r, shape)];
      const g = new Graph(`chain${trial}`);
      const [a, b, c] = shapes.map((s, k) => input(g, `x${k}`, s));
      // tanh(a b + c) - exp(-a) / (1 + c²) + 0.5 max(a, b), and a constant scalar
      const ab = g.op("mul", [a, b]);
      const th = g.op("tanh", [g.op("add", [ab, c])]);
      const q = g.op("div", [
        g.op("exp", [g.op("neg", [a])]),
        g.op("add", [g.scalar(1), g.op("mul", [c, c])]),
      ]);
      const m = g.op("mul", [g.scalar(0.5), g.op("maximum", [a, b])]);
      g.output("y", g.op("add", [g.op("sub", [th, q]), m]));
      g.output("z", g.op("relu", [g.op("sub", [b, c])]));
      const inputs = Object.fromEntries(shapes.map((s, k) => [`x${k}`, rand(r, s)]));
      await expectClose(g, name, { inputs });
    }
  });

  it("every elementwise op of the registry that has ALU operations", async () => {
    const pos = (r: () => number) => () => uniform(r, 0.1, 3);
    const any = (r: () => number) => () => 2 * randn(r);
    // Values with ties, so eq/ne/le/ge see equal operands.
    const ties = (r: () => number) => () => (randInt(r, 5) - 2) / 2;
    const domain: Record<string, (r: () => number, k: number) => () => number> = {
      log: pos,
      sqrt: pos,
      rsqrt: pos,
      pow: (r, k) => (k === 0 ? pos(r) : () => uniform(r, -2, 2)),
      div: (r, k) => (k === 0 ? any(r) : () => (r() < 0.5 ? -1 : 1) * uniform(r, 0.5, 2)),
      lt: ties,
      le: ties,
      gt: ties,
      ge: ties,
      eq: ties,
      ne: ties,
      maximum: ties,
      minimum: ties,
      where: (r, k) => (k === 0 ? () => randInt(r, 2) : any(r)),
      cast: (r) => () => randInt(r, 100) - 50,
    };
    const dtypeOf = (op: string, k: number): DType =>
      op === "cast" ? "i32" : op === "where" && k === 0 ? "bool" : "f32";
    // Operand shapes per arity: plain, broadcast along either side, and a scalar.
    const shapesOf: Record<number, number[][][]> = {
      1: [[[5, 7]], [[1031]], [[]]],
      2: [
        [
          [5, 7],
          [5, 7],
        ],
        [[5, 7], [7]],
        [
          [1, 7],
          [5, 1],
        ],
        [[5, 7], []],
        [[], [3, 1, 5]],
      ],
      3: [
        [[5, 1], [5, 7], []],
        [[7], [], [5, 7]],
        [
          [3, 5, 7],
          [5, 7],
          [3, 1, 7],
        ],
      ],
    };
    const ops = allOps().filter((op) => op.kind === "elementwise" && op.alu);
    expect(ops.map((o) => o.name)).toEqual(expect.arrayContaining(["neg", "pow", "where", "cast"]));
    const r = rng(12);
    for (const op of ops) {
      for (const shapes of shapesOf[op.arity as number]) {
        const g = new Graph(`${op.name}[${shapes.map((s) => s.join("x")).join(",")}]`);
        const xs = shapes.map((s, k) => input(g, `x${k}`, s, dtypeOf(op.name, k)));
        g.output("y", g.op(op.name, xs));
        const gen = domain[op.name] ?? any;
        const inputs = Object.fromEntries(shapes.map((s, k) => [`x${k}`, rand(r, s, gen(r, k))]));
        await expectClose(g, name, { inputs });
      }
    }
  });

  it("where and comparisons in one kernel, with broadcast conditions", async () => {
    const r = rng(13);
    const g = new Graph("select");
    const x = input(g, "x", [5, 1, 7]);
    const y = input(g, "y", [3, 1]);
    const z = input(g, "z", []);
    const gt = g.op("gt", [x, y]);
    const eq = g.op("eq", [x, z]);
    const inner = g.op("where", [eq, g.op("mul", [y, g.scalar(2)]), g.scalar(-1)]);
    g.output("w", g.op("where", [gt, g.op("exp", [x]), inner]));
    // A comparison result used as a number (mask arithmetic).
    g.output("m", g.op("mul", [g.op("cast", [g.op("le", [x, y])]), g.op("sub", [x, y])]));
    const tie = () => (randInt(r, 5) - 2) / 2;
    await expectClose(g, name, {
      inputs: { x: rand(r, [5, 1, 7], tie), y: rand(r, [3, 1], tie), z: t([], [0.5]) },
    });
  });

  it("negative constants as operands (neg of a negative literal)", async () => {
    // Unfolded graphs (Graph.op directly, before `fold`) must still compile:
    // `-${x}` with x = "-2.0" is `--2.0`, a syntax error, unless codegen wraps it.
    const r = rng(14);
    const g = new Graph("negconst");
    const x = input(g, "x", [7]);
    g.output("y", g.op("mul", [x, g.op("neg", [g.scalar(-2)])]));
    g.output("z", g.op("sub", [g.op("neg", [g.scalar(-0.5)]), g.op("neg", [x])]));
    await expectClose(g, name, { inputs: { x: rand(r, [7]) } });
  });

  // ---- reductions ----------------------------------------------------------------------

  it("sum / mean / max over last, middle and several axes, keepdim both ways", async () => {
    const r = rng(21);
    const cases: { shape: number[]; axes: number[] }[] = [
      { shape: [5, 1031], axes: [1] }, // long rows
      { shape: [3, 7], axes: [1] },
      { shape: [6, 1], axes: [1] }, // rows of length 1
      { shape: [7], axes: [0] }, // to a scalar
      { shape: [3, 7, 5], axes: [1] }, // middle axis
      { shape: [3, 7, 5], axes: [0, 2] }, // several, not adjacent
      { shape: [2, 3, 1, 5], axes: [1, 2] }, // including a size-1 axis
      { shape: [3, 3, 7], axes: [0, 1, 2] }, // everything
      { shape: [1, 3, 1], axes: [0] },
    ];
    for (const { shape, axes } of cases)
      for (const keepdim of [false, true]) {
        const g = new Graph(`reduce[${shape}]/${axes}/${keepdim}`);
        const x = input(g, "x", shape);
        for (const op of ["sum", "mean", "max"]) g.output(op, g.op(op, [x], { axes, keepdim }));
        const feeds = { inputs: { x: rand(r, shape) } };
        // Relative to max|sum| (the mean divides both by n); max is exact.
        const ref = reference(g, feeds);
        const sumTol =
          TOL +
          (2 * f32SumError(reductionRows(toF32(feeds.inputs.x), axes)).abs) /
            maxAbsOf(ref.sum.data);
        await expectClose(g, name, feeds, { sum: sumTol, mean: sumTol, max: TOL });
      }
  });

  it("reductions with a prologue and an epilogue fused in (exp(x - c) summed, scaled)", async () => {
    const r = rng(22);
    for (const [rows, len] of [
      [3, 1],
      [5, 7],
      [2, 1031],
    ]) {
      const g = new Graph(`softsum${rows}x${len}`);
      const x = input(g, "x", [rows, len]);
      const c = input(g, "c", [rows, 1]);
      const e = g.op("exp", [g.op("sub", [x, c])]);
      const s = g.op("sum", [e], { axes: [1], keepdim: true });
      g.output("y", g.op("add", [g.op("mul", [s, g.scalar(0.5)]), c]));
      const feeds = { inputs: { x: rand(r, [rows, len]), c: rand(r, [rows, 1]) } };
      // One kernel: the sum is the anchor, exp(x - c) its prologue, *0.5 + c its epilogue.
      expect(fuse(g).kernels.length).toBe(1);
      const ref = reference(g, feeds);
      const terms = reductionRows(toF32(feeds.inputs.x), [1]).map((row, i) =>
        row.map((v) => Math.exp(v - Math.fround(feeds.inputs.c.data[i]))),
      );
      const tol = TOL + (2 * 0.5 * f32SumError(terms).abs) / maxAbsOf(ref.y.data);
      await expectClose(g, name, feeds, tol);
    }
  });

  // ---- matmul --------------------------------------------------------------------------

  it("matmul: 2-D, batched, broadcast batch axes, inner dims 1 / 5 / 33", async () => {
    const r = rng(31);
    const cases: [number[], number[]][] = [
      [
        [5, 33],
        [33, 7],
      ],
      [
        [7, 1],
        [1, 3],
      ],
      [
        [3, 5, 5],
        [3, 5, 7],
      ],
      [
        [2, 1, 5, 33],
        [3, 33, 7],
      ], // batch [2, 1] x [3] -> [2, 3]
      [
        [5, 5],
        [4, 5, 9],
      ], // a matrix against a batch
      [
        [1, 1],
        [1, 1],
      ],
    ];
    for (const [sa, sb] of cases) {
      const g = new Graph(`matmul[${sa}]@[${sb}]`);
      const a = input(g, "a", sa);
      const b = input(g, "b", sb);
      g.output("y", g.op("matmul", [a, b]));
      await expectClose(g, name, { inputs: { a: rand(r, sa), b: rand(r, sb) } });
    }
  });

  it("matmul with a transposed operand (permute), an operand expression and an epilogue", async () => {
    const r = rng(32);
    const g = new Graph("linear");
    const x = input(g, "x", [2, 3, 33]);
    const wT = input(g, "wT", [9, 33]); // stored transposed, like wte for the LM head
    const bias = input(g, "bias", [9]);
    const s = input(g, "s", [33]);
    const xs = g.op("mul", [x, s]); // an elementwise operand: materialized before the matmul
    const y = g.op("matmul", [xs, g.op("permute", [wT], { perm: [1, 0] })]);
    const z = g.op("add", [y, bias]);
    // gelu(z) = 0.5 z (1 + tanh(0.79788 (z + 0.044715 z³)))
    const z3 = g.op("mul", [z, g.op("mul", [z, z])]);
    const inner = g.op("mul", [
      g.scalar(Math.sqrt(2 / Math.PI)),
      g.op("add", [z, g.op("mul", [g.scalar(0.044715), z3])]),
    ]);
    const gelu = g.op("mul", [
      g.op("mul", [g.scalar(0.5), z]),
      g.op("add", [g.scalar(1), g.op("tanh", [inner])]),
    ]);
    g.output("y", gelu);
    // Q Kᵀ with both from one buffer through reshape + permute (attention scores).
    const qk = input(g, "qk", [2, 5, 12]);
    const heads = g.op("permute", [g.op("reshape", [qk], { shape: shapeOf(2, 5, 2, 6) })], {
      perm: [0, 2, 1, 3],
    });
    const kT = g.op("permute", [heads], { perm: [0, 1, 3, 2] });
    g.output("scores", g.op("mul", [g.op("matmul", [heads, kT]), g.scalar(1 / Math.sqrt(6))]));
    const feeds = {
      inputs: {
        x: rand(r, [2, 3, 33]),
        wT: rand(r, [9, 33]),
        bias: rand(r, [9]),
        s: rand(r, [33]),
        qk: rand(r, [2, 5, 12]),
      },
    };
    const { schedule } = await runCompiled(g, await backend(name), feeds);
    const matmulKernel = schedule.kernels.find((k) => k.output === gelu)!;
    expect(matmulKernel.kind).toBe("matmul"); // bias + GELU fused as its epilogue
    await expectClose(g, name, feeds);
  });

  // ---- movement chains -----------------------------------------------------------------

  it("reshape / permute / slice / pad / concat chains feeding elementwise, reduce and matmul kernels", async () => {
    const r = rng(41);
    const g = new Graph("movement");
    const x = input(g, "x", [6, 35]);
    const y = input(g, "y", [5, 3, 6]);
    const rs = g.op("reshape", [x], { shape: shapeOf(6, 5, 7) }); // split an axis
    const pm = g.op("permute", [rs], { perm: [1, 2, 0] }); // [5, 7, 6]
    const sl = g.op("slice", [pm], { axis: 1, start: 2, end: 5 }); // [5, 3, 6]
    const pd = g.op("pad", [sl], { axis: 0, before: 1, after: 2 }); // [8, 3, 6]
    const cc = g.op("concat", [y, pd], { axis: 0 }); // [13, 3, 6]
    const e = g.op("exp", [g.op("mul", [cc, g.scalar(0.5)])]);
    g.output("e", e);
    g.output("s", g.op("sum", [cc], { axes: [0, 2], keepdim: false }));
    // Merged axes read back with a stride (a [15, 4] buffer seen as [3, 5, 4]).
    const z = input(g, "z", [15, 4]);
    const merged = g.op("reshape", [z], { shape: shapeOf(3, 5, 4) });
    g.output("merged", g.op("neg", [merged]));
    // Mixed groups: [6, 10] as [4, 15] (no axis boundary shared but the ends).
    g.output("mixed", g.op("add", [g.op("reshape", [x], { shape: shapeOf(14, 15) }), g.scalar(1)]));
    // A matmul whose operand is a movement chain (inlined into its loop).
    const w = input(g, "w", [3, 4]);
    const lhs = g.op("permute", [g.op("reshape", [z], { shape: shapeOf(5, 3, 4) })], {
      perm: [0, 2, 1],
    });
    g.output("mm", g.op("matmul", [lhs, w])); // [5, 4, 3] @ [3, 4]
    // Slices of one buffer concatenated the other way round (split + concat).
    const a = g.op("slice", [x], { axis: 1, start: 0, end: 11 });
    const b = g.op("slice", [x], { axis: 1, start: 11, end: 35 });
    g.output("swap", g.op("concat", [b, a, a], { axis: 1 }));
    await expectClose(g, name, {
      inputs: {
        x: rand(r, [6, 35]),
        y: rand(r, [5, 3, 6]),
        z: rand(r, [15, 4]),
        w: rand(r, [3, 4]),
      },
    });
  });

  it("pad / concat / cache_write read in range on the side not taken (odd output sizes)", async () => {
    // Kernels read both sides of a select before choosing; on webasm the threads past
    // the last multiple of 4 run scalar code whose loads are not clamped, so an index
    // left out of range for the unused side traps ("memory access out of bounds").
    const r = rng(43);
    for (const n of [1, 3, 5, 7]) {
      const g = new Graph(`select${n}`);
      const x = input(g, "x", [n]);
      const y = input(g, "y", [2]);
      g.output("pad", g.op("neg", [g.op("pad", [x], { axis: 0, before: 2, after: 1 })]));
      g.output("cat", g.op("neg", [g.op("concat", [y, x, y], { axis: 0 })]));
      // Inside a reduction loop (scalar code on every backend).
      const padded = g.op("pad", [x], { axis: 0, before: 3, after: 2 });
      g.output("sum", g.op("sum", [g.op("mul", [padded, padded])], { axes: [0], keepdim: true }));
      // A KV-cache write: fresh rows at slots len..len+1 of a cache of n + 2 slots.
      const past = input(g, "past", [n + 2, 3]);
      const fresh = input(g, "fresh", [2, 3]);
      const len = input(g, "len", []);
      g.output("cache", g.op("cache_write", [past, fresh, len], { axis: 0 }));
      await expectClose(g, name, {
        inputs: {
          x: rand(r, [n]),
          y: rand(r, [2]),
          past: rand(r, [n + 2, 3]),
          fresh: rand(r, [2, 3]),
          len: t([], [n]),
        },
      });
    }
  });

  it("symbolic dims bound at run time (B, T) through reshape and broadcasting", async () => {
    const r = rng(42);
    const g = new Graph("symbolic");
    const x = input(g, "x", ["B", "T", 6]);
    const bias = input(g, "bias", ["T", 1]);
    const heads = g.op("reshape", [x], { shape: shapeOf("B", "T", 2, 3) });
    const mean = g.op(
      "mean",
      [g.op("add", [heads, g.op("reshape", [bias], { shape: shapeOf("T", 1, 1) })])],
      {
        axes: [3],
        keepdim: false,
      },
    );
    g.output("y", mean);
    const feeds = {
      inputs: { x: rand(r, [3, 5, 6]), bias: rand(r, [5, 1]) },
      bindings: { B: 3, T: 5 },
    };
    await expectClose(g, name, feeds);
  });

  // ---- data-dependent indexing ---------------------------------------------------------

  it("gather (embedding), take, put and scatter_add with random ids", async () => {
    const r = rng(51);
    const g = new Graph("index");
    const W = input(g, "W", [50, 7]);
    const P = input(g, "P", [9, 7]);
    const tok = input(g, "tok", [3, 5], "i32");
    // wte[tokens] + wpe[arange(T)]
    const emb = g.op("add", [
      g.op("gather", [W, tok]),
      g.op("gather", [P, g.op("arange", [], { n: shapeOf(5)[0] })]),
    ]);
    g.output("emb", emb);
    // Sums over the ids' own axes: the gathered row index is a loop variable.
    g.output("bag", g.op("sum", [g.op("gather", [W, tok])], { axes: [0, 1], keepdim: false }));
    g.output("bagT", g.op("sum", [g.op("gather", [W, tok])], { axes: [1], keepdim: false }));
    const v = input(g, "v", [9]); // a rank-1 table: ids -> scalars
    g.output("vsum", g.op("sum", [g.op("gather", [v, tok])], { axes: [1], keepdim: true }));
    const x = input(g, "x", [3, 5, 11]);
    const tgt = input(g, "tgt", [3, 5], "i32");
    g.output("take", g.op("take", [x, tgt]));
    g.output("takemean", g.op("mean", [g.op("take", [x, tgt])], { axes: [0, 1], keepdim: false }));
    const gv = input(g, "gv", [3, 5]);
    g.output("put", g.op("put", [tgt, gv], { n: dimConst(11) }));
    const ge = input(g, "ge", [3, 5, 7]);
    g.output("scatter", g.op("scatter_add", [tok, ge], { n: dimConst(50) }));
    g.output("scatter1", g.op("scatter_add", [tgt, gv], { n: dimConst(11) }));
    // Ids computed in the kernel rather than read from a graph input (no host index tables).
    const flatIds = g.op("reshape", [tok], { shape: shapeOf(15) });
    const flatG = g.op("reshape", [ge], { shape: shapeOf(15, 7) });
    g.output("scatterFlat", g.op("scatter_add", [flatIds, flatG], { n: dimConst(50) }));
    // Ids 0..4 (a position table's gradient): rows 0..4 of g, zeros after.
    const gp = input(g, "gp", [5, 7]);
    const positions = g.op("arange", [], { n: shapeOf(5)[0] });
    g.output("scatterArange", g.op("scatter_add", [positions, gp], { n: dimConst(9) }));
    const feeds = {
      inputs: {
        W: rand(r, [50, 7]),
        P: rand(r, [9, 7]),
        // ids from a small range: repeated ids, so scatter_add really adds
        tok: ids(r, [3, 5], 6),
        v: rand(r, [9]),
        x: rand(r, [3, 5, 11]),
        tgt: ids(r, [3, 5], 11),
        gv: rand(r, [3, 5]),
        ge: rand(r, [3, 5, 7]),
        gp: rand(r, [5, 7]),
      },
    };
    // The vsum ids must index v (9 rows): tok < 6 does.
    await expectClose(g, name, feeds);
  });

  it("causal_mask with q < k and q = k inside attention scores", async () => {
    const r = rng(52);
    for (const [q, k] of [
      [3, 7],
      [5, 5],
      [1, 9],
    ]) {
      const g = new Graph(`mask${q}x${k}`);
      const s = input(g, "s", [2, q, k]);
      const scores = g.op("add", [
        s,
        g.op("causal_mask", [], { q: shapeOf(q)[0], k: shapeOf(k)[0] }),
      ]);
      const m = g.op("detach", [g.op("max", [scores], { axes: [2], keepdim: true })]);
      const e = g.op("exp", [g.op("sub", [scores, m])]);
      const p = g.op("div", [e, g.op("sum", [e], { axes: [2], keepdim: true })]);
      g.output("p", p);
      // The mask itself, as 0/1 (its -inf is a large finite negative in kernels).
      g.output("visible", g.op("cast", [g.op("gt", [scores, g.scalar(-1e30)])]));
      const feeds = { inputs: { s: rand(r, [2, q, k]) } };
      await expectClose(g, name, feeds);
      const ref = reference(g, feeds);
      const { outputs } = await runCompiled(g, await backend(name), feeds);
      // Masked probabilities are exactly zero.
      ref.p.data.forEach((v, i) => v === 0 && expect(outputs.p[i]).toBe(0));
      expect(relError(outputs.visible, ref.visible.data)).toBe(0);
    }
  });

  // ---- a GPT-2-sized vocabulary --------------------------------------------------------

  it("softmax / log-softmax / cross-entropy over a vocab of 50257 with T = 3 (std/nn.model)", async () => {
    const text = [
      'import "std/nn.model"',
      "model probe {",
      "  param vocab = 50257",
      "  input logits: [B, T, vocab]",
      "  input targets: int[B, T]",
      "  output p = softmax(logits)",
      "  output lp = log_softmax(logits)",
      "  loss = cross_entropy(logits, targets)",
      "}",
      "",
    ].join("\n");
    const fe = frontend(join(specsDir, "probe.model"), text);
    expect(fe.diagnostics.items.filter((d) => d.severity === "error")).toEqual([]);
    const graph = optimize(lowerProgram(fe.program!).graph);
    const r = rng(61);
    const V = 50257;
    const feeds = {
      inputs: { logits: rand(r, [1, 3, V], () => 3 * randn(r)), targets: ids(r, [1, 3], V) },
      bindings: { B: 1, T: 3 },
    };
    // Every output carries the relative error of its row's sum of V terms exp(x - max):
    // p = e / S relative to max p, lp = x - max - log S and the loss by ε_S / |value| <= ε_S.
    const terms = reductionRows(feeds.inputs.logits, [2]).map((row) => {
      const x = Array.from(row, Math.fround);
      const m = Math.max(...x);
      return x.map((v) => Math.exp(v - m));
    });
    const errors = await expectClose(graph, name, feeds, TOL + 2 * f32SumError(terms).rel);
    expect(Object.keys(errors).sort()).toEqual(["loss", "lp", "p"]);
  });

  // ---- fusion limits -------------------------------------------------------------------

  it("fused kernel groups split for maxInputs 3 still match", async () => {
    const r = rng(71);
    const g = new Graph("wide");
    const xs = [[5, 7], [7], [5, 1], [], [1, 7], [5, 7]].map((s, k) => input(g, `x${k}`, s));
    let acc = xs[0];
    for (const x of xs.slice(1))
      acc = g.op("add", [g.op("mul", [acc, g.scalar(0.5)]), g.op("tanh", [x])]);
    const w = input(g, "w", [7, 3]);
    const b = input(g, "b", [3]);
    const c = input(g, "c", [5, 3]);
    const d = input(g, "d", [1, 3]);
    const mm = g.op("matmul", [acc, w]);
    g.output("y", g.op("mul", [g.op("add", [g.op("add", [mm, b]), c]), g.op("exp", [d])]));
    g.output(
      "s",
      g.op("max", [g.op("add", [acc, g.op("sub", [xs[5], xs[2]])])], { axes: [1], keepdim: false }),
    );
    const shapes: Record<string, number[]> = { w: [7, 3], b: [3], c: [5, 3], d: [1, 3] };
    [[5, 7], [7], [5, 1], [], [1, 7], [5, 7]].forEach((s, k) => (shapes[`x${k}`] = s));
    const inputs = Object.fromEntries(Object.entries(shapes).map(([k, s]) => [k, rand(r, s)]));
    const limits = { maxInputs: 3 };
    expect(Math.max(...fuse(g).kernels.map((k) => k.inputs.length))).toBeGreaterThan(3);
    const split = fuse(g, limits);
    expect(Math.max(...split.kernels.map((k) => k.inputs.length))).toBeLessThanOrEqual(3);
    expect(split.kernels.length).toBeGreaterThan(fuse(g).kernels.length);
    const ref = reference(g, { inputs });
    const { outputs } = await runCompiled(g, await backend(name), { inputs }, limits);
    for (const o of ["y", "s"])
      expect(relError(outputs[o], ref[o].data), o).toBeLessThanOrEqual(TOL);
  });

  it("gpt2-tiny's training graph with maxInputs 3 matches the default fusion", async () => {
    const fe = frontend(join(specsDir, "gpt2-tiny.model"));
    const lowered = lowerProgram(fe.program!);
    const graphs = compileGraphs(lowered);
    const weights = initWeights(weightSpecs(lowered.graph), 0);
    const r = rng(72);
    const inputs = {
      tokens: Float32Array.from({ length: 6 }, () => randInt(r, 64)),
      targets: Float32Array.from({ length: 6 }, () => randInt(r, 64)),
    };
    const be = await backend(name);
    const wide = new Session(graphs, be);
    const narrow = new Session(graphs, be, { maxInputs: 3 });
    try {
      const a = await wide.lossAndGrads(weights, inputs, { B: 2, T: 3 });
      const b = await narrow.lossAndGrads(weights, inputs, { B: 2, T: 3 });
      expect(Math.abs(a.loss - b.loss) / Math.abs(a.loss)).toBeLessThanOrEqual(TOL);
      for (const [key, ga] of a.grads)
        expect(relError(b.grads.get(key)!, ga), key).toBeLessThanOrEqual(1e-4);
    } finally {
      wide.destroy();
      narrow.destroy();
    }
  });
});
