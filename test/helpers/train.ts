// Helpers of the training and generation tests: a spec lowered for training and
// decoding, a hand-made dataset, training options, and a Trainer in a temp folder.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileRef } from "../../src/api/load.js";
import type { Lowered } from "../../src/ir/lower.js";
import type { CompiledGraphs } from "../../src/ir/pipeline.js";
import type { Backend } from "../../src/runtime/backend.js";
import type { ModelRef } from "../../src/runtime/checkpoint.js";
import { memoryTokens, type Dataset } from "../../src/runtime/data.js";
import { newAdamWState, type AdamWState } from "../../src/runtime/optimizer.js";
import { Rng } from "../../src/runtime/rng.js";
import { Session } from "../../src/runtime/session.js";
import type { Tokenizer } from "../../src/runtime/tokenizer.js";
import { Trainer, type TrainOptions } from "../../src/runtime/trainer.js";
import { initWeights, weightSpecs, type Weights } from "../../src/runtime/weights.js";
import { REPO } from "./dsl.js";

export { REPO };

export function tempDir(prefix = "gptc-train-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Points the token cache at a fresh temp folder (never ~/.cache); returns it. */
export function useTempCache(): string {
  const dir = tempDir("gptc-cache-");
  process.env.GPTC_CACHE_DIR = dir;
  return dir;
}

export interface Model {
  ref: ModelRef;
  lowered: Lowered;
  graphs: CompiledGraphs;
  shapes: Map<string, number[]>;
  /** Fresh weights from the spec's initializers. */
  init(seed: number): Weights;
}

/** specs/NAME.model with `set`, lowered for training and for decoding with a KV cache. */
export function model(name: string, set: Record<string, string> = {}, vocab?: number): Model {
  const ref: ModelRef = { spec: join(REPO, "specs", `${name}.model`), set };
  const { lowered, graphs } = compileRef(ref, vocab);
  const specs = weightSpecs(lowered.graph);
  return {
    ref,
    lowered,
    graphs,
    shapes: new Map(specs.map((s) => [s.key, s.shape])),
    init: (seed) => initWeights(specs, seed),
  };
}

/**
 * Random weights large enough that greedy decoding is not trivial (the spec's
 * small init makes a tied-embedding GPT-2 repeat its last token): every value
 * scaled and jittered, ones and zeros included.
 */
export function boldWeights(m: Model, seed: number, scale = 20): Weights {
  const w = m.init(seed);
  const rng = new Rng(seed + 1);
  for (const a of w.values())
    for (let i = 0; i < a.length; i++) a[i] = a[i] * scale + (rng.next() - 0.5) * 0.2;
  return w;
}

/** A dataset of the given tokens (train and validation the same unless `val` is given). */
export function dataset(
  tok: Tokenizer,
  train: ArrayLike<number>,
  val?: ArrayLike<number>,
): Dataset {
  const t = Uint32Array.from(train);
  return {
    tokenizer: tok,
    train: memoryTokens(t),
    val: memoryTokens(val ? Uint32Array.from(val) : t),
    source: "test",
    cached: false,
  };
}

export function trainOptions(o: Partial<TrainOptions> = {}): TrainOptions {
  return {
    steps: 10,
    batch: 2,
    seq: 8,
    accum: 1,
    lr: 1e-3,
    minLr: 1e-4,
    warmup: 2,
    weightDecay: 0.1,
    beta1: 0.9,
    beta2: 0.95,
    clip: 1,
    evalEvery: 0,
    evalBatches: 2,
    saveEvery: 0,
    seed: 1337,
    ...o,
  };
}

/** A fresh Trainer (step 0) on `backend`, writing to `out`; `state`: weights and moments to start from. */
export function freshTrainer(
  m: Model,
  backend: Backend,
  data: Dataset,
  options: TrainOptions,
  out: string,
  state?: { weights: Weights; adam: AdamWState },
): { trainer: Trainer; weights: Weights; adam: AdamWState; session: Session } {
  const weights = state?.weights ?? m.init(options.seed);
  const adam = state?.adam ?? newAdamWState(weights);
  const session = new Session(m.graphs, backend);
  const trainer = new Trainer({
    session,
    data,
    weights,
    shapes: m.shapes,
    adam,
    options,
    out,
    model: m.ref,
  });
  return { trainer, weights, adam, session };
}
