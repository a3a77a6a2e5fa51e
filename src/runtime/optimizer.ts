// AdamW exactly as torch.optim.AdamW (torch 1.13 order): decoupled weight
// decay on 2-D (and higher) weights only, bias-corrected moments; plus
// global-norm gradient clipping as torch.nn.utils.clip_grad_norm_.
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
    update(p, g, m, v, decay, cfg.beta1, cfg.beta2, stepSize, sqrtBc2, cfg.eps);
    weightChanged(p);
  }
}

/**
 * The AdamW update of one weight, in place: constants as plain numbers and
 * every element read once (float32 roundings where the arrays stored them
 * before, so the bits are unchanged). 16.3M weights: 250 -> 218 ms.
 */
function update(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  decay: number,
  beta1: number,
  beta2: number,
  stepSize: number,
  sqrtBc2: number,
  eps: number,
): void {
  const c1 = 1 - beta1;
  const c2 = 1 - beta2;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const pi = Math.fround(p[i] * decay);
    const mi = Math.fround(beta1 * m[i] + c1 * gi);
    const vi = Math.fround(beta2 * v[i] + c2 * gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + eps);
  }
}
