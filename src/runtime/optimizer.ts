// AdamW exactly as torch.optim.AdamW (torch 1.13 order, float32 arithmetic):
// decoupled weight decay on 2-D (and higher) weights only, bias-corrected
// moments; plus global-norm gradient clipping as torch.nn.utils.clip_grad_norm_.
import { adamwModule } from "../codegen/wasm/adamw.js";
import { align, engineMemory, gemmEngine, type Gemm, type LoadedKernel } from "./gemm.js";
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

export interface AdamWState {
  step: number;
  m: Weights;
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

/** Elements per call of the wasm update. */
const CHUNK = 1 << 20;

let loaded: { engine: Gemm; kernel: LoadedKernel } | undefined;

/**
 * The update of one weight on the WebAssembly engine (codegen/wasm/adamw.ts):
 * four float32 lanes at a time on both threads, as torch computes it in
 * float32. The four arrays are copied into the engine's scratch memory and
 * p, m, v back (16.3M weights: ~30 ms, where a JavaScript loop took 120-250).
 */
function wasmUpdate(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  constants: Float32Array,
): void {
  if (!loaded) {
    const engine = gemmEngine();
    loaded = { engine, kernel: engine.loadKernel(adamwModule(engineMemory)) };
  }
  const { engine, kernel } = loaded;
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
