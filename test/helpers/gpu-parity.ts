// A model on a GPU backend against the webasm backend, on the same random
// weights and tokens: the forward logits, the prompt pass and cached decode
// steps, and one training step's loss and gradients, each with the fixture
// tolerances (runtime/verify.ts: logits err <= 1e-4, loss abs <= 1e-5 max(1,
// |loss|), gradients err <= 1e-3). Shared by gpu-split.gl.ts and the by-hand
// gpt2-small run (scripts/gl-gpt2-small.ts).
import { contextOf } from "../../src/api/compile.js";
import type { Backend } from "../../src/runtime/backend.js";
import { generateCached } from "../../src/runtime/generate.js";
import { Rng } from "../../src/runtime/rng.js";
import { Session } from "../../src/runtime/session.js";
import { relError } from "./backend.js";
import type { Model } from "./train.js";

export interface ParityCheck {
  name: string;
  err: number;
  tol: number;
  /** Wall time of the GPU backend's part, ms. */
  ms: number;
}

export interface ParityOptions {
  /** Forward pass sequence (batch 1). */
  forwardT: number;
  /** Prompt tokens before the cached decode steps. */
  prompt: number;
  decodeSteps: number;
  /** Training step sequence (batch 1). */
  trainT: number;
  seed: number;
  /** Called as each check finishes (progress of a long run). */
  onCheck?: (c: ParityCheck) => void;
}

const ids = (rng: Rng, n: number, vocab: number) =>
  Float32Array.from({ length: n }, () => Math.floor(rng.next() * vocab));

/** Runs every check on `gpu` and `ref`; returns them (the caller asserts err <= tol). */
export async function gpuParity(
  m: Model,
  gpu: Backend,
  ref: Backend,
  o: ParityOptions,
): Promise<ParityCheck[]> {
  const vocab = m.shapes.get("wte.weight")![0];
  const w = m.init(o.seed);
  const rng = new Rng(o.seed + 1);
  const checks: ParityCheck[] = [];
  const sessions = { gpu: new Session(m.graphs, gpu), ref: new Session(m.graphs, ref) };
  const add = (
    name: string,
    x: ArrayLike<number>,
    y: ArrayLike<number>,
    tol: number,
    ms: number,
  ) => {
    const c = { name, err: relError(x, y), tol, ms };
    checks.push(c);
    o.onCheck?.(c);
  };
  const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
    const t = performance.now();
    const r = await f();
    return [r, performance.now() - t];
  };
  try {
    // Forward.
    const tokens = ids(rng, o.forwardT, vocab);
    const dims = { B: 1, T: o.forwardT };
    const [fg, ms] = await timed(() => sessions.gpu.forward(w, { tokens }, dims));
    const fr = await sessions.ref.forward(w, { tokens }, dims);
    add(`forward logits B=1 T=${o.forwardT}`, fg.logits, fr.logits, 1e-4, ms);

    // Prompt pass + cached decode steps (greedy): each step's logits.
    const prompt = Array.from(ids(rng, o.prompt, vocab));
    const decode = async (s: Session) => {
      const logits: Float32Array[] = [];
      const out = await generateCached(s, w, [prompt], {
        maxNewTokens: o.decodeSteps + 1,
        temperature: 0,
        seed: 0,
        context: contextOf(m.lowered),
        onLogits: (_r, l) => logits.push(Float32Array.from(l)),
      });
      return { tokens: out[0], logits };
    };
    const [dg, dms] = await timed(() => decode(sessions.gpu));
    const dr = await decode(sessions.ref);
    if (dg.logits.length !== o.decodeSteps + 1)
      throw new Error(`${dg.logits.length} decode logits, expected ${o.decodeSteps + 1}`);
    dg.logits.forEach((l, s) =>
      add(
        s === 0 ? `prompt pass (${o.prompt} tokens)` : `decode step ${s}`,
        l,
        dr.logits[s],
        1e-4,
        dms / dg.logits.length,
      ),
    );
    add("decoded tokens (equal: err 0)", dg.tokens, dr.tokens, 0, 0);

    // One training step: loss and every gradient.
    const seq = ids(rng, o.trainT + 1, vocab);
    const batch = { tokens: seq.slice(0, o.trainT), targets: seq.slice(1) };
    const tdims = { B: 1, T: o.trainT };
    const [tg, tms] = await timed(() => sessions.gpu.lossAndGrads(w, batch, tdims));
    const tr = await sessions.ref.lossAndGrads(w, batch, tdims);
    checks.push({
      name: `loss B=1 T=${o.trainT}`,
      err: Math.abs(tg.loss - tr.loss),
      tol: 1e-5 * Math.max(1, Math.abs(tr.loss)),
      ms: tms,
    });
    o.onCheck?.(checks[checks.length - 1]);
    for (const [key, g] of tr.grads) add(`grad.${key}`, tg.grads.get(key)!, g, 1e-3, 0);
    return checks;
  } finally {
    sessions.gpu.destroy();
    sessions.ref.destroy();
  }
}
