// Training versus evaluation: a graph's mode. Training graphs keep the
// mode-dependent ops (dropout); evaluation graphs (validation, generation,
// inference) replace each by its evaluation form (a dropout mask by 1), which
// folding then removes, so they pay no kernel and no random numbers for it.
import type { Graph } from "../graph.js";
import { getOp } from "../ops/registry.js";
import type { Node } from "../ops/types.js";
import { dce } from "./dce.js";
import { rebuild } from "./rebuild.js";

/** The ops of `g` whose value depends on the graph's mode. */
export function modeDependent(g: Graph): Node[] {
  return g.nodes.filter((n) => getOp(n.op).inEval !== undefined);
}

/** `g` in evaluation mode: every mode-dependent op replaced by its evaluation form. */
export function evalMode(g: Graph): Graph {
  if (!modeDependent(g).length) return g;
  const { graph } = rebuild(g, (n, _inputs, out) => {
    const inEval = getOp(n.op).inEval;
    if (!inEval) return undefined;
    out.defaultSpan = n.span;
    try {
      return inEval(out, n);
    } finally {
      out.defaultSpan = undefined;
    }
  });
  // The key input is left without readers: drop it (and whatever else died).
  return dce(graph);
}
