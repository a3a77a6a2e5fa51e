// Text generation: a prompt in, one token at a time out. With a KV cache the
// prompt is processed once and each new token costs one incremental step (two
// executors: T = prompt length and T = 1, compiled once). generateFull
// recomputes the whole prefix per token: the reference the cache is checked against.
import { GptcError } from "../errors.js";
import { gemmEngine } from "./gemm.js";
import { Rng } from "./rng.js";
import { sampleToken, type SamplingOptions } from "./sampler.js";
import type { Session } from "./session.js";
import type { Weights } from "./weights.js";

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed: number;
  /** Stop a row when it produces this id. */
  stopToken?: number;
  /** Longest sequence the model takes (its context). */
  context?: number;
  onToken?: (row: number, id: number) => void;
  /** The logits each token was chosen from (last position of the row). */
  onLogits?: (row: number, logits: Float32Array) => void;
}

export class GenerateError extends GptcError {
  constructor(message: string) {
    super("generate", message);
  }
}

export function checkPromptLengths(prompts: number[][], o: GenerateOptions): void {
  for (const p of prompts) {
    if (p.length === 0)
      throw new GenerateError("a prompt is empty: give at least one token of text");
    if (o.context !== undefined && p.length > o.context)
      throw new GenerateError(
        `the prompt is ${p.length} tokens, longer than the model's context (${o.context})`,
      );
  }
}

/** Generates by recomputing the full prefix each step (no cache). */
export async function generateFull(
  session: Session,
  weights: Weights,
  prompts: number[][],
  o: GenerateOptions,
): Promise<number[][]> {
  checkPromptLengths(prompts, o);
  const rng = new Rng(o.seed);
  const out: number[][] = [];
  for (let row = 0; row < prompts.length; row++) {
    const tokens = [...prompts[row]];
    const fresh: number[] = [];
    for (let s = 0; s < o.maxNewTokens; s++) {
      const window = o.context !== undefined ? tokens.slice(-o.context) : tokens;
      const r = await session.forward(
        weights,
        { tokens: Float32Array.from(window) },
        { B: 1, T: window.length },
      );
      const vocab = r.logits.length / window.length;
      const last = r.logits.subarray((window.length - 1) * vocab);
      o.onLogits?.(row, last);
      const id = sampleToken(last, o, rng);
      tokens.push(id);
      fresh.push(id);
      o.onToken?.(row, id);
      if (id === o.stopToken) break;
    }
    out.push(fresh);
  }
  return out;
}

/**
 * Generates with a KV cache. Prompts of equal length share a batch; the cache
 * holds C = prompt + new tokens slots (at most the context).
 */
export async function generateCached(
  session: Session,
  weights: Weights,
  prompts: number[][],
  o: GenerateOptions,
): Promise<number[][]> {
  checkPromptLengths(prompts, o);
  if (!session.canDecode) return generateFull(session, weights, prompts, o);
  const rng = new Rng(o.seed);
  const results: number[][] = prompts.map(() => []);
  // Group rows by prompt length: one batch per group.
  const groups = new Map<number, number[]>();
  prompts.forEach((p, i) => groups.set(p.length, [...(groups.get(p.length) ?? []), i]));
  for (const [len, rows] of groups) {
    const B = rows.length;
    let steps = o.maxNewTokens;
    if (o.context !== undefined) steps = Math.min(steps, o.context - len + 1);
    const C = len + Math.max(0, steps - 1);
    const dims = { B, C };
    const cacheInputs = session.cacheInputs(dims);
    // On webasm the caches live in the engine's memory: kernels read them in
    // place, and each step's updated caches (views of the executor's arena)
    // are copied into them once, with no new arrays per token.
    const held = session.backend.wasmKernels
      ? gemmEngine().hold(cacheInputs.map((c) => c.size))
      : undefined;
    const caches: Record<string, Float32Array> = {};
    cacheInputs.forEach((c, i) => (caches[c.name] = held?.arrays[i] ?? new Float32Array(c.size)));
    let tokens = Float32Array.from(rows.flatMap((r) => prompts[r]));
    let T = len;
    let filled = 0;
    const done = new Array<boolean>(B).fill(false);
    try {
      for (let s = 0; s < steps && done.some((d) => !d); s++) {
        const out = await session.decode(
          weights,
          { tokens, cache_len: Float32Array.of(filled), ...caches },
          { ...dims, T },
          { views: held !== undefined },
        );
        // Without views the session's outputs are copies of their own: kept as they are.
        for (const name of Object.keys(caches))
          if (held) caches[name].set(out[name]);
          else caches[name] = out[name];
        const vocab = out.logits.length / (B * T);
        const next = new Float32Array(B);
        for (let b = 0; b < B; b++) {
          const row = out.logits.subarray((b * T + T - 1) * vocab, (b * T + T) * vocab);
          const id = sampleToken(row, o, rng);
          next[b] = id;
          if (done[b]) continue;
          // A view lives until the next step: the callback gets a copy it may keep.
          o.onLogits?.(rows[b], held ? row.slice() : row);
          results[rows[b]].push(id);
          o.onToken?.(rows[b], id);
          if (id === o.stopToken) done[b] = true;
        }
        filled += T;
        tokens = next;
        T = 1;
      }
    } finally {
      held?.release();
    }
  }
  return results;
}
