// Batched matrix product with numpy broadcasting of the batch axes: [..., M, K] @ [..., K, N].
import { dimEq, shapeSize, shapeToString } from "../dims.js";
import { broadcastShapes } from "./shape-rules.js";
import { broadcastStrides, forEachIndex, size, tensor } from "./tensor.js";
import { unbroadcast } from "./elementwise.js";
import { ShapeError, type Builder, type OpDef } from "./types.js";

/** Swaps the last two axes. */
export function transposeLast(b: Builder, x: number): number {
  const r = b.type(x).shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return b.op("permute", [x], { perm });
}

export const matmulOp: OpDef = {
  name: "matmul",
  kind: "matmul",
  arity: 2,
  type: ([a, b]) => {
    if (a.shape.length < 2 || b.shape.length < 2)
      throw new ShapeError(
        `'@' needs two tensors of rank 2 or more, got ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}`,
      );
    const [m, k1] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (!dimEq(k1, k2))
      throw new ShapeError(
        `'@' inner dimensions differ: ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}`,
      );
    const batch = broadcastShapes([a.shape.slice(0, -2), b.shape.slice(0, -2)], "'@' batch axes");
    return { dtype: "f32", shape: [...batch, m, n] };
  },
  eval: ([a, b], _attrs, out) => {
    const r = tensor(out);
    const [M, N] = out.slice(-2);
    const K = a.shape[a.shape.length - 1];
    const batch = out.slice(0, -2);
    const aBatch = broadcastStrides(a.shape.slice(0, -2), batch).map((s) => s * M * K);
    const bBatch = broadcastStrides(b.shape.slice(0, -2), batch).map((s) => s * K * N);
    let o = 0;
    forEachIndex(batch, (_f, idx) => {
      let ao = 0;
      let bo = 0;
      for (let i = 0; i < idx.length; i++) {
        ao += idx[i] * aBatch[i];
        bo += idx[i] * bBatch[i];
      }
      for (let i = 0; i < M; i++)
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a.data[ao + i * K + k] * b.data[bo + k * N + j];
          r.data[o++] = s;
        }
    });
    if (size(batch) === 0) return r;
    return r;
  },
  grad: (b, n, g) => {
    const [x, y] = n.inputs;
    const gx = b.op("matmul", [g, transposeLast(b, y)]);
    const xs = b.type(x).shape;
    const ys = b.type(y).shape;
    // A 2-D weight applied over batch axes ([B, T, K] @ [K, N]): its gradient sums
    // over every row of every batch, so contract over all of them in one matmul
    // ([K, B*T] @ [B*T, N]) instead of a [B, K, N] product summed afterwards.
    if (ys.length === 2 && xs.length > 2) {
      const rows = shapeSize(xs.slice(0, -1));
      const x2 = b.op("reshape", [x], { shape: [rows, xs[xs.length - 1]] });
      const g2 = b.op("reshape", [g], { shape: [rows, ys[1]] });
      return [unbroadcast(b, gx, b.type(x)), b.op("matmul", [transposeLast(b, x2), g2])];
    }
    const gy = b.op("matmul", [transposeLast(b, x), g]);
    return [unbroadcast(b, gx, b.type(x)), unbroadcast(b, gy, b.type(y))];
  },
};
