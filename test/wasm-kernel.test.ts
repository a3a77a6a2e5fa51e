// gptc's own WebAssembly kernels (codegen/wasm/kernel.ts) against the semantics
// of the JavaScript they are compiled from: the source text a kernel-source.ts
// kernel is, evaluated as JavaScript for every output element. Covered:
//  - every kernel of GPT-2 tiny's training schedule (elementwise, reductions,
//    matmul loops, gathers by id, scatter_add through host index tables), on
//    seeded random inputs;
//  - hand-written sources for the corners the schedule does not reach: integer
//    floor division and remainder of negative numbers, strided gathers, mixed
//    int/float ternaries, comparisons as numbers, min/max, reductions, a data-
//    dependent break, out-of-range reads (clamped: never a trap, never memory
//    outside the buffer), imported Math functions, partial [from, to) ranges —
//    all on rows that are no multiple of 4, so the four-lane loop and the
//    scalar tail both run;
//  - the runtime wrapper (runtime/wasm-kernel.ts) in a GEMM engine's memory;
//  - exp / tanh / log (codegen/wasm/math.ts) through the webasm Executor, both
//    the four-lane float32 versions and the scalar float64 ones;
//  - sources outside the subset throw Unsupported (the kernel stays on gpu.js).
//
// Every buffer sits between guard zones of a sentinel value in the memory the
// module imports: a read outside a buffer shows up as a sentinel in the output,
// a write outside the output as a changed guard.
import { describe, expect, it } from "vitest";
import type { KernelSource } from "../src/codegen/kernel-source.js";
import { kernelSource } from "../src/codegen/kernel-source.js";
import { Unsupported, wasmKernel } from "../src/codegen/wasm/kernel.js";
import { shapeEval, shapeOf } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { createBackend } from "../src/runtime/backend.js";
import { Executor, indexTables } from "../src/runtime/executor.js";
import type { GemmPlan } from "../src/codegen/gemm-plan.js";
import { Gemm, gemmEngine } from "../src/runtime/gemm.js";
import { WasmKernel } from "../src/runtime/wasm-kernel.js";
import { gpt2Tiny } from "./helpers/backend.js";
import { randInt, rng } from "./helpers/ir.js";

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

/**
 * Compiles `source` and runs it on `args` (inputs then extras; the source's
 * constants are appended) over [from, to) of its rows (2-D) or elements (1-D).
 * The output starts as SENTINEL, so elements outside the range can be checked.
 */
function runWasm(source: KernelSource, args: Float32Array[], range?: [number, number]): WasmRun {
  const all = [...args, ...Object.values(source.constants)];
  const { bytes, imports } = wasmKernel(
    source,
    all.map((a) => a.length),
    { initial: 1, maximum: 65536, shared: false },
  );
  // [guard | out | guard | arg0 | guard | arg1 | guard ...], 16-byte aligned like the runtime's.
  const align = (n: number) => Math.ceil(n / 4) * 4;
  const outAt = GUARD;
  let top = align(outAt + source.outputSize) + GUARD;
  const at = all.map((a) => {
    const p = top;
    top = align(p + a.length) + GUARD;
    return p;
  });
  const need = top * 4 - memory.buffer.byteLength;
  if (need > 0) memory.grow(Math.ceil(need / PAGE));
  const mem = new Float32Array(memory.buffer, 0, top);
  mem.fill(SENTINEL);
  all.forEach((a, k) => mem.set(a, at[k]));
  const before = mem.slice();

  const env: WebAssembly.ModuleImports = { memory };
  for (const m of imports)
    env[`Math_${m}`] = (Math as unknown as Record<string, WebAssembly.ImportValue>)[m];
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env });
  const run = instance.exports.run as (...a: number[]) => void;
  const [from, to] = range ?? [0, source.dims.length === 2 ? source.dims[1] : source.dims[0]];
  run(outAt * 4, from, to, ...at.map((p) => p * 4));

  const after = new Float32Array(memory.buffer, 0, top);
  let clobbered = 0;
  for (let i = 0; i < top; i++) {
    const inOut = i >= outAt && i < outAt + source.outputSize;
    if (!inOut && !Object.is(after[i], before[i])) clobbered++;
  }
  return { out: after.slice(outAt, outAt + source.outputSize), imports, clobbered };
}

/**
 * The source as JavaScript: the function called once per output element with
 * `this.thread` set, NaN where [from, to) leaves an element out. 2-D inputs
 * (`inputDims`) are passed as arrays of rows, as gpu.js passes them.
 */
function runJs(source: KernelSource, args: Float32Array[], range?: [number, number]): Float64Array {
  const fn = new Function(`return ${source.source}`)() as (...a: unknown[]) => number;
  const jsArgs = args.map((a, k) => {
    const d = source.inputDims[k];
    if (!d) return a;
    return Array.from({ length: d[1] }, (_, r) => a.subarray(r * d[0], (r + 1) * d[0]));
  });
  const [cols, rows] = source.dims.length === 2 ? source.dims : [1, source.dims[0]];
  const [from, to] = range ?? [0, rows];
  const out = new Float64Array(source.outputSize).fill(NaN);
  for (let r = from; r < to; r++)
    for (let c = 0; c < cols; c++) {
      const thread = source.dims.length === 2 ? { x: c, y: r, z: 0 } : { x: r, y: 0, z: 0 };
      out[r * cols + c] = Number(fn.call({ thread, constants: source.constants }, ...jsArgs));
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

/** Tolerance of the GPT-2 kernels and of the float hand-written ones: a few float32 roundings. */
const TOL = 1e-5;

// ---- every kernel of GPT-2 tiny's training step -------------------------------------------

/** Per schedule: what was compared, what wasmKernel refused, what disagreed. */
interface ScheduleCheck {
  compared: number;
  /** Output elements compared (non-NaN on the JavaScript side: the test is not vacuous). */
  elements: number;
  unsupported: string[];
  failures: string[];
  kinds: Set<string>;
}

/** Runs every kernel of GPT-2 tiny's training schedule both ways at these sizes. */
function checkTrainingSchedule(bindings: Record<string, number>, seed: number): ScheduleCheck {
  const g = gpt2Tiny().graphs.training!;
  const schedule = fuse(g);
  const vocab = 64; // specs/gpt2-tiny.model: every id indexes the 64-word vocabulary
  const r = rng(seed);
  const size = (id: number) =>
    Math.max(
      1,
      shapeEval(g.nodes[id].type.shape, bindings).reduce((p, q) => p * q, 1),
    );
  // One random buffer per node, shared by every kernel reading it; ids are valid.
  const buffers = new Map<number, Float32Array>();
  const bufferOf = (id: number) => {
    let b = buffers.get(id);
    if (b) return b;
    const n = g.nodes[id];
    // Sums and square roots are denominators and logarithms' arguments: positive.
    const positive = ["sum", "sqrt", "exp"].includes(n.op);
    b = Float32Array.from({ length: size(id) }, () =>
      n.type.dtype !== "f32"
        ? randInt(r, n.type.dtype === "bool" ? 2 : vocab)
        : positive
          ? 0.1 + r()
          : 2 * r() - 1,
    );
    buffers.set(id, b);
    return b;
  };

  const check: ScheduleCheck = {
    compared: 0,
    elements: 0,
    unsupported: [],
    failures: [],
    kinds: new Set(),
  };
  for (const k of schedule.kernels) {
    const source = kernelSource(g, k, bindings, "2d");
    const args = source.inputs.map(bufferOf);
    for (const e of source.extras) {
      const tables = indexTables(bufferOf(e.ids), e.rows);
      // The argSizes the executor passes: the ids' count (at least 1), and rows + 1.
      expect(tables[e.kind].length).toBe(e.kind === "order" ? size(e.ids) : e.rows + 1);
      args.push(tables[e.kind]);
    }
    let got: WasmRun;
    try {
      got = runWasm(source, args);
    } catch (e) {
      if (!(e instanceof Unsupported)) throw e;
      check.unsupported.push(`${k.name}: ${e.message}`);
      continue;
    }
    const want = runJs(source, args);
    const bad = mismatches(got.out, want, TOL);
    if (bad.length) check.failures.push(`${k.name}: ${bad.join("; ")}\n${source.source}`);
    if (got.clobbered) check.failures.push(`${k.name}: wrote ${got.clobbered} floats outside`);
    if (got.out.includes(SENTINEL)) check.failures.push(`${k.name}: read outside a buffer`);
    check.compared++;
    check.elements += want.filter((v) => !Number.isNaN(v)).length;
    check.kinds.add(k.kind + (source.extras.length ? "+tables" : ""));
  }
  console.log(
    `wasm-kernel: ${JSON.stringify(bindings)}: ${check.compared} of ${schedule.kernels.length} ` +
      `training kernels compared (${check.elements} elements)` +
      (check.unsupported.length ? `; Unsupported: ${check.unsupported.join(", ")}` : ""),
  );
  return check;
}

describe("every GPT-2 tiny training kernel: wasm against its own JavaScript source", () => {
  // T = 5 and 7: attention rows of T columns run one vector and a scalar tail of 1 or 3.
  for (const [bindings, seed] of [
    [{ B: 2, T: 5 }, 2024],
    [{ B: 1, T: 7 }, 7],
  ] as const)
    it(`agrees on seeded random inputs at B = ${bindings.B}, T = ${bindings.T}`, () => {
      const check = checkTrainingSchedule(bindings, seed);
      expect(check.failures).toEqual([]);
      // Not vacuous: (nearly) every kernel ran, on real numbers, of every kind.
      expect(check.compared).toBeGreaterThan(100);
      expect(check.elements).toBeGreaterThan(50_000);
      expect([...check.kinds].sort()).toEqual([
        "elementwise",
        "matmul",
        "reduce",
        "scatter",
        "scatter+tables",
      ]);
      // The scatter_add over token ids (a loop breaking at each row's count) is
      // a kernel of the subset too; it must not fall back to gpu.js.
      expect(check.unsupported).toEqual([]);
    });
});

// ---- hand-written sources -----------------------------------------------------------------

/** A KernelSource for hand-written text: dims [cols, rows] (2-D) or [size]. */
function kernel(
  source: string,
  dims: number[],
  more: Partial<Pick<KernelSource, "inputDims" | "constants">> = {},
): KernelSource {
  return {
    name: "hand",
    source,
    outputSize: dims.reduce((p, q) => p * q, 1),
    dims,
    inputs: [],
    output: 0,
    extras: [],
    inputDims: more.inputDims ?? [],
    constants: more.constants ?? {},
  };
}

/** Runs both ways and expects agreement, nothing written outside the output, no sentinel read. */
function expectAgrees(source: KernelSource, args: Float32Array[], tol = 0): WasmRun {
  const got = runWasm(source, args);
  const want = runJs(source, args);
  expect(mismatches(got.out, want, tol), source.source).toEqual([]);
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

describe("hand-written kernels: wasm against the JavaScript", () => {
  it("floor division and remainder of negative integers", () => {
    // JavaScript: Math.floor rounds down, % keeps the numerator's sign.
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  const q = Math.floor((x - 5) / 3);
  const m = (x - 5) % 3;
  const c0 = Math.floor((y * 13 + x - 20) / 4) % 5;
  const c1 = (x - 2 * y) % 4;
  const c2 = (x - 7) % -3;
  return q * 10000 + m * 1000 + c0 * 100 + c1 * 10 + c2 + in0[0];
}`,
      [COLS, 4],
    );
    expectAgrees(src, [Float32Array.of(0.5)]);
  });

  it("floor division by a negative divisor", () => {
    // kernel-source.ts only divides by positive strides, but the subset has no such rule.
    const src = kernel(
      `function () {
  const x = this.thread.x;
  const y = this.thread.y;
  return Math.floor((x - 6) / -4) * 10 + Math.floor((y + x) / (y - 2));
}`,
      [COLS, 2],
    );
    expectAgrees(src, []);
  });

  it("integer division without floor is a float division", () => {
    const src = kernel(
      `function () {
  const x = this.thread.x;
  const y = this.thread.y;
  return (x - 5) / 3 + y / 4;
}`,
      [COLS, 3],
    );
    expectAgrees(src, [], 1e-6);
  });

  it("remainder of floats keeps the numerator's sign", () => {
    // Quarters: every product and quotient below is exact in float32, so the
    // lanes (float32) and the tail (float64) must both give JavaScript's answer.
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  const t0 = in0[y * 13 + x];
  return (t0 * 7.0) % 2.5 + 10 * (t0 % (y + 1)) + 100 * ((x - 6.5) % 2);
}`,
      [COLS, 3],
    );
    const quarters = Float32Array.from({ length: COLS * 3 }, (_, i) => ((i * 37) % 61) / 4 - 7);
    expectAgrees(src, [quarters], 1e-6);
  });

  it("a gather with a stride along x", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  return in0[x * 3 + y];
}`,
      [COLS, 3],
    );
    expectAgrees(src, [uniform(COLS * 3, 1)]);
  });

  it("ternaries mixing integers and floats; comparisons as 1 and 0", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  const t0 = in0[y * 13 + x];
  const t1 = (x < 6 ? x : t0 * 0.5);
  const t2 = (x % 2 == 0 ? 1 : 2.5);
  const t3 = (y > 0 ? x + y : 3);
  const t4 = (t0 > 0.25) + (x >= 7) * 2 + (x == y) * 4 + (t0 * 10 < x) * 8;
  const t5 = (x > 3 && x < 9 ? (y != 1 ? -1 : t0) : 0.0);
  return t1 + 10 * t2 + 100 * t3 + 1000 * t4 + 10000 * t5;
}`,
      [COLS, 3],
    );
    expectAgrees(src, [uniform(COLS * 3, 2)], 1e-6);
  });

  it("a comparison returned as the value", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  return in0[y * 13 + x] <= 0.0;
}`,
      [COLS, 2],
    );
    expectAgrees(src, [uniform(COLS * 2, 3)]);
  });

  it("Math.max and Math.min of integers and of floats", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  const t0 = in0[y * 13 + x];
  const c = Math.max(x - 6, 0) - Math.max(x - 9, 0);
  const i = Math.min(x, y + 2, 7);
  const f = Math.min(t0, 0.25);
  const g = Math.max(x, t0 * 20.0);
  const h = Math.max(Math.min(y, 1), -3) * Math.min(-x, -2);
  return c + 10 * i + 100 * f + 1000 * g + 10000 * h;
}`,
      [COLS, 3],
    );
    expectAgrees(src, [uniform(COLS * 3, 4)], 1e-6);
  });

  it("a sum over 37 elements per row, and one that varies along x", () => {
    const src = kernel(
      `function (in0, in1) {
  const x = this.thread.x;
  const y = this.thread.y;
  let acc0 = 0.0;
  for (let r1 = 0; r1 < 37; r1++) {
    acc0 = acc0 + in0[y * 37 + r1];
  }
  let acc2 = 0.0;
  for (let r3 = 0; r3 < 37; r3++) {
    const t0 = in0[y * 37 + r3];
    const t1 = in1[r3 * 13 + x];
    acc2 = acc2 + t0 * t1;
  }
  return acc0 + acc2 / 37.0;
}`,
      [COLS, 5],
    );
    expectAgrees(src, [uniform(37 * 5, 5), uniform(37 * COLS, 6)], TOL);
  });

  it("1-D row reductions (softmax-like): sum of exp and a masked max over 37", () => {
    // Each row is read contiguously along the loop: four iterations at a time,
    // the last 37 mod 4 in the scalar loop.
    const src = kernel(
      `function (in0, in1) {
  const i = this.thread.x;
  const t0 = in1[i];
  let acc0 = 0.0;
  for (let r1 = 0; r1 < 37; r1++) {
    const t1 = in0[i * 37 + r1];
    const t2 = Math.exp(t1 - t0);
    acc0 = acc0 + t2;
  }
  let acc2 = -3.4e38;
  for (let r3 = 0; r3 < 37; r3++) {
    const t3 = in0[i * 37 + r3];
    const t4 = (r3 <= i * 5 ? 0.0 : -3.4e38);
    acc2 = Math.max(acc2, t3 + t4);
  }
  let acc4 = 0.0;
  for (let r5 = 0; r5 < 40; r5++) {
    acc4 = acc4 + in0[r5 * 7 + i] * r5;
  }
  return acc0 + 100 * acc2 + acc4;
}`,
      [7],
    );
    expectAgrees(src, [uniform(40 * 7, 18, -3, 3), uniform(7, 19)], TOL);
  });

  it("a sum over two axes, the inner one long, with the outer index in the term", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  let acc0 = 0.0;
  for (let r1 = 0; r1 < 3; r1++) {
    for (let r2 = 0; r2 < 9; r2++) {
      const t0 = in0[(r1 * 9 + r2) * 13 + x];
      acc0 = acc0 + t0 * (r1 + 1) + y;
    }
  }
  return acc0;
}`,
      [COLS, 2],
    );
    expectAgrees(src, [uniform(27 * COLS, 20)], TOL);
  });

  it("a max reduction from -3.4e38", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  let acc0 = -3.4e38;
  for (let r1 = 0; r1 < 11; r1++) {
    const t0 = in0[(y * 11 + r1) * 13 + x];
    const t1 = (r1 <= x ? 0.0 : -3.4e38);
    acc0 = Math.max(acc0, t0 + t1);
  }
  return acc0;
}`,
      [COLS, 3],
    );
    expectAgrees(src, [uniform(11 * 3 * COLS, 7, -100, 100)]);
  });

  it("a loop that breaks at a count read per row (scatter_add's index tables)", () => {
    // Row y sums g over the positions whose id is y, through order/offsets.
    const ids = Float32Array.of(3, 0, 3, 5, 0, 3, 1, 6, 6, 3);
    const rows = 7;
    const { order, offsets } = indexTables(ids, rows);
    const src = kernel(
      `function (in0, in1, in2) {
  const x = this.thread.x;
  const y = this.thread.y;
  const t0 = in2[y];
  const t1 = in2[y + 1] - t0;
  let acc0 = 0.0;
  for (let r2 = 0; r2 < 10; r2++) {
    if (r2 >= t1) { break; }
    const t2 = in1[t0 + r2];
    acc0 = acc0 + in0[t2 * 13 + x];
  }
  return acc0;
}`,
      [COLS, rows],
    );
    const g = uniform(ids.length * COLS, 8);
    const got = expectAgrees(src, [g, order, offsets], TOL);
    // And the sums are the scatter's: row 3 adds positions 0, 2, 5 and 9.
    for (let x = 0; x < COLS; x++)
      expect(got.out[3 * COLS + x]).toBeCloseTo(
        g[x] + g[2 * COLS + x] + g[5 * COLS + x] + g[9 * COLS + x],
        5,
      );
    expect([...got.out.slice(2 * COLS, 3 * COLS)]).toEqual(new Array(COLS).fill(0));
  });

  it("a break that differs per lane (compiled without the vector loop)", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  let acc0 = 0.0;
  for (let r1 = 0; r1 < 20; r1++) {
    if (r1 >= x + y) { break; }
    acc0 = acc0 + in0[r1];
  }
  return acc0;
}`,
      [COLS, 3],
    );
    expectAgrees(src, [uniform(20, 9)], TOL);
  });

  it("2-D reads (inK[row][col]) and this.constants", () => {
    const src = kernel(
      `function (in0, in1) {
  const x = this.thread.x;
  const y = this.thread.y;
  const t0 = in0[y][x];
  const t1 = in0[2 - y][12 - x];
  const t2 = this.constants.tab[x % 5];
  return t0 + 10 * t1 + 100 * t2 + in1[x];
}`,
      [COLS, 3],
      { inputDims: [[COLS, 3]], constants: { tab: uniform(5, 10) } },
    );
    expectAgrees(src, [uniform(COLS * 3, 11), uniform(COLS, 12)], 1e-6);
  });

  it("Math.pow and Math.sin are imported from JavaScript", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  const t0 = in0[y * 13 + x];
  return Math.pow(t0, 2.5) + Math.sin(x * 0.3 + y) + Math.pow(2.0, y);
}`,
      [COLS, 3],
    );
    const got = expectAgrees(src, [uniform(COLS * 3, 13, 0.1, 3)], TOL);
    expect(got.imports).toEqual(["pow", "sin"]);
  });

  it("a 1-D kernel over a sub-range [3, 10) writes exactly that range", () => {
    const src = kernel(
      `function (in0) {
  const i = this.thread.x;
  return in0[i] * 2.0 + i;
}`,
      [17],
    );
    const args = [uniform(17, 14)];
    const got = runWasm(src, args, [3, 10]);
    const want = runJs(src, args, [3, 10]);
    expect(mismatches(got.out.subarray(3, 10), want.subarray(3, 10), 1e-6)).toEqual([]);
    // Outside [3, 10) the output keeps what was there.
    expect([...got.out.subarray(0, 3), ...got.out.subarray(10)]).toEqual(
      new Array(10).fill(SENTINEL),
    );
    expect(got.clobbered).toBe(0);
  });

  it("a 2-D kernel over rows [1, 3) writes exactly those rows", () => {
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  return in0[y * 13 + x] - y;
}`,
      [COLS, 5],
    );
    const args = [uniform(COLS * 5, 15)];
    const got = runWasm(src, args, [1, 3]);
    const want = runJs(src, args, [1, 3]);
    expect(mismatches(got.out.subarray(COLS, 3 * COLS), want.subarray(COLS, 3 * COLS), 0)).toEqual(
      [],
    );
    expect([...got.out.subarray(0, COLS), ...got.out.subarray(3 * COLS)]).toEqual(
      new Array(3 * COLS).fill(SENTINEL),
    );
  });
});

describe("the runtime wrapper (WasmKernel in the GEMM engine's shared memory)", () => {
  it("passes inputs, index tables and constants in order, and returns the output", () => {
    const ids = Float32Array.of(2, 0, 2, 1, 4);
    const { order, offsets } = indexTables(ids, 5);
    const src = kernel(
      `function (in0, in1, in2, in3) {
  const x = this.thread.x;
  const y = this.thread.y;
  const t0 = in3[y];
  const t1 = in3[y + 1] - t0;
  let acc0 = 0.0;
  for (let r1 = 0; r1 < 5; r1++) {
    if (r1 >= t1) { break; }
    acc0 = acc0 + in0[in2[t0 + r1] * 13 + x];
  }
  return acc0 * in1[x] + this.constants.bias[y] + this.constants.scale[0];
}`,
      [COLS, 5],
      { constants: { bias: uniform(5, 21), scale: Float32Array.of(0.5) } },
    );
    const args = [uniform(ids.length * COLS, 22), uniform(COLS, 23), order, offsets];
    const engine = new Gemm(1);
    try {
      const wk = new WasmKernel(
        src,
        [...args, ...Object.values(src.constants)].map((a) => a.length),
        engine,
      );
      const got = wk.call(args);
      expect(got.length).toBe(src.outputSize);
      expect(mismatches(got, runJs(src, args), TOL)).toEqual([]);
      // Twice: the scratch space is reused, the answer is the same.
      expect([...wk.call(args)]).toEqual([...got]);
    } finally {
      engine.close();
    }
  });
});

// Found by a review of the compiler and runtime (each failed before its fix).
describe("review findings", () => {
  it("a product of two integer values does not wrap at 2^31 (float(arange(n))^3)", () => {
    const src = kernel(
      `function () {
  const i = this.thread.x;
  const t0 = (i * i);
  return (t0 * i);
}`,
      [2048],
    );
    expectAgrees(src, [], TOL);
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
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  return in0[y * 517 + x] * 2.0;
}`,
      [517, rows],
    );
    const args = [uniform(rows * 517, 41)];
    const got = new WasmKernel(src, [rows * 517], two).call(args);
    expect(mismatches(got, runJs(src, args), TOL)).toEqual([]);
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
    const src = kernel(
      `function (in0, in1) {
  const x = this.thread.x;
  const y = this.thread.y;
  const t0 = in1[y];
  return Math.exp(in0[y * ${cols} + x] - t0) + y;
}`,
      [cols, rows],
    );
    const args = [uniform(rows * cols, 31), uniform(rows, 32)];
    const sizes = args.map((a) => a.length);
    const two = new Gemm(2);
    const one = new Gemm(1);
    try {
      // The helper thread starts in the background: until then work stays here.
      await untilParallel(two);
      expect(two.parallel()).toBe(true);
      const split = new WasmKernel(src, sizes, two).call(args);
      const alone = new WasmKernel(src, sizes, one).call(args);
      expect([...split]).toEqual([...alone]);
      expect(mismatches(split, runJs(src, args), TOL)).toEqual([]);
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
    for (const index of ["x - 20", "x + 100", "x * 7 - 40", "-1 - x * 3", "x + y * 1000000"]) {
      const src = kernel(
        `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  return in0[${index}];
}`,
        [COLS, 3],
      );
      const got = runWasm(src, [buf]);
      expectFromBuffer(got.out, buf);
      expect(got.clobbered).toBe(0);
    }
  });

  it("a float index computed from data, far outside, is clamped too", () => {
    const buf = uniform(9, 17, 1, 2);
    const ids = Float32Array.of(-5, 3, 1e9, -1e9, 8, 9, 2.0e6);
    const src = kernel(
      `function (in0, in1) {
  const i = this.thread.x;
  const t0 = in1[i];
  return in0[t0 * 4 + 1];
}`,
      [ids.length],
    );
    expectFromBuffer(runWasm(src, [buf, ids]).out, buf);
  });

  it("a buffer of fewer than four elements read along x", () => {
    const buf = Float32Array.of(1.5, 2.5, 3.5);
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  return in0[x];
}`,
      [COLS, 2],
    );
    const got = runWasm(src, [buf]);
    expectFromBuffer(got.out, buf);
    // The elements that exist are read from their own index.
    for (const y of [0, 1]) expect([...got.out.subarray(y * COLS, y * COLS + 3)]).toEqual([...buf]);
  });

  it("a vector load straddling the end still reads its in-range lanes from their own index", () => {
    // in0[x + 14] of 16 elements: x = 0, 1 are in range (in0[14], in0[15]);
    // the rest of that vector, and the other columns, are outside.
    const buf = Float32Array.from({ length: 16 }, (_, i) => i);
    const src = kernel(
      `function (in0) {
  const x = this.thread.x;
  const y = this.thread.y;
  return in0[x + 14];
}`,
      [COLS, 1],
    );
    const got = runWasm(src, [buf]);
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

// ---- outside the subset ---------------------------------------------------------------------

describe("sources outside the subset", () => {
  const cases: Record<string, string> = {
    "a while loop": `function (in0) {
  const i = this.thread.x;
  let acc0 = 0.0;
  while (acc0 < 3.0) { acc0 = acc0 + in0[i]; }
  return acc0;
}`,
    "an object literal": `function (in0) {
  const i = this.thread.x;
  const o = { a: in0[i] };
  return o.a;
}`,
    "a string literal": `function (in0) {
  const i = this.thread.x;
  return in0[i] + "1";
}`,
    "a call of something other than Math": `function (in0) {
  const i = this.thread.x;
  return parseFloat(in0[i]);
}`,
    "a return inside a loop": `function (in0) {
  const i = this.thread.x;
  for (let r = 0; r < 3; r++) { return in0[r]; }
  return 0.0;
}`,
    "a compound assignment": `function (in0) {
  const i = this.thread.x;
  let acc0 = 0.0;
  acc0 += in0[i];
  return acc0;
}`,
  };
  for (const [what, text] of Object.entries(cases))
    it(`${what} throws Unsupported`, () => {
      expect(() =>
        wasmKernel(kernel(text, [5]), [5], { initial: 1, maximum: 1, shared: false }),
      ).toThrow(Unsupported);
    });
});
