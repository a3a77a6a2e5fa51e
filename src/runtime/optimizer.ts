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
    for (let i = 0; i < p.length; i++) {
      const gi = g[i];
      p[i] *= decay;
      m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * gi;
      v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * gi * gi;
      p[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / sqrtBc2 + cfg.eps);
    }
    weightChanged(p);
  }
}
