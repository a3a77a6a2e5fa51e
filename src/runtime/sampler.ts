// Picking the next token from logits: greedy (temperature 0), or sampling with
// temperature, top-k and nucleus (top-p) filtering from a seeded generator.
import type { Rng } from "./rng.js";

export interface SamplingOptions {
  /** 0 means greedy. */
  temperature: number;
  topK?: number;
  /** In (0, 1]; 1 keeps every token. */
  topP?: number;
}

export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

export function sampleToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  if (o.temperature === 0) return argmax(logits);
  const n = logits.length;
  let order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  if (o.topK !== undefined && o.topK > 0) order = order.slice(0, o.topK);
  const max = logits[order[0]];
  let probs = order.map((i) => Math.exp((logits[i] - max) / o.temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  if (o.topP !== undefined && o.topP < 1) {
    // The smallest prefix whose probability reaches top-p.
    let cum = 0;
    let keep = 0;
    while (keep < probs.length && cum < o.topP * total) cum += probs[keep++];
    order = order.slice(0, Math.max(1, keep));
    probs = probs.slice(0, Math.max(1, keep));
    total = probs.reduce((a, b) => a + b, 0);
  }
  let r = rng.next() * total;
  for (let k = 0; k < order.length; k++) {
    r -= probs[k];
    if (r < 0) return order[k];
  }
  return order[order.length - 1];
}
