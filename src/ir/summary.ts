// Facts about a lowered model that a person wants first: parameter count, inputs, outputs.
import { dimValue, shapeToString } from "./dims.js";
import type { Lowered } from "./lower.js";

export interface ModelSummary {
  name: string;
  parameters: number;
  weights: number;
  params: { name: string; value: number | boolean; source: string }[];
  inputs: { name: string; type: string }[];
  outputs: { name: string; type: string }[];
}

export function summarize(l: Lowered): ModelSummary {
  const g = l.graph;
  let parameters = 0;
  const weights = g.nodesOf("weight");
  for (const w of weights) parameters += w.type.shape.reduce((a, d) => a * (dimValue(d) ?? NaN), 1);
  const typeText = (id: number) => `${g.type(id).dtype}${shapeToString(g.type(id).shape)}`;
  return {
    name: g.name,
    parameters,
    weights: weights.length,
    params: l.params,
    inputs: g.nodesOf("input").map((n) => ({ name: n.attrs.name as string, type: typeText(n.id) })),
    outputs: g.outputs.map((o) => ({ name: o.name, type: typeText(o.id) })),
  };
}

export function formatSummary(s: ModelSummary): string {
  const lines = [
    `model ${s.name}: ${s.parameters.toLocaleString("en-US")} parameters in ${s.weights} weights`,
    `  params:  ${s.params.map((p) => `${p.name}=${p.value}${p.source === "default" ? "" : ` (${p.source})`}`).join(", ")}`,
    `  inputs:  ${s.inputs.map((i) => `${i.name}: ${i.type}`).join(", ")}`,
    `  outputs: ${s.outputs.map((o) => `${o.name}: ${o.type}`).join(", ")}`,
  ];
  return lines.join("\n");
}
