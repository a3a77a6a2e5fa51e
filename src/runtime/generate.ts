// Text generation: a prompt in, one token at a time out. With a KV cache the
// prompt is processed once and each new token costs one incremental step (two
// executors: T = prompt length and T = 1, compiled once). generateFull
// recomputes the whole prefix per token: the reference the cache is checked against.
import { GptcError } from "../errors.js";
import { gemmEngine } from "./gemm.js";
import { Rng } from "./rng.js";
import { sampleToken, type SamplingOptions } from "./sampler.js";
import type { DeviceTensor } from "./executor.js";
import type { Session } from "./session.js";
import type { Weights } from "./weights.js";

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  seed: number;
  /** Stop a row when it produces this id. */
  stopToken?: number;
  /** Longest sequence the model takes (its context). */
  context?: number;
  /**
   * With a KV cache, tokens kept when the context is full and the window
   * slides (default half the context; `context` re-runs the whole window for
   * every token, as generateFull does).
   */
  slideKeep?: number;
  /** Called each time the window slides (with the tokens kept). */
  onSlide?: (kept: number) => void;
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
 * holds C = prompt + new tokens slots (at most the context). When the context
 * is full and more tokens are wanted, the window slides: the last `slideKeep`
 * tokens of each row (default half the context) are run as a new prompt and
 * decoding goes on from there, so each token sees between `slideKeep` and
 * `context` tokens before it. With slideKeep = context every token sees the
 * full context, as generateFull (and nanoGPT's sampler) does, at the cost of a
 * prompt pass per token.
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
  const keep =
    o.context === undefined
      ? 0
      : Math.max(1, Math.min(o.context, o.slideKeep ?? Math.floor(o.context / 2)));
  // Group rows by prompt length: one batch per group. A group's rows advance
  // together (a finished row's tokens are still computed, not kept).
  const groups = new Map<number, number[]>();
  prompts.forEach((p, i) => groups.set(p.length, [...(groups.get(p.length) ?? []), i]));
  for (const rows of groups.values()) {
    const seqs = rows.map((r) => [...prompts[r]]);
    const done = new Array<boolean>(rows.length).fill(false);
    let left = o.maxNewTokens;
    for (let segment = 0; left > 0 && done.some((d) => !d); segment++) {
      if (segment > 0) o.onSlide?.(keep);
      const window = seqs.map((q) => (segment === 0 ? q : q.slice(-keep)));
      const made = await decodeSegment(
        session,
        weights,
        window,
        left,
        o,
        rng,
        (b, id) => {
          seqs[b].push(id);
          if (done[b]) return;
          results[rows[b]].push(id);
          o.onToken?.(rows[b], id);
          if (id === o.stopToken) done[b] = true;
        },
        (b, logits) => {
          if (!done[b]) o.onLogits?.(rows[b], logits);
        },
        () => done.every((d) => d),
      );
      left -= made;
    }
  }
  return results;
}

/**
 * Runs `window` (rows of equal length) as a prompt and decodes one token per
 * step until the cache reaches the context, `steps` tokens are made, or
 * `finished()`. Returns the number of tokens made per row.
 */
async function decodeSegment(
  session: Session,
  weights: Weights,
  window: number[][],
  steps: number,
  o: GenerateOptions,
  rng: Rng,
  emit: (row: number, id: number) => void,
  logitsOf: (row: number, logits: Float32Array) => void,
  finished: () => boolean,
): Promise<number> {
  const B = window.length;
  const len = window[0].length;
  if (o.context !== undefined) steps = Math.min(steps, o.context - len + 1);
  const C = len + Math.max(0, steps - 1);
  const dims = { B, C };
  const cacheInputs = session.cacheInputs(dims);
  // Each step writes its T new rows into the caches where they are (the
  // step is given them to overwrite: O(T) per step, not O(context)). On
  // webasm the caches live in the engine's memory, which the kernels read in
  // place; where a cache cannot be written in place, a second set takes the
  // updated caches and the two swap each step.
  const inPlace = session.decodesInPlace({ ...dims, T: len });
  const sizes = cacheInputs.map((c) => c.size);
  const held = session.backend.wasmKernels
    ? gemmEngine().hold(inPlace ? sizes : [...sizes, ...sizes])
    : undefined;
  const caches: Record<string, Float32Array> = {};
  const spare: Record<string, Float32Array> = {};
  cacheInputs.forEach((c, i) => {
    caches[c.name] = held?.arrays[i] ?? new Float32Array(c.size);
    if (held && !inPlace) spare[c.name] = held.arrays[sizes.length + i];
  });
  let tokens = Float32Array.from(window.flat());
  let T = len;
  let filled = 0;
  let made = 0;
  // GL backends: the caches stay textures between steps (uploaded as zeros
  // once, at the prompt pass); each step reads back only the logits.
  let onDevice: Record<string, DeviceTensor> = {};
  const drop = (c: Record<string, DeviceTensor>) => {
    for (const t of Object.values(c)) t.delete();
  };
  /** One step: the logits; the caches move on to the step's updated ones. */
  const step = async (inputs: Record<string, Float32Array>, T: number) => {
    if (session.keepsCaches) {
      const first = Object.keys(onDevice).length === 0;
      const out = await session.decodeOnDevice(
        weights,
        first ? { ...inputs, ...caches } : inputs,
        onDevice,
        { ...dims, T },
      );
      // The step has read the previous caches: they can go.
      drop(onDevice);
      onDevice = out.caches;
      return out.logits;
    }
    const out = await session.decode(
      weights,
      { ...inputs, ...caches },
      { ...dims, T },
      { views: held !== undefined, into: held && !inPlace ? spare : undefined, inPlace: true },
    );
    // The outputs are the caches given (written in place), the spare set
    // (webasm; copied in where a kernel could not write there), or copies
    // of their own: kept as they are.
    for (const name of Object.keys(caches)) {
      if (out[name] === caches[name]) continue;
      if (!held || inPlace) {
        caches[name] = out[name];
        continue;
      }
      const written = spare[name];
      if (out[name] !== written) written.set(out[name]);
      spare[name] = caches[name];
      caches[name] = written;
    }
    return out.logits;
  };
  try {
    for (; made < steps && !finished(); made++) {
      const logits = await step({ tokens, cache_len: Float32Array.of(filled) }, T);
      const vocab = logits.length / (B * T);
      const next = new Float32Array(B);
      for (let b = 0; b < B; b++) {
        const row = logits.subarray((b * T + T - 1) * vocab, (b * T + T) * vocab);
        const id = sampleToken(row, o, rng);
        next[b] = id;
        // A view lives until the next step: the callback gets a copy it may keep
        // (made only when someone listens: 200 KB a token at GPT-2's vocabulary).
        if (o.onLogits) logitsOf(b, held ? row.slice() : row);
        emit(b, id);
      }
      filled += T;
      tokens = next;
      T = 1;
    }
  } finally {
    held?.release();
    drop(onDevice);
  }
  return made;
}
