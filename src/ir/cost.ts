// Floating-point operation counts of a graph at concrete sizes: 2·M·N·K per
// matmul, one per element for elementwise ops and for each reduced input element.
import { shapeEval } from "./dims.js";
import type { Graph } from "./graph.js";
import { getOp } from "./ops/registry.js";

export function countFlops(g: Graph, bindings: Record<string, number>): number {
  let total = 0;
  const elems = (id: number) =>
    shapeEval(g.nodes[id].type.shape, bindings).reduce((a, b) => a * b, 1);
  for (const n of g.nodes) {
    const kind = getOp(n.op).kind;
    if (kind === "matmul") {
      const a = shapeEval(g.nodes[n.inputs[0]].type.shape, bindings);
      total += 2 * elems(n.id) * a[a.length - 1];
    } else if (kind === "elementwise") total += elems(n.id);
    else if (kind === "reduce") total += elems(n.inputs[0]);
    else if (n.op === "scatter_add") total += elems(n.inputs[1]);
  }
  return total;
}
