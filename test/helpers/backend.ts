// Helpers of the backend tests: running a graph through fusion, codegen and a
// gpu.js backend (the real Executor), and the float64 interpreter on the same
// float32-rounded values, so that any difference is the backend's arithmetic.
import { join } from "node:path";
import { frontend } from "../../src/dsl/frontend.js";
import { specsDir } from "../../src/dsl/load.js";
import { shapeOf, type Dim } from "../../src/ir/dims.js";
import type { Graph } from "../../src/ir/graph.js";
import { run } from "../../src/ir/interpret.js";
import { lowerProgram } from "../../src/ir/lower.js";
import type { DType, Tensor } from "../../src/ir/ops/types.js";
import { fuse, type FusionLimits, type Schedule } from "../../src/ir/passes/fuse.js";
import { compileGraphs, type CompiledGraphs } from "../../src/ir/pipeline.js";
import { createBackend, type Backend, type BackendName } from "../../src/runtime/backend.js";
import { Executor } from "../../src/runtime/executor.js";
import { adamwStep, defaultAdamW, newAdamWState } from "../../src/runtime/optimizer.js";
import { Session } from "../../src/runtime/session.js";
import { initWeights, weightSpecs, type WeightSpec } from "../../src/runtime/weights.js";
import { expect } from "vitest";
import { randInt, rng } from "./ir.js";

/** The backends every machine has (headlessgl needs a display: see backend-training.gl.ts). */
export const cpuBackends = ["cpu", "webasm"] as const;

/** One float32 rounding step: 2^-24. */
export const F32_EPS = 2 ** -24;

const backends = new Map<string, Promise<Backend>>();

/** One backend instance per name and test file (gpu.js instances are reusable). */
export function backend(name: BackendName): Promise<Backend> {
  let b = backends.get(name);
  if (!b) {
    b = createBackend(name);
    backends.set(name, b);
  }
  return b;
}

/** Adds an input node of a concrete (or symbolic) shape. */
export function input(
  g: Graph,
  name: string,
  shape: (number | string | Dim)[],
  dtype: DType = "f32",
): number {
  return g.op("input", [], { name, dtype, shape: shapeOf(...shape) });
}

/** A copy of `t` with every value rounded to float32 (what the backend is given). */
export function toF32(t: Tensor): Tensor {
  return { shape: [...t.shape], data: Float64Array.from(t.data, Math.fround) };
}

export interface Feeds {
  /** Input tensors by input name. */
  inputs: Record<string, Tensor>;
  /** Weights by checkpoint key. */
  weights?: Record<string, Tensor>;
  /** Values of symbolic dims (none for concrete graphs). */
  bindings?: Record<string, number>;
}

export interface CompiledRun {
  outputs: Record<string, Float32Array>;
  schedule: Schedule;
}

/** fuse -> kernel IR -> gpu.js or WebAssembly kernels -> Executor.run, on `be`. */
export async function runCompiled(
  g: Graph,
  be: Backend,
  feeds: Feeds,
  limits?: FusionLimits,
): Promise<CompiledRun> {
  const schedule = fuse(g, limits);
  const ex = new Executor(schedule, feeds.bindings ?? {}, be);
  try {
    const buffers = new Map<number, Float32Array>();
    for (const n of g.nodes) {
      if (n.op !== "input" && n.op !== "weight") continue;
      const key = n.attrs.name as string;
      const t = n.op === "input" ? feeds.inputs[key] : feeds.weights?.[key];
      if (!t) throw new Error(`no value for ${n.op} '${key}'`);
      buffers.set(n.id, Float32Array.from(t.data));
    }
    const out = await ex.run(buffers);
    const outputs: Record<string, Float32Array> = {};
    // Copy: a backend may reuse its output buffers on the next call.
    for (const o of g.outputs) outputs[o.name] = Float32Array.from(out.get(o.id)!);
    return { outputs, schedule };
  } finally {
    ex.destroy();
  }
}

/** The float64 interpreter on the same (float32-rounded) feeds. */
export function reference(g: Graph, feeds: Feeds): Record<string, Tensor> {
  const inputs = Object.fromEntries(Object.entries(feeds.inputs).map(([k, v]) => [k, toF32(v)]));
  const weights = Object.fromEntries(
    Object.entries(feeds.weights ?? {}).map(([k, v]) => [k, toF32(v)]),
  );
  return run(g, { inputs, weights, bindings: feeds.bindings });
}

/** err = max|x - ref| / max|ref| (NaN anywhere: Infinity; all-zero ref: max|x|). */
export function relError(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (x.length !== ref.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(x[i] - ref[i]);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den > 0 ? num / den : num;
}

/** Per output: the error of the backend against the interpreter. */
export async function compareOutputs(
  g: Graph,
  be: Backend,
  feeds: Feeds,
  limits?: FusionLimits,
): Promise<{ errors: Record<string, number>; schedule: Schedule }> {
  const ref = reference(g, feeds);
  const { outputs, schedule } = await runCompiled(g, be, feeds, limits);
  const errors: Record<string, number> = {};
  for (const o of g.outputs) errors[o.name] = relError(outputs[o.name], ref[o.name].data);
  return { errors, schedule };
}

// ---- training gpt2-tiny --------------------------------------------------------------------

export interface TrainingOptions {
  steps: number;
  lr: number;
  /** Seed of initWeights. */
  weightSeed: number;
  /** Seed of the fixed batch of token ids. */
  batchSeed: number;
  B: number;
  T: number;
}

export const defaultTraining: TrainingOptions = {
  steps: 50,
  lr: 1e-2,
  weightSeed: 0,
  batchSeed: 1234,
  B: 2,
  T: 8,
};

let tinyGraphs: { graphs: CompiledGraphs; specs: WeightSpec[] } | undefined;

/** specs/gpt2-tiny.model (vocab 64), lowered and compiled once per test file. */
export function gpt2Tiny(): { graphs: CompiledGraphs; specs: WeightSpec[] } {
  if (!tinyGraphs) {
    const fe = frontend(join(specsDir, "gpt2-tiny.model"));
    if (!fe.program) throw new Error(fe.diagnostics.items.map((d) => d.message).join("\n"));
    const lowered = lowerProgram(fe.program);
    tinyGraphs = { graphs: compileGraphs(lowered), specs: weightSpecs(lowered.graph) };
  }
  return tinyGraphs;
}

/**
 * Trains gpt2-tiny on one fixed random batch (ids < 64) with AdamW; returns the
 * loss before each step and after the last (steps + 1 values).
 */
export async function trainGpt2Tiny(
  be: Backend,
  opts: Partial<TrainingOptions> = {},
): Promise<{ losses: number[]; ms: number }> {
  const o = { ...defaultTraining, ...opts };
  const { graphs, specs } = gpt2Tiny();
  const weights = initWeights(specs, o.weightSeed);
  const shapes = new Map(specs.map((s) => [s.key, s.shape]));
  const r = rng(o.batchSeed);
  const n = o.B * o.T;
  const batch = {
    tokens: Float32Array.from({ length: n }, () => randInt(r, 64)),
    targets: Float32Array.from({ length: n }, () => randInt(r, 64)),
  };
  const state = newAdamWState(weights);
  const cfg = { ...defaultAdamW, lr: o.lr };
  const session = new Session(graphs, be);
  const t0 = performance.now();
  const losses: number[] = [];
  try {
    for (let step = 0; step <= o.steps; step++) {
      const { loss, grads } = await session.lossAndGrads(weights, batch, { B: o.B, T: o.T });
      losses.push(loss);
      if (step < o.steps) adamwStep(weights, grads, shapes, state, cfg);
    }
  } finally {
    session.destroy();
  }
  return { losses, ms: performance.now() - t0 };
}

/** The loss falls: below half the initial loss after the last step, and below the loss at step 10. */
export function expectLossFalls(losses: number[], what: string): void {
  expect(losses.every(Number.isFinite), `${what}: finite losses`).toBe(true);
  const last = losses[losses.length - 1];
  expect(last, `${what}: final loss vs initial ${losses[0]}`).toBeLessThan(0.5 * losses[0]);
  expect(last, `${what}: final loss vs step 10 ${losses[10]}`).toBeLessThan(losses[10]);
}

/**
 * Two backends run the same kernels on the same batch from the same weights, so
 * their losses differ only by float32 rounding: relative difference < 1e-4 over
 * the first 10 steps. Later the relative difference grows (1e-7 at first, 3e-5
 * by step 50 between cpu and webasm) for two reasons, neither a bug: the loss
 * falls to ~3e-3 while its absolute rounding error does not — it is computed as
 * (x - max) - log Σ exp(x - max), a difference of O(1) terms — and AdamW divides
 * by sqrt(v), so once gradients are small the rounding differences of one step
 * become relative differences of the update and compound over the steps. So
 * after step 10 we bound the absolute difference by 1e-4 of the initial loss.
 */
export function expectLossesAgree(a: number[], b: number[], what: string): void {
  expect(a.length).toBe(b.length);
  for (let step = 0; step < a.length; step++) {
    const diff = Math.abs(a[step] - b[step]);
    if (step < 10) expect(diff / Math.abs(b[step]), `${what}: step ${step}`).toBeLessThan(1e-4);
    else expect(diff, `${what}: step ${step}`).toBeLessThan(1e-4 * Math.abs(b[0]));
  }
}
