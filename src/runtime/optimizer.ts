// AdamW exactly as torch.optim.AdamW (torch 1.13 order, float32 arithmetic):
// decoupled weight decay on 2-D (and higher) weights only, bias-corrected
// moments; plus global-norm gradient clipping as torch.nn.utils.clip_grad_norm_.
import { adamwModule } from "../codegen/wasm/adamw.js";
import {
  align,
  ARENA_BYTES,
  engineMemory,
  gemmEngine,
  type Gemm,
  type LoadedKernel,
} from "./gemm.js";
import type { Backend } from "./backend.js";
import { weightChanged, type Weights } from "./weights.js";

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const defaultAdamW: AdamWConfig = {
  lr: 6e-4,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
};

/** AdamW's state: what a checkpoint keeps of the optimizer besides the weights. */
export interface AdamWState {
  /** Updates applied so far (sets the bias corrections). */
  step: number;
  /** First moments (moving averages of the gradients), by weight key. */
  m: Weights;
  /** Second moments (moving averages of the squared gradients), by weight key. */
  v: Weights;
}

export function newAdamWState(weights: Weights): AdamWState {
  const zeros = () => new Map([...weights].map(([k, w]) => [k, new Float32Array(w.length)]));
  return { step: 0, m: zeros(), v: zeros() };
}

/** Which weights decay: those of rank 2 or more (matrices and embeddings). */
export function decays(shape: readonly number[]): boolean {
  return shape.length >= 2;
}

/**
 * sqrt of the sum of squares of every gradient. Summed in key order, so the bits do
 * not depend on the map's insertion order (weights loaded from a checkpoint come in
 * the file's order, fresh ones in the spec's: a resumed run must match exactly).
 */
export function globalNorm(grads: Weights): number {
  let s = 0;
  for (const key of [...grads.keys()].sort()) {
    const g = grads.get(key)!;
    for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  }
  return Math.sqrt(s);
}

/** Scales gradients in place so their global norm is at most maxNorm; returns the norm before. */
export function clipGradients(grads: Weights, maxNorm: number): number {
  const norm = globalNorm(grads);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= coef;
  return norm;
}

/** One AdamW step, in place. `lr` overrides the config's (for schedules). */
export function adamwStep(
  weights: Weights,
  grads: Weights,
  shapes: Map<string, readonly number[]>,
  state: AdamWState,
  cfg: AdamWConfig,
  lr = cfg.lr,
): void {
  state.step += 1;
  const bc1 = 1 - cfg.beta1 ** state.step;
  const bc2 = 1 - cfg.beta2 ** state.step;
  const stepSize = lr / bc1;
  const sqrtBc2 = Math.sqrt(bc2);
  for (const [key, p] of weights) {
    const g = grads.get(key);
    if (!g) continue;
    const m = state.m.get(key)!;
    const v = state.v.get(key)!;
    const decay = decays(shapes.get(key) ?? []) ? 1 - lr * cfg.weightDecay : 1;
    const c = [
      decay,
      cfg.beta1,
      1 - cfg.beta1,
      cfg.beta2,
      1 - cfg.beta2,
      stepSize,
      sqrtBc2,
      cfg.eps,
    ];
    wasmUpdate(p, g, m, v, Float32Array.from(c));
    weightChanged(p);
  }
}

/** Elements per call of the wasm update (arrays copied in and out). */
const CHUNK = 1 << 20;

let loaded: { engine: Gemm; kernel: LoadedKernel } | undefined;

function adamwKernel(): { engine: Gemm; kernel: LoadedKernel } {
  if (!loaded) {
    const engine = gemmEngine();
    loaded = { engine, kernel: engine.loadKernel(adamwModule(engineMemory)) };
  }
  return loaded;
}

/**
 * The update of one weight on the WebAssembly engine (codegen/wasm/adamw.ts):
 * four float32 lanes at a time on both threads, as torch computes it in
 * float32. Arrays in the engine's memory (see inEngine) are updated where
 * they are; others are copied into its scratch memory and p, m, v back
 * (16.3M weights: ~30 ms, where a JavaScript loop took 120-250).
 */
function wasmUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  constants: Float32Array,
): void {
  const { engine, kernel } = adamwKernel();
  if ([p, g, m, v].every((a) => engine.owns(a))) {
    const c = engine.scratch(64);
    new Float32Array(engine.memory.buffer).set(constants, c / 4);
    const at = [p, g, m, v].map((a) => a.byteOffset);
    engine.runKernel(kernel, 0, p.length, [...at, c], p.length >= 1 << 16);
    return;
  }
  // In chunks: the scratch space (never returned to the system) stays small
  // even for gpt2's 154 MB embedding.
  for (let start = 0; start < p.length; start += CHUNK) {
    const n = Math.min(CHUNK, p.length - start);
    const bytes = align(n * 4);
    const base = engine.scratch(4 * bytes + 64);
    const at = [0, 1, 2, 3].map((k) => base + k * bytes);
    const c = base + 4 * bytes;
    const mem = new Float32Array(engine.memory.buffer);
    [p, g, m, v].forEach((a, k) => mem.set(a.subarray(start, start + n), at[k] / 4));
    mem.set(constants, c / 4);
    engine.runKernel(kernel, 0, n, [...at, c], n >= 1 << 16);
    p.set(mem.subarray(at[0] / 4, at[0] / 4 + n), start);
    m.set(mem.subarray(at[2] / 4, at[2] / 4 + n), start);
    v.set(mem.subarray(at[3] / 4, at[3] / 4 + n), start);
  }
}

/**
 * Weights and their AdamW moments moved into the WebAssembly engine's memory
 * (webasm with its kernels): kernels, GEMM packing and the update read them where they
 * are, with no copies in and out per step (gpt2-124M: 3.5 GB copied in and
 * out by each AdamW step otherwise, and 1 GB for the products). Only where
 * the three together take at most `budget` bytes (default half of what
 * executors' arenas may hold, the rest left to activations and gradients:
 * gpt2-124M's 1.5 GB fits, gpt2-medium's 4.3 GB stays in JavaScript arrays). The
 * held arena counts against that budget: a training step whose activations
 * no longer fit beside it keeps them in JavaScript arrays (slower, still
 * right). Returns new maps of views and the function that gives the arena
 * back (the views are dead after it), or undefined when it does not fit; the
 * arrays given are left as they were.
 */
export function inEngine(
  backend: Backend,
  weights: Weights,
  state: AdamWState,
  budget = ARENA_BYTES / 2,
): { weights: Weights; state: AdamWState; release: () => void } | undefined {
  // Only where the engine runs the kernels (webasm; not its gpu.js-only form).
  if (!backend.wasmKernels) return undefined;
  const keys = [...weights.keys()];
  const sizes = keys.map((k) => weights.get(k)!.length);
  const held = gemmEngine().hold([...sizes, ...sizes, ...sizes], budget);
  if (!held) return undefined;
  const views = held.arrays;
  const moved = (src: Weights, part: number) =>
    new Map(
      keys.map((k, i) => {
        const view = views[part * keys.length + i];
        view.set(src.get(k)!);
        return [k, view];
      }),
    );
  return {
    weights: moved(weights, 0),
    state: { step: state.step, m: moved(state.m, 1), v: moved(state.v, 2) },
    release: held.release,
  };
}
