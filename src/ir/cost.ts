// Floating-point operation counts of a graph at concrete sizes: 2·M·N·K per
// matmul, one per element for elementwise ops and for each reduced input element.
import { shapeEval } from "./dims.js";
import type { Graph } from "./graph.js";
import { getOp } from "./ops/registry.js";

export function nodeFlops(g: Graph, id: number, bindings: Record<string, number>): number {
  const n = g.nodes[id];
  const elems = (i: number) =>
    shapeEval(g.nodes[i].type.shape, bindings).reduce((a, b) => a * b, 1);
  const kind = getOp(n.op).kind;
  if (kind === "matmul") {
    const a = shapeEval(g.nodes[n.inputs[0]].type.shape, bindings);
    return 2 * elems(n.id) * a[a.length - 1];
  }
  if (kind === "elementwise") return elems(n.id);
  if (kind === "reduce") return elems(n.inputs[0]);
  if (n.op === "scatter_add") return elems(n.inputs[1]);
  return 0;
}

export function countFlops(g: Graph, bindings: Record<string, number>): number {
  let total = 0;
  for (const n of g.nodes) total += nodeFlops(g, n.id, bindings);
  return total;
}
