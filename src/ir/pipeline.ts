// The compiler's middle end in order: from the lowered graph to the forward
// (inference) graph, its optimized form, and the optimized training graph.
import type { Graph } from "./graph.js";
import { isCacheName, type Lowered } from "./lower.js";
import { autodiff } from "./passes/autodiff.js";
import { cse } from "./passes/cse.js";
import { dce } from "./passes/dce.js";
import { fold } from "./passes/fold.js";
import { evalMode } from "./passes/mode.js";
import { verify } from "./passes/verify.js";

/** A pass left a graph that breaks an invariant (checked when GPTC_VERIFY_PASSES=1: tests, debugging). */
export class PassVerifyError extends Error {}

const verifyPasses = () => process.env.GPTC_VERIFY_PASSES === "1";

/** Runs `pass`, then (when asked) the verifier on its result, naming the pass that broke the graph. */
export function runPass(name: string, pass: (g: Graph) => Graph, g: Graph): Graph {
  const out = pass(g);
  if (verifyPasses()) {
    const problems = verify(out);
    if (problems.length)
      throw new PassVerifyError(`IR invalid after ${name}: ${problems.slice(0, 5).join("; ")}`);
  }
  return out;
}

/** Simplifications that change no value: folding, CSE, then dead-code removal. */
export function optimize(g: Graph): Graph {
  return runPass("dce", dce, runPass("cse", cse, runPass("fold", fold, g)));
}

/** The graphs the middle end makes of a lowered model; each runs as its own executor. */
export interface CompiledGraphs {
  /** The model's outputs without the loss, as lowered (dead code removed). */
  forward: Graph;
  /** `forward` optimized (constant folding, CSE, dead-code removal): what inference runs. */
  forwardOpt: Graph;
  /**
   * The forward graph with the loss (for validation), optimized; undefined
   * without a loss. Like forward, forwardOpt and decode it is in evaluation
   * mode (no dropout); only `training` applies the mode-dependent ops.
   */
  evaluation?: Graph;
  /**
   * The forward graph with the loss in training mode (dropout applied),
   * optimized: what autodiff differentiates. The same graph as `evaluation`
   * where the model has no mode-dependent ops (or dropout is off).
   */
  trainingForward?: Graph;
  /** Loss and the gradient of every weight, optimized; undefined without a loss. */
  training?: Graph;
  /** Incremental decoding with a KV cache (from a lowering with `decode: true`). */
  decode?: Graph;
}

/** The decode graph: logits and updated caches only (evaluation mode: generation never drops). */
export function compileDecode(l: Lowered): Graph {
  const kept = (name: string) => name === "logits" || isCacheName(name);
  return optimize(
    runPass(
      "evalMode",
      evalMode,
      runPass("dce", (g) => dce(g, kept), l.graph),
    ),
  );
}

export interface GraphOptions {
  /**
   * false: the training graph too in evaluation mode (no dropout), as PyTorch's
   * reference fixtures were made (`verify`). Default true.
   */
  dropout?: boolean;
}

export function compileGraphs(
  l: Lowered,
  decode?: Lowered,
  opts: GraphOptions = {},
): CompiledGraphs {
  const lowered = l.graph;
  const evalGraph = runPass("evalMode", evalMode, lowered);
  const forward = runPass("dce", (g) => dce(g, (name) => name !== "loss"), evalGraph);
  const forwardOpt = optimize(forward);
  const withLoss = l.loss === undefined ? undefined : optimize(evalGraph);
  // Without mode-dependent ops (or with dropout off) training starts from the same graph.
  const trainGraph =
    withLoss && (opts.dropout === false || evalGraph === lowered ? withLoss : optimize(lowered));
  const training = trainGraph && optimize(runPass("autodiff", autodiff, trainGraph));
  return {
    forward,
    forwardOpt,
    evaluation: withLoss,
    trainingForward: trainGraph,
    training,
    // A model whose attention reads no cache has no decode graph: generation
    // recomputes the prefix per token (generateFull) rather than decode wrong.
    decode: decode && !decode.noDecode ? compileDecode(decode) : undefined,
  };
}
