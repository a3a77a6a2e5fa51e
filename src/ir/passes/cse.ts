// Common-subexpression elimination: one node per distinct (op, inputs, attrs).
import type { Graph } from "../graph.js";
import { attrsKey } from "../text.js";
import { rebuild } from "./rebuild.js";

export function cse(g: Graph): Graph {
  const seen = new Map<string, number>();
  return rebuild(g, (n, inputs, out) => {
    const key = `${n.op}(${inputs.join(",")}){${attrsKey(n.attrs)}}`;
    const prev = seen.get(key);
    if (prev !== undefined) return prev;
    const id = out.op(n.op, inputs, n.attrs, n.span);
    seen.set(key, id);
    return id;
  }).graph;
}
