// Text generation: a prompt in, one token at a time out. This version
// recomputes the whole prefix per token (the reference the KV-cache path is
// checked against).
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
}

export class GenerateError extends Error {}

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
      const id = sampleToken(r.logits.subarray((window.length - 1) * vocab), o, rng);
      tokens.push(id);
      fresh.push(id);
      o.onToken?.(row, id);
      if (id === o.stopToken) break;
    }
    out.push(fresh);
  }
  return out;
}
