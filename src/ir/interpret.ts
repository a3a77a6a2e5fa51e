// The reference interpreter: runs any graph in float64 on plain typed arrays.
// Slow and simple on purpose — it is the oracle every other executor is checked against.
import { shapeEval } from "./dims.js";
import type { Graph } from "./graph.js";
import { getOp } from "./ops/registry.js";
import { size } from "./ops/tensor.js";
import type { Tensor } from "./ops/types.js";

export type { Tensor } from "./ops/types.js";

export interface InterpretOptions {
  /** Values of symbolic dims; inferred from the inputs' shapes when omitted. */
  bindings?: Record<string, number>;
  /** Input tensors by input name. */
  inputs: Record<string, Tensor>;
  /** Weights by checkpoint key. */
  weights: Record<string, Tensor> | Map<string, Tensor>;
}

/** Binds each symbolic dim from the inputs' actual shapes. */
export function inferBindings(g: Graph, inputs: Record<string, Tensor>): Record<string, number> {
  const b: Record<string, number> = {};
  for (const n of g.nodesOf("input")) {
    const t = inputs[n.attrs.name as string];
    if (!t) continue;
    n.type.shape.forEach((d, i) => {
      if (d.size === 1 && !d.has("") && [...d.values()][0] === 1)
        b[[...d.keys()][0]] ??= t.shape[i];
    });
  }
  return b;
}

/** Runs the graph; returns every node's value (index = node id). */
export function interpret(g: Graph, opts: InterpretOptions): Tensor[] {
  const bindings = opts.bindings ?? inferBindings(g, opts.inputs);
  const weights =
    opts.weights instanceof Map ? opts.weights : new Map(Object.entries(opts.weights));
  const values: Tensor[] = [];
  for (const n of g.nodes) {
    const out = shapeEval(n.type.shape, bindings);
    let v: Tensor;
    if (n.op === "input" || n.op === "weight") {
      const key = n.attrs.name as string;
      const t = n.op === "input" ? opts.inputs[key] : weights.get(key);
      if (!t) throw new Error(`no value given for ${n.op} '${key}'`);
      if (t.shape.length !== out.length || t.shape.some((d, i) => d !== out[i]))
        throw new Error(`${n.op} '${key}' has shape [${t.shape}], expected [${out}]`);
      v = t;
    } else {
      v = getOp(n.op).eval(
        n.inputs.map((i) => values[i]),
        n.attrs,
        out,
        { bindings },
      );
    }
    if (v.data.length !== size(v.shape))
      throw new Error(`internal: ${n.op} produced a malformed tensor`);
    values.push(v);
  }
  return values;
}

/** Runs the graph and returns its outputs by name. */
export function run(g: Graph, opts: InterpretOptions): Record<string, Tensor> {
  const values = interpret(g, opts);
  const out: Record<string, Tensor> = {};
  for (const o of g.outputs) out[o.name] = values[o.id];
  return out;
}
