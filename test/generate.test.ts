// Generation: decoding with a KV cache gives exactly the tokens (and, to float32
// rounding, the logits) of recomputing the whole prefix, for every spec with
// cache(), on cpu and webasm, for single prompts and batches of mixed lengths;
// plus seeded sampling, top-k / top-p, stop tokens and prompts that do not fit.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contextOf } from "../src/api/compile.js";
import type { BackendName } from "../src/runtime/backend.js";
import {
  GenerateError,
  generateCached,
  generateFull,
  type GenerateOptions,
} from "../src/runtime/generate.js";
import { Rng } from "../src/runtime/rng.js";
import { argmax, sampleToken } from "../src/runtime/sampler.js";
import { Session } from "../src/runtime/session.js";
import type { Weights } from "../src/runtime/weights.js";
import { backend, cpuBackends, relError } from "./helpers/backend.js";
import { paramValue } from "./helpers/ir.js";
import { boldWeights, model, type Model } from "./helpers/train.js";

const small = { d: "16", heads: "2", hidden: "24", layers: "1", vocab: "50" };
const specs: { name: string; set: Record<string, string>; vocab: number }[] = [
  { name: "gpt2-tiny", set: {}, vocab: 64 },
  { name: "llama-style", set: { ...small, kv_heads: "1" }, vocab: 50 },
  { name: "seed-transformer", set: small, vocab: 50 },
];

const models = new Map<string, Model>();
function getModel(name: string): Model {
  let m = models.get(name);
  if (!m) {
    const s = specs.find((x) => x.name === name)!;
    m = model(s.name, s.set);
    models.set(name, m);
  }
  return m;
}

const sessions: Session[] = [];
async function open(name: string, be: BackendName): Promise<Session> {
  const s = new Session(getModel(name).graphs, await backend(be));
  sessions.push(s);
  return s;
}
afterAll(() => sessions.forEach((s) => s.destroy()));

/** Runs `gen` and records, per row, the logits each token was chosen from. */
async function withLogits(
  gen: typeof generateFull,
  session: Session,
  w: Weights,
  prompts: number[][],
  o: GenerateOptions,
): Promise<{ tokens: number[][]; logits: Float32Array[][] }> {
  const logits: Float32Array[][] = prompts.map(() => []);
  const tokens = await gen(session, w, prompts, {
    ...o,
    onLogits: (row, l) => logits[row].push(Float32Array.from(l)),
  });
  return { tokens, logits };
}

function worstError(a: Float32Array[][], b: Float32Array[][]): number {
  let worst = 0;
  expect(a.map((r) => r.length)).toEqual(b.map((r) => r.length));
  for (let r = 0; r < a.length; r++)
    for (let k = 0; k < a[r].length; k++) worst = Math.max(worst, relError(a[r][k], b[r][k]));
  return worst;
}

const greedy = (o: Partial<GenerateOptions> = {}): GenerateOptions => ({
  maxNewTokens: 6,
  temperature: 0,
  seed: 0,
  ...o,
});

describe.each(cpuBackends)("KV cache equals full recompute on %s", (be) => {
  describe.each(specs)("$name", ({ name, vocab }) => {
    let session: Session;
    let w: Weights;
    let ctx: number | undefined;
    beforeAll(async () => {
      session = await open(name, be);
      w = boldWeights(getModel(name), 3);
      ctx = contextOf(getModel(name).lowered);
    });

    it("compiles a decode graph with caches", () => {
      expect(session.canDecode).toBe(true);
      // A key and a value cache per layer, each holding one slot per cached position.
      const layers = paramValue(getModel(name).lowered, "layers")!;
      const at4 = session.cacheInputs({ B: 1, C: 4 });
      const at8 = session.cacheInputs({ B: 1, C: 8 });
      expect(at4.length).toBe(2 * layers);
      at4.forEach((c, k) => expect(at8[k].size, c.name).toBe(2 * c.size));
    });

    it("same tokens and logits for single prompts of length 1, 2 and 5", async () => {
      for (const prompt of [[1], [7, 2], [5, 9, 13, 2, vocab - 1]]) {
        const o = greedy({ context: ctx });
        const full = await withLogits(generateFull, session, w, [prompt], o);
        const cached = await withLogits(generateCached, session, w, [prompt], o);
        expect(cached.tokens).toEqual(full.tokens);
        expect(full.tokens[0]).toHaveLength(6);
        expect(worstError(cached.logits, full.logits)).toBeLessThan(1e-5);
      }
    });

    it("same tokens and logits for a batch of prompts of mixed lengths", async () => {
      const prompts = [[1], [2, 3, 4], [5, 6, 7, 8, 9], [4, 3, 2], [vocab - 1]];
      const o = greedy({ context: ctx });
      const full = await withLogits(generateFull, session, w, prompts, o);
      const cached = await withLogits(generateCached, session, w, prompts, o);
      expect(cached.tokens).toEqual(full.tokens);
      expect(worstError(cached.logits, full.logits)).toBeLessThan(1e-5);
      // Not a degenerate model: the rows do not all just repeat one token.
      const distinct = new Set(full.tokens.flat());
      expect(distinct.size).toBeGreaterThan(3);
    });
  });
});

describe("generation up to the context (gpt2-tiny, ctx 32)", () => {
  let session: Session;
  let w: Weights;
  beforeAll(async () => {
    session = await open("gpt2-tiny", "cpu");
    w = boldWeights(getModel("gpt2-tiny"), 3);
  });
  const prompt = (n: number) => Array.from({ length: n }, (_, i) => (i * 11 + 3) % 64);

  it("past the context the window slides; keeping the whole context gives the full run's tokens", async () => {
    const o = greedy({ context: 32, maxNewTokens: 12 });
    const full = await generateFull(session, w, [prompt(30)], o);
    expect(full[0]).toHaveLength(12);
    const slides: number[] = [];
    const exact = await generateCached(session, w, [prompt(30)], {
      ...o,
      slideKeep: 32,
      onSlide: (k) => slides.push(k),
    });
    expect(exact[0]).toEqual(full[0]);
    // 30 + 3 tokens fill the context; each of the other 9 is made after a slide.
    expect(slides).toEqual(new Array(9).fill(32));
  });

  it("the default slide keeps half the context: the first tokens equal the full run's, all are made", async () => {
    const o = greedy({ context: 32, maxNewTokens: 40 });
    const slides: number[] = [];
    const cached = await generateCached(session, w, [prompt(30)], {
      ...o,
      onSlide: (k) => slides.push(k),
    });
    const full = await generateFull(session, w, [prompt(30)], o);
    expect(cached[0]).toHaveLength(40);
    expect(cached[0].slice(0, 3)).toEqual(full[0].slice(0, 3));
    // 3 tokens fill the first window, then windows of 16 kept + 17 new: 3 + 17 + 17 + 3.
    expect(slides).toEqual([16, 16, 16]);
    // After a slide the model sees fewer tokens than the full run: the same
    // weights with a shorter context choose differently somewhere.
    expect(cached[0]).not.toEqual(full[0]);
  });

  it("a prompt longer than the context, or an empty one, is a GenerateError", async () => {
    const o = greedy({ context: 32 });
    for (const gen of [generateCached, generateFull]) {
      await expect(gen(session, w, [prompt(3), prompt(33)], o)).rejects.toThrow(GenerateError);
      await expect(gen(session, w, [prompt(33)], o)).rejects.toThrow(
        "the prompt is 33 tokens, longer than the model's context (32)",
      );
      await expect(gen(session, w, [[]], o)).rejects.toThrow(GenerateError);
    }
  });
});

describe("sampling", () => {
  let session: Session;
  let w: Weights;
  let bold: Weights;
  beforeAll(async () => {
    session = await open("gpt2-tiny", "cpu");
    // The spec's own init: near-uniform logits, so sampling really is random.
    w = getModel("gpt2-tiny").init(5);
    bold = boldWeights(getModel("gpt2-tiny"), 3);
  });
  const sample = (seed: number, o: Partial<GenerateOptions> = {}): GenerateOptions => ({
    maxNewTokens: 8,
    temperature: 1,
    seed,
    context: 32,
    ...o,
  });
  const prompts = [[1, 2], [3, 4], [5]];

  it("the same seed gives the same samples, another seed other samples", async () => {
    const a = await generateCached(session, w, prompts, sample(11));
    const b = await generateCached(session, w, prompts, sample(11));
    const c = await generateCached(session, w, prompts, sample(12));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(a.every((r) => r.length === 8)).toBe(true);
    // Rows of one batch draw different samples.
    expect(a[0]).not.toEqual(a[1]);
    // One prompt: the cache draws the same random numbers in the same order as the full run.
    const one = sample(11, { topK: 10 });
    expect(await generateCached(session, w, [[1, 2]], one)).toEqual(
      await generateFull(session, w, [[1, 2]], one),
    );
  });

  it("top-k 1 and a tiny top-p are greedy", async () => {
    const g = await generateCached(
      session,
      bold,
      prompts,
      greedy({ maxNewTokens: 8, context: 32 }),
    );
    expect(await generateCached(session, bold, prompts, sample(3, { topK: 1 }))).toEqual(g);
    expect(await generateCached(session, bold, prompts, sample(4, { topP: 1e-6 }))).toEqual(g);
    expect(
      await generateCached(session, bold, prompts, sample(5, { topP: 1e-6, topK: 5 })),
    ).toEqual(g);
    const gw = await generateCached(session, w, prompts, greedy({ maxNewTokens: 8, context: 32 }));
    expect(await generateCached(session, w, prompts, sample(6, { topK: 1 }))).toEqual(gw);
  });

  it("a stop token ends its row early, the others go on", async () => {
    const rows = [[1], [9, 8, 7], [2, 3, 4]];
    const o = greedy({ maxNewTokens: 8, context: 32 });
    const free = await generateFull(session, bold, rows, o);
    // The first token of row 0 that it did not produce before: it will stop there.
    const k = free[0].findIndex((id, i) => i > 0 && !free[0].slice(0, i).includes(id));
    expect(k).toBeGreaterThan(0);
    const stop = free[0][k];
    const expected = free.map((r) => (r.includes(stop) ? r.slice(0, r.indexOf(stop) + 1) : r));
    expect(expected[0]).toHaveLength(k + 1);
    expect(expected[0].length).toBeLessThan(8);
    expect(expected.some((r) => r.length === 8)).toBe(true);
    for (const gen of [generateCached, generateFull]) {
      const seen: number[][] = rows.map(() => []);
      const got = await gen(session, bold, rows, {
        ...o,
        stopToken: stop,
        onToken: (row, id) => seen[row].push(id),
      });
      expect(got).toEqual(expected);
      expect(seen).toEqual(expected);
    }
  });
});

describe("sampleToken", () => {
  const logits = Float32Array.from([0.5, 2, -1, 1.9, 0]);

  it("greedy, top-k 1 and tiny top-p pick the argmax", () => {
    const rng = new Rng(1);
    expect(argmax(logits)).toBe(1);
    expect(sampleToken(logits, { temperature: 0 }, rng)).toBe(1);
    for (let i = 0; i < 50; i++) {
      expect(sampleToken(logits, { temperature: 1, topK: 1 }, rng)).toBe(1);
      expect(sampleToken(logits, { temperature: 5, topP: 1e-9 }, rng)).toBe(1);
    }
  });

  it("top-k and top-p keep only the most likely tokens", () => {
    const rng = new Rng(2);
    const seen = new Set<number>();
    for (let i = 0; i < 400; i++) seen.add(sampleToken(logits, { temperature: 2, topK: 2 }, rng));
    expect([...seen].sort()).toEqual([1, 3]);
    // At temperature 1, p(1) = 0.43 < 0.6 <= p(1) + p(3) = 0.82: top-p 0.6 keeps those two.
    seen.clear();
    for (let i = 0; i < 400; i++) seen.add(sampleToken(logits, { temperature: 1, topP: 0.6 }, rng));
    expect([...seen].sort()).toEqual([1, 3]);
  });

  it("samples in proportion to softmax(logits / temperature)", () => {
    const rng = new Rng(3);
    const l = Float32Array.from([0, Math.log(3)]);
    let ones = 0;
    const n = 4000;
    for (let i = 0; i < n; i++) ones += sampleToken(l, { temperature: 1 }, rng);
    expect(ones / n).toBeGreaterThan(0.72);
    expect(ones / n).toBeLessThan(0.78);
    // Temperature 2: logits halved, p = sqrt(3) / (1 + sqrt(3)) = 0.634.
    ones = 0;
    for (let i = 0; i < n; i++) ones += sampleToken(l, { temperature: 2 }, rng);
    expect(ones / n).toBeGreaterThan(0.6);
    expect(ones / n).toBeLessThan(0.67);
  });
});
