// Reductions over a set of axes: sum, mean, max.
import { dimConst, shapeSize, type Dim } from "../dims.js";
import { checkAxis } from "./shape-rules.js";
import { forEachIndex, size, strides, tensor } from "./tensor.js";
import {
  ShapeError,
  type Attrs,
  type Builder,
  type Node,
  type OpDef,
  type Tensor,
  type TypeInfo,
} from "./types.js";

function axesOf(attrs: Attrs): number[] {
  return attrs.axes as number[];
}

function reduceType([x]: TypeInfo[], attrs: Attrs, name: string): TypeInfo {
  const axes = axesOf(attrs);
  if (new Set(axes).size !== axes.length) throw new ShapeError(`${name}: repeated axis in ${axes}`);
  for (const a of axes) checkAxis(a, x.shape.length, name);
  const shape: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!axes.includes(i)) shape.push(d);
    else if (attrs.keepdim) shape.push(dimConst(1));
  });
  return { dtype: name === "max" ? x.dtype : "f32", shape };
}

function evalReduce(
  x: Tensor,
  attrs: Attrs,
  out: number[],
  init: number,
  f: (acc: number, v: number) => number,
): Tensor {
  const axes = axesOf(attrs);
  const r = tensor(out, new Float64Array(size(out)).fill(init));
  // Output strides laid over the input's axes (0 on reduced axes).
  const keptShape = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const st = strides(keptShape).map((s, i) => (axes.includes(i) ? 0 : s));
  forEachIndex(x.shape, (flat, idx) => {
    let o = 0;
    for (let i = 0; i < idx.length; i++) o += idx[i] * st[i];
    r.data[o] = f(r.data[o], x.data[flat]);
  });
  return r;
}

/** The reduced gradient, broadcast back over the input's shape. */
function expandBack(b: Builder, node: Node, g: number): number {
  const x = b.type(node.inputs[0]);
  let gk = g;
  if (!node.attrs.keepdim) {
    const kept = x.shape.map((d, i) => (axesOf(node.attrs).includes(i) ? dimConst(1) : d));
    gk = b.op("reshape", [g], { shape: kept });
  }
  return b.op("expand", [gk], { shape: [...x.shape] });
}

export const reduceOps: OpDef[] = [
  {
    name: "sum",
    kind: "reduce",
    arity: 1,
    type: (ts, a) => reduceType(ts, a, "sum"),
    eval: ([x], a, out) => evalReduce(x, a, out, 0, (s, v) => s + v),
    grad: (b, n, g) => [expandBack(b, n, g)],
  },
  {
    name: "mean",
    kind: "reduce",
    arity: 1,
    type: (ts, a) => reduceType(ts, a, "mean"),
    eval: ([x], a, out) => {
      const r = evalReduce(x, a, out, 0, (s, v) => s + v);
      const n = axesOf(a).reduce((p, i) => p * x.shape[i], 1);
      for (let i = 0; i < r.data.length; i++) r.data[i] /= n;
      return r;
    },
    grad: (b, n, g) => {
      const x = b.type(n.inputs[0]);
      const count = shapeSize(axesOf(n.attrs).map((i) => x.shape[i]));
      const scaled = b.op("div", [g, b.op("dim", [], { dim: count })]);
      return [expandBack(b, n, scaled)];
    },
  },
  {
    name: "max",
    kind: "reduce",
    arity: 1,
    type: (ts, a) => reduceType(ts, a, "max"),
    eval: ([x], a, out) => evalReduce(x, a, out, -Infinity, Math.max),
    // The gradient goes to every position equal to the maximum.
    grad: (b, n, g) => {
      const x = n.inputs[0];
      const xt = b.type(x);
      const keptOut = n.attrs.keepdim
        ? n.id
        : b.op("reshape", [n.id], {
            shape: xt.shape.map((d, i) => (axesOf(n.attrs).includes(i) ? dimConst(1) : d)),
          });
      const hit = b.op("eq", [x, keptOut]);
      return [b.op("where", [hit, expandBack(b, n, g), b.scalar(0)])];
    },
  },
];
