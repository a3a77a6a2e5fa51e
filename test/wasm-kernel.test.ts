// gptc's WebAssembly kernels (codegen/wasm/kernel.ts, printed from the kernel
// IR) against the gpu.js printer's JavaScript (codegen/kernel-js.ts) of the
// same IR, evaluated for every output element as gpu.js's cpu mode runs it.
// Covered:
//  - every kernel of every shipped spec, forward and training (and the GEMM
//    operand and epilogue kernels and host-gather kernels webasm splits them
//    into): verified and compiled at full size (none is left to gpu.js), and
//    run both ways on seeded random inputs at small sizes;
//  - hand-built IR for the corners the specs do not reach: floor division and
//    remainder of negative integers, strided gathers, selects mixing i32 and
//    f32, min/max, reductions along and across the lanes, a reduction stopping
//    at a count (scatter_add's index tables) also when it differs per lane,
//    out-of-range reads (clamped: never a trap, never memory outside the
//    buffer), imported math, partial [from, to) ranges — on rows that are no
//    multiple of 4, so the four-lane loop and the scalar tail both run;
//  - the verifier rejecting malformed IR;
//  - the runtime wrapper (runtime/wasm-kernel.ts) in a GEMM engine's memory;
//  - exp / tanh / log (codegen/wasm/math.ts) through the webasm Executor, both
//    the four-lane float32 versions and the scalar float64 ones.
//
// Every buffer sits between guard zones of a sentinel value in the memory the
// module imports: a read outside a buffer shows up as a sentinel in the output,
// a write outside the output as a changed guard.
import { describe, expect, it } from "vitest";
import { gemmPlan } from "../src/codegen/gemm-plan.js";
import { hostGathers } from "../src/codegen/host-gather.js";
import { buildKernel } from "../src/codegen/kernel-ir/build.js";
import { add, f32, i32, op, ref, select, sub } from "../src/codegen/kernel-ir/expr.js";
import {
  outputSize,
  type Expr,
  type Grid,
  type KernelIR,
  type Stmt,
} from "../src/codegen/kernel-ir/types.js";
import { KernelIRError, verifyKernel } from "../src/codegen/kernel-ir/verify.js";
import { printJs } from "../src/codegen/kernel-js.js";
import { wasmKernel } from "../src/codegen/wasm/kernel.js";
import { shapeEval, shapeOf } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import type { Kernel } from "../src/ir/passes/fuse.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { createBackend } from "../src/runtime/backend.js";
import { Executor, indexTables } from "../src/runtime/executor.js";
import { Gemm, gemmEngine } from "../src/runtime/gemm.js";
import { WasmKernel } from "../src/runtime/wasm-kernel.js";
import type { GemmPlan } from "../src/codegen/gemm-plan.js";
import { bindingsFor, lowerSpec, randInt, rng, specFiles } from "./helpers/ir.js";

/** Waits (up to 10 s) for an engine's helper thread, which starts in the background. */
async function untilParallel(engine: Gemm): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!engine.parallel() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

// ---- running one kernel both ways ---------------------------------------------------------

/** A value no input holds: what every guard zone (and an unwritten output) contains. */
const SENTINEL = -7777.5;
/** Floats of sentinel before and after every buffer. */
const GUARD = 16;
const PAGE = 65536;

/** One memory for the whole file (grown on demand), as the runtime has one engine memory. */
const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536 });

interface WasmRun {
  out: Float32Array;
  /** Math functions the module imported. */
  imports: string[];
  /** Floats outside the output that the call changed (guards and inputs alike). */
  clobbered: number;
}

const gridRows = (ir: KernelIR) => (ir.grid.kind === "rows" ? ir.grid.rows : ir.grid.size);

/**
 * Compiles `ir` and runs it on `args` (its buffers, in order) over [from, to)
 * of its rows (rows grid) or elements (flat grid). The output starts as
 * SENTINEL, so elements outside the range can be checked.
 */
function runWasm(ir: KernelIR, args: Float32Array[], range?: [number, number]): WasmRun {
  const { bytes, imports } = wasmKernel(ir, { initial: 1, maximum: 65536, shared: false });
  const size = outputSize(ir);
  // [guard | out | guard | arg0 | guard | arg1 | guard ...], 16-byte aligned like the runtime's.
  const align = (n: number) => Math.ceil(n / 4) * 4;
  const outAt = GUARD;
  let top = align(outAt + size) + GUARD;
  const at = args.map((a) => {
    const p = top;
    top = align(p + a.length) + GUARD;
    return p;
  });
  const need = top * 4 - memory.buffer.byteLength;
  if (need > 0) memory.grow(Math.ceil(need / PAGE));
  const mem = new Float32Array(memory.buffer, 0, top);
  mem.fill(SENTINEL);
  args.forEach((a, k) => mem.set(a, at[k]));
  const before = mem.slice();

  const env: WebAssembly.ModuleImports = { memory };
  for (const m of imports)
    env[`Math_${m}`] = (Math as unknown as Record<string, WebAssembly.ImportValue>)[m];
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env });
  const run = instance.exports.run as (...a: number[]) => void;
  const [from, to] = range ?? [0, gridRows(ir)];
  run(outAt * 4, from, to, ...at.map((p) => p * 4));

  const after = new Float32Array(memory.buffer, 0, top);
  let clobbered = 0;
  for (let i = 0; i < top; i++) {
    const inOut = i >= outAt && i < outAt + size;
    if (!inOut && !Object.is(after[i], before[i])) clobbered++;
  }
  return { out: after.slice(outAt, outAt + size), imports, clobbered };
}

/**
 * The gpu.js printer's function called once per output element with
 * `this.thread` set, as gpu.js's cpu mode calls it; NaN where [from, to)
 * leaves an element out.
 */
function runJs(ir: KernelIR, args: Float32Array[], range?: [number, number]): Float64Array {
  const js = printJs(ir);
  const fn = new Function(`return ${js.source}`)() as (...a: unknown[]) => number;
  const [cols, rows] = js.dims.length === 2 ? js.dims : [1, js.dims[0]];
  const [from, to] = range ?? [0, rows];
  const out = new Float64Array(outputSize(ir)).fill(NaN);
  for (let r = from; r < to; r++)
    for (let c = 0; c < cols; c++) {
      const thread = js.dims.length === 2 ? { x: c, y: r, z: 0 } : { x: r, y: 0, z: 0 };
      out[r * cols + c] = Number(fn.call({ thread }, ...args));
    }
  return out;
}

/** Within `tol` relative, or absolute below 1; NaN matches NaN, infinity its float32 rounding. */
function close(got: number, want: number, tol: number): boolean {
  if (Number.isNaN(want)) return Number.isNaN(got);
  if (Math.fround(want) === got) return true;
  return Math.abs(got - want) <= tol * Math.max(1, Math.abs(want));
}

/** The elements where `got` and `want` differ, described (at most `limit`). */
function mismatches(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: number,
  limit = 5,
): string[] {
  const bad: string[] = [];
  for (let i = 0; i < want.length && bad.length < limit; i++)
    if (!close(got[i], want[i], tol)) bad.push(`[${i}] got ${got[i]}, want ${want[i]}`);
  return bad;
}

/** Tolerance of the spec kernels and of the float hand-built ones: a few float32 roundings. */
const TOL = 1e-5;

// ---- every kernel of every shipped spec ----------------------------------------------------

/** The kernels webasm builds for a schedule kernel: itself, or its GEMM operands and epilogue, or its host-gather rest. */
function webasmKernels(s: ReturnType<typeof fuse>, k: Kernel, b: Record<string, number>): Kernel[] {
  const gemm = gemmPlan(s.graph, k, b);
  if (gemm) return [...gemm.prologue, ...(gemm.epilogue ? [gemm.epilogue] : [])];
  return [hostGathers(s.graph, k, b)?.kernel ?? k];
}

describe("every kernel of every shipped spec on the WebAssembly printer", () => {
  for (const file of specFiles) {
    it(`${file}: every kernel (forward, training, GEMM parts) verifies and compiles at full size`, () => {
      const graphs = compileGraphs(lowerSpec(file, { small: false }));
      let compiled = 0;
      for (const g of [graphs.forwardOpt, graphs.training]) {
        if (!g) continue;
        const s = fuse(g);
        const b = bindingsFor(g, { B: 2, T: 16 });
        for (const k of s.kernels)
          for (const part of [k, ...webasmKernels(s, k, b)]) {
            const ir = buildKernel(g, part, b, "rows");
            verifyKernel(ir);
            const { bytes } = wasmKernel(ir, { initial: 1, maximum: 65536, shared: true });
            expect(WebAssembly.validate(bytes), `${file} ${part.name}`).toBe(true);
            compiled++;
          }
      }
      expect(compiled).toBeGreaterThan(50);
    });

    // T = 5: attention rows of T columns run one vector and a scalar tail of 1.
    it(`${file}: at small sizes every kernel computes what the gpu.js printer's JavaScript does`, () => {
      const graphs = compileGraphs(lowerSpec(file));
      const r = rng(2024);
      const kinds = new Set<string>();
      const failures: string[] = [];
      let elements = 0;
      let compared = 0;
      for (const g of [graphs.forwardOpt, graphs.training]) {
        if (!g) continue;
        const b = bindingsFor(g, { B: 2, T: 5 });
        const size = (id: number) =>
          Math.max(
            1,
            shapeEval(g.nodes[id].type.shape, b).reduce((p, q) => p * q, 1),
          );
        // One random buffer per node, shared by every kernel reading it; ids are valid (vocab 11).
        const buffers = new Map<number, Float32Array>();
        const bufferOf = (id: number) => {
          let buf = buffers.get(id);
          if (buf) return buf;
          const n = g.nodes[id];
          // Sums and square roots are denominators and logarithms' arguments: positive.
          const positive = ["sum", "sqrt", "exp"].includes(n.op);
          buf = Float32Array.from({ length: size(id) }, () =>
            n.type.dtype !== "f32"
              ? randInt(r, n.type.dtype === "bool" ? 2 : 11)
              : positive
                ? 0.1 + r()
                : 2 * r() - 1,
          );
          buffers.set(id, buf);
          return buf;
        };
        const s = fuse(g);
        for (const k of s.kernels) {
          const ir = buildKernel(g, k, b, "rows");
          verifyKernel(ir);
          const args = ir.buffers.map((buf) =>
            buf.kind === "input"
              ? bufferOf(buf.node)
              : indexTables(bufferOf(buf.node), buf.rows!)[buf.kind],
          );
          const got = runWasm(ir, args);
          const want = runJs(ir, args);
          const bad = mismatches(got.out, want, TOL);
          if (bad.length) failures.push(`${k.name}: ${bad.join("; ")}`);
          if (got.clobbered) failures.push(`${k.name}: wrote ${got.clobbered} floats outside`);
          if (got.out.includes(SENTINEL)) failures.push(`${k.name}: read outside a buffer`);
          compared++;
          elements += want.filter((v) => !Number.isNaN(v)).length;
          kinds.add(k.kind + (ir.buffers.some((buf) => buf.kind !== "input") ? "+tables" : ""));
        }
      }
      expect(failures).toEqual([]);
      // Not vacuous: every kernel ran, on real numbers, of every kind.
      expect(compared).toBeGreaterThan(40);
      expect(elements).toBeGreaterThan(5_000);
      for (const kind of ["elementwise", "matmul", "reduce", "scatter+tables"])
        expect([...kinds]).toContain(kind);
    });
  }
});

// ---- hand-built kernels ---------------------------------------------------------------------

const X = ref("x", "i32");
const Y = ref("y", "i32");
const I = ref("i", "i32");
const rows = (cols: number, n: number): Grid => ({ kind: "rows", cols, rows: n });
const load = (buf: number, ...coords: Expr[]): Expr => ({ k: "load", ty: "f32", buf, coords });
const tof = (e: Expr) => (e.ty === "f32" ? e : op("f32", "f32", e));
const fadd = (...xs: Expr[]) => xs.map(tof).reduce((a, b) => op("add", "f32", a, b));
const fmul = (a: Expr, b: Expr) => op("mul", "f32", tof(a), tof(b));
const imul = (a: Expr, k: number) => op("mul", "i32", a, i32(k));

/** A kernel IR by hand, over buffers of these shapes; verified. */
function hand(grid: Grid, shapes: number[][], result: Expr, body: Stmt[] = []): KernelIR {
  const ir: KernelIR = {
    name: "hand",
    grid,
    buffers: shapes.map((shape, k) => ({ name: `in${k}`, shape, node: k, kind: "input" })),
    output: 0,
    outShape: grid.kind === "rows" ? [grid.rows, grid.cols] : [grid.size],
    body,
    result,
  };
  verifyKernel(ir);
  return ir;
}

/** Runs both ways and expects agreement, nothing written outside the output, no sentinel read. */
function expectAgrees(ir: KernelIR, args: Float32Array[], tol = 0): WasmRun {
  const got = runWasm(ir, args);
  const want = runJs(ir, args);
  expect(mismatches(got.out, want, tol), printJs(ir).source).toEqual([]);
  expect(got.clobbered, "floats written outside the output").toBe(0);
  expect(got.out.includes(SENTINEL), "a read outside its buffer").toBe(false);
  return got;
}

/** Seeded values in [lo, hi). */
function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** 13 columns: three vectors of four lanes and a scalar tail of one, on every row. */
const COLS = 13;

/** A sum over r < n of `term(r)` (with `body` lets), bound to `acc`. */
function sum(acc: string, r: string, n: number, term: (r: Expr) => Expr, body: Stmt[] = []): Stmt {
  return {
    k: "reduce",
    acc,
    op: "sum",
    loops: [{ v: r, extent: n, body }],
    term: term(ref(r, "i32")),
  };
}

describe("hand-built kernels: wasm against the gpu.js printer's JavaScript", () => {
  it("floor division and remainder of negative integers", () => {
    // JavaScript: Math.floor rounds down, % keeps the numerator's sign.
    const fd = (a: Expr, k: number) => op("floordiv", "i32", a, i32(k));
    const rem = (a: Expr, k: number) => op("rem", "i32", a, i32(k));
    const q = fd(sub(X, i32(5)), 3);
    const m = rem(sub(X, i32(5)), 3);
    const c0 = rem(fd(sub(add(imul(Y, 13), X), i32(20)), 4), 5);
    const c1 = rem(sub(X, imul(Y, 2)), 4);
    const ir = hand(
      rows(COLS, 4),
      [[1]],
      fadd(
        fmul(q, f32(10000)),
        fmul(m, f32(1000)),
        fmul(c0, f32(100)),
        fmul(c1, f32(10)),
        load(0, i32(0)),
      ),
    );
    expectAgrees(ir, [Float32Array.of(0.5)]);
  });

  it("floor division and remainder by powers of two (SIMD shifts), negative numerators too", () => {
    const fd = (a: Expr, k: number) => op("floordiv", "i32", a, i32(k));
    const rem = (a: Expr, k: number) => op("rem", "i32", a, i32(k));
    const a = sub(imul(X, 3), add(imul(Y, 37), i32(11)));
    const ir = hand(
      rows(COLS, 4),
      [[1]],
      fadd(
        fmul(fd(a, 64), f32(1e4)),
        fmul(rem(a, 64), f32(100)),
        fmul(rem(a, 1), f32(7)),
        fmul(fd(a, 1), f32(0.5)),
        fmul(rem(fd(a, 2), 8), f32(3)),
        load(0, i32(0)),
      ),
    );
    expectAgrees(ir, [Float32Array.of(0.5)]);
  });

  it("a gather with a stride along x, and a read along it", () => {
    const ir = hand(rows(COLS, 3), [[3, 40]], fadd(load(0, Y, imul(X, 3)), load(0, Y, X)));
    expectAgrees(ir, [uniform(120, 1)], TOL);
  });

  it("selects mixing i32 and f32 arms; comparisons as 1 and 0; i32 min and max", () => {
    const lt = op("lt", "bool", X, i32(6));
    const ge = op("ge", "bool", load(0, X), f32(0));
    const body: Stmt[] = [
      { k: "let", name: "t0", value: select(lt, X, f32(2.5)) },
      { k: "let", name: "t1", value: select(ge, i32(1), i32(0)) },
      {
        k: "let",
        name: "t2",
        value: op("max", "i32", op("min", "i32", sub(X, Y), i32(4)), i32(-2)),
      },
      { k: "let", name: "t3", value: op("max", "f32", load(0, X), f32(-0.25)) },
    ];
    const ir = hand(
      rows(COLS, 3),
      [[COLS]],
      fadd(ref("t0", "f32"), ref("t1", "i32"), fmul(ref("t2", "i32"), f32(0.5)), ref("t3", "f32")),
      body,
    );
    expectAgrees(ir, [uniform(COLS, 2)], TOL);
  });

  it("a sum over 37 per row (lanes along it, hoisted), and one that varies along x", () => {
    const body = [
      sum("acc0", "r0", 37, (r) => load(0, Y, r)),
      sum("acc1", "r1", 37, (r) => fmul(load(0, Y, r), load(1, r, X))),
    ];
    const ir = hand(
      rows(COLS, 3),
      [
        [3, 37],
        [37, COLS],
      ],
      fadd(ref("acc0", "f32"), ref("acc1", "f32")),
      body,
    );
    expectAgrees(ir, [uniform(3 * 37, 3), uniform(37 * COLS, 4)], TOL);
  });

  it("flat row reductions (softmax-like): a sum of exp and a masked max over 37", () => {
    const e = (r: Expr) => op("exp", "f32", load(0, I, r));
    const masked = (r: Expr) =>
      select(op("le", "bool", r, add(I, i32(20))), load(0, I, r), f32(-Infinity));
    const body: Stmt[] = [
      sum("acc0", "r0", 37, e),
      {
        k: "reduce",
        acc: "acc1",
        op: "max",
        loops: [{ v: "r1", extent: 37, body: [] }],
        term: masked(ref("r1", "i32")),
      },
    ];
    const ir = hand(
      { kind: "flat", size: 7 },
      [[7, 37]],
      fadd(ref("acc0", "f32"), ref("acc1", "f32")),
      body,
    );
    expectAgrees(ir, [uniform(7 * 37, 5)], TOL);
  });

  it("a flat max over 37 keeps NaN wherever it sits, rows of -infinity and the largest value", () => {
    const ir = hand({ kind: "flat", size: 6 }, [[6, 37]], ref("acc0", "f32"), [
      {
        k: "reduce",
        acc: "acc0",
        op: "max",
        loops: [{ v: "r0", extent: 37, body: [] }],
        term: load(0, I, ref("r0", "i32")),
      },
    ]);
    const x = uniform(6 * 37, 8);
    x[0 * 37 + 2] = NaN; // in the vector loop
    x[1 * 37 + 36] = NaN; // in the scalar tail
    x.fill(-Infinity, 2 * 37, 3 * 37);
    x[3 * 37 + 5] = 1e30;
    x[4 * 37 + 1] = NaN;
    x[4 * 37 + 2] = 1e30;
    const got = expectAgrees(ir, [x]);
    // A max starts from -3.4e38 (the printers agree), so a row of -infinity gives that.
    const low = Math.fround(-3.4e38);
    expect(Array.from(got.out.slice(0, 5))).toEqual([NaN, NaN, low, Math.fround(1e30), NaN]);
  });

  it("a sum over two axes, the inner one long, with the outer index in the term", () => {
    const ir = hand(rows(COLS, 2), [[3, 41, COLS]], ref("acc0", "f32"), [
      {
        k: "reduce",
        acc: "acc0",
        op: "sum",
        loops: [
          { v: "r0", extent: 3, body: [] },
          {
            v: "r1",
            extent: 41,
            body: [{ k: "let", name: "t0", value: load(0, ref("r0", "i32"), ref("r1", "i32"), X) }],
          },
        ],
        term: fmul(ref("t0", "f32"), ref("r0", "i32")),
      },
    ]);
    expectAgrees(ir, [uniform(3 * 41 * COLS, 6)], TOL);
  });

  it("a reduction stopping at a count read per row (scatter_add's index tables)", () => {
    const start = op("i32", "i32", load(2, Y));
    const end = op("i32", "i32", load(2, add(Y, i32(1))));
    const p = op("i32", "i32", load(1, add(ref("t0", "i32"), ref("r0", "i32"))));
    const body: Stmt[] = [
      { k: "let", name: "t0", value: start },
      { k: "let", name: "t1", value: sub(end, ref("t0", "i32")) },
      {
        k: "reduce",
        acc: "acc0",
        op: "sum",
        loops: [{ v: "r0", extent: 5, body: [{ k: "let", name: "t2", value: p }] }],
        term: load(0, ref("t2", "i32"), X),
        until: ref("t1", "i32"),
      },
    ];
    const ids = Float32Array.of(2, 0, 2, 1, 4);
    const { order, offsets } = indexTables(ids, 5);
    const ir = hand(rows(COLS, 5), [[5, COLS], [5], [6]], ref("acc0", "f32"), body);
    expectAgrees(ir, [uniform(5 * COLS, 7), order, offsets], TOL);
  });

  it("a count that differs per lane (compiled without the column lanes)", () => {
    const body: Stmt[] = [
      {
        k: "reduce",
        acc: "acc0",
        op: "sum",
        loops: [{ v: "r0", extent: 9, body: [] }],
        term: load(0, ref("r0", "i32")),
        until: X,
      },
    ];
    const ir = hand(rows(COLS, 2), [[9]], ref("acc0", "f32"), body);
    expectAgrees(ir, [uniform(9, 8)], TOL);
  });

  it("pow, sin and cos are imported from JavaScript; log runs per lane", () => {
    const v = load(0, X);
    const ir = hand(
      rows(COLS, 2),
      [[COLS]],
      fadd(
        op("pow", "f32", v, f32(1.5)),
        op("sin", "f32", v),
        op("cos", "f32", v),
        op("log", "f32", v),
      ),
    );
    const got = expectAgrees(ir, [uniform(COLS, 9, 0.5, 2)], 1e-6);
    expect(got.imports).toEqual(["cos", "pow", "sin"]);
  });

  it("a flat kernel over a sub-range [3, 10) writes exactly that range", () => {
    const ir = hand({ kind: "flat", size: 13 }, [[13]], fmul(load(0, I), f32(2)));
    const args = [uniform(13, 10)];
    const got = runWasm(ir, args, [3, 10]);
    const want = runJs(ir, args, [3, 10]);
    for (let k = 0; k < 13; k++)
      if (k >= 3 && k < 10) expect(got.out[k]).toBe(Math.fround(want[k]));
      else expect(got.out[k]).toBe(SENTINEL);
  });

  it("a rows kernel over rows [1, 3) writes exactly those rows", () => {
    const ir = hand(rows(COLS, 4), [[4, COLS]], fadd(load(0, Y, X), Y));
    const args = [uniform(4 * COLS, 11)];
    const got = runWasm(ir, args, [1, 3]);
    const want = runJs(ir, args, [1, 3]);
    for (let k = 0; k < 4 * COLS; k++)
      if (k >= COLS && k < 3 * COLS) expect(got.out[k]).toBe(Math.fround(want[k]));
      else expect(got.out[k]).toBe(SENTINEL);
  });
});

describe("the kernel IR verifier rejects malformed kernels", () => {
  const cases: [string, () => KernelIR][] = [
    ["a name read before it is defined", () => hand(rows(4, 1), [[4]], ref("t9", "f32"))],
    ["a coordinate per axis", () => hand(rows(4, 1), [[2, 4]], load(0, X))],
    ["an f32 coordinate", () => hand(rows(4, 1), [[4]], load(0, f32(1)))],
    ["operands of two types", () => hand(rows(4, 1), [[4]], op("add", "f32", load(0, X), X))],
    [
      "a divisor that is no positive constant",
      () => hand(rows(4, 1), [[4]], tof(op("floordiv", "i32", X, i32(-2)))),
    ],
    ["an i32 result", () => hand(rows(4, 1), [[4]], X)],
    [
      "an accumulator read inside its own loop",
      () =>
        hand(rows(4, 1), [[4]], ref("acc0", "f32"), [
          sum("acc0", "r0", 4, () => ref("acc0", "f32")),
        ]),
    ],
    [
      "a name defined twice",
      () =>
        hand(rows(4, 1), [[4]], f32(0), [
          { k: "let", name: "t0", value: load(0, X) },
          { k: "let", name: "t0", value: load(0, X) },
        ]),
    ],
  ];
  for (const [what, make] of cases) it(what, () => expect(make).toThrow(KernelIRError));
});

describe("the runtime wrapper (WasmKernel in the GEMM engine's shared memory)", () => {
  it("passes inputs and index tables in order, and returns the output", () => {
    const ids = Float32Array.of(2, 0, 2, 1, 4);
    const { order, offsets } = indexTables(ids, 5);
    const body: Stmt[] = [
      { k: "let", name: "t0", value: op("i32", "i32", load(3, Y)) },
      {
        k: "let",
        name: "t1",
        value: sub(op("i32", "i32", load(3, add(Y, i32(1)))), ref("t0", "i32")),
      },
      {
        k: "reduce",
        acc: "acc0",
        op: "sum",
        loops: [{ v: "r1", extent: 5, body: [] }],
        term: load(0, op("i32", "i32", load(2, add(ref("t0", "i32"), ref("r1", "i32")))), X),
        until: ref("t1", "i32"),
      },
    ];
    const ir = hand(
      rows(COLS, 5),
      [[5, COLS], [COLS], [5], [6]],
      fmul(ref("acc0", "f32"), load(1, X)),
      body,
    );
    const args = [uniform(ids.length * COLS, 22), uniform(COLS, 23), order, offsets];
    const engine = new Gemm(1);
    try {
      const wk = new WasmKernel(ir, engine);
      const got = wk.call(args);
      expect(got.length).toBe(outputSize(ir));
      expect(mismatches(got, runJs(ir, args), TOL)).toEqual([]);
      // Twice: the scratch space is reused, the answer is the same.
      expect([...wk.call(args)]).toEqual([...got]);
    } finally {
      engine.close();
    }
  });
});

// Found by a review of the compiler and runtime (each failed before its fix).
describe("review findings", () => {
  it("a product of two integer values does not wrap at 2^31 (arange(n)^3 is an f32 product)", () => {
    const g = new Graph("cube");
    const n = g.op("arange", [], { n: shapeOf(2048)[0] });
    g.output("y", g.op("mul", [g.op("mul", [n, n]), n]));
    const s = fuse(g);
    const ir = buildKernel(g, s.kernels[0], {}, "rows");
    verifyKernel(ir);
    const got = runWasm(ir, []).out;
    expect(got[2047]).toBe(Math.fround(2047 ** 3));
    expect(mismatches(got, runJs(ir, []), TOL)).toEqual([]);
  });

  it("a kernel with more inputs than the helper hand-off carries runs (concat of 60)", async () => {
    const webasm = await createBackend("webasm");
    const g = new Graph("concat");
    const ins = Array.from({ length: 60 }, (_, k) =>
      g.op("input", [], { name: `x${k}`, shape: shapeOf(4, 1024), dtype: "f32" }),
    );
    g.output("y", g.op("concat", ins, { axis: 0 }));
    const ex = new Executor(fuse(g), {}, webasm);
    // Once the engine's helper thread runs, a kernel this large would be split.
    const engine = gemmEngine();
    await untilParallel(engine);
    expect(engine.parallel()).toBe(true);
    const feeds = new Map(ins.map((id, k) => [id, new Float32Array(4096).fill(k)]));
    const y = (await ex.run(feeds)).get(g.outputs[0].id)!;
    for (let k = 0; k < 60; k++) expect(y[4096 * k + 7]).toBe(k);
    ex.destroy();
  });

  it("an empty output does not share its arena slot with a live buffer", async () => {
    const webasm = await createBackend("webasm");
    const g = new Graph("empty");
    const x = g.op("input", [], { name: "x", shape: shapeOf(4, 8), dtype: "f32" });
    const a = g.op("exp", [x]);
    g.output("c", g.op("neg", [g.op("slice", [a], { axis: 1, start: 3, end: 3 })]));
    g.output("b", g.op("add", [a, g.op("const", [], { value: 1 })]));
    const ex = new Executor(fuse(g), {}, webasm);
    const xs = Float32Array.from({ length: 32 }, (_, i) => i / 10);
    const b = (await ex.run(new Map([[x, xs]]))).get(g.outputs[1].id)!;
    xs.forEach((v, i) => expect(Math.abs(b[i] - (Math.exp(v) + 1))).toBeLessThan(1e-5));
    ex.destroy();
  });

  it("a feed shorter than its shape is refused, not read past its end", async () => {
    const webasm = await createBackend("webasm");
    const g = new Graph("short");
    const x = g.op("input", [], { name: "x", shape: shapeOf(4, 8), dtype: "f32" });
    g.output("y", g.op("neg", [x]));
    const ex = new Executor(fuse(g), {}, webasm);
    await expect(ex.run(new Map([[x, new Float32Array(16)]]))).rejects.toThrow(
      "input 'x' has 16 values; its shape needs 32",
    );
    ex.destroy();
  });

  it("after close() the engine works on one thread (no hand-off to a stopped thread)", async () => {
    const two = new Gemm(2);
    await untilParallel(two);
    two.close();
    expect(two.parallel()).toBe(false);
    const rows = 301;
    const ir = hand({ kind: "rows", cols: 517, rows }, [[rows, 517]], fmul(load(0, Y, X), f32(2)));
    const args = [uniform(rows * 517, 41)];
    const got = new WasmKernel(ir, two).call(args);
    expect(mismatches(got, runJs(ir, args), TOL)).toEqual([]);
  });
});

describe("executor buffers in the engine memory", () => {
  it("a plan past what the 4 GiB memory holds keeps its outputs as JavaScript arrays", async () => {
    const webasm = await createBackend("webasm");
    // 2^30 floats: 4 GiB of output, more than the memory can reserve. Built, not run.
    const big = new Graph("big");
    const x = big.op("input", [], { name: "x", shape: shapeOf(1 << 15, 1 << 15), dtype: "f32" });
    big.output("y", big.op("exp", [x]));
    const ex = new Executor(fuse(big), {}, webasm);
    expect(ex.kernels[0].wasm).toBeDefined();
    ex.destroy();
    // The engine still serves a small executor, whose output lands in its arena.
    const g = new Graph("small");
    const s = g.op("input", [], { name: "s", shape: shapeOf(5), dtype: "f32" });
    g.output("y", g.op("exp", [s]));
    const small = new Executor(fuse(g), {}, webasm);
    const out = (await small.run(new Map([[s, Float32Array.of(0, 1, 2, 3, 4)]]))).get(
      g.outputs[0].id,
    )!;
    out.forEach((v, i) => expect(Math.abs(v - Math.exp(i)) / Math.exp(i)).toBeLessThan(1e-6));
    small.destroy();
  });
});

describe("kernels split across the GEMM engine's helper thread", () => {
  it("products shared in column chunks give one thread's bits (decoding, blocked, in place)", async () => {
    const two = new Gemm(2);
    const one = new Gemm(1);
    try {
      await untilParallel(two);
      expect(two.parallel()).toBe(true);
      // [M, K, N]: one row (16 chunks), several NC-wide chunks, a partial last panel.
      for (const [M, K, N] of [
        [1, 300, 3001],
        [40, 300, 1100],
        [9, 70, 2053],
      ]) {
        const plan: GemmPlan = {
          a: { buffer: 0, offsets: [0], rowStride: K, colStride: 1, resident: false },
          b: { buffer: 1, offsets: [0], rowStride: N, colStride: 1, resident: false },
          batch: 1,
          M,
          N,
          K,
          product: 2,
          prologue: [],
        };
        const a = uniform(M * K, 51);
        const b = uniform(K * N, 52);
        const alone = one.run(plan, a, b);
        expect([...two.run(plan, a, b)]).toEqual([...alone]);
        const arena = two.reserve(M * N * 4);
        const out = two.view(arena, M * N);
        two.run(plan, a, b, out);
        expect([...out]).toEqual([...alone]);
        two.release(arena);
      }
    } finally {
      two.close();
      one.close();
    }
  });

  it("give the same output as on one thread, rows split in two", async () => {
    // Large enough to be split (>= 2^17 floats moved), rows no multiple of 4.
    const rows = 301;
    const cols = 517;
    const ir = hand(
      { kind: "rows", cols, rows },
      [[rows, cols], [rows]],
      fadd(op("exp", "f32", op("sub", "f32", load(0, Y, X), ref("t0", "f32"))), Y),
      [{ k: "let", name: "t0", value: load(1, Y) }],
    );
    const args = [uniform(rows * cols, 31), uniform(rows, 32)];
    const two = new Gemm(2);
    const one = new Gemm(1);
    try {
      // The helper thread starts in the background: until then work stays here.
      await untilParallel(two);
      expect(two.parallel()).toBe(true);
      const split = new WasmKernel(ir, two).call(args);
      const alone = new WasmKernel(ir, one).call(args);
      expect([...split]).toEqual([...alone]);
      expect(mismatches(split, runJs(ir, args), TOL)).toEqual([]);
    } finally {
      two.close();
      one.close();
    }
  });
});

describe("reads outside a buffer are clamped into it", () => {
  /** Every value of the output is one of the buffer's (none a sentinel from a guard). */
  function expectFromBuffer(out: Float32Array, buf: Float32Array): void {
    const values = new Set(buf);
    const foreign = [...out].filter((v) => !values.has(v));
    expect(foreign, "values that are no element of the buffer").toEqual([]);
  }

  it("negative and past-the-end indices, as vector loads and gathers, never trap", () => {
    // Every column reads outside: before the start, past the end, strided past both.
    const buf = uniform(16, 16, 1, 2);
    const outside = [
      sub(X, i32(20)),
      add(X, i32(100)),
      sub(imul(X, 7), i32(40)),
      sub(i32(-1), imul(X, 3)),
      add(X, imul(Y, 1000000)),
    ];
    for (const index of outside) {
      const got = runWasm(hand(rows(COLS, 3), [[16]], load(0, index)), [buf]);
      expectFromBuffer(got.out, buf);
      expect(got.clobbered).toBe(0);
    }
  });

  it("a float index computed from data, far outside, is clamped too", () => {
    const buf = uniform(9, 17, 1, 2);
    const ids = Float32Array.of(-5, 3, 1e9, -1e9, 8, 9, 2.0e6);
    const id = op("i32", "i32", load(1, I));
    const ir = hand(
      { kind: "flat", size: ids.length },
      [[9], [ids.length]],
      load(0, add(imul(id, 4), i32(1))),
    );
    expectFromBuffer(runWasm(ir, [buf, ids]).out, buf);
  });

  it("a buffer of fewer than four elements read along x", () => {
    const buf = Float32Array.of(1.5, 2.5, 3.5);
    const got = runWasm(hand(rows(COLS, 2), [[3]], load(0, X)), [buf]);
    expectFromBuffer(got.out, buf);
    // The elements that exist are read from their own index.
    for (const y of [0, 1]) expect([...got.out.subarray(y * COLS, y * COLS + 3)]).toEqual([...buf]);
  });

  it("a vector load straddling the end still reads its in-range lanes from their own index", () => {
    // in0[x + 14] of 16 elements: x = 0, 1 are in range (in0[14], in0[15]);
    // the rest of that vector, and the other columns, are outside.
    const buf = Float32Array.from({ length: 16 }, (_, i) => i);
    const got = runWasm(hand(rows(COLS, 1), [[16]], load(0, add(X, i32(14)))), [buf]);
    expectFromBuffer(got.out, buf);
    expect([got.out[0], got.out[1]]).toEqual([14, 15]);
  });
});

// ---- exp, tanh, log through the webasm Executor --------------------------------------------

/** One float32 ulp at |v| (2^-23 relative at most, the spacing near v). */
const ulp = (v: number) => 2 ** (Math.floor(Math.log2(Math.abs(Math.fround(v)))) - 23);

/**
 * y = op(x) through fuse -> webasm Executor, the kernel gptc's WebAssembly.
 * "lanes": x as one vector [n] (n no multiple of 4): the four-lane function on
 * all but the last few elements, which run the scalar one. "scalar": x as rows
 * of 3, too short for a vector: the scalar (float64) function everywhere.
 */
async function unary(op: string, xs: number[], mode: "lanes" | "scalar"): Promise<Float32Array> {
  const n = xs.length;
  const padded = mode === "scalar" ? [...xs, 0, 0].slice(0, Math.ceil(n / 3) * 3) : xs;
  if (mode === "lanes") expect(n % 4, "a scalar tail").not.toBe(0);
  const shape = mode === "scalar" ? [padded.length / 3, 3] : [n];
  const g = new Graph(op);
  const x = g.op("input", [], { name: "x", shape: shapeOf(...shape), dtype: "f32" });
  g.output("y", g.op(op, [x]));
  const webasm = await createBackend("webasm");
  const ex = new Executor(fuse(g), {}, webasm);
  try {
    expect(ex.kernels[0].wasm, "the kernel runs as gptc's WebAssembly").toBeDefined();
    expect(ex.kernels[0].fn).toBeUndefined();
    const y = (await ex.run(new Map([[x, Float32Array.from(padded)]]))).get(g.outputs[0].id)!;
    return y.slice(0, n);
  } finally {
    ex.destroy();
  }
}

/** lo, lo + step, ... hi as float32 values, then `special`; the total is no multiple of 4. */
function sweep(lo: number, hi: number, step: number, special: number[]): number[] {
  const xs: number[] = [];
  for (let v = lo; v <= hi; v += step) xs.push(Math.fround(v));
  if ((xs.length + special.length) % 4 === 0) xs.push(Math.fround((lo + hi) / 2));
  return [...xs, ...special];
}

/** The value computed for special value `v` (the specials are the last entries of xs). */
function special(y: Float32Array, specials: number[], v: number): number {
  return y[y.length - specials.length + specials.findIndex((u) => Object.is(u, v))];
}

describe("exp, tanh and log in gptc's WebAssembly kernels", () => {
  for (const mode of ["lanes", "scalar"] as const) {
    it(`exp (${mode}) is within 3 float32 ulps of Math.exp on [-87, 88.3]; NaN stays NaN`, async () => {
      const specials = [-1e-9, 0, 1e-9, -3.4e38, -Infinity, NaN, 1.5];
      const xs = sweep(-87, 88.3, 0.01037, specials);
      const y = await unary("exp", xs, mode);
      const bad: string[] = [];
      xs.forEach((v, i) => {
        if (!(v >= -87 && v <= 88.3)) return;
        const ref = Math.exp(v);
        if (Math.abs(y[i] - ref) > 3 * ulp(ref)) bad.push(`exp(${v}) = ${y[i]}, want ${ref}`);
      });
      expect(bad.slice(0, 5)).toEqual([]);
      for (const v of [-1e-9, 0, 1e-9])
        expect(Math.abs(special(y, specials, v) - 1)).toBeLessThanOrEqual(2 ** -23);
      expect([special(y, specials, -3.4e38), special(y, specials, -Infinity)]).toEqual([0, 0]);
      expect(special(y, specials, NaN)).toBeNaN();
      // The last element: in "lanes", computed by the scalar tail.
      expect(Math.abs(y[xs.length - 1] - Math.exp(1.5))).toBeLessThanOrEqual(
        3 * ulp(Math.exp(1.5)),
      );
    });

    it(`tanh (${mode}) within 2e-7 absolute, 1e-6 relative past 1e-3, on [-20, 20] and beyond`, async () => {
      const specials = [1e-8, -1e-6, 3e-4, -2e-5, 30, -30, 1e30, -Infinity, Infinity, NaN, 0.5];
      const xs = sweep(-20, 20, 0.00731, specials);
      const y = await unary("tanh", xs, mode);
      const bad: string[] = [];
      xs.forEach((v, i) => {
        if (Number.isNaN(v)) return;
        const ref = Math.tanh(v);
        const err = Math.abs(y[i] - ref);
        const ok = err <= 2e-7 && (Math.abs(v) <= 1e-3 || err <= 1e-6 * Math.abs(ref));
        // Tiny inputs: tanh(x) = x to float32 precision, so the relative error counts there too.
        const tinyOk = Math.abs(v) > 1e-3 || err <= 2 * ulp(ref);
        if (!ok || !tinyOk) bad.push(`tanh(${v}) = ${y[i]}, want ${ref}`);
      });
      expect(bad.slice(0, 5)).toEqual([]);
      const at = (v: number) => special(y, specials, v);
      expect([at(30), at(-30), at(1e30), at(Infinity), at(-Infinity)]).toEqual([1, -1, 1, 1, -1]);
      expect(at(NaN)).toBeNaN();
      // The last element (in "lanes", the scalar tail).
      expect(Math.abs(y[xs.length - 1] - Math.tanh(0.5))).toBeLessThan(2e-7);
    });

    it(`log (${mode}) within 2 float32 ulps on (1e-30, 1e30); log(0) = -Infinity, log(-1) NaN`, async () => {
      const specials = [0, -1, Infinity, NaN, 1, 2.5];
      const xs: number[] = [];
      for (let e = -30; e < 30; e += 0.0173) xs.push(Math.fround(10 ** e));
      if ((xs.length + specials.length) % 4 === 0) xs.push(3);
      xs.push(...specials);
      const y = await unary("log", xs, mode);
      const bad: string[] = [];
      xs.forEach((v, i) => {
        if (!(v > 0 && v < Infinity)) return;
        const ref = Math.log(v);
        // Near log(1) = 0 an ulp of the result vanishes: there, 2 ulps of 1.
        if (Math.abs(y[i] - ref) > 2 * Math.max(ulp(ref), 2 ** -24))
          bad.push(`log(${v}) = ${y[i]}, want ${ref}`);
      });
      expect(bad.slice(0, 5)).toEqual([]);
      const at = (v: number) => special(y, specials, v);
      expect([at(0), at(Infinity), at(1)]).toEqual([-Infinity, Infinity, 0]);
      expect(at(-1)).toBeNaN();
      expect(at(NaN)).toBeNaN();
      expect(Math.abs(y[xs.length - 1] - Math.log(2.5))).toBeLessThanOrEqual(ulp(Math.log(2.5)));
    });
  }
});
