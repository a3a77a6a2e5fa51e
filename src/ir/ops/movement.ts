// Movement ops: they only remap indices (reshape, permute, expand, slice, pad, concat).
import { dimAdd, dimConst, dimEq, dimValue, shapeSize, shapeToString, type Dim } from "../dims.js";
import { broadcastShapes, checkAxis } from "./shape-rules.js";
import { broadcastStrides, dot, forEachIndex, reshapeGroups, strides, tensor } from "./tensor.js";
import { unbroadcast } from "./elementwise.js";
import {
  ShapeError,
  type Attrs,
  type OpDef,
  type Tensor,
  type TypeInfo,
  type View,
} from "./types.js";

const dimsAttr = (a: Attrs, k: string) => a[k] as Dim[];

function concreteAxisLength(d: Dim, what: string): number {
  const v = dimValue(d);
  if (v === undefined)
    throw new ShapeError(`${what}: the axis must have a fixed size, not ${shapeToString([d])}`);
  return v;
}

export const movementOps: OpDef[] = [
  {
    name: "reshape",
    kind: "movement",
    arity: 1,
    type: ([x], a) => {
      const shape = dimsAttr(a, "shape");
      if (!dimEq(shapeSize(x.shape), shapeSize(shape)))
        throw new ShapeError(
          `reshape: cannot reshape ${shapeToString(x.shape)} to ${shapeToString(shape)} (different element counts)`,
        );
      return { dtype: x.dtype, shape };
    },
    eval: ([x], _a, out) => tensor(out, x.data.slice()),
    grad: (b, n, g) => [b.op("reshape", [g], { shape: [...b.type(n.inputs[0]).shape] })],
    view: reshapeView,
  },
  {
    name: "permute",
    kind: "movement",
    arity: 1,
    type: ([x], a) => {
      const perm = a.perm as number[];
      const sorted = [...perm].sort((p, q) => p - q);
      if (perm.length !== x.shape.length || sorted.some((p, i) => p !== i))
        throw new ShapeError(
          `permute: [${perm}] is not a permutation of the ${x.shape.length} axes of ${shapeToString(x.shape)}`,
        );
      return { dtype: x.dtype, shape: perm.map((p) => x.shape[p]) };
    },
    eval: ([x], a, out) => {
      const perm = a.perm as number[];
      const st = strides(x.shape);
      const pst = perm.map((p) => st[p]);
      const r = tensor(out);
      forEachIndex(out, (flat, idx) => (r.data[flat] = x.data[dot(idx, pst)]));
      return r;
    },
    grad: (b, n, g) => {
      const perm = n.attrs.perm as number[];
      const inv = new Array<number>(perm.length);
      perm.forEach((p, i) => (inv[p] = i));
      return [b.op("permute", [g], { perm: inv })];
    },
    view: (x, a) => ({ offset: x.offset, strides: (a.perm as number[]).map((p) => x.strides[p]) }),
  },
  {
    // Broadcast to a larger shape (numpy broadcast_to).
    name: "expand",
    kind: "movement",
    arity: 1,
    type: ([x], a) => {
      const shape = dimsAttr(a, "shape");
      const b = broadcastShapes([x.shape, shape], "expand");
      if (b.length !== shape.length || !b.every((d, i) => dimEq(d, shape[i])))
        throw new ShapeError(
          `expand: cannot broadcast ${shapeToString(x.shape)} to ${shapeToString(shape)}`,
        );
      return { dtype: x.dtype, shape };
    },
    eval: ([x], _a, out) => {
      const st = broadcastStrides(x.shape, out);
      const r = tensor(out);
      forEachIndex(out, (flat, idx) => (r.data[flat] = x.data[dot(idx, st)]));
      return r;
    },
    grad: (b, n, g) => [unbroadcast(b, g, b.type(n.inputs[0]))],
    view: (x, _a, inShape, outShape) => {
      const lead = outShape.length - inShape.length;
      return {
        offset: x.offset,
        strides: outShape.map((_, i) =>
          i < lead || inShape[i - lead] === 1 ? 0 : x.strides[i - lead],
        ),
      };
    },
  },
  {
    // x[..., start:end, ...] along one axis.
    name: "slice",
    kind: "movement",
    arity: 1,
    type: ([x], a) => {
      const axis = checkAxis(a.axis as number, x.shape.length, "slice");
      const len = concreteAxisLength(x.shape[axis], "slice");
      const start = a.start as number;
      const end = a.end as number;
      if (!(0 <= start && start <= end && end <= len))
        throw new ShapeError(
          `slice: [${start}:${end}] is outside axis ${axis} of ${shapeToString(x.shape)}`,
        );
      const shape = [...x.shape];
      shape[axis] = dimConst(end - start);
      return { dtype: x.dtype, shape };
    },
    eval: ([x], a, out) => {
      const st = strides(x.shape);
      const base = (a.start as number) * st[a.axis as number];
      const r = tensor(out);
      forEachIndex(out, (flat, idx) => (r.data[flat] = x.data[base + dot(idx, st)]));
      return r;
    },
    grad: (b, n, g) => {
      const x = b.type(n.inputs[0]);
      const axis = n.attrs.axis as number;
      const len = dimValue(x.shape[axis])!;
      return [
        b.op("pad", [g], {
          axis,
          before: n.attrs.start as number,
          after: len - (n.attrs.end as number),
        }),
      ];
    },
    view: (x, a) => ({
      offset: x.offset + (a.start as number) * x.strides[a.axis as number],
      strides: x.strides,
    }),
  },
  {
    // Zeros before and after along one axis (the gradient of slice).
    name: "pad",
    kind: "movement",
    arity: 1,
    type: ([x], a) => {
      const axis = checkAxis(a.axis as number, x.shape.length, "pad");
      const shape = [...x.shape];
      shape[axis] = dimAdd(shape[axis], dimConst((a.before as number) + (a.after as number)));
      return { dtype: x.dtype, shape };
    },
    eval: ([x], a, out) => {
      const axis = a.axis as number;
      const before = a.before as number;
      const st = strides(x.shape);
      const r = tensor(out);
      forEachIndex(out, (flat, idx) => {
        const i = idx[axis] - before;
        if (i < 0 || i >= x.shape[axis]) return;
        let o = 0;
        for (let k = 0; k < idx.length; k++) o += (k === axis ? i : idx[k]) * st[k];
        r.data[flat] = x.data[o];
      });
      return r;
    },
    grad: (b, n, g) => {
      const axis = n.attrs.axis as number;
      const len = dimValue(b.type(n.inputs[0]).shape[axis]);
      if (len === undefined) throw new ShapeError("pad: gradient needs a fixed-size axis");
      const start = n.attrs.before as number;
      return [b.op("slice", [g], { axis, start, end: start + len })];
    },
  },
  {
    name: "concat",
    kind: "movement",
    arity: "many",
    type: (xs: TypeInfo[], a) => {
      if (xs.length === 0) throw new ShapeError("concat: needs at least one tensor");
      const rank = xs[0].shape.length;
      const axis = checkAxis(a.axis as number, rank, "concat");
      let total: Dim = dimConst(0);
      for (const x of xs) {
        if (
          x.shape.length !== rank ||
          x.shape.some((d, i) => i !== axis && !dimEq(d, xs[0].shape[i]))
        )
          throw new ShapeError(
            `concat: shapes ${xs.map((t) => shapeToString(t.shape)).join(", ")} differ outside axis ${axis}`,
          );
        total = dimAdd(total, x.shape[axis]);
      }
      const shape = [...xs[0].shape];
      shape[axis] = total;
      return { dtype: xs[0].dtype, shape };
    },
    eval: (xs: Tensor[], a, out) => {
      const axis = a.axis as number;
      const r = tensor(out);
      const ost = strides(out);
      let offset = 0;
      for (const x of xs) {
        forEachIndex(x.shape, (flat, idx) => {
          let o = 0;
          for (let k = 0; k < idx.length; k++)
            o += (k === axis ? idx[k] + offset : idx[k]) * ost[k];
          r.data[o] = x.data[flat];
        });
        offset += x.shape[axis];
      }
      return r;
    },
    grad: (b, n, g) => {
      const axis = n.attrs.axis as number;
      let start = 0;
      return n.inputs.map((x) => {
        const len = dimValue(b.type(x).shape[axis]);
        if (len === undefined) throw new ShapeError("concat: gradient needs fixed-size axes");
        const s = b.op("slice", [g], { axis, start, end: start + len });
        start += len;
        return s;
      });
    },
  },
];

/**
 * A reshape as a view: axes are matched in groups of equal element counts (as
 * codegen's reshapeCoords does); each group's input axes must be one strided
 * run (a merge of axes a permute reordered has no strides), and its output
 * axes split that run.
 */
function reshapeView(x: View, _a: Attrs, inShape: number[], outShape: number[]): View | undefined {
  const strides: number[] = [];
  for (const { from: gi, to: gj } of reshapeGroups(inShape, outShape)) {
    // The run's innermost stride; each outer axis must step over the inner ones.
    const axes = gi.filter((k) => k < inShape.length && inShape[k] !== 1);
    let inner = axes.length ? x.strides[axes[axes.length - 1]] : 0;
    for (let k = axes.length - 2; k >= 0; k--)
      if (x.strides[axes[k]] !== x.strides[axes[k + 1]] * inShape[axes[k + 1]]) return undefined;
    for (const k of [...gj].reverse()) {
      if (k >= outShape.length) continue;
      strides[k] = outShape[k] === 1 ? 0 : inner;
      inner *= outShape[k];
    }
  }
  return { offset: x.offset, strides: strides.slice(0, outShape.length) };
}
