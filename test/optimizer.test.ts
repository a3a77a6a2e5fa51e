// AdamW (runtime/optimizer.ts, run on the WebAssembly engine) against the
// same update in float64, on weights whose sizes exercise the four-lane loop,
// its scalar tail and the split across two threads.
import { describe, expect, it } from "vitest";
import { adamwStep, newAdamWState, type AdamWConfig } from "../src/runtime/optimizer.js";
import { rng } from "./helpers/ir.js";

const cfg: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/** torch.optim.AdamW's step in float64 (decay on rank >= 2 only). */
function reference(
  p: Float64Array,
  g: Float64Array,
  m: Float64Array,
  v: Float64Array,
  step: number,
  rank: number,
): void {
  const bc1 = 1 - cfg.beta1 ** step;
  const bc2 = 1 - cfg.beta2 ** step;
  const decay = rank >= 2 ? 1 - cfg.lr * cfg.weightDecay : 1;
  for (let i = 0; i < p.length; i++) {
    p[i] *= decay;
    m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g[i];
    v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * g[i] * g[i];
    p[i] -= ((cfg.lr / bc1) * m[i]) / (Math.sqrt(v[i]) / Math.sqrt(bc2) + cfg.eps);
  }
}

describe("AdamW on the WebAssembly engine", () => {
  it("matches the float64 update over three steps (tails, two threads, decay by rank)", () => {
    const r = rng(11);
    const shapes = new Map<string, number[]>([
      ["bias", [7]], // the scalar tail only
      ["matrix", [64, 5]], // decays
      ["large", [(1 << 20) + 5]], // two chunks of the update, split across threads, a tail
    ]);
    const weights = new Map(
      [...shapes].map(([k, s]) => [
        k,
        Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1),
      ]),
    );
    const ref = new Map(
      [...weights].map(([k, w]) => [
        k,
        { p: Float64Array.from(w), m: new Float64Array(w.length), v: new Float64Array(w.length) },
      ]),
    );
    const state = newAdamWState(weights);
    for (let step = 1; step <= 3; step++) {
      const grads = new Map(
        [...weights].map(([k, w]) => [k, Float32Array.from(w, () => (r() * 2 - 1) * 0.1)]),
      );
      adamwStep(weights, grads, shapes, state, cfg);
      for (const [k, x] of ref)
        reference(x.p, Float64Array.from(grads.get(k)!), x.m, x.v, step, shapes.get(k)!.length);
    }
    for (const [k, x] of ref) {
      const w = weights.get(k)!;
      let worst = 0;
      for (let i = 0; i < w.length; i++)
        worst = Math.max(worst, Math.abs(w[i] - x.p[i]) / (Math.abs(x.p[i]) + 1e-3));
      // float32 arithmetic: a few roundings of weights of size ~1.
      expect(worst, k).toBeLessThan(1e-6);
      const m = state.m.get(k)!;
      expect(Math.abs(m[w.length - 1] - x.m[w.length - 1]), `${k} m`).toBeLessThan(1e-7);
    }
    // The rank-1 weight did not decay: with zero gradients it would not move at all.
    const still = new Map([["bias", Float32Array.of(0.5)]]);
    const st = newAdamWState(still);
    adamwStep(still, new Map([["bias", Float32Array.of(0)]]), new Map([["bias", [1]]]), st, cfg);
    expect(still.get("bias")![0]).toBe(0.5);
  });
});
