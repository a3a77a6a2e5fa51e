// Model weights: initialization from the spec, loading a Hugging Face GPT-2
// checkpoint (with or without the `transformer.` prefix, ignoring attention
// mask buffers, LM head tied when absent), and saving checkpoints with the same keys.
import { GptcError } from "../errors.js";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { dimValue } from "../ir/dims.js";
import type { Graph } from "../ir/graph.js";
import { fillNormal } from "./normals.js";
import { foldQuantized } from "./quantize.js";
import { printableName, readSafetensors } from "./safetensors.js";

/** A model's weights: each one's values (row-major float32) by key, as in its safetensors files. */
export type Weights = Map<string, Float32Array>;

/** A weight the model declares. */
export interface WeightSpec {
  /** Its name, e.g. "h.0.attn.c_attn.weight" (the key in safetensors files). */
  key: string;
  /** Concrete dimensions, outermost first. */
  shape: number[];
  /** The initializer: "normal", "zeros" or "ones". */
  init: string;
  /** Standard deviation of a "normal" initializer; 0 for the others. */
  std: number;
}

export class WeightError extends GptcError {
  constructor(message: string) {
    super("weights", message);
  }
}

const versions = new WeakMap<Float32Array, number>();

/** How many times a weight array was changed in place (see `weightChanged`). */
export function weightVersion(w: Float32Array): number {
  return versions.get(w) ?? 0;
}

/**
 * Code that writes into a weight array in place (the optimizer) says so here:
 * the runtime keeps derived forms of weights between calls (the GEMM's packed
 * panels) and rebuilds them when the version moves.
 */
export function weightChanged(w: Float32Array): void {
  versions.set(w, weightVersion(w) + 1);
}

export function weightSpecs(g: Graph): WeightSpec[] {
  return g.nodesOf("weight").map((n) => ({
    key: n.attrs.name as string,
    shape: n.type.shape.map((d) => dimValue(d)!),
    init: n.attrs.init as string,
    std: (n.attrs.std as number | undefined) ?? 0,
  }));
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Fresh weights as the spec says (normal(std), zeros, ones), reproducible from the seed. */
export function initWeights(specs: WeightSpec[], seed: number): Weights {
  // The generator state a Rng(seed) starts from (normals.ts continues its stream).
  let state = seed >>> 0;
  const out: Weights = new Map();
  for (const w of specs) {
    const data = new Float32Array(size(w.shape));
    if (w.init === "ones") data.fill(1);
    else if (w.init === "normal") state = fillNormal(data, state, w.std);
    out.set(w.key, data);
  }
  return out;
}

/** Keys of the checkpoint that are buffers, not weights (GPT-2's causal mask). */
const ignoredKey = (k: string) => /(^|\.)attn\.(bias|masked_bias)$/.test(k);

/** Loads `path` (a .safetensors file or a folder holding model.safetensors) for the given specs. */
export function loadWeightsFile(path: string, specs: WeightSpec[]): Weights {
  const file =
    existsSync(path) && statSync(path).isDirectory() ? join(path, "model.safetensors") : path;
  return weightsFromTensors(readSafetensors(file).tensors, specs, file);
}

/**
 * The model's weights from named tensors (a safetensors file's, `what` names
 * it in messages): every key the specs expect with its shape, nothing else.
 */
export function weightsFromTensors(
  tensors: Map<string, { dtype?: string; shape: number[]; data: Float32Array }>,
  specs: WeightSpec[],
  what: string,
): Weights {
  const file = what;
  const found = new Map<string, { shape: number[]; data: Float32Array }>();
  // Quantized weights (I8 with scales, F16) as float32, their narrow forms kept.
  for (const [rawKey, t] of foldQuantized(tensors, what)) {
    const key = rawKey.startsWith("transformer.") ? rawKey.slice("transformer.".length) : rawKey;
    found.set(key, t);
  }
  const expected = new Map(specs.map((s) => [s.key, s]));
  const problems: string[] = [];
  for (const s of specs) {
    const t = found.get(s.key);
    if (!t) problems.push(`  missing  ${s.key}: expected [${s.shape.join(", ")}]`);
    else if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i]))
      problems.push(
        `  shape    ${s.key}: expected [${s.shape.join(", ")}], found [${t.shape.join(", ")}]`,
      );
  }
  for (const [key, t] of found) {
    if (expected.has(key) || ignoredKey(key)) continue;
    // A separate LM head equal to the tied embedding is what transformers saves.
    if (key === "lm_head.weight" && !expected.has(key) && expected.has("wte.weight")) continue;
    // The key comes from the file: printed so that it cannot break or recolour the message.
    problems.push(
      `  extra    ${printableName(key)}: [${t.shape.join(", ")}] is not a weight of this model`,
    );
  }
  if (problems.length) {
    // Every key, but not a screenful: a checkpoint of another model differs everywhere.
    const shown =
      problems.length > 12
        ? [...problems.slice(0, 12), `  ... and ${problems.length - 12} more`]
        : problems;
    throw new WeightError(
      `${file} does not fit the model (${problems.length} problem${problems.length > 1 ? "s" : ""}):\n${shown.join("\n")}`,
    );
  }
  const out: Weights = new Map();
  for (const s of specs) out.set(s.key, found.get(s.key)!.data);
  return out;
}
