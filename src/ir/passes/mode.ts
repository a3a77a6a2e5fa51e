// Training versus evaluation: a graph's mode. Training graphs keep the
// mode-dependent ops (dropout); evaluation graphs (validation, generation,
// inference) replace each by its evaluation form (a dropout mask by 1), which
// folding then removes, so they pay no kernel and no random numbers for it.
import { shapeEq } from "../dims.js";
import type { Graph } from "../graph.js";
import { getOp } from "../ops/registry.js";
import type { Node } from "../ops/types.js";
import { dce } from "./dce.js";
import { rebuild } from "./rebuild.js";

/** The ops of `g` whose value depends on the graph's mode. */
export function modeDependent(g: Graph): Node[] {
  return g.nodes.filter((n) => getOp(n.op).inEval !== undefined);
}

/**
 * `g` in evaluation mode: every mode-dependent op replaced by its evaluation
 * form. A product with a form that is the constant 1 (a dropout mask) is its
 * other operand (exact), so the evaluation graph is the graph the spec gives
 * with dropout 0, node for node.
 */
export function evalMode(g: Graph): Graph {
  if (!modeDependent(g).length) return g;
  const ones = new Set<number>();
  const { graph } = rebuild(g, (n, inputs, out) => {
    if (n.op === "mul") {
      const [a, b] = inputs;
      const same = (i: number) =>
        shapeEq(out.type(i).shape, n.type.shape) && out.type(i).dtype === n.type.dtype;
      if (ones.has(b) && same(a)) return a;
      if (ones.has(a) && same(b)) return b;
      return undefined;
    }
    const inEval = getOp(n.op).inEval;
    if (!inEval) return undefined;
    out.defaultSpan = n.span;
    try {
      const id = inEval(out, n);
      const v = out.node(id);
      if (v.op === "const" && v.attrs.value === 1) ones.add(id);
      return id;
    } finally {
      out.defaultSpan = undefined;
    }
  });
  // The key input and the constants are left without readers: drop them.
  return dce(graph);
}
