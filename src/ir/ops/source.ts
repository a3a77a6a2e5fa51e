// Ops without tensor inputs: model inputs, weights, constants, index ranges, masks.
import { dimEval, type Dim } from "../dims.js";
import { tensor } from "./tensor.js";
import type { DType, OpDef } from "./types.js";

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
];
