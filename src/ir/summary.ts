// Facts about a lowered model that a person wants first: parameter count, inputs, outputs.
import { dimValue, shapeToString } from "./dims.js";
import type { Lowered } from "./lower.js";
import { rngKeyInput } from "./ops/random.js";
import { modeDependent } from "./passes/mode.js";

/** What `gptc check` prints of a model: its size, parameter values, inputs and outputs. */
export interface ModelSummary {
  /** The model's name (`model gpt2 { ... }` is "gpt2"). */
  name: string;
  /** Number of trainable values: the elements of every weight together. */
  parameters: number;
  /** Number of weight tensors. */
  weights: number;
  /** The spec's parameters (`param d = 768`), in declaration order, with the values compiled with. */
  params: {
    /** The parameter's name in the spec. */
    name: string;
    /** Its value. */
    value: number | boolean;
    /**
     * Where the value came from: "default" (the spec's declaration), "derived"
     * (a `model x = base { ... }` override), "preset", "config" (config.json)
     * or "--set".
     */
    source: string;
  }[];
  /** The model's inputs (`input tokens: int[B, T]`). */
  inputs: {
    /** The input's name, e.g. "tokens". */
    name: string;
    /** Its dtype and shape, e.g. "i32[B, T]" (symbolic dims such as B and T stay names). */
    type: string;
  }[];
  /** The model's outputs, the loss included when the model declares one. */
  outputs: {
    /** The output's name, e.g. "logits". */
    name: string;
    /** Its dtype and shape, e.g. "f32[B, T, 50257]". */
    type: string;
  }[];
  /**
   * Ops whose value depends on the graph's mode (dropout): applied when
   * training, the identity in validation and generation; 0 when none.
   */
  modeDependent: number;
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
    // The random key is the trainer's to supply, not the user's.
    inputs: g
      .nodesOf("input")
      .filter((n) => n.attrs.name !== rngKeyInput)
      .map((n) => ({ name: n.attrs.name as string, type: typeText(n.id) })),
    outputs: g.outputs.map((o) => ({ name: o.name, type: typeText(o.id) })),
    modeDependent: modeDependent(g).length,
  };
}

export function formatSummary(s: ModelSummary): string {
  const lines = [
    `model ${s.name}: ${s.parameters.toLocaleString("en-US")} parameters in ${s.weights} weights`,
    `  params:  ${s.params.map((p) => `${p.name}=${p.value}${p.source === "default" ? "" : ` (${p.source})`}`).join(", ")}`,
    `  inputs:  ${s.inputs.map((i) => `${i.name}: ${i.type}`).join(", ")}`,
    `  outputs: ${s.outputs.map((o) => `${o.name}: ${o.type}`).join(", ")}`,
  ];
  if (s.modeDependent)
    lines.push(
      `  dropout: ${s.modeDependent} mode-dependent op${s.modeDependent === 1 ? "" : "s"} (training only; validation and generation compile them away)`,
    );
  return lines.join("\n");
}
