// Data-dependent addressing: embedding lookup (gather), picking one entry per row
// (take, used by cross-entropy), and their gradients (scatter_add, put).
import { shapeToString, type Dim } from "../dims.js";
import { size, tensor } from "./tensor.js";
import { ShapeError, type OpDef } from "./types.js";
import { dimEq } from "../dims.js";

function checkIds(dtype: string, what: string): void {
  if (dtype !== "i32") throw new ShapeError(`${what}: the ids must be integers, got ${dtype}`);
}

function badId(what: string, id: number, n: number): never {
  throw new RangeError(`${what}: id ${id} is outside [0, ${n})`);
}

export const indexOps: OpDef[] = [
  {
    // table[ids]: rows of table [N, ...rest] for ids [...S] -> [...S, ...rest].
    name: "gather",
    kind: "index",
    arity: 2,
    type: ([table, ids]) => {
      checkIds(ids.dtype, "indexing");
      if (table.shape.length < 1) throw new ShapeError("indexing: cannot index a scalar");
      return { dtype: table.dtype, shape: [...ids.shape, ...table.shape.slice(1)] };
    },
    eval: ([table, ids], _a, out) => {
      const row = size(table.shape.slice(1));
      const n = table.shape[0];
      const r = tensor(out);
      ids.data.forEach((id, i) => {
        if (!(id >= 0 && id < n)) badId("indexing", id, n);
        r.data.set(table.data.subarray(id * row, (id + 1) * row), i * row);
      });
      return r;
    },
    grad: (b, node, g) => {
      const [table, ids] = node.inputs;
      return [b.op("scatter_add", [ids, g], { n: b.type(table).shape[0] }), undefined];
    },
  },
  {
    // Sums rows of g into an [n, ...rest] table at the given ids (the gradient of gather).
    name: "scatter_add",
    kind: "index",
    arity: 2,
    type: ([ids, g], a) => {
      checkIds(ids.dtype, "scatter_add");
      const lead = ids.shape.length;
      if (lead > g.shape.length || !ids.shape.every((d, i) => dimEq(d, g.shape[i])))
        throw new ShapeError(
          `scatter_add: ids ${shapeToString(ids.shape)} do not lead ${shapeToString(g.shape)}`,
        );
      return { dtype: "f32", shape: [a.n as Dim, ...g.shape.slice(lead)] };
    },
    eval: ([ids, g], _a, out) => {
      const row = size(out.slice(1));
      const r = tensor(out);
      ids.data.forEach((id, i) => {
        if (!(id >= 0 && id < out[0])) badId("scatter_add", id, out[0]);
        for (let k = 0; k < row; k++) r.data[id * row + k] += g.data[i * row + k];
      });
      return r;
    },
    grad: (b, node, g) => [undefined, b.op("gather", [g, node.inputs[0]])],
  },
  {
    // x[..., ids[...]]: one entry of the last axis per position: [...S, V], [...S] -> [...S].
    name: "take",
    kind: "index",
    arity: 2,
    type: ([x, ids]) => {
      checkIds(ids.dtype, "take");
      const lead = x.shape.slice(0, -1);
      if (lead.length !== ids.shape.length || !lead.every((d, i) => dimEq(d, ids.shape[i])))
        throw new ShapeError(
          `take: ids ${shapeToString(ids.shape)} must match the leading axes of ${shapeToString(x.shape)}`,
        );
      return { dtype: x.dtype, shape: ids.shape };
    },
    eval: ([x, ids], _a, out) => {
      const v = x.shape[x.shape.length - 1];
      const r = tensor(out);
      ids.data.forEach((id, i) => {
        if (!(id >= 0 && id < v)) badId("take", id, v);
        r.data[i] = x.data[i * v + id];
      });
      return r;
    },
    grad: (b, node, g) => {
      const [x, ids] = node.inputs;
      const shape = b.type(x).shape;
      return [b.op("put", [ids, g], { n: shape[shape.length - 1] }), undefined];
    },
  },
  {
    // out[..., j] = g[...] where j == ids[...], else 0 (the gradient of take).
    name: "put",
    kind: "index",
    arity: 2,
    type: ([ids, g], a) => {
      checkIds(ids.dtype, "put");
      if (ids.shape.length !== g.shape.length || !ids.shape.every((d, i) => dimEq(d, g.shape[i])))
        throw new ShapeError(
          `put: ids ${shapeToString(ids.shape)} and values ${shapeToString(g.shape)} differ`,
        );
      return { dtype: "f32", shape: [...g.shape, a.n as Dim] };
    },
    eval: ([ids, g], _a, out) => {
      const v = out[out.length - 1];
      const r = tensor(out);
      ids.data.forEach((id, i) => {
        if (!(id >= 0 && id < v)) badId("put", id, v);
        r.data[i * v + id] = g.data[i];
      });
      return r;
    },
    grad: (b, node, g) => [undefined, b.op("take", [g, node.inputs[0]])],
  },
];
