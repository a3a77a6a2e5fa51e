// Shared by the export tests: every shipped spec at small sizes, seeded
// weights in which every parameter matters (biases and norms not at their
// zero/one init), random ids, and gptc's own answer for them: the float64
// reference interpreter on the compiled graphs.
import { readdirSync } from "node:fs";
import { compile, type CompiledModel } from "../../src/api/compile.js";
import { run } from "../../src/ir/interpret.js";
import { autodiff } from "../../src/ir/passes/autodiff.js";
import { optimize } from "../../src/ir/pipeline.js";
import type { Tensor } from "../../src/ir/ops/types.js";
import type { Weights } from "../../src/runtime/weights.js";
import { loadProgram, randInt, randn, rng, smallSetFor, t } from "./ir.js";

/** Every spec the project ships (specs/*.model), by path. */
export const shippedSpecs = readdirSync("specs")
  .filter((f) => f.endsWith(".model"))
  .sort()
  .map((f) => `specs/${f}`);

/** A shipped spec at small sizes (two layers, so blocks chain); gpt2-tiny as it ships. */
export function smallModel(file: string): CompiledModel {
  if (file.endsWith("gpt2-tiny.model")) return compile({ file });
  return compile({ file }, { set: { ...smallSetFor(loadProgram(file)), layers: "2" } });
}

export function randomWeights(model: CompiledModel, seed: number): Weights {
  const r = rng(seed);
  return new Map(
    model.weights.map((w) => {
      const n = w.shape.reduce((a, b) => a * b, 1);
      const base = w.init === "ones" ? 1 : 0;
      const std = w.init === "normal" ? Math.max(w.std, 0.02) * 2 : 0.1;
      return [w.key, Float32Array.from({ length: n }, () => base + std * randn(r))];
    }),
  );
}

export function randomIds(B: number, T: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: B * T }, () => randInt(r, vocab));
}

/**
 * gptc's logits, loss and gradients (float64 interpreter) in evaluation mode:
 * the training graph as `verify` compiles it (dropout off), which the exported
 * module computes in eval() (its dropout draws torch's own random numbers).
 */
export function gptcReference(
  model: CompiledModel,
  weights: Weights,
  tokens: number[],
  targets: number[],
  B: number,
  T: number,
): Record<string, Tensor> {
  const w = new Map(
    [...weights].map(([k, v]) => [
      k,
      { shape: model.weights.find((s) => s.key === k)!.shape, data: Float64Array.from(v) },
    ]),
  );
  const training = optimize(autodiff(model.graphs.evaluation!));
  return run(training, {
    inputs: { tokens: t([B, T], tokens), targets: t([B, T], targets) },
    weights: w,
  });
}

/** max|x - ref| / max|ref| (the fixture's error measure; Infinity for NaN or a length mismatch). */
export { relErr as err } from "./ir.js";

/** The fixture's tolerances (test/fixtures/tiny/README.md). */
export const tol = {
  logits: 1e-4,
  grad: 1e-3,
  loss: (ref: number) => 1e-5 * Math.max(1, Math.abs(ref)),
};
