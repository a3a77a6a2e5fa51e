// A compiled model on a backend: executors for the forward and training graphs,
// built per (batch, seq) on first use and reused after.
import { GptcError } from "../errors.js";
import type { CompiledGraphs } from "../ir/pipeline.js";
import { fuse, type FusionLimits, type Schedule } from "../ir/passes/fuse.js";
import { planMemory } from "../ir/passes/memory.js";
import { totalmem } from "node:os";
import { gradName } from "../ir/passes/autodiff.js";
import type { Graph, Node } from "../ir/graph.js";
import { isCacheName } from "../ir/lower.js";
import { shapeEval } from "../ir/dims.js";
import { assertBindings } from "../ir/passes/bindings.js";
import { onGpu, type Backend } from "./backend.js";
import { layoutOf, loopIterations, type DeviceLimits } from "../codegen/device-layout.js";
import { buildKernel } from "../codegen/kernel-ir/build.js";
import { Executor, type DeviceTensor, type Profiler } from "./executor.js";
import type { Weights } from "./weights.js";

/** The model does not fit what the backend or the machine can hold. */
export class CapacityError extends GptcError {
  constructor(message: string) {
    super("capacity", message);
  }
}

const GiB = 2 ** 30;

/**
 * Refuses, before anything runs, a plan that cannot fit: on webasm every
 * kernel's inputs and output must fit in one 4 GiB WebAssembly memory, and
 * everything the step keeps (weights, gradients, AdamW moments, activations)
 * must fit in this machine's memory.
 */
export function checkCapacity(
  s: Schedule,
  bindings: Record<string, number>,
  backend: string,
  training: boolean,
  /** The backend's texture/binding limits (GPU backends). */
  limits?: DeviceLimits,
): void {
  const plan = planMemory(s, bindings, { training });
  const need = plan.totalBytes;
  const have = totalmem();
  const advice = "use a smaller --batch or --seq, a smaller model, or a machine with more memory";
  if (need > 0.9 * have)
    throw new CapacityError(
      `this step needs ${(need / GiB).toFixed(1)} GiB (activations ${(plan.activationBytes / GiB).toFixed(1)}, weights ${(plan.weightBytes / GiB).toFixed(1)}, gradients ${(plan.gradientBytes / GiB).toFixed(1)}, optimizer ${(plan.optimizerBytes / GiB).toFixed(1)}), more than this machine's ${(have / GiB).toFixed(1)} GiB: ${advice}`,
    );
  const g = s.graph;
  if (limits) {
    // GPU backends index in float32 (exact to 2^24) and hold a tensor in one
    // texture or binding: larger tensors are tiled (codegen/device-layout.ts);
    // refuse here, naming it, any the layout cannot take. Every node, not only
    // buffers: a kernel's index math runs over its values' coordinates too.
    for (const n of g.nodes) {
      const shape = shapeEval(n.type.shape, bindings);
      const l = layoutOf(shape, limits);
      if (l.kind !== "refused") continue;
      const what =
        n.op === "weight" || n.op === "input"
          ? `${n.op} '${String(n.attrs.name)}'`
          : `the value of op ${n.op} (%${n.id}${n.span ? `, ${n.span.file}:${n.span.line}:${n.span.col}` : ""})`;
      throw new CapacityError(
        `${what}, f32[${shape.join(", ")}], has ${l.reason}: use a smaller --batch or --seq or a smaller model, or --backend webasm`,
      );
    }
    if (limits.maxLoopIterations === Infinity) return;
    for (const k of s.kernels) {
      const n = loopIterations(buildKernel(g, k, bindings, "flat"));
      if (n <= limits.maxLoopIterations) continue;
      const anchor = g.nodes[k.anchor ?? k.output];
      const at = anchor.span ? ` (${anchor.span.file}:${anchor.span.line}:${anchor.span.col})` : "";
      throw new CapacityError(
        `kernel ${k.name}, op ${anchor.op}${at}, runs ${n.toLocaleString("en-US")} loop iterations per thread; ${limits.backend} here stops a shader after ${limits.maxLoopIterations.toLocaleString("en-US")} (Mesa llvmpipe's limit): make the reduced axis shorter (a smaller vocabulary or model), or use --backend webasm`,
      );
    }
    return;
  }
  if (backend !== "webasm") return;
  for (const k of s.kernels) {
    const bytes = [...k.inputs, k.output].reduce(
      (a, id) => a + 4 * shapeEval(g.nodes[id].type.shape, bindings).reduce((p, q) => p * q, 1),
      0,
    );
    if (bytes > 3.75 * GiB)
      throw new CapacityError(
        `kernel ${k.name} reads and writes ${(bytes / GiB).toFixed(2)} GiB, more than a WebAssembly memory holds (4 GiB): ${advice}, or --backend cpu`,
      );
  }
}

/** Sizes of the symbolic dimensions, e.g. { B: 4, T: 128 }. */
export type Dims = Record<string, number>;

/**
 * A compiled model's graphs on a backend: runs forward, evaluation, training
 * and decoding, each through an executor built per set of dims on first use.
 */
export class Session {
  private readonly executors = new Map<string, Executor>();
  /** Each graph's dimension names (looked up once: decoding asks every token). */
  private readonly symbols = new Map<Graph, string[]>();
  /** The decode graph's KV cache inputs (found once, likewise). */
  private cachesMemo?: { nodes: Node[]; ids: Set<number> };
  /** Set to collect per-kernel timings in every executor (`--profile`). */
  profiler?: Profiler;
  /** Stop at the first kernel producing NaN or infinity (`--check-numerics`). */
  checkNumerics = false;

  constructor(
    /** The graphs it runs (forward, evaluation, training, decode). */
    readonly graphs: CompiledGraphs,
    /** Where the kernels run. */
    readonly backend: Backend,
    /** Fusion limits (inputs per kernel), where a backend needs them. */
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
    // No prototype, own keys only: dims named `__proto__` or `constructor` are plain names.
    const bindings: Record<string, number> = Object.create(null);
    let symbols = this.symbols.get(g);
    if (!symbols) this.symbols.set(g, (symbols = g.symbols()));
    for (const s of symbols) {
      const v = Object.hasOwn(dims, s) ? dims[s] : undefined;
      if (v === undefined) throw new Error(`no size given for dimension ${s}`);
      bindings[s] = v;
    }
    const key = `${kind}:${JSON.stringify(bindings)}`;
    let ex = this.executors.get(key);
    if (!ex) {
      assertBindings(g, bindings);
      const schedule = fuse(g, this.limits ?? this.backend.fusion);
      checkCapacity(schedule, bindings, this.backend.name, kind === "train", this.backend.limits);
      // Decoding on the GL backends: the updated KV caches may stay textures.
      const resident =
        kind === "decode" && this.keepsCaches
          ? new Set(g.outputs.filter((o) => isCacheName(o.name)).map((o) => o.id))
          : undefined;
      ex = new Executor(schedule, bindings, this.backend, resident);
      this.executors.set(key, ex);
    }
    // Set on every use: a profiler may be attached after the first (compiling) step.
    ex.profiler = this.profiler;
    ex.checkNumerics = this.checkNumerics;
    return ex;
  }

  /** Inputs by name as feeds by node id; names in `skip` come from elsewhere (the device). */
  private feeds(
    g: Graph,
    weights: Weights,
    inputs: Record<string, Float32Array>,
    skip: Record<string, unknown> = {},
  ): Map<number, Float32Array> {
    const feeds = new Map<number, Float32Array>();
    for (const n of g.nodes) {
      if (n.op === "weight") {
        const w = weights.get(n.attrs.name as string);
        if (!w) throw new Error(`no value for weight '${n.attrs.name}'`);
        feeds.set(n.id, w);
      } else if (n.op === "input") {
        const name = n.attrs.name as string;
        if (Object.hasOwn(skip, name)) continue;
        const v = Object.hasOwn(inputs, name) ? inputs[name] : undefined;
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

  /** Whether a decode graph (KV cache) was compiled: generation then costs one step per token. */
  get canDecode(): boolean {
    return this.graphs.decode !== undefined;
  }

  /** The decode graph's KV cache inputs, and their node ids. */
  private get caches(): { nodes: Node[]; ids: Set<number> } {
    if (!this.cachesMemo) {
      const nodes = (this.graphs.decode?.nodesOf("input") ?? []).filter((n) =>
        isCacheName(n.attrs.name as string),
      );
      this.cachesMemo = { nodes, ids: new Set(nodes.map((n) => n.id)) };
    }
    return this.cachesMemo;
  }

  /** Names and shapes (for dims) of the decode graph's cache inputs. */
  cacheInputs(dims: Dims): { name: string; size: number }[] {
    return this.caches.nodes.map((n) => ({
      name: n.attrs.name as string,
      size: shapeEval(n.type.shape, dims).reduce((a, b) => a * b, 1),
    }));
  }

  /** Whether a step with `inPlace` updates every cache in place (then its outputs are the inputs' arrays). */
  decodesInPlace(dims: Dims): boolean {
    const ex = this.executor("decode", dims);
    const inPlace = ex.inPlaceCaches();
    const { ids } = this.caches;
    return ids.size > 0 && [...ids].every((id) => inPlace.has(id));
  }

  /**
   * One decoding step: tokens, cache_len and caches in; logits and updated
   * caches out (with `views`, views of the executor's memory where it has one,
   * valid until its next run, as in lossAndGrads). `into`: arrays of the
   * engine's memory, by output name, that outputs are written to instead
   * (webasm), never one of this step's inputs. `inPlace`: the caches given
   * may be overwritten: each is updated where it is when it can be (see
   * decodesInPlace), and is then its own output.
   */
  async decode(
    weights: Weights,
    inputs: Record<string, Float32Array>,
    dims: Dims,
    opts: { views?: boolean; into?: Record<string, Float32Array>; inPlace?: boolean } = {},
  ): Promise<Record<string, Float32Array>> {
    const ex = this.executor("decode", dims);
    const g = ex.schedule.graph;
    const into =
      opts.into &&
      new Map(g.outputs.filter((o) => opts.into![o.name]).map((o) => [o.id, opts.into![o.name]]));
    const donated = opts.inPlace ? this.caches.ids : undefined;
    const out = await ex.run(this.feeds(g, weights, inputs), undefined, {
      views: opts.views,
      into,
      donated,
    });
    return Object.fromEntries(g.outputs.map((o) => [o.name, out.get(o.id)!]));
  }

  /**
   * Whether decoding keeps its KV caches on the device between tokens
   * (decodeOnDevice): the GPU backends, whose kernels' textures (GL) and
   * buffers (WebGPU) gpu.js hands out and keeps, as for the weights
   * (runtime/device-weights.ts).
   */
  get keepsCaches(): boolean {
    return this.canDecode && onGpu(this.backend);
  }

  /**
   * One decoding step with the KV caches on the device (where keepsCaches):
   * `caches` are the previous step's (none on the first step: `inputs` then
   * holds them as arrays); returns the logits, the one thing read back, and
   * the updated caches as textures. The caller deletes each set of caches
   * once the step after it has run.
   */
  async decodeOnDevice(
    weights: Weights,
    inputs: Record<string, Float32Array>,
    caches: Record<string, DeviceTensor>,
    dims: Dims,
  ): Promise<{ logits: Float32Array; caches: Record<string, DeviceTensor> }> {
    const ex = this.executor("decode", dims);
    const g = ex.schedule.graph;
    const held = new Map<number, DeviceTensor>();
    for (const n of g.nodesOf("input"))
      if (Object.hasOwn(caches, n.attrs.name as string))
        held.set(n.id, caches[n.attrs.name as string]);
    const logits = g.outputs.find((o) => o.name === "logits")!;
    const keep = new Map<number, DeviceTensor>();
    let out;
    try {
      out = await ex.run(this.feeds(g, weights, inputs, caches), [logits.id], { held, keep });
    } catch (e) {
      // Caches a failed step had already written are nobody's: free them.
      for (const t of keep.values()) t.delete();
      throw e;
    }
    const next: Record<string, DeviceTensor> = {};
    for (const o of g.outputs) {
      if (!isCacheName(o.name)) continue;
      const t = keep.get(o.id);
      if (!t) throw new Error(`internal: cache output '${o.name}' was not kept on the device`);
      next[o.name] = t;
    }
    return { logits: out.get(logits.id)!, caches: next };
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

  /**
   * Runs the training graph: the loss and the gradient of every weight (its
   * other outputs, the logits, are not read back: 100 MB per step at the
   * bench's size). With `views`, gradients are views of the executor's memory
   * where it has one (webasm), valid until the next training run of this
   * session: no 65 MB copy per bench step. Scaling them in place is fine.
   */
  async lossAndGrads(
    weights: Weights,
    inputs: Record<string, Float32Array>,
    dims: Dims,
    opts: { views?: boolean } = {},
  ): Promise<{ loss: number; grads: Weights }> {
    const ex = this.executor("train", dims);
    const g = ex.schedule.graph;
    const kept = g.outputs.filter((o) => o.name === "loss" || o.name.startsWith(gradName("")));
    const out = await ex.run(
      this.feeds(g, weights, inputs),
      kept.map((o) => o.id),
      opts,
    );
    const outputs = Object.fromEntries(kept.map((o) => [o.name, out.get(o.id)!]));
    const grads: Weights = new Map();
    for (const key of weights.keys()) {
      const gk = outputs[gradName(key)];
      if (gk) grads.set(key, gk);
    }
    return { loss: outputs.loss[0], grads };
  }

  /** Frees every executor (and its engine memory); views it handed out die with it. */
  destroy(): void {
    for (const ex of this.executors.values()) ex.destroy();
    this.executors.clear();
  }
}
