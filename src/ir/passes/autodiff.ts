// Reverse-mode automatic differentiation. From a forward graph and its scalar
// loss it builds the training graph: the forward ops, then the gradient of the
// loss with respect to every weight (outputs `grad.<checkpoint key>`). Each op's
// gradient comes from its rule in the registry; a weight used twice (a tied LM
// head) accumulates both contributions.
import { DiagnosticError } from "../../dsl/diagnostics.js";
import type { Graph } from "../graph.js";
import { getOp } from "../ops/registry.js";
import { rebuild } from "./rebuild.js";

export const gradName = (weight: string) => `grad.${weight}`;

export function autodiff(forward: Graph, lossName = "loss"): Graph {
  const lossOut = forward.outputs.find((o) => o.name === lossName);
  if (!lossOut)
    throw new DiagnosticError([
      {
        severity: "error",
        message: `the model declares no loss to train on`,
        hint: "add `loss = cross_entropy(logits, targets)`",
      },
    ]);
  const { graph: g } = rebuild(forward);
  const loss = g.outputs.find((o) => o.name === lossName)!.id;
  const n = g.nodes.length;

  // Only nodes that depend on a weight and that the loss depends on need a gradient.
  const dependsOnWeight = new Array<boolean>(n).fill(false);
  for (const node of g.nodes)
    dependsOnWeight[node.id] = node.op === "weight" || node.inputs.some((i) => dependsOnWeight[i]);
  const feedsLoss = new Array<boolean>(n).fill(false);
  feedsLoss[loss] = true;
  for (let id = loss; id >= 0; id--)
    if (feedsLoss[id]) for (const i of g.nodes[id].inputs) feedsLoss[i] = true;
  const needed = (id: number) => dependsOnWeight[id] && feedsLoss[id];

  const grads = new Map<number, number>();
  const accumulate = (id: number, g2: number) => {
    const prev = grads.get(id);
    grads.set(id, prev === undefined ? g2 : g.op("add", [prev, g2]));
  };
  g.defaultSpan = g.nodes[loss].span;
  grads.set(loss, g.scalar(1));

  for (let id = loss; id >= 0; id--) {
    const node = g.nodes[id];
    const gOut = grads.get(id);
    if (gOut === undefined || node.inputs.length === 0 || !node.inputs.some(needed)) continue;
    const rule = getOp(node.op).grad;
    if (!rule) {
      const where = node.span
        ? `${node.span.file}:${node.span.line}:${node.span.col}`
        : "an unknown place";
      throw new DiagnosticError([
        {
          severity: "error",
          message: `cannot train through op '${node.op}' (from ${where}): it has no gradient rule`,
          span: node.span,
        },
      ]);
    }
    g.defaultSpan = node.span;
    const contributions = rule(g, node, gOut);
    node.inputs.forEach((input, k) => {
      const c = contributions[k];
      if (c !== undefined && needed(input)) accumulate(input, c);
    });
  }

  g.defaultSpan = undefined;
  for (const w of g.nodesOf("weight")) {
    let gw = grads.get(w.id);
    // A weight the loss does not depend on has a zero gradient.
    if (gw === undefined) gw = g.op("expand", [g.scalar(0)], { shape: [...w.type.shape] }, w.span);
    g.output(gradName(w.attrs.name as string), gw);
  }
  return g;
}
