// The op registry, op by op: shape rules (symbolic and concrete, including the
// errors), float64 reference semantics on hand-computed examples, and every
// gradient rule against central finite differences.
import { describe, expect, it } from "vitest";
import { dimAdd, dimConst, dimMul, dimSym, shapeOf, type Dim } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import { run } from "../src/ir/interpret.js";
import { rngKey } from "../src/ir/ops/random.js";
import { allOps, getOp } from "../src/ir/ops/registry.js";
import { ShapeError, type Attrs, type DType, type TypeInfo } from "../src/ir/ops/types.js";
import { autodiff } from "../src/ir/passes/autodiff.js";
import { verify } from "../src/ir/passes/verify.js";
import { formatType } from "../src/ir/text.js";
import { maxAbs, randn, rng, t, type Tensor } from "./helpers/ir.js";

const B = dimSym("B");
const T = dimSym("T");
const C = dimSym("C");
const ty = (dtype: DType, ...dims: (number | string | Dim)[]): TypeInfo => ({
  dtype,
  shape: shapeOf(...dims),
});
const f32 = (...d: (number | string | Dim)[]) => ty("f32", ...d);
const i32 = (...d: (number | string | Dim)[]) => ty("i32", ...d);
const bool = (...d: (number | string | Dim)[]) => ty("bool", ...d);

/** The op's shape rule, printed (`f32[B, T]`). */
function rule(op: string, inputs: TypeInfo[], attrs: Attrs = {}): string {
  return formatType(getOp(op).type(inputs, attrs));
}

/** The op's shape rule must throw a ShapeError whose message matches every pattern. */
function rejects(op: string, inputs: TypeInfo[], attrs: Attrs, ...patterns: (string | RegExp)[]) {
  let err: unknown;
  try {
    getOp(op).type(inputs, attrs);
  } catch (e) {
    err = e;
  }
  expect(err, `${op} should reject its inputs`).toBeInstanceOf(ShapeError);
  for (const p of patterns) expect((err as Error).message).toMatch(p);
}

const unaryNames = ["neg", "exp", "log", "tanh", "sqrt", "rsqrt", "relu", "sin", "cos", "abs"];
const arithNames = ["add", "sub", "mul", "maximum", "minimum"];
const compareNames = ["lt", "le", "gt", "ge", "eq", "ne"];

// ---- shape rules -------------------------------------------------------------------------

const shapeCases: Record<string, () => void> = {
  input: () => {
    expect(rule("input", [], { name: "x", dtype: "i32", shape: shapeOf("B", "T") })).toBe(
      "i32[B, T]",
    );
    expect(rule("input", [], { name: "x", dtype: "f32", shape: shapeOf(2, 3) })).toBe("f32[2, 3]");
  },
  weight: () => {
    expect(rule("weight", [], { name: "w", shape: shapeOf(3, 4), init: "zeros" })).toBe(
      "f32[3, 4]",
    );
  },
  const: () => expect(rule("const", [], { value: 2.5 })).toBe("f32[]"),
  dim: () => expect(rule("dim", [], { dim: dimMul(B, T) })).toBe("f32[]"),
  arange: () => {
    expect(rule("arange", [], { n: T })).toBe("i32[T]");
    expect(rule("arange", [], { n: dimConst(5) })).toBe("i32[5]");
  },
  causal_mask: () => {
    expect(rule("causal_mask", [], { q: T, k: dimAdd(T, dimConst(1)) })).toBe("f32[T, T+1]");
    expect(rule("causal_mask", [], { q: dimConst(2), k: dimConst(4) })).toBe("f32[2, 4]");
  },
  ...Object.fromEntries(
    unaryNames.map((op) => [
      op,
      () => {
        expect(rule(op, [f32("B", "T", 4)])).toBe("f32[B, T, 4]");
        expect(rule(op, [f32()])).toBe("f32[]");
        // Math on ids gives floats.
        expect(rule(op, [i32(2, 3)])).toBe("f32[2, 3]");
      },
    ]),
  ),
  cast: () => {
    expect(rule("cast", [i32("B", "T")])).toBe("f32[B, T]");
    expect(rule("cast", [bool(3)])).toBe("f32[3]");
  },
  detach: () => {
    expect(rule("detach", [f32("B", 1)])).toBe("f32[B, 1]");
    expect(rule("detach", [i32(3)])).toBe("i32[3]");
  },
  ...Object.fromEntries(
    arithNames.map((op) => [
      op,
      () => {
        expect(rule(op, [f32("B", 1, "T"), f32("H", 1)])).toBe("f32[B, H, T]");
        expect(rule(op, [f32(2, 1, 3), f32(4, 1)])).toBe("f32[2, 4, 3]");
        expect(rule(op, [f32("B", "T"), f32()])).toBe("f32[B, T]");
        expect(rule(op, [i32(3), i32(3)])).toBe("i32[3]");
        expect(rule(op, [bool(3), bool(3)])).toBe("i32[3]");
        expect(rule(op, [i32(3), f32(1)])).toBe("f32[3]");
        rejects(op, [f32("B", "T"), f32("B", "C")], {}, "[B, T]", "[B, C]", /cannot be broadcast/);
        rejects(op, [f32(2, 3), f32(4, 3)], {}, "[2, 3]", "[4, 3]");
      },
    ]),
  ),
  ...Object.fromEntries(
    ["div", "pow"].map((op) => [
      op,
      () => {
        expect(rule(op, [i32(3), i32(3)])).toBe("f32[3]");
        expect(rule(op, [f32("T", 1), f32(1, "T")])).toBe("f32[T, T]");
        rejects(op, [f32(3), f32(2)], {}, "[3]", "[2]");
      },
    ]),
  ),
  ...Object.fromEntries(
    compareNames.map((op) => [
      op,
      () => {
        expect(rule(op, [f32("B", "T"), f32()])).toBe("bool[B, T]");
        expect(rule(op, [i32(1, "T"), i32("T", 1)])).toBe("bool[T, T]");
        rejects(op, [f32("T"), f32("C")], {}, "[T]", "[C]");
      },
    ]),
  ),
  where: () => {
    expect(rule("where", [bool("B", "T"), f32("T"), f32()])).toBe("f32[B, T]");
    expect(rule("where", [bool(3), i32(3), i32(1)])).toBe("i32[3]");
    rejects("where", [bool(2), f32(3), f32(3)], {}, "[2]", "[3]");
  },
  ...Object.fromEntries(
    ["sum", "mean", "max"].map((op) => [
      op,
      () => {
        const x = f32("B", "T", "C");
        expect(rule(op, [x], { axes: [0, 2], keepdim: false })).toBe("f32[T]");
        expect(rule(op, [x], { axes: [0, 2], keepdim: true })).toBe("f32[1, T, 1]");
        expect(rule(op, [x], { axes: [0, 1, 2], keepdim: false })).toBe("f32[]");
        expect(rule(op, [x], { axes: [], keepdim: false })).toBe("f32[B, T, C]");
        expect(rule(op, [f32(2, 3)], { axes: [1], keepdim: false })).toBe("f32[2]");
        // max keeps the dtype; sum and mean give floats
        expect(rule(op, [i32(4)], { axes: [0], keepdim: false })).toBe(
          op === "max" ? "i32[]" : "f32[]",
        );
        rejects(op, [x], { axes: [1, 1], keepdim: false }, /repeated axis/);
        rejects(op, [x], { axes: [3], keepdim: false }, /axis 3 is out of range/, /rank 3/);
        rejects(op, [x], { axes: [-1], keepdim: false }, /axis -1/);
      },
    ]),
  ),
  matmul: () => {
    expect(rule("matmul", [f32("B", "T", "C"), f32("C", 7)])).toBe("f32[B, T, 7]");
    expect(rule("matmul", [f32("B", 1, "T", 4), f32("H", 4, "T")])).toBe("f32[B, H, T, T]");
    expect(rule("matmul", [f32(2, 3), f32(5, 3, 4)])).toBe("f32[5, 2, 4]");
    // The inner-dimension message names both shapes.
    rejects(
      "matmul",
      [f32("B", "T", "C"), f32("D", 5)],
      {},
      /inner dimensions/,
      "[B, T, C]",
      "[D, 5]",
    );
    rejects("matmul", [f32(2, 3), f32(4, 5)], {}, /inner dimensions/, "[2, 3]", "[4, 5]");
    rejects("matmul", [f32(3), f32(3, 4)], {}, /rank 2/, "[3]", "[3, 4]");
    rejects("matmul", [f32(2, 3, 4), f32(3, 4, 5)], {}, /batch/, "[2]", "[3]");
  },
  reshape: () => {
    const x = f32("B", "T", 4);
    expect(rule("reshape", [x], { shape: [dimMul(B, T), dimConst(4)] })).toBe("f32[B*T, 4]");
    expect(rule("reshape", [x], { shape: shapeOf("B", "T", 2, 2) })).toBe("f32[B, T, 2, 2]");
    expect(rule("reshape", [i32(2, 3)], { shape: shapeOf(6) })).toBe("i32[6]");
    rejects(
      "reshape",
      [x],
      { shape: shapeOf("B", "T", 3) },
      /different element counts/,
      "[B, T, 4]",
      "[B, T, 3]",
    );
    rejects("reshape", [f32(2, 3)], { shape: shapeOf(7) }, "[2, 3]", "[7]");
    rejects("reshape", [x], { shape: shapeOf("B", 4, 1) }, /cannot reshape/);
  },
  permute: () => {
    expect(rule("permute", [f32("B", "T", "C")], { perm: [2, 0, 1] })).toBe("f32[C, B, T]");
    expect(rule("permute", [i32(2, 3)], { perm: [1, 0] })).toBe("i32[3, 2]");
    rejects("permute", [f32("B", "T", "C")], { perm: [0, 0, 1] }, /not a permutation/, "[B, T, C]");
    rejects("permute", [f32("B", "T", "C")], { perm: [0, 1] }, /not a permutation/);
    rejects("permute", [f32("B", "T", "C")], { perm: [0, 1, 3] }, /not a permutation/);
  },
  expand: () => {
    expect(rule("expand", [f32(1, "C")], { shape: shapeOf("B", "T", "C") })).toBe("f32[B, T, C]");
    expect(rule("expand", [f32()], { shape: shapeOf(2, 3) })).toBe("f32[2, 3]");
    rejects("expand", [f32(2, "C")], { shape: shapeOf(3, "C") }, "[2, C]", "[3, C]");
    rejects("expand", [f32("B", "T")], { shape: shapeOf("T") }, /cannot broadcast/);
  },
  slice: () => {
    expect(rule("slice", [f32("B", 6)], { axis: 1, start: 1, end: 4 })).toBe("f32[B, 3]");
    expect(rule("slice", [f32(5, "T")], { axis: 0, start: 0, end: 5 })).toBe("f32[5, T]");
    expect(rule("slice", [f32(5)], { axis: 0, start: 2, end: 2 })).toBe("f32[0]");
    rejects("slice", [f32("B", 6)], { axis: 1, start: 4, end: 7 }, /outside axis 1/, "[4:7]");
    rejects("slice", [f32("B", 6)], { axis: 1, start: 3, end: 2 }, /outside/);
    rejects("slice", [f32("B", 6)], { axis: 1, start: -1, end: 2 }, /outside/);
    rejects("slice", [f32("B", 6)], { axis: 0, start: 0, end: 1 }, /fixed size/);
    rejects("slice", [f32("B", 6)], { axis: 2, start: 0, end: 1 }, /out of range/);
  },
  pad: () => {
    expect(rule("pad", [f32("B", 3)], { axis: 1, before: 1, after: 2 })).toBe("f32[B, 6]");
    expect(rule("pad", [f32("T", 3)], { axis: 0, before: 2, after: 0 })).toBe("f32[T+2, 3]");
    rejects("pad", [f32(3)], { axis: 1, before: 1, after: 1 }, /out of range/);
  },
  concat: () => {
    expect(rule("concat", [f32("B", 2), f32("B", 3)], { axis: 1 })).toBe("f32[B, 5]");
    expect(rule("concat", [f32("T", "C"), f32("T", "C")], { axis: 0 })).toBe("f32[2*T, C]");
    expect(rule("concat", [f32(4)], { axis: 0 })).toBe("f32[4]");
    rejects(
      "concat",
      [f32("B", 2), f32("T", 3)],
      { axis: 1 },
      /differ outside axis 1/,
      "[B, 2]",
      "[T, 3]",
    );
    rejects("concat", [f32(2, 2), f32(2)], { axis: 0 }, /differ/);
    rejects("concat", [], { axis: 0 }, /at least one/);
  },
  gather: () => {
    expect(rule("gather", [f32(11, "C"), i32("B", "T")])).toBe("f32[B, T, C]");
    expect(rule("gather", [f32(5), i32(3)])).toBe("f32[3]");
    rejects("gather", [f32(11, 4), f32("B", "T")], {}, /integers/);
    rejects("gather", [f32(), i32(2)], {}, /scalar/);
  },
  scatter_add: () => {
    expect(rule("scatter_add", [i32("B", "T"), f32("B", "T", "C")], { n: dimConst(11) })).toBe(
      "f32[11, C]",
    );
    expect(rule("scatter_add", [i32(3), f32(3)], { n: dimConst(5) })).toBe("f32[5]");
    rejects(
      "scatter_add",
      [i32("B", "T"), f32("B", 3, 4)],
      { n: dimConst(11) },
      "[B, T]",
      "[B, 3, 4]",
    );
    rejects("scatter_add", [f32(3), f32(3, 2)], { n: dimConst(5) }, /integers/);
    // g of lower rank than the ids
    rejects("scatter_add", [i32(2, 3), f32(2)], { n: dimConst(5) }, "[2, 3]", "[2]");
  },
  take: () => {
    expect(rule("take", [f32("B", "T", 11), i32("B", "T")])).toBe("f32[B, T]");
    rejects("take", [f32("B", "T", 11), i32("T", "B")], {}, "[T, B]", "[B, T, 11]");
    rejects("take", [f32("B", 11), i32("B", 1)], {}, /leading axes/);
    rejects("take", [f32("B", 11), f32("B")], {}, /integers/);
  },
  causal_mask_at: () => {
    // [len] -> [q, k]: the mask of q new positions after len cached ones
    expect(rule("causal_mask_at", [f32()], { q: T, k: dimSym("S") })).toBe("f32[T, S]");
    expect(rule("causal_mask_at", [i32()], { q: dimConst(1), k: dimConst(8) })).toBe("f32[1, 8]");
    rejects("causal_mask_at", [f32(1)], { q: T, k: T }, /scalar/);
  },
  cache_write: () => {
    const past = f32("B", "H", "S", 4);
    expect(rule("cache_write", [past, f32("B", "H", "T", 4), f32()], { axis: 2 })).toBe(
      "f32[B, H, S, 4]",
    );
    rejects(
      "cache_write",
      [past, f32("B", "H", "T", 5), f32()],
      { axis: 2 },
      "[B, H, T, 5]",
      "[B, H, S, 4]",
    );
    rejects("cache_write", [past, f32("B", "H", "T", 4), f32()], { axis: 4 }, /axis 4/);
    rejects("cache_write", [past, f32("B", "T", 4), f32()], { axis: 2 }, /cannot write/);
    rejects("cache_write", [past, f32("B", "H", "T", 4), f32(1)], { axis: 2 }, /cannot write/);
  },
  dropout_mask: () => {
    // key [6] -> a mask of the shape in its attrs
    const attrs = { shape: [dimSym("B"), T, dimConst(8)], p: 0.1, stream: 0 };
    expect(rule("dropout_mask", [i32(6)], attrs)).toBe("f32[B, T, 8]");
    rejects("dropout_mask", [i32()], attrs, /key must be a vector/);
    rejects("dropout_mask", [i32(6)], { ...attrs, p: 1 }, /p must lie in \(0, 1\)/);
    rejects("dropout_mask", [i32(6)], { ...attrs, p: 0 }, /p must lie in \(0, 1\)/);
  },
  put: () => {
    expect(rule("put", [i32("B", "T"), f32("B", "T")], { n: dimConst(11) })).toBe("f32[B, T, 11]");
    rejects("put", [f32("B"), f32("B")], { n: dimConst(11) }, /integers/);
    // one value per id: the shapes must agree
    rejects("put", [i32(2), f32(5)], { n: dimConst(3) }, "[2]", "[5]");
  },
};

describe("shape rules", () => {
  it("cover every op in the registry", () => {
    expect(Object.keys(shapeCases).sort()).toEqual(
      allOps()
        .map((o) => o.name)
        .sort(),
    );
  });
  for (const [op, check] of Object.entries(shapeCases)) it(op, check);

  it("Graph.op applies the rule and reports arity and missing inputs", () => {
    const g = new Graph("g");
    const x = g.op("input", [], { name: "x", dtype: "f32", shape: shapeOf("B", 3) });
    const y = g.op("input", [], { name: "y", dtype: "f32", shape: shapeOf(4, 3) });
    expect(() => g.op("add", [x, y])).toThrow(ShapeError);
    expect(() => g.op("add", [x])).toThrow(/takes 2 inputs, got 1/);
    expect(() => g.op("neg", [7])).toThrow(/does not exist/);
    expect(() => g.op("frobnicate", [x])).toThrow(/unknown op 'frobnicate'/);
    expect(g.nodes.length).toBe(2);
  });
});

// ---- float64 semantics ---------------------------------------------------------------------

interface In {
  value: Tensor;
  dtype?: DType;
}

/** Evaluates one op on concrete inputs through a graph and the interpreter. */
function evalOp(
  op: string,
  ins: In[],
  attrs: Attrs = {},
  bindings: Record<string, number> = {},
): Tensor & { dtype: DType } {
  const g = new Graph("e");
  const ids = ins.map((x, i) =>
    g.op("input", [], {
      name: `x${i}`,
      dtype: x.dtype ?? "f32",
      shape: shapeOf(...x.value.shape),
    }),
  );
  const out = g.op(op, ids, attrs);
  g.output("out", out);
  const inputs = Object.fromEntries(ins.map((x, i) => [`x${i}`, x.value]));
  const r = run(g, { inputs, weights: {}, bindings }).out;
  return { ...r, dtype: g.type(out).dtype };
}

const ids = (shape: number[], data: number[]): In => ({ value: t(shape, data), dtype: "i32" });
const fl = (shape: number[], data: number[] | ((i: number) => number)): In => ({
  value: t(shape, data),
});
const iota = (shape: number[]) => fl(shape, (i) => i);
const list = (x: Tensor) => Array.from(x.data);

describe("float64 semantics", () => {
  it("matmul broadcasts batch axes", () => {
    // a: [2, 1, 2, 2], b: [3, 2, 2] -> [2, 3, 2, 2]; out[i][j] = a[i] @ b[j]
    const a = fl([2, 1, 2, 2], [1, 2, 3, 4, 0, 1, 1, 0]);
    const b = fl([3, 2, 2], [1, 0, 0, 1, 2, 0, 0, 2, 0, 1, 1, 0]);
    const r = evalOp("matmul", [a, b]);
    expect(r.shape).toEqual([2, 3, 2, 2]);
    expect(list(r)).toEqual([
      ...[1, 2, 3, 4],
      ...[2, 4, 6, 8],
      ...[2, 1, 4, 3],
      ...[0, 1, 1, 0],
      ...[0, 2, 2, 0],
      ...[1, 0, 0, 1],
    ]);
    // [2, 3] @ [2, 3, 1]: the matrix broadcast against a batch of vectors
    const m = fl([2, 3], [1, 2, 3, 4, 5, 6]);
    const v = fl([2, 3, 1], [1, 0, 0, 1, 1, 1]);
    const r2 = evalOp("matmul", [m, v]);
    expect(r2.shape).toEqual([2, 2, 1]);
    expect(list(r2)).toEqual([1, 4, 6, 15]);
    // a non-square product with K = 3
    const r3 = evalOp("matmul", [fl([1, 3], [1, 2, 3]), fl([3, 2], [1, 2, 3, 4, 5, 6])]);
    expect(list(r3)).toEqual([22, 28]);
  });

  it("reductions over several axes, with and without keepdim", () => {
    const x = iota([2, 3, 4]); // x[i][j][k] = 12i + 4j + k
    const s = evalOp("sum", [x], { axes: [0, 2], keepdim: false });
    expect(s.shape).toEqual([3]);
    expect(list(s)).toEqual([60, 92, 124]);
    const sk = evalOp("sum", [x], { axes: [0, 2], keepdim: true });
    expect(sk.shape).toEqual([1, 3, 1]);
    expect(list(sk)).toEqual([60, 92, 124]);
    expect(list(evalOp("mean", [x], { axes: [0, 2], keepdim: false }))).toEqual([7.5, 11.5, 15.5]);
    expect(list(evalOp("max", [x], { axes: [0, 2], keepdim: true }))).toEqual([15, 19, 23]);
    const all = evalOp("sum", [x], { axes: [0, 1, 2], keepdim: false });
    expect(all.shape).toEqual([]);
    expect(list(all)).toEqual([276]);
    const m1 = evalOp("max", [x], { axes: [1], keepdim: true });
    expect(m1.shape).toEqual([2, 1, 4]);
    expect(list(m1)).toEqual([8, 9, 10, 11, 20, 21, 22, 23]);
    const mean12 = evalOp("mean", [x], { axes: [1, 2], keepdim: false });
    expect(list(mean12)).toEqual([5.5, 17.5]);
    // max of negatives (the initial value must not leak in)
    expect(
      list(evalOp("max", [fl([2, 2], [-3, -1, -7, -5])], { axes: [1], keepdim: false })),
    ).toEqual([-1, -5]);
  });

  it("permute, expand, reshape", () => {
    const x = iota([2, 3, 4]);
    const p = evalOp("permute", [x], { perm: [2, 0, 1] });
    expect(p.shape).toEqual([4, 2, 3]);
    // p[k][i][j] = x[i][j][k] = 12i + 4j + k
    for (const [k, i, j] of [
      [0, 0, 0],
      [3, 1, 2],
      [1, 0, 2],
      [2, 1, 0],
    ])
      expect(p.data[k * 6 + i * 3 + j]).toBe(12 * i + 4 * j + k);
    expect(list(evalOp("permute", [fl([2, 3], [1, 2, 3, 4, 5, 6])], { perm: [1, 0] }))).toEqual([
      1, 4, 2, 5, 3, 6,
    ]);
    const e = evalOp("expand", [fl([3, 1], [1, 2, 3])], { shape: shapeOf(2, 3, 2) });
    expect(e.shape).toEqual([2, 3, 2]);
    expect(list(e)).toEqual([1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
    expect(list(evalOp("expand", [fl([], [7])], { shape: shapeOf(2, 2) }))).toEqual([7, 7, 7, 7]);
    const r = evalOp("reshape", [iota([2, 3])], { shape: shapeOf(3, 2) });
    expect(r.shape).toEqual([3, 2]);
    expect(list(r)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("slice, pad, concat", () => {
    const x = iota([3, 4]);
    expect(list(evalOp("slice", [x], { axis: 1, start: 1, end: 3 }))).toEqual([1, 2, 5, 6, 9, 10]);
    expect(list(evalOp("slice", [x], { axis: 0, start: 2, end: 3 }))).toEqual([8, 9, 10, 11]);
    const y = iota([2, 3, 2]);
    expect(list(evalOp("slice", [y], { axis: 1, start: 1, end: 2 }))).toEqual([2, 3, 8, 9]);
    const p = evalOp("pad", [fl([2, 2], [1, 2, 3, 4])], { axis: 1, before: 1, after: 2 });
    expect(p.shape).toEqual([2, 5]);
    expect(list(p)).toEqual([0, 1, 2, 0, 0, 0, 3, 4, 0, 0]);
    const p0 = evalOp("pad", [fl([1, 2], [5, 6])], { axis: 0, before: 2, after: 1 });
    expect(list(p0)).toEqual([0, 0, 0, 0, 5, 6, 0, 0]);
    const a = fl([2, 1], [1, 2]);
    const b = fl([2, 2], [3, 4, 5, 6]);
    const c1 = evalOp("concat", [a, b, a], { axis: 1 });
    expect(c1.shape).toEqual([2, 4]);
    expect(list(c1)).toEqual([1, 3, 4, 1, 2, 5, 6, 2]);
    const c0 = evalOp("concat", [fl([1, 2], [9, 8]), b], { axis: 0 });
    expect(list(c0)).toEqual([9, 8, 3, 4, 5, 6]);
  });

  it("gather, take, scatter_add, put", () => {
    const table = fl([3, 2], [1, 2, 3, 4, 5, 6]);
    const g = evalOp("gather", [table, ids([2, 2], [2, 0, 1, 1])]);
    expect(g.shape).toEqual([2, 2, 2]);
    expect(list(g)).toEqual([5, 6, 1, 2, 3, 4, 3, 4]);
    const tk = evalOp("take", [fl([2, 3], [1, 2, 3, 4, 5, 6]), ids([2], [2, 0])]);
    expect(list(tk)).toEqual([3, 4]);
    const sa = evalOp("scatter_add", [ids([3], [1, 0, 1]), fl([3, 2], [1, 2, 3, 4, 5, 6])], {
      n: dimConst(3),
    });
    expect(sa.shape).toEqual([3, 2]);
    expect(list(sa)).toEqual([3, 4, 6, 8, 0, 0]);
    const pt = evalOp("put", [ids([2], [2, 0]), fl([2], [7, 8])], { n: dimConst(3) });
    expect(pt.shape).toEqual([2, 3]);
    expect(list(pt)).toEqual([0, 0, 7, 8, 0, 0]);
    // ids out of range are an error, not a silent read
    expect(() => evalOp("gather", [table, ids([1], [3])])).toThrow(/outside \[0, 3\)/);
    expect(() => evalOp("take", [fl([1, 3], [1, 2, 3]), ids([1], [-1])])).toThrow(/outside/);
  });

  it("causal_mask_at and cache_write (decoding with a KV cache)", () => {
    // two new queries after 2 cached positions, 5 slots: query i sees slots j <= i + 2
    const m = evalOp("causal_mask_at", [fl([], [2])], { q: dimConst(2), k: dimConst(5) });
    expect(m.shape).toEqual([2, 5]);
    expect(list(m)).toEqual([0, 0, 0, -Infinity, -Infinity, 0, 0, 0, 0, -Infinity]);
    // write 2 fresh rows at slots 1..2 of a 4-slot cache, along axis 1
    const past = fl([1, 4, 2], (i) => 100 + i);
    const fresh = fl([1, 2, 2], [1, 2, 3, 4]);
    const c = evalOp("cache_write", [past, fresh, fl([], [1])], { axis: 1 });
    expect(c.shape).toEqual([1, 4, 2]);
    expect(list(c)).toEqual([100, 101, 1, 2, 3, 4, 106, 107]);
    // along the last axis
    const c2 = evalOp("cache_write", [fl([2, 3], () => 0), fl([2, 1], [5, 6]), fl([], [2])], {
      axis: 1,
    });
    expect(list(c2)).toEqual([0, 0, 5, 0, 0, 6]);
  });

  it("causal_mask, arange, dim, const", () => {
    const m = evalOp("causal_mask", [], { q: dimConst(2), k: dimConst(4) });
    expect(m.shape).toEqual([2, 4]);
    // with q < k the queries are the last q positions
    expect(list(m)).toEqual([0, 0, 0, -Infinity, 0, 0, 0, 0]);
    const sq = evalOp("causal_mask", [], { q: T, k: T }, { T: 3 });
    expect(list(sq)).toEqual([0, -Infinity, -Infinity, 0, 0, -Infinity, 0, 0, 0]);
    const a = evalOp("arange", [], { n: T }, { T: 5 });
    expect(a.dtype).toBe("i32");
    expect(list(a)).toEqual([0, 1, 2, 3, 4]);
    const d = evalOp("dim", [], { dim: dimAdd(dimMul(dimConst(2), T), dimConst(1)) }, { T: 3 });
    expect(list(d)).toEqual([7]);
    expect(list(evalOp("const", [], { value: -2.5 }))).toEqual([-2.5]);
  });

  it("where and comparisons", () => {
    const w = evalOp("where", [
      { value: t([3], [1, 0, 1]), dtype: "bool" },
      fl([3], [1, 2, 3]),
      fl([], [9]),
    ]);
    expect(list(w)).toEqual([1, 9, 3]);
    const w2 = evalOp("where", [
      { value: t([2, 1], [0, 1]), dtype: "bool" },
      fl([2], [1, 2]),
      fl([2], [5, 6]),
    ]);
    expect(list(w2)).toEqual([5, 6, 1, 2]);
    const x = fl([3], [1, 2, 3]);
    const two = fl([], [2]);
    const want: Record<string, number[]> = {
      lt: [1, 0, 0],
      le: [1, 1, 0],
      gt: [0, 0, 1],
      ge: [0, 1, 1],
      eq: [0, 1, 0],
      ne: [1, 0, 1],
    };
    for (const op of compareNames) {
      const r = evalOp(op, [x, two]);
      expect(r.dtype, op).toBe("bool");
      expect(list(r), op).toEqual(want[op]);
    }
    // broadcast [3, 1] against [3]
    expect(list(evalOp("lt", [fl([3, 1], [1, 2, 3]), x]))).toEqual([0, 1, 1, 0, 0, 1, 0, 0, 0]);
  });

  it("elementwise arithmetic and math", () => {
    const x = fl([2, 1], [1, 2]);
    const y = fl([3], [10, 20, 30]);
    expect(list(evalOp("add", [x, y]))).toEqual([11, 21, 31, 12, 22, 32]);
    expect(list(evalOp("sub", [x, y]))).toEqual([-9, -19, -29, -8, -18, -28]);
    expect(list(evalOp("mul", [x, y]))).toEqual([10, 20, 30, 20, 40, 60]);
    expect(list(evalOp("div", [y, fl([], [4])]))).toEqual([2.5, 5, 7.5]);
    expect(list(evalOp("pow", [fl([3], [2, 3, 4]), fl([], [2])]))).toEqual([4, 9, 16]);
    expect(list(evalOp("maximum", [fl([3], [1, 5, 3]), fl([], [3])]))).toEqual([3, 5, 3]);
    expect(list(evalOp("minimum", [fl([3], [1, 5, 3]), fl([], [3])]))).toEqual([1, 3, 3]);
    const v = fl([4], [-2, -0.5, 0.5, 4]);
    expect(list(evalOp("neg", [v]))).toEqual([2, 0.5, -0.5, -4]);
    expect(list(evalOp("relu", [v]))).toEqual([0, 0, 0.5, 4]);
    expect(list(evalOp("abs", [v]))).toEqual([2, 0.5, 0.5, 4]);
    expect(list(evalOp("sqrt", [fl([2], [4, 9])]))).toEqual([2, 3]);
    expect(list(evalOp("rsqrt", [fl([2], [4, 0.25])]))).toEqual([0.5, 2]);
    expect(list(evalOp("exp", [fl([1], [0])]))).toEqual([1]);
    expect(list(evalOp("log", [fl([1], [1])]))).toEqual([0]);
    expect(list(evalOp("tanh", [fl([1], [0])]))).toEqual([0]);
    expect(list(evalOp("sin", [fl([1], [0])]))).toEqual([0]);
    expect(list(evalOp("cos", [fl([1], [0])]))).toEqual([1]);
    expect(list(evalOp("cast", [ids([2], [3, 4])]))).toEqual([3, 4]);
    expect(list(evalOp("detach", [v]))).toEqual(list(v.value));
    for (const op of unaryNames) {
      const s = getOp(op).scalar!;
      expect(evalOp(op, [fl([1], [0.7])]).data[0], op).toBe(s(0.7));
    }
  });
});

// ---- gradients -----------------------------------------------------------------------------

interface GradCase {
  /** Differentiable operands (graph weights): shape and a sampler. */
  weights: { shape: number[]; gen?: (r: () => number) => number }[];
  /** Other operands (graph inputs). */
  inputs?: In[];
  build: (g: Graph, w: number[], x: number[]) => number;
  /** The rule says the gradient is zero (comparisons, detach). */
  zero?: boolean;
}

const normal = (r: () => number) => randn(r);
const positive = (r: () => number) => 0.5 + 1.5 * r();
const awayFromZero = (r: () => number) => (r() < 0.5 ? -1 : 1) * (0.2 + r());

function unaryCase(op: string, gen: (r: () => number) => number = normal): GradCase {
  return { weights: [{ shape: [2, 3], gen }], build: (g, [x]) => g.op(op, [x]) };
}

function binaryCase(
  op: string,
  gx: (r: () => number) => number = normal,
  gy: (r: () => number) => number = normal,
): GradCase {
  // [2, 1, 3] with [4, 1]: both operands are broadcast.
  return {
    weights: [
      { shape: [2, 1, 3], gen: gx },
      { shape: [4, 1], gen: gy },
    ],
    build: (g, [x, y]) => g.op(op, [x, y]),
  };
}

const gradCases: Record<string, GradCase> = {
  neg: unaryCase("neg"),
  exp: unaryCase("exp"),
  log: unaryCase("log", positive),
  tanh: unaryCase("tanh"),
  sqrt: unaryCase("sqrt", positive),
  rsqrt: unaryCase("rsqrt", positive),
  relu: unaryCase("relu", awayFromZero),
  sin: unaryCase("sin"),
  cos: unaryCase("cos"),
  abs: unaryCase("abs", awayFromZero),
  detach: { ...unaryCase("detach"), zero: true },
  add: binaryCase("add"),
  sub: binaryCase("sub"),
  mul: binaryCase("mul"),
  div: binaryCase("div", normal, awayFromZero),
  pow: binaryCase("pow", positive, normal),
  maximum: binaryCase("maximum"),
  minimum: binaryCase("minimum"),
  ...Object.fromEntries(compareNames.map((op) => [op, { ...binaryCase(op), zero: true }])),
  where: {
    weights: [{ shape: [2, 3] }, { shape: [3] }],
    inputs: [{ value: t([2, 3], [1, 0, 1, 0, 0, 1]), dtype: "bool" }],
    build: (g, [x, y], [c]) => g.op("where", [c, x, y]),
  },
  sum: {
    weights: [{ shape: [2, 3, 4] }],
    // a product of two sums over different axes: both rules, keepdim false and true
    build: (g, [x]) =>
      g.op("mul", [
        g.op("reshape", [g.op("sum", [x], { axes: [0, 2], keepdim: false })], {
          shape: shapeOf(1, 3, 1),
        }),
        g.op("sum", [x], { axes: [1], keepdim: true }),
      ]),
  },
  mean: {
    weights: [{ shape: [2, 3, 4] }],
    build: (g, [x]) =>
      g.op("mul", [
        g.op("mean", [x], { axes: [0, 2], keepdim: true }),
        g.op("mean", [x], { axes: [1], keepdim: true }),
      ]),
  },
  max: {
    weights: [{ shape: [2, 3, 4] }],
    build: (g, [x]) =>
      g.op("mul", [
        g.op("max", [x], { axes: [0, 2], keepdim: true }),
        g.op("reshape", [g.op("max", [x], { axes: [1], keepdim: false })], {
          shape: shapeOf(2, 1, 4),
        }),
      ]),
  },
  matmul: {
    weights: [{ shape: [2, 1, 3, 4] }, { shape: [5, 4, 2] }],
    build: (g, [a, b]) => g.op("matmul", [a, b]),
  },
  reshape: {
    weights: [{ shape: [2, 6] }],
    build: (g, [x]) => g.op("reshape", [x], { shape: shapeOf(3, 4) }),
  },
  permute: {
    weights: [{ shape: [2, 3, 4] }],
    build: (g, [x]) => g.op("permute", [x], { perm: [2, 0, 1] }),
  },
  expand: {
    weights: [{ shape: [3, 1] }],
    build: (g, [x]) => g.op("expand", [x], { shape: shapeOf(2, 3, 4) }),
  },
  slice: {
    weights: [{ shape: [3, 5] }],
    build: (g, [x]) => g.op("slice", [x], { axis: 1, start: 1, end: 4 }),
  },
  pad: {
    weights: [{ shape: [3, 2] }],
    build: (g, [x]) => g.op("pad", [x], { axis: 0, before: 1, after: 2 }),
  },
  concat: {
    weights: [{ shape: [2, 3] }, { shape: [2, 1] }, { shape: [2, 2] }],
    build: (g, ws) => g.op("concat", ws, { axis: 1 }),
  },
  gather: {
    weights: [{ shape: [5, 3] }],
    inputs: [ids([2, 3], [4, 0, 4, 1, 1, 4])],
    build: (g, [table], [i]) => g.op("gather", [table, i]),
  },
  scatter_add: {
    weights: [{ shape: [4, 3] }],
    inputs: [ids([4], [2, 0, 2, 4])],
    build: (g, [v], [i]) => g.op("scatter_add", [i, v], { n: dimConst(5) }),
  },
  take: {
    weights: [{ shape: [2, 3, 5] }],
    inputs: [ids([2, 3], [0, 4, 4, 2, 1, 0])],
    build: (g, [x], [i]) => g.op("take", [x, i]),
  },
  put: {
    weights: [{ shape: [2, 3] }],
    inputs: [ids([2, 3], [0, 4, 4, 2, 1, 0])],
    build: (g, [v], [i]) => g.op("put", [i, v], { n: dimConst(5) }),
  },
  // The mask has no gradient of its own (the key is not differentiable); through
  // a product, the gradient is the upstream one times the same mask.
  dropout_mask: {
    weights: [{ shape: [4, 5] }],
    inputs: [ids([6], Array.from(rngKey(1337, 2, 1)))],
    build: (g, [w], [key]) =>
      g.op("mul", [w, g.op("dropout_mask", [key], { shape: shapeOf(4, 5), p: 0.5, stream: 3 })]),
  },
};

/** Builds input(s) -> op -> sum(out * R), differentiates it and checks every entry. */
function gradCheck(name: string, c: GradCase, seed: number) {
  const r = rng(seed);
  const g = new Graph(`fd_${name}`);
  const w = c.weights.map((s, i) =>
    g.op("weight", [], { name: `w${i}`, shape: shapeOf(...s.shape) }),
  );
  const x = (c.inputs ?? []).map((s, i) =>
    g.op("input", [], { name: `x${i}`, dtype: s.dtype ?? "f32", shape: shapeOf(...s.value.shape) }),
  );
  const out = c.build(g, w, x);
  const outShape = g.type(out).shape.map((d) => d.get("") ?? 1);
  const R = g.op("input", [], { name: "R", dtype: "f32", shape: [...g.type(out).shape] });
  const prod = g.op("mul", [out, R]);
  const loss = g.op("sum", [prod], { axes: [...outShape.keys()], keepdim: false });
  g.output("loss", loss);

  const weights = new Map(
    c.weights.map((s, i) => [`w${i}`, t(s.shape, () => (s.gen ?? normal)(r))]),
  );
  const inputs: Record<string, Tensor> = { R: t(outShape, () => randn(r)) };
  (c.inputs ?? []).forEach((s, i) => (inputs[`x${i}`] = s.value));

  const train = autodiff(g);
  expect(verify(train)).toEqual([]);
  const res = run(train, { inputs, weights });
  const lossAt = () => run(g, { inputs, weights }).loss.data[0];
  expect(res.loss.data[0]).toBe(lossAt());

  const h = 1e-6;
  for (const [key, wt] of weights) {
    const grad = res[`grad.${key}`];
    expect(grad.shape).toEqual(wt.shape);
    const fd = new Float64Array(wt.data.length);
    for (let i = 0; i < wt.data.length; i++) {
      const v = wt.data[i];
      wt.data[i] = v + h;
      const up = lossAt();
      wt.data[i] = v - h;
      const down = lossAt();
      wt.data[i] = v;
      fd[i] = (up - down) / (2 * h);
    }
    if (c.zero) {
      // The rule's gradient is zero by definition.
      expect(maxAbs(grad.data), `grad.${key}`).toBe(0);
      continue;
    }
    let worst = 0;
    const scale = Math.max(maxAbs(fd), maxAbs(grad.data));
    expect(scale, `grad.${key} is not trivially zero`).toBeGreaterThan(1e-3);
    for (let i = 0; i < fd.length; i++) {
      const err = Math.abs(grad.data[i] - fd[i]) / Math.max(Math.abs(fd[i]), 1e-3 * scale);
      worst = Math.max(worst, err);
    }
    expect(worst, `grad.${key} vs finite differences`).toBeLessThan(1e-6);
  }
  return { weights, inputs, g, res };
}

describe("gradient rules against central finite differences", () => {
  it("every op with a gradient rule has a test here", () => {
    const withRule = allOps()
      .filter((o) => o.grad)
      .map((o) => o.name)
      .sort();
    expect(Object.keys(gradCases).sort()).toEqual(withRule);
  });

  let seed = 1;
  for (const [name, c] of Object.entries(gradCases)) it(name, () => gradCheck(name, c, seed++));

  it("detach passes values but no gradient", () => {
    const r = gradCheck("detach", gradCases.detach, 99);
    // the loss does depend on the weight numerically
    expect(maxAbs(r.res.loss.data)).toBeGreaterThan(0);
  });

  it("gather accumulates repeated ids; take's gradient lands on the chosen entries", () => {
    const c = gradCases.gather;
    const { inputs, res } = gradCheck("gather-again", c, 7);
    // row 2 and row 3 of the table are never gathered
    const grad = res["grad.w0"].data;
    for (const row of [2, 3]) for (let k = 0; k < 3; k++) expect(grad[row * 3 + k]).toBe(0);
    // row 4 is gathered three times: the sum of three rows of R
    const R = inputs.R.data;
    for (let k = 0; k < 3; k++)
      expect(grad[12 + k]).toBeCloseTo(R[0 + k] + R[6 + k] + R[15 + k], 12);
  });
});

describe("ops without a gradient rule", () => {
  it("are exactly the source ops, cast and the KV-cache ops", () => {
    const without = allOps()
      .filter((o) => !o.grad)
      .map((o) => o.name)
      .sort();
    expect(without).toEqual([
      "arange",
      "cache_write",
      "cast",
      "causal_mask",
      "causal_mask_at",
      "const",
      "dim",
      "input",
      "weight",
    ]);
  });
});
