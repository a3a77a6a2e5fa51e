// Ops without tensor inputs: model inputs, weights, constants, index ranges, masks.
import { dimEq, dimEval, shapeToString, type Dim } from "../dims.js";
import { forEachIndex, strides, tensor } from "./tensor.js";
import { ShapeError, type DType, type OpDef } from "./types.js";

const noEval = (what: string) => () => {
  throw new Error(`${what} has no value of its own: the interpreter binds it`);
};

export const sourceOps: OpDef[] = [
  {
    // attrs: name, dtype, shape
    name: "input",
    kind: "source",
    arity: 0,
    type: (_i, a) => ({ dtype: a.dtype as DType, shape: a.shape as Dim[] }),
    eval: noEval("an input"),
  },
  {
    // attrs: name (the checkpoint key), shape, init ("normal" | "zeros" | "ones"), std
    name: "weight",
    kind: "source",
    arity: 0,
    type: (_i, a) => ({ dtype: "f32", shape: a.shape as Dim[] }),
    eval: noEval("a weight"),
  },
  {
    // A scalar constant (broadcasts against anything).
    name: "const",
    kind: "source",
    arity: 0,
    type: () => ({ dtype: "f32", shape: [] }),
    eval: (_i, a) => tensor([], Float64Array.of(a.value as number)),
  },
  {
    // The value of a dimension as a scalar (e.g. the count a mean divides by).
    name: "dim",
    kind: "source",
    arity: 0,
    type: () => ({ dtype: "f32", shape: [] }),
    eval: (_i, a, _o, ctx) => tensor([], Float64Array.of(dimEval(a.dim as Dim, ctx.bindings))),
  },
  {
    // 0, 1, ..., n-1
    name: "arange",
    kind: "source",
    arity: 0,
    type: (_i, a) => ({ dtype: "i32", shape: [a.n as Dim] }),
    eval: (_i, _a, out) =>
      tensor(
        out,
        Float64Array.from({ length: out[0] }, (_, i) => i),
      ),
  },
  {
    // Additive causal mask [q, k]: 0 where key j <= query i + (k - q), else -inf.
    // With k > q the queries are the last q positions (incremental decoding).
    name: "causal_mask",
    kind: "source",
    arity: 0,
    type: (_i, a) => ({ dtype: "f32", shape: [a.q as Dim, a.k as Dim] }),
    eval: (_i, _a, out) => {
      const [q, k] = out;
      const r = tensor(out);
      for (let i = 0; i < q; i++)
        for (let j = 0; j < k; j++) r.data[i * k + j] = j <= i + (k - q) ? 0 : -Infinity;
      return r;
    },
  },
  {
    // Causal mask for decoding with a cache: queries are positions len..len+q-1,
    // keys are cache slots 0..k-1; slot j is visible to query i when j <= i + len.
    name: "causal_mask_at",
    kind: "elementwise",
    arity: 1,
    type: ([len], a) => {
      if (len.shape.length !== 0)
        throw new ShapeError("causal_mask_at: the cache length must be a scalar");
      return { dtype: "f32", shape: [a.q as Dim, a.k as Dim] };
    },
    eval: ([len], _a, out) => {
      const [q, k] = out;
      const L = len.data[0];
      const r = tensor(out);
      for (let i = 0; i < q; i++)
        for (let j = 0; j < k; j++) r.data[i * k + j] = j <= i + L ? 0 : -Infinity;
      return r;
    },
  },
  {
    // The cache after writing `fresh` at slots len..len+T-1 along `axis`.
    name: "cache_write",
    kind: "elementwise",
    arity: 3,
    type: ([past, fresh, len], a) => {
      const axis = a.axis as number;
      const ok =
        past.shape.length === fresh.shape.length &&
        axis >= 0 &&
        axis < past.shape.length &&
        past.shape.every((d, i) => i === axis || dimEq(d, fresh.shape[i])) &&
        len.shape.length === 0;
      if (!ok)
        throw new ShapeError(
          `cache_write: cannot write ${shapeToString(fresh.shape)} into a cache ${shapeToString(past.shape)} along axis ${axis}`,
        );
      return { dtype: "f32", shape: past.shape };
    },
    eval: ([past, fresh, len], a, out) => {
      const axis = a.axis as number;
      const L = len.data[0];
      const T = fresh.shape[axis];
      const r = tensor(out);
      const fst = strides(fresh.shape);
      forEachIndex(out, (flat, idx) => {
        const j = idx[axis];
        if (j >= L && j < L + T) {
          let o = 0;
          for (let k = 0; k < idx.length; k++) o += (k === axis ? j - L : idx[k]) * fst[k];
          r.data[flat] = fresh.data[o];
        } else r.data[flat] = past.data[flat];
      });
      return r;
    },
  },
];
