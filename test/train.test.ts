// The training loop as a library: a tiny GPT-2 overfits one batch, a resumed run
// equals an uninterrupted one bit for bit, the learning-rate schedule, a diverging
// loss stops cleanly, the token cache, the data split and batches, and the Brown corpus.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackend, type Backend } from "../src/runtime/backend.js";
import { loadCheckpoint } from "../src/runtime/checkpoint.js";
import { brownDocuments, untagBrown } from "../src/runtime/corpus.js";
import { DataError, loadDataset, sampleBatch, type TokenSource } from "../src/runtime/data.js";
import { Rng } from "../src/runtime/rng.js";
import { Session } from "../src/runtime/session.js";
import { buildCharTokenizer, charTokenizer } from "../src/runtime/tokenizer.js";
import { learningRate, Trainer, TrainError, type TrainOptions } from "../src/runtime/trainer.js";
import type { Weights } from "../src/runtime/weights.js";
import {
  dataset,
  freshTrainer,
  model,
  tempDir,
  trainOptions,
  useTempCache,
  type Model,
} from "./helpers/train.js";

const TEXT =
  "the quick brown fox jumps over the lazy dog while the cat sat on a mat and a bat ate a hat; ".repeat(
    6,
  );

let cpu: Backend;
const dirs: string[] = [];
const tmp = (prefix?: string) => {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
};
const prevCache = process.env.GPTC_CACHE_DIR;

beforeAll(async () => {
  dirs.push(useTempCache());
  cpu = await createBackend("cpu");
});
afterAll(() => {
  if (prevCache === undefined) delete process.env.GPTC_CACHE_DIR;
  else process.env.GPTC_CACHE_DIR = prevCache;
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function sameBits(a: Weights, b: Weights): string[] {
  const differ: string[] = [];
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [k, x] of a) {
    const y = b.get(k)!;
    const bx = Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    const by = Buffer.from(y.buffer, y.byteOffset, y.byteLength);
    if (!bx.equals(by)) differ.push(k);
  }
  return differ;
}

function readLog(dir: string): Record<string, number>[] {
  return readFileSync(join(dir, "log.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, number>);
}

describe("overfitting one batch", () => {
  it("drives the loss of gpt2-tiny (char vocab ~20, B=2, T=8) close to zero", async () => {
    const tok = buildCharTokenizer(["the cat sat on a mat, the dog ran up a log; big fox"]);
    expect(tok.vocabSize).toBe(23);
    const m = model("gpt2-tiny", {}, tok.vocabSize);
    // Train tokens of exactly one window (T + 1): every batch is the same batch.
    const window = tok.encode("the cat s");
    expect(window).toHaveLength(9);
    const out = tmp();
    const o = trainOptions({
      steps: 200,
      lr: 1e-2,
      minLr: 1e-2,
      warmup: 0,
      weightDecay: 0,
      clip: 0,
      seed: 7,
    });
    const { trainer, session } = freshTrainer(m, cpu, dataset(tok, window), o, out);
    const losses: number[] = [];
    while (trainer.step < o.steps) {
      const r = await trainer.trainStep();
      losses.push(r.loss);
      if (r.loss < 0.01) break;
    }
    session.destroy();
    const first = losses[0];
    const last = losses[losses.length - 1];
    // Observed on cpu: 3.23 at step 1, 1.25 at step 10, below 0.05 at step 29, 0.009 at step 39.
    console.log(
      `overfit: loss ${first.toFixed(4)} (ln V = ${Math.log(tok.vocabSize).toFixed(4)}) -> ` +
        `${losses[9].toFixed(4)} at step 10 -> < 0.05 at step ${losses.findIndex((l) => l < 0.05) + 1} -> ` +
        `${last.toFixed(5)} at step ${losses.length}`,
    );
    // A random model starts near uniform: ln(vocab).
    expect(Math.abs(first - Math.log(tok.vocabSize))).toBeLessThan(0.5);
    expect(last).toBeLessThan(0.05);
    expect(losses.length).toBeLessThanOrEqual(200);
    expect(readLog(out)).toHaveLength(losses.length);
  });
});

describe("resume", () => {
  it("5 steps + checkpoint + a new Trainer for 7 steps equals 12 steps straight, bit for bit", async () => {
    const text = tmp();
    const file = join(text, "text.txt");
    writeFileSync(file, TEXT);
    const data = await loadDataset({ data: file, tokenizer: "char", minTokens: 10 });
    const m = model("gpt2-tiny", {}, data.tokenizer.vocabSize);
    const o = trainOptions({ steps: 12, evalEvery: 4, warmup: 3, lr: 3e-3, minLr: 3e-4 });

    // Uninterrupted.
    const a = tmp();
    const ra = freshTrainer(m, cpu, data, o, a);
    while (ra.trainer.step < o.steps) await ra.trainer.trainStep();
    ra.trainer.save();
    ra.session.destroy();

    // Interrupted: a checkpoint at step 5, two more logged steps lost in a "crash".
    const b = tmp();
    const rb = freshTrainer(m, cpu, data, o, b);
    for (let i = 0; i < 5; i++) await rb.trainer.trainStep();
    rb.trainer.save();
    await rb.trainer.trainStep();
    await rb.trainer.trainStep();
    rb.session.destroy();
    expect(readLog(b).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);

    const ck = loadCheckpoint(b);
    expect(ck.state.step).toBe(5);
    expect(ck.adam.step).toBe(5);
    const session = new Session(m.graphs, cpu);
    const resumed = new Trainer({
      session,
      data,
      weights: ck.weights,
      shapes: m.shapes,
      adam: ck.adam,
      options: ck.state.options as unknown as TrainOptions,
      out: b,
      model: ck.state.model,
      step: ck.state.step,
      batchRng: ck.state.batchRng,
      tokensSeen: ck.state.tokensSeen,
    });
    // The log keeps only what the checkpoint has seen.
    expect(readLog(b).map((r) => r.step)).toEqual([1, 2, 3, 4, 5]);
    while (resumed.step < o.steps) await resumed.trainStep();
    resumed.save();
    session.destroy();

    expect(sameBits(ra.weights, ck.weights)).toEqual([]);
    expect(sameBits(ra.adam.m, ck.adam.m)).toEqual([]);
    expect(sameBits(ra.adam.v, ck.adam.v)).toEqual([]);
    const fa = loadCheckpoint(a);
    const fb = loadCheckpoint(b);
    expect(sameBits(fa.weights, fb.weights)).toEqual([]);
    expect(fb.state.step).toBe(12);
    expect(fb.state.batchRng).toBe(fa.state.batchRng);
    expect(fb.state.tokensSeen).toBe(fa.state.tokensSeen);
    expect(fb.state.bestValLoss).toBe(fa.state.bestValLoss);

    const strip = (rs: Record<string, number>[]) =>
      rs.map(({ step, loss, lr, val_loss, grad_norm }) => ({
        step,
        loss,
        lr,
        val_loss,
        grad_norm,
      }));
    const la = strip(readLog(a));
    expect(la.map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(la.filter((r) => r.val_loss !== undefined).map((r) => r.step)).toEqual([4, 8, 12]);
    expect(strip(readLog(b))).toEqual(la);
  });
});

describe("learningRate", () => {
  const o = trainOptions({ steps: 20, warmup: 4, lr: 1, minLr: 0.1 });

  it("warms up linearly to lr", () => {
    expect(learningRate(0, o)).toBeCloseTo(0.25, 12);
    expect(learningRate(1, o)).toBeCloseTo(0.5, 12);
    expect(learningRate(2, o)).toBeCloseTo(0.75, 12);
    expect(learningRate(3, o)).toBeCloseTo(1, 12);
  });

  it("then decays along a cosine to minLr at the end, and stays there", () => {
    expect(learningRate(4, o)).toBeCloseTo(1, 12);
    // Halfway through the decay: the midpoint of lr and minLr.
    expect(learningRate(12, o)).toBeCloseTo(0.55, 12);
    expect(learningRate(8, o)).toBeCloseTo(0.1 + 0.45 * (1 + Math.cos(Math.PI / 4)), 12);
    expect(learningRate(20, o)).toBeCloseTo(0.1, 12);
    expect(learningRate(25, o)).toBeCloseTo(0.1, 12);
    for (let s = 4; s < 20; s++) {
      expect(learningRate(s + 1, o)).toBeLessThan(learningRate(s, o));
      expect(learningRate(s, o)).toBeGreaterThan(0.1);
      expect(learningRate(s, o)).toBeLessThanOrEqual(1);
    }
  });

  it("without warmup starts at lr", () => {
    const w = { ...o, warmup: 0 };
    expect(learningRate(0, w)).toBe(1);
    expect(learningRate(10, w)).toBeCloseTo(0.55, 12);
    expect(learningRate(20, w)).toBeCloseTo(0.1, 12);
  });
});

describe("a diverging loss", () => {
  let tokData: ReturnType<typeof dataset>;
  let m: Model;
  beforeAll(() => {
    const tok = buildCharTokenizer([TEXT]);
    tokData = dataset(tok, tok.encode(TEXT));
    m = model("gpt2-tiny", {}, tok.vocabSize);
  });

  async function diverge(
    o: TrainOptions,
    poison?: (w: Weights) => void,
  ): Promise<{ error: unknown; out: string; before: Buffer; step: number }> {
    const out = tmp();
    const { trainer, weights, session } = freshTrainer(m, cpu, tokData, o, out);
    await trainer.trainStep();
    await trainer.trainStep();
    trainer.save();
    const before = readFileSync(join(out, "checkpoint.safetensors"));
    poison?.(weights);
    let error: unknown;
    try {
      for (let i = 0; i < 10; i++) {
        await trainer.trainStep();
        if (trainer.step % 2 === 0) trainer.save();
      }
    } catch (e) {
      error = e;
    }
    session.destroy();
    return { error, out, before, step: trainer.step };
  }

  it("lr 1e30: TrainError naming the step; the previous checkpoint is intact", async () => {
    // Steps 1-2 at a sane rate, then 1e30 (warmup 2 of lr 1e30 would blow up at once).
    const o = trainOptions({ steps: 50, lr: 1e30, minLr: 1e30, warmup: 0, clip: 1 });
    const sane = trainOptions({ ...o, lr: 1e-3, minLr: 1e-3 });
    const out = tmp();
    const { trainer, weights, adam, session } = freshTrainer(m, cpu, tokData, sane, out);
    await trainer.trainStep();
    await trainer.trainStep();
    trainer.save();
    const before = readFileSync(join(out, "checkpoint.safetensors"));
    const wild = new Trainer({
      session,
      data: tokData,
      weights,
      shapes: m.shapes,
      adam,
      options: o,
      out,
      model: m.ref,
      step: trainer.step,
      tokensSeen: trainer.tokensSeen,
    });
    let error: unknown;
    try {
      for (let i = 0; i < 10; i++) await wild.trainStep();
    } catch (e) {
      error = e;
    }
    session.destroy();
    expect(error).toBeInstanceOf(TrainError);
    const msg = (error as Error).message;
    expect(msg).toMatch(/loss became (NaN|Infinity|-Infinity) at step \d+/);
    expect(msg).toContain(`at step ${wild.step + 1}`);
    expect(wild.step).toBeGreaterThanOrEqual(2);
    // Nothing was saved after the failure: the file is byte for byte the step-2 checkpoint.
    expect(readFileSync(join(out, "checkpoint.safetensors")).equals(before)).toBe(true);
    const ck = loadCheckpoint(out);
    expect(ck.state.step).toBe(2);
    for (const w of ck.weights.values()) expect(w.every(Number.isFinite)).toBe(true);
  });

  it("NaN weights: TrainError at the next step; the last checkpoint loads", async () => {
    const r = await diverge(trainOptions({ steps: 50 }), (w) => w.get("ln_f.weight")!.fill(NaN));
    expect(r.error).toBeInstanceOf(TrainError);
    expect((r.error as Error).message).toContain("the loss became NaN at step 3");
    expect(r.step).toBe(2);
    expect(readFileSync(join(r.out, "checkpoint.safetensors")).equals(r.before)).toBe(true);
    const ck = loadCheckpoint(r.out);
    expect(ck.state.step).toBe(2);
    expect(ck.weights.get("ln_f.weight")!.every(Number.isFinite)).toBe(true);
    expect(readLog(r.out).map((l) => l.step)).toEqual([1, 2]);
  });
});

describe("data", () => {
  /** Every token of a source, read back by position. */
  const all = (t: TokenSource) => {
    const out = new Uint32Array(t.length);
    t.read(0, out);
    return [...out];
  };

  it("caches tokens: the second load of the same text says cached and gives the same tokens", async () => {
    const cache = process.env.GPTC_CACHE_DIR!;
    const d = tmp();
    const file = join(d, "a.txt");
    writeFileSync(file, TEXT + "unique " + Math.random());
    const entries = () => readdirSync(cache).filter((f) => f.startsWith("tokens-"));
    const before = entries().length;
    const first = await loadDataset({ data: file, tokenizer: "char", minTokens: 10 });
    expect(first.cached).toBe(false);
    expect(entries()).toHaveLength(before + 1);
    const second = await loadDataset({ data: file, tokenizer: "char", minTokens: 10 });
    expect(second.cached).toBe(true);
    expect(second.dir).toBe(first.dir);
    expect(all(second.train)).toEqual(all(first.train));
    expect(all(second.val)).toEqual(all(first.val));
    expect(second.tokenizer.toJSON()).toEqual(first.tokenizer.toJSON());
    // Other text (or another tokenizer) is not answered from that entry.
    writeFileSync(file, TEXT + "changed " + Math.random());
    expect((await loadDataset({ data: file, tokenizer: "char", minTokens: 10 })).cached).toBe(
      false,
    );
    expect((await loadDataset({ data: file, tokenizer: "gpt2", minTokens: 10 })).cached).toBe(
      false,
    );
    for (const ds of [first, second]) ds.close?.();
  });

  it("splits the last 10% off for validation; too little text is a DataError", async () => {
    const d = tmp();
    const file = join(d, "a.txt");
    const text = "abcdefghij".repeat(10);
    writeFileSync(file, text);
    const ds = await loadDataset({ data: file, tokenizer: "char", minTokens: 5 });
    expect(ds.train.length).toBe(90);
    expect(ds.val.length).toBe(10);
    expect(ds.tokenizer.decode(all(ds.train)) + ds.tokenizer.decode(all(ds.val))).toBe(text);
    // Validation shorter than a window: validate on the training text.
    const small = await loadDataset({ data: file, tokenizer: "char", minTokens: 20 });
    expect(small.val).toBe(small.train);
    await expect(loadDataset({ data: file, tokenizer: "char", minTokens: 91 })).rejects.toThrow(
      DataError,
    );
  });

  it("reads a folder of files in sorted order, skipping empty ones, joined by end-of-text", async () => {
    const d = tmp();
    mkdirSync(join(d, "sub"));
    writeFileSync(join(d, "b.txt"), "bb");
    writeFileSync(join(d, "a.txt"), "aa");
    writeFileSync(join(d, "empty.txt"), "  \n");
    writeFileSync(join(d, "sub", "c.txt"), "cc");
    const ds = await loadDataset({ data: d, tokenizer: "char", valFraction: 0, minTokens: 2 });
    const tok = ds.tokenizer;
    expect(tok.decode(all(ds.train))).toBe("aa<|endoftext|>bb<|endoftext|>cc");
    await expect(loadDataset({ data: join(d, "nope"), minTokens: 2 })).rejects.toThrow(
      /no such file/,
    );
    const e = tmp();
    writeFileSync(join(e, "x.txt"), "");
    await expect(loadDataset({ data: e, minTokens: 2 })).rejects.toThrow(/no text/);
  });

  it("sampleBatch: windows of the data, targets are the inputs shifted by one, seeded", () => {
    const tokens = Uint32Array.from({ length: 100 }, (_, i) => i);
    const B = 6;
    const T = 10;
    const a = sampleBatch(tokens, B, T, new Rng(42));
    const starts = new Set<number>();
    for (let b = 0; b < B; b++) {
      const start = a.inputs[b * T];
      starts.add(start);
      expect(start).toBeGreaterThanOrEqual(0);
      expect(start + T).toBeLessThanOrEqual(99);
      for (let t = 0; t < T; t++) {
        expect(a.inputs[b * T + t]).toBe(start + t);
        expect(a.targets[b * T + t]).toBe(start + t + 1);
        if (t < T - 1) expect(a.targets[b * T + t]).toBe(a.inputs[b * T + t + 1]);
      }
    }
    expect(starts.size).toBeGreaterThan(1);
    const again = sampleBatch(tokens, B, T, new Rng(42));
    expect([...again.inputs]).toEqual([...a.inputs]);
    expect([...again.targets]).toEqual([...a.targets]);
    const other = sampleBatch(tokens, B, T, new Rng(43));
    expect([...other.inputs]).not.toEqual([...a.inputs]);
    // One rng, two draws: different batches (the generator advances).
    const rng = new Rng(42);
    sampleBatch(tokens, B, T, rng);
    expect([...sampleBatch(tokens, B, T, rng).inputs]).not.toEqual([...a.inputs]);
    // Exactly one window: always that window.
    const one = sampleBatch(tokens.subarray(0, T + 1), 3, T, new Rng(9));
    for (let b = 0; b < 3; b++)
      for (let t = 0; t < T; t++) {
        expect(one.inputs[b * T + t]).toBe(t);
        expect(one.targets[b * T + t]).toBe(t + 1);
      }
  });

  it("charTokenizer round-trips and drops unseen characters", () => {
    const tok = charTokenizer(["a", "b", "é"]);
    expect(tok.vocabSize).toBe(4);
    expect(tok.eot).toBe(3);
    expect(tok.encode("abéz")).toEqual([0, 1, 2]);
    expect(tok.decode([2, 0, 3])).toBe("éa<|endoftext|>");
  });
});

describe("the Brown corpus", () => {
  it("untagBrown strips part-of-speech tags and rebuilds punctuation and quotes", () => {
    const tagged =
      "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd ``/`` no/at evidence/nn ''/'' " +
      "had/hvd been/ben found/vbn ,/, it/pps said/vbd ./.\n\n\tIt's/pps+bez (/( here/rb )/) ;/. 1/2/cd cup/nn ./.\n";
    expect(untagBrown(tagged)).toBe(
      'The Fulton County Grand Jury said "no evidence" had been found, it said.\nIt\'s (here); 1/2 cup.',
    );
  });

  it("has 500 documents of plain English, without tags", () => {
    const docs = brownDocuments();
    expect(docs).toHaveLength(500);
    const all = docs.join("\n");
    expect(all.length).toBeGreaterThan(5_000_000);
    expect(docs[0].startsWith("The Fulton County Grand Jury said")).toBe(true);
    for (const d of docs) expect(d.trim().length).toBeGreaterThan(1000);
    const tags =
      /(?<=^|\s)[^\s/]\S*\/(nn|nns|np|np\$|nn-tl|at|vbd|vbn|vbz|vb|in|jj|rb|cc|cd|cs|pps|ppss|dt|bedz|hvd|md|to|ben|\.|,)(?=[\s$*+-]|$)/g;
    const found = all.match(tags) ?? [];
    expect(found.slice(0, 10)).toEqual([]);
    expect(all).not.toMatch(/``|''\/''/);
  });
});
