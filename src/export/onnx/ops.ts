// Each IR op as ONNX nodes (opset 17). gptc's ops are small and numpy-like, so
// most map to one ONNX operator; the rest (masks, the KV-cache write, take)
// are a few nodes each. Types: ONNX does not promote, so operands are cast to
// the type the IR computed for the op.
import { dimAdd, dimConst, type Dim } from "../../ir/dims.js";
import type { Graph, Node } from "../../ir/graph.js";
import { promote } from "../../ir/ops/shape-rules.js";
import type { DType } from "../../ir/ops/types.js";
import { onnx, onnxType, type GraphBuilder } from "./builder.js";

const F = onnx.TensorProto.DataType.FLOAT;
const I64 = onnx.TensorProto.DataType.INT64;

/** What an op's emitter sees: the builder, the node, and its operands' ONNX names and types. */
interface Ctx {
  b: GraphBuilder;
  node: Node;
  xs: string[];
  types: DType[];
  /** Operand k cast to `dtype`. */
  as(k: number, dtype: DType): string;
}

type Emit = (c: Ctx) => string;

const unary =
  (op: string): Emit =>
  (c) =>
    c.b.node(op, [c.as(0, "f32")]);

/** Arithmetic in the type the IR computed (an i32 + f32 add is an f32 add). */
const arith =
  (op: string): Emit =>
  (c) =>
    c.b.node(op, [c.as(0, c.node.type.dtype), c.as(1, c.node.type.dtype)]);

const compare =
  (op: string, negate = false): Emit =>
  (c) => {
    // ONNX's ordering comparisons take numbers: booleans compare as 0 and 1.
    let t = promote(c.types[0], c.types[1]);
    if (t === "bool") t = "i32";
    const r = c.b.node(op, [c.as(0, t), c.as(1, t)]);
    return negate ? c.b.node("Not", [r]) : r;
  };

const axes = (n: Node) => n.attrs.axes as number[];
const keep = (n: Node) => (n.attrs.keepdim ? 1 : 0);

/** -inf above the diagonal: key j is visible to query i when j <= i + offset. */
function causalMask(b: GraphBuilder, q: Dim, k: Dim, offset: string): string {
  const zero = b.ints([0], []);
  const one = b.ints([1], []);
  const rows = b.node("Unsqueeze", [b.node("Range", [zero, b.dimScalar(q), one]), b.ints([1])]);
  const cols = b.node("Unsqueeze", [b.node("Range", [zero, b.dimScalar(k), one]), b.ints([0])]);
  const visible = b.node("LessOrEqual", [cols, b.node("Add", [rows, offset])]);
  return b.node("Where", [visible, b.scalar(0), b.scalar(-Infinity)]);
}

const emitters: Record<string, Emit> = {
  const: (c) => c.b.scalar(c.node.attrs.value as number),
  dim: (c) =>
    c.b.node("Reshape", [c.b.cast(c.b.dim(c.node.attrs.dim as Dim), I64, F), c.b.ints([], [0])]),
  arange: (c) =>
    c.b.node("Range", [c.b.ints([0], []), c.b.dimScalar(c.node.attrs.n as Dim), c.b.ints([1], [])]),
  causal_mask: (c) => {
    const { q, k } = c.node.attrs as { q: Dim; k: Dim };
    return causalMask(c.b, q, k, c.b.dimScalar(dimAdd(k, q, -1)));
  },
  causal_mask_at: (c) => {
    const { q, k } = c.node.attrs as { q: Dim; k: Dim };
    return causalMask(c.b, q, k, c.as(0, "i32"));
  },
  cache_write: (c) => {
    // past[:len] ++ fresh ++ past[len + T:] along the cache axis.
    const axis = c.node.attrs.axis as number;
    const b = c.b;
    const len = b.node("Reshape", [c.as(2, "i32"), b.ints([1])]);
    const T = b.node("Slice", [b.node("Shape", [c.xs[1]]), b.ints([axis]), b.ints([axis + 1])]);
    const end = b.node("Add", [len, T]);
    const head = b.node("Slice", [c.xs[0], b.ints([0]), len, b.ints([axis])]);
    const tail = b.node("Slice", [c.xs[0], end, b.ints([9223372036854775807n]), b.ints([axis])]);
    return b.node("Concat", [head, c.as(1, "f32"), tail], { axis });
  },
  neg: (c) => c.b.node("Neg", [c.as(0, c.node.type.dtype)]),
  exp: unary("Exp"),
  log: unary("Log"),
  tanh: unary("Tanh"),
  sqrt: unary("Sqrt"),
  rsqrt: (c) => c.b.node("Reciprocal", [c.b.node("Sqrt", [c.as(0, "f32")])]),
  relu: unary("Relu"),
  sin: unary("Sin"),
  cos: unary("Cos"),
  abs: unary("Abs"),
  cast: (c) => c.as(0, "f32"),
  detach: (c) => c.b.node("Identity", [c.xs[0]]),
  add: arith("Add"),
  sub: arith("Sub"),
  mul: arith("Mul"),
  div: arith("Div"),
  pow: arith("Pow"),
  maximum: arith("Max"),
  minimum: arith("Min"),
  lt: compare("Less"),
  le: compare("LessOrEqual"),
  gt: compare("Greater"),
  ge: compare("GreaterOrEqual"),
  eq: compare("Equal"),
  ne: compare("Equal", true),
  where: (c) =>
    c.b.node("Where", [c.as(0, "bool"), c.as(1, c.node.type.dtype), c.as(2, c.node.type.dtype)]),
  sum: (c) =>
    axes(c.node).length === 0
      ? c.as(0, "f32")
      : c.b.node("ReduceSum", [c.as(0, "f32"), c.b.ints(axes(c.node))], {
          keepdims: keep(c.node),
        }),
  mean: (c) =>
    axes(c.node).length === 0
      ? c.as(0, "f32")
      : c.b.node("ReduceMean", [c.as(0, "f32")], { axes: axes(c.node), keepdims: keep(c.node) }),
  max: (c) =>
    axes(c.node).length === 0
      ? c.xs[0]
      : c.b.node("ReduceMax", [c.xs[0]], { axes: axes(c.node), keepdims: keep(c.node) }),
  matmul: (c) => c.b.node("MatMul", [c.as(0, "f32"), c.as(1, "f32")]),
  reshape: (c) => c.b.node("Reshape", [c.xs[0], c.b.shape(c.node.attrs.shape as Dim[])]),
  permute: (c) => c.b.node("Transpose", [c.xs[0]], { perm: c.node.attrs.perm as number[] }),
  expand: (c) => c.b.node("Expand", [c.xs[0], c.b.shape(c.node.attrs.shape as Dim[])]),
  slice: (c) => {
    const { axis, start, end } = c.node.attrs as { axis: number; start: number; end: number };
    return c.b.node("Slice", [c.xs[0], c.b.ints([start]), c.b.ints([end]), c.b.ints([axis])]);
  },
  pad: (c) => {
    const { axis, before, after } = c.node.attrs as { axis: number; before: number; after: number };
    const rank = c.node.type.shape.length;
    const pads = new Array<number>(2 * rank).fill(0);
    pads[axis] = before;
    pads[rank + axis] = after;
    return c.b.node("Pad", [c.xs[0], c.b.ints(pads)]);
  },
  concat: (c) =>
    c.b.node(
      "Concat",
      c.xs.map((_, k) => c.as(k, c.node.type.dtype)),
      { axis: c.node.attrs.axis as number },
    ),
  gather: (c) => c.b.node("Gather", [c.xs[0], c.as(1, "i32")], { axis: 0 }),
  take: (c) => {
    const ids = c.b.node("Unsqueeze", [c.as(1, "i32"), c.b.ints([-1])]);
    const picked = c.b.node("GatherElements", [c.xs[0], ids], { axis: -1 });
    return c.b.node("Squeeze", [picked, c.b.ints([-1])]);
  },
};

/** The IR ops the ONNX exporter maps (input and weight become graph inputs and initializers). */
export const onnxOps: ReadonlySet<string> = new Set([...Object.keys(emitters), "input", "weight"]);

/**
 * Emits every computing node of `graph` into `b`; `names` already holds the
 * ONNX names of its inputs and weights and receives the rest.
 */
export function emitNodes(graph: Graph, b: GraphBuilder, names: Map<number, string>): void {
  for (const node of graph.nodes) {
    if (names.has(node.id)) continue;
    const xs = node.inputs.map((i) => names.get(i)!);
    const types = node.inputs.map((i) => graph.type(i).dtype);
    const as = (k: number, dtype: DType) => b.cast(xs[k], onnxType[types[k]], onnxType[dtype]);
    names.set(node.id, emitters[node.op]({ b, node, xs, types, as }));
  }
}
