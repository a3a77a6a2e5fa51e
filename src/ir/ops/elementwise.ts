// Elementwise ops: unary math, binary arithmetic and comparisons with numpy
// broadcasting, `where`, and `cast`. Each gives its scalar function (reference
// semantics, used by the interpreter and constant folding) and the ALU operations
// kernels compute it with (scalar.ts).
import { alu, arg, int, num, truth, type ScalarExpr } from "./scalar.js";
import { broadcastShapes, promote } from "./shape-rules.js";
import { broadcastStrides, dot, forEachIndex, tensor } from "./tensor.js";
import type { Builder, DType, Node, OpDef, Tensor, TypeInfo } from "./types.js";

function evalElementwise(inputs: Tensor[], out: number[], f: (...xs: number[]) => number): Tensor {
  const r = tensor(out);
  const st = inputs.map((t) => broadcastStrides(t.shape, out));
  const xs = new Array<number>(inputs.length);
  forEachIndex(out, (flat, idx) => {
    for (let i = 0; i < inputs.length; i++) xs[i] = inputs[i].data[dot(idx, st[i])];
    r.data[flat] = f(...xs);
  });
  return r;
}

/** Sums a gradient over the axes along which `target` was broadcast. */
export function unbroadcast(b: Builder, g: number, target: TypeInfo): number {
  const gs = b.type(g).shape;
  const lead = gs.length - target.shape.length;
  let out = g;
  if (lead > 0) out = b.op("sum", [out], { axes: [...Array(lead).keys()], keepdim: false });
  const ones: number[] = [];
  target.shape.forEach((d, i) => {
    const gd = gs[lead + i];
    if (d.size === 1 && d.get("") === 1 && !(gd.size === 1 && gd.get("") === 1)) ones.push(i);
  });
  if (ones.length) out = b.op("sum", [out], { axes: ones, keepdim: true });
  return out;
}

function unary(
  name: string,
  scalar: (x: number) => number,
  scalarExpr: ScalarExpr,
  grad?: (b: Builder, x: number, out: number, g: number) => number,
): OpDef {
  return {
    name,
    kind: "elementwise",
    arity: 1,
    type: ([x]) => ({ dtype: "f32", shape: x.shape }),
    eval: (inputs, _a, out) => evalElementwise(inputs, out, scalar),
    grad: grad ? (b, node, g) => [grad(b, node.inputs[0], node.id, g)] : undefined,
    scalar,
    alu: scalarExpr,
    costly: transcendental.has(name),
  };
}

/** Unary ops that backends compute through a library call (gpu.js webasm: a JS import per element). */
const transcendental = new Set(["exp", "log", "tanh", "sin", "cos"]);

const mul = (b: Builder, x: number, y: number) => b.op("mul", [x, y]);

function binary(
  name: string,
  dtype: (a: DType, b: DType) => DType,
  scalar: (x: number, y: number) => number,
  scalarExpr: ScalarExpr,
  grad?: (b: Builder, node: Node, g: number) => [number | undefined, number | undefined],
): OpDef {
  return {
    name,
    kind: "elementwise",
    arity: 2,
    type: ([x, y]) => ({
      dtype: dtype(x.dtype, y.dtype),
      shape: broadcastShapes([x.shape, y.shape], name),
    }),
    eval: (inputs, _a, out) => evalElementwise(inputs, out, scalar),
    grad: grad
      ? (b, node, g) => {
          const [gx, gy] = grad(b, node, g);
          const [x, y] = node.inputs;
          return [
            gx === undefined ? undefined : unbroadcast(b, gx, b.type(x)),
            gy === undefined ? undefined : unbroadcast(b, gy, b.type(y)),
          ];
        }
      : undefined,
    scalar,
    alu: scalarExpr,
  };
}

const arith = (a: DType, b: DType): DType => (promote(a, b) === "bool" ? "i32" : promote(a, b));
const toFloat = (): DType => "f32";
const toBool = (): DType => "bool";
const b2n = (c: boolean) => (c ? 1 : 0);

export const elementwiseOps: OpDef[] = [
  unary(
    "neg",
    (x) => -x,
    alu("neg", arg(0)),
    (b, _x, _o, g) => b.op("neg", [g]),
  ),
  unary("exp", Math.exp, alu("exp", arg(0)), (b, _x, o, g) => mul(b, g, o)),
  unary("log", Math.log, alu("log", arg(0)), (b, x, _o, g) => b.op("div", [g, x])),
  unary("tanh", Math.tanh, alu("tanh", arg(0)), (b, _x, o, g) =>
    // d tanh = 1 - tanh²
    mul(b, g, b.op("sub", [b.scalar(1), mul(b, o, o)])),
  ),
  unary("sqrt", Math.sqrt, alu("sqrt", arg(0)), (b, _x, o, g) =>
    b.op("div", [mul(b, g, b.scalar(0.5)), o]),
  ),
  unary(
    "rsqrt",
    (x) => 1 / Math.sqrt(x),
    alu("div", num(1), alu("sqrt", arg(0))),
    (b, _x, o, g) =>
      // d x^-1/2 = -1/2 x^-3/2 = -1/2 o³
      mul(b, g, mul(b, b.scalar(-0.5), mul(b, o, mul(b, o, o)))),
  ),
  unary(
    "relu",
    (x) => (x > 0 ? x : 0),
    alu("max", arg(0), num(0)),
    (b, x, _o, g) => b.op("where", [b.op("gt", [x, b.scalar(0)]), g, b.scalar(0)]),
  ),
  unary("sin", Math.sin, alu("sin", arg(0)), (b, x, _o, g) => mul(b, g, b.op("cos", [x]))),
  unary("cos", Math.cos, alu("cos", arg(0)), (b, x, _o, g) =>
    b.op("neg", [mul(b, g, b.op("sin", [x]))]),
  ),
  unary("abs", Math.abs, alu("abs", arg(0)), (b, x, _o, g) =>
    b.op("where", [b.op("ge", [x, b.scalar(0)]), g, b.op("neg", [g])]),
  ),
  {
    // Conversion to float (ids and masks used in arithmetic).
    name: "cast",
    kind: "elementwise",
    arity: 1,
    type: ([x]) => ({ dtype: "f32", shape: x.shape }),
    eval: (inputs, _a, out) => evalElementwise(inputs, out, (x) => x),
    scalar: (x) => x,
    alu: arg(0),
  },
  {
    // Identity whose gradient is zero: for shifts that cancel out, such as the
    // max subtracted in softmax (the result does not depend on it).
    name: "detach",
    kind: "elementwise",
    arity: 1,
    type: ([x]) => ({ dtype: x.dtype, shape: x.shape }),
    eval: (inputs, _a, out) => evalElementwise(inputs, out, (x) => x),
    grad: () => [undefined],
    scalar: (x) => x,
    alu: arg(0),
  },
  binary(
    "add",
    arith,
    (x, y) => x + y,
    alu("add", arg(0), arg(1)),
    (_b, _n, g) => [g, g],
  ),
  binary(
    "sub",
    arith,
    (x, y) => x - y,
    alu("sub", arg(0), arg(1)),
    (b, _n, g) => [g, b.op("neg", [g])],
  ),
  binary(
    "mul",
    arith,
    (x, y) => x * y,
    alu("mul", arg(0), arg(1)),
    (b, n, g) => [mul(b, g, n.inputs[1]), mul(b, g, n.inputs[0])],
  ),
  binary(
    "div",
    toFloat,
    (x, y) => x / y,
    alu("div", arg(0), arg(1)),
    (b, n, g) => {
      const y = n.inputs[1];
      const gx = b.op("div", [g, y]);
      // d(x/y)/dy = -x/y² = -(x/y)/y
      return [gx, b.op("neg", [b.op("div", [mul(b, g, n.id), y])])];
    },
  ),
  binary("pow", toFloat, Math.pow, alu("pow", arg(0), arg(1)), (b, n, g) => {
    const [x, y] = n.inputs;
    const gx = mul(b, g, mul(b, y, b.op("pow", [x, b.op("sub", [y, b.scalar(1)])])));
    return [gx, mul(b, g, mul(b, n.id, b.op("log", [x])))];
  }),
  binary("maximum", arith, Math.max, alu("max", arg(0), arg(1)), (b, n, g) => {
    const ge = b.op("ge", n.inputs);
    return [b.op("where", [ge, g, b.scalar(0)]), b.op("where", [ge, b.scalar(0), g])];
  }),
  binary("minimum", arith, Math.min, alu("min", arg(0), arg(1)), (b, n, g) => {
    const le = b.op("le", n.inputs);
    return [b.op("where", [le, g, b.scalar(0)]), b.op("where", [le, b.scalar(0), g])];
  }),
  binary(
    "lt",
    toBool,
    (x, y) => b2n(x < y),
    truth("lt"),
    () => [undefined, undefined],
  ),
  binary(
    "le",
    toBool,
    (x, y) => b2n(x <= y),
    truth("le"),
    () => [undefined, undefined],
  ),
  binary(
    "gt",
    toBool,
    (x, y) => b2n(x > y),
    truth("gt"),
    () => [undefined, undefined],
  ),
  binary(
    "ge",
    toBool,
    (x, y) => b2n(x >= y),
    truth("ge"),
    () => [undefined, undefined],
  ),
  binary(
    "eq",
    toBool,
    (x, y) => b2n(x === y),
    truth("eq"),
    () => [undefined, undefined],
  ),
  binary(
    "ne",
    toBool,
    (x, y) => b2n(x !== y),
    truth("ne"),
    () => [undefined, undefined],
  ),
  {
    name: "where",
    kind: "elementwise",
    arity: 3,
    type: ([c, x, y]) => ({
      dtype: promote(x.dtype, y.dtype),
      shape: broadcastShapes([c.shape, x.shape, y.shape], "where"),
    }),
    eval: (inputs, _a, out) => evalElementwise(inputs, out, (c, x, y) => (c !== 0 ? x : y)),
    grad: (b, n, g) => {
      const [c, x, y] = n.inputs;
      const zero = b.scalar(0);
      return [
        undefined,
        unbroadcast(b, b.op("where", [c, g, zero]), b.type(x)),
        unbroadcast(b, b.op("where", [c, zero, g]), b.type(y)),
      ];
    },
    scalar: (c, x, y) => (c !== 0 ? x : y),
    alu: alu("select", alu("ne", arg(0), int(0)), arg(1), arg(2)),
  },
];
