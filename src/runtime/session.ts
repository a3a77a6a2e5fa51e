// A compiled model on a backend: executors for the forward and training graphs,
// built per (batch, seq) on first use and reused after.
import type { CompiledGraphs } from "../ir/pipeline.js";
import { fuse, type FusionLimits } from "../ir/passes/fuse.js";
import { gradName } from "../ir/passes/autodiff.js";
import type { Graph } from "../ir/graph.js";
import { shapeEval } from "../ir/dims.js";
import { assertBindings } from "../ir/passes/bindings.js";
import type { Backend } from "./backend.js";
import { Executor, type Profiler } from "./executor.js";
import type { Weights } from "./weights.js";

/** Sizes of the symbolic dimensions, e.g. { B: 4, T: 128 }. */
export type Dims = Record<string, number>;

export class Session {
  private readonly executors = new Map<string, Executor>();
  /** Set to collect per-kernel timings in every executor (`--profile`). */
  profiler?: Profiler;

  constructor(
    readonly graphs: CompiledGraphs,
    readonly backend: Backend,
    readonly limits?: FusionLimits,
  ) {}

  private executor(kind: "forward" | "eval" | "train" | "decode", dims: Dims): Executor {
    const g = {
      forward: this.graphs.forwardOpt,
      eval: this.graphs.evaluation,
      train: this.graphs.training,
      decode: this.graphs.decode,
    }[kind];
    if (!g)
      throw new Error(
        kind === "decode"
          ? "no decode graph was compiled"
          : "the model declares no loss, so it cannot be trained",
      );
    const bindings: Record<string, number> = {};
    for (const s of g.symbols()) {
      const v = dims[s];
      if (v === undefined) throw new Error(`no size given for dimension ${s}`);
      bindings[s] = v;
    }
    const key = `${kind}:${JSON.stringify(bindings)}`;
    let ex = this.executors.get(key);
    if (!ex) {
      assertBindings(g, bindings);
      ex = new Executor(fuse(g, this.limits), bindings, this.backend);
      ex.profiler = this.profiler;
      this.executors.set(key, ex);
    }
    return ex;
  }

  private feeds(
    g: Graph,
    weights: Weights,
    inputs: Record<string, Float32Array>,
  ): Map<number, Float32Array> {
    const feeds = new Map<number, Float32Array>();
    for (const n of g.nodes) {
      if (n.op === "weight") {
        const w = weights.get(n.attrs.name as string);
        if (!w) throw new Error(`no value for weight '${n.attrs.name}'`);
        feeds.set(n.id, w);
      } else if (n.op === "input") {
        const v = inputs[n.attrs.name as string];
        if (!v) throw new Error(`no value for input '${n.attrs.name}'`);
        feeds.set(n.id, v);
      }
    }
    return feeds;
  }

  /** Runs the forward graph; returns its outputs by name (logits, ...). */
  async forward(
    weights: Weights,
    inputs: Record<string, Float32Array>,
    dims: Dims,
  ): Promise<Record<string, Float32Array>> {
    const ex = this.executor("forward", dims);
    const g = ex.schedule.graph;
    const out = await ex.run(this.feeds(g, weights, inputs));
    return Object.fromEntries(g.outputs.map((o) => [o.name, out.get(o.id)!]));
  }

  get canDecode(): boolean {
    return this.graphs.decode !== undefined;
  }

  /** Names and shapes (for dims) of the decode graph's cache inputs. */
  cacheInputs(dims: Dims): { name: string; size: number }[] {
    const g = this.graphs.decode;
    if (!g) return [];
    return g
      .nodesOf("input")
      .filter((n) => (n.attrs.name as string).startsWith("cache."))
      .map((n) => ({
        name: n.attrs.name as string,
        size: shapeEval(n.type.shape, dims).reduce((a, b) => a * b, 1),
      }));
  }

  /** One decoding step: tokens, cache_len and caches in; logits and updated caches out. */
  async decode(
    weights: Weights,
    inputs: Record<string, Float32Array>,
    dims: Dims,
  ): Promise<Record<string, Float32Array>> {
    const ex = this.executor("decode", dims);
    const g = ex.schedule.graph;
    const out = await ex.run(this.feeds(g, weights, inputs));
    return Object.fromEntries(g.outputs.map((o) => [o.name, out.get(o.id)!]));
  }

  /** The loss alone (forward graph with the loss; no gradients). */
  async evaluate(
    weights: Weights,
    inputs: Record<string, Float32Array>,
    dims: Dims,
  ): Promise<number> {
    const ex = this.executor("eval", dims);
    const g = ex.schedule.graph;
    const loss = g.outputs.find((o) => o.name === "loss")!;
    const out = await ex.run(this.feeds(g, weights, inputs), [loss.id]);
    return out.get(loss.id)![0];
  }

  /** Runs the training graph: the loss and the gradient of every weight. */
  async lossAndGrads(
    weights: Weights,
    inputs: Record<string, Float32Array>,
    dims: Dims,
  ): Promise<{ loss: number; grads: Weights; outputs: Record<string, Float32Array> }> {
    const ex = this.executor("train", dims);
    const g = ex.schedule.graph;
    const out = await ex.run(this.feeds(g, weights, inputs));
    const outputs = Object.fromEntries(g.outputs.map((o) => [o.name, out.get(o.id)!]));
    const grads: Weights = new Map();
    for (const key of weights.keys()) {
      const gk = outputs[gradName(key)];
      if (gk) grads.set(key, gk);
    }
    return { loss: outputs.loss[0], grads, outputs };
  }

  destroy(): void {
    for (const ex of this.executors.values()) ex.destroy();
    this.executors.clear();
  }
}
