// The compiler's middle end in order: from the lowered graph to the forward
// (inference) graph, its optimized form, and the optimized training graph.
import type { Graph } from "./graph.js";
import type { Lowered } from "./lower.js";
import { autodiff } from "./passes/autodiff.js";
import { cse } from "./passes/cse.js";
import { dce } from "./passes/dce.js";
import { fold } from "./passes/fold.js";

/** Simplifications that change no value: folding, CSE, then dead-code removal. */
export function optimize(g: Graph): Graph {
  return dce(cse(fold(g)));
}

/** The graphs the middle end makes of a lowered model; each runs as its own executor. */
export interface CompiledGraphs {
  /** The model's outputs without the loss, as lowered (dead code removed). */
  forward: Graph;
  /** `forward` optimized (constant folding, CSE, dead-code removal): what inference runs. */
  forwardOpt: Graph;
  /** The forward graph with the loss (for validation), optimized; undefined without a loss. */
  evaluation?: Graph;
  /** Loss and the gradient of every weight, optimized; undefined without a loss. */
  training?: Graph;
  /** Incremental decoding with a KV cache (from a lowering with `decode: true`). */
  decode?: Graph;
}

/** The decode graph: logits and updated caches only. */
export function compileDecode(l: Lowered): Graph {
  return optimize(dce(l.graph, (name) => name === "logits" || name.startsWith("cache.")));
}

export function compileGraphs(l: Lowered, decode?: Lowered): CompiledGraphs {
  const forward = dce(l.graph, (name) => name !== "loss");
  const forwardOpt = optimize(forward);
  const withLoss = l.loss === undefined ? undefined : optimize(l.graph);
  const training = withLoss && optimize(autodiff(withLoss));
  return {
    forward,
    forwardOpt,
    evaluation: withLoss,
    training,
    decode: decode && compileDecode(decode),
  };
}
