// Passes build a new graph rather than edit one in place: ids stay dense and in
// topological order, and shapes are re-checked by every op added.
import { Graph } from "../graph.js";
import type { Node } from "../ops/types.js";

/**
 * Copies `g` node by node. `rewrite` may return the id (in the new graph) that
 * stands for a node instead of a plain copy; `keep` filters nodes out.
 * Returns the new graph and the map old id -> new id.
 */
export function rebuild(
  g: Graph,
  rewrite?: (node: Node, inputs: number[], out: Graph) => number | undefined,
  keep?: (node: Node) => boolean,
): { graph: Graph; map: Map<number, number> } {
  const out = new Graph(g.name);
  const map = new Map<number, number>();
  for (const n of g.nodes) {
    if (keep && !keep(n)) continue;
    const inputs = n.inputs.map((i) => {
      const m = map.get(i);
      if (m === undefined) throw new Error(`internal: %${n.id} uses %${i}, which was removed`);
      return m;
    });
    const replaced = rewrite?.(n, inputs, out);
    map.set(n.id, replaced ?? out.op(n.op, inputs, n.attrs, n.span));
  }
  for (const o of g.outputs) {
    const id = map.get(o.id);
    if (id !== undefined) out.output(o.name, id);
  }
  return { graph: out, map };
}
