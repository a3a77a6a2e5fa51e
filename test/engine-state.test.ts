// Training state in the WebAssembly engine's memory (webasm): weights and AdamW
// moments moved there (optimizer.ts inEngine), gradients handed back as views of
// the executor's arena (lossAndGrads { views }). Nothing may change but where
// the numbers live: the same steps give the same bits as with JavaScript arrays.
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackend, type Backend } from "../src/runtime/backend.js";
import { gemmEngine } from "../src/runtime/gemm.js";
import { sampleBatch } from "../src/runtime/data.js";
import { adamwStep, clipGradients, inEngine, newAdamWState } from "../src/runtime/optimizer.js";
import { Rng } from "../src/runtime/rng.js";
import { Session } from "../src/runtime/session.js";
import { buildCharTokenizer } from "../src/runtime/tokenizer.js";
import { learningRate } from "../src/runtime/trainer.js";
import type { Weights } from "../src/runtime/weights.js";
import { dataset, freshTrainer, model, tempDir, trainOptions } from "./helpers/train.js";

let webasm: Backend;
let cpu: Backend;
const dirs: string[] = [];

beforeAll(async () => {
  webasm = await createBackend("webasm");
  cpu = await createBackend("cpu");
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const tok = buildCharTokenizer(["the quick brown fox jumps over the lazy dog; a cat sat on a mat"]);
const m = model("gpt2-tiny", {}, tok.vocabSize);
const data = dataset(tok, tok.encode("the quick brown fox jumps over the lazy dog; a cat sat"));

/** `steps` optimizer steps of gpt2-tiny on webasm; `engine`: state moved into its memory. */
async function train(engine: boolean, accum: number, steps = 3): Promise<Weights> {
  const init = m.init(5);
  const adam = newAdamWState(init);
  const placed = engine ? inEngine(webasm, init, adam) : undefined;
  if (engine) expect(placed, "gpt2-tiny's state fits").toBeDefined();
  const out = tempDir();
  dirs.push(out);
  const options = trainOptions({ steps, accum, lr: 3e-3 });
  const start = placed ? { weights: placed.weights, adam: placed.state } : { weights: init, adam };
  const { trainer, weights, session } = freshTrainer(m, webasm, data, options, out, start);
  for (let s = 0; s < steps; s++) await trainer.trainStep();
  session.destroy();
  // Copies: the engine's arena is given back (and may be reused) below.
  const result = new Map([...weights].map(([k, v]) => [k, v.slice()]));
  placed?.release();
  return result;
}

function differing(a: Weights, b: Weights): string[] {
  return [...a.keys()].filter((k) => {
    const x = a.get(k)!;
    const y = b.get(k)!;
    return !Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(
      Buffer.from(y.buffer, y.byteOffset, y.byteLength),
    );
  });
}

describe("training state in the engine's memory", () => {
  it("moves weights and moments into it as views, values unchanged; the originals stay", () => {
    const w = m.init(1);
    const adam = newAdamWState(w);
    adam.m.get("wte.weight")!.fill(0.25);
    const placed = inEngine(webasm, w, adam)!;
    const engine = gemmEngine();
    for (const [k, v] of placed.weights) {
      expect(engine.owns(v), k).toBe(true);
      expect(v).toEqual(w.get(k));
      expect(v).not.toBe(w.get(k));
    }
    expect(placed.state.m.get("wte.weight")!.every((x) => x === 0.25)).toBe(true);
    expect([...placed.state.v.values()].every((v) => engine.owns(v))).toBe(true);
    expect(engine.owns(w.get("wte.weight")!)).toBe(false);
    placed.release();
    placed.release(); // twice is harmless
  });

  it("stays out where it does not fit the budget or the backend has no engine kernels", () => {
    const w = m.init(1);
    expect(inEngine(webasm, w, newAdamWState(w), 1024)).toBeUndefined();
    expect(inEngine(cpu, w, newAdamWState(w))).toBeUndefined();
  });

  for (const accum of [1, 2])
    it(`gives the same weights, bit for bit, as JavaScript arrays (accum ${accum})`, async () => {
      const js = await train(false, accum);
      const engine = await train(true, accum);
      expect(differing(js, engine)).toEqual([]);
      // And training moved them (the comparison is not of two untouched inits).
      expect(differing(js, m.init(5)).length).toBeGreaterThan(0);
    });

  it("accumulates micro-batches as their average, as computed by hand (views not reused)", async () => {
    const o = trainOptions({ steps: 1, accum: 2, lr: 3e-3 });
    const trained = await train(true, 2, 1);
    // By hand: the trainer's two batches, gradients copied, summed and halved.
    const weights = m.init(5);
    const adam = newAdamWState(weights);
    const session = new Session(m.graphs, webasm);
    const rng = new Rng(o.seed);
    const grads: Weights[] = [];
    for (let a = 0; a < 2; a++) {
      const { inputs, targets } = sampleBatch(data.train, o.batch, o.seq, rng);
      const dims = { B: o.batch, T: o.seq };
      grads.push((await session.lossAndGrads(weights, { tokens: inputs, targets }, dims)).grads);
    }
    session.destroy();
    for (const [k, g] of grads[0]) {
      const h = grads[1].get(k)!;
      for (let i = 0; i < g.length; i++) g[i] += h[i];
      for (let i = 0; i < g.length; i++) g[i] /= 2;
    }
    // The two batches differ (else a reused view would go unnoticed).
    expect(differing(grads[0], grads[1]).length).toBeGreaterThan(0);
    clipGradients(grads[0], o.clip);
    const lr = learningRate(0, o);
    const cfg = { lr, beta1: o.beta1, beta2: o.beta2, eps: 1e-8, weightDecay: o.weightDecay };
    adamwStep(weights, grads[0], m.shapes, adam, cfg, lr);
    expect(differing(trained, weights)).toEqual([]);
  });

  it("gradients as views of the arena equal the copies, and are reused by the next run", async () => {
    const session = new Session(m.graphs, webasm);
    const w = m.init(2);
    const inputs = {
      tokens: Float32Array.from({ length: 16 }, (_, i) => i % tok.vocabSize),
      targets: Float32Array.from({ length: 16 }, (_, i) => (i * 7) % tok.vocabSize),
    };
    const dims = { B: 2, T: 8 };
    const copies = await session.lossAndGrads(w, inputs, dims);
    const views = await session.lossAndGrads(w, inputs, dims, { views: true });
    expect(views.loss).toBe(copies.loss);
    const g = views.grads.get("wte.weight")!;
    expect(gemmEngine().owns(g)).toBe(true);
    expect(gemmEngine().owns(copies.grads.get("wte.weight")!)).toBe(false);
    expect(differing(copies.grads, views.grads)).toEqual([]);
    // The next run writes the same memory: a view is valid until then only.
    const again = await session.lossAndGrads(w, inputs, dims, { views: true });
    expect(again.grads.get("wte.weight")!.byteOffset).toBe(g.byteOffset);
    session.destroy();
  });
});
