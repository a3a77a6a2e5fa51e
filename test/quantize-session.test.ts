// Weight-only quantization as a program uses it: a small GPT-2 trained for a
// moment, opened with int8 and float16 weights; their perplexity on held-out
// text against float32's, their greedy tokens against float32's, the narrow
// safetensors round trip, and the CLI flag.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  buildCharTokenizer,
  compile,
  memoryTokens,
  type CompiledModel,
  type Dataset,
  type Weights,
} from "../src/index.js";
import { parseSafetensors } from "../src/runtime/safetensors.js";
import { REPO } from "./helpers/train.js";

const text =
  "the quick brown fox jumps over the lazy dog. a cat sat on the mat and the dog ran to the hat. ".repeat(
    40,
  );
const tokenizer = buildCharTokenizer([text]);
const ids = tokenizer.encode(text);
const split = Math.floor(ids.length * 0.8);
const data: Dataset = {
  tokenizer,
  train: memoryTokens(Uint32Array.from(ids.slice(0, split))),
  val: memoryTokens(Uint32Array.from(ids.slice(split))),
  source: "test text",
  cached: false,
};
const heldOut = ids.slice(split);
const prompts = [0, 97, 311, 505].map((at) => heldOut.slice(at, at + 6));

let model: CompiledModel;
let trained: Weights;

beforeAll(async () => {
  model = compile(
    { file: join(REPO, "specs", "gpt2-tiny.model") },
    {
      vocabSize: tokenizer.vocabSize,
    },
  );
  const s = await model.open({ backend: "webasm", tokenizer, seed: 5 });
  await s.train(data, { steps: 60, batch: 8, seq: 32, lr: 1e-2, evalEvery: 0 });
  trained = new Map([...s.weights].map(([k, w]) => [k, Float32Array.from(w)]));
  s.close();
}, 120_000);

async function measure(weightsDtype: "f32" | "f16" | "int8", backend: "webasm" | "cpu" = "webasm") {
  const s = await model.open({ backend, tokenizer, weights: trained, weightsDtype });
  const ppl = await s.perplexity(heldOut, { window: 32 });
  const greedy = await s.generate(prompts, { temperature: 0, maxNewTokens: 24, stopAtEnd: false });
  return { s, ppl, greedy: greedy.map((g) => g.tokens) };
}

/** Share of positions where two runs chose the same token. */
function agreement(a: number[][], b: number[][]): number {
  let same = 0;
  let all = 0;
  a.forEach((row, i) =>
    row.forEach((t, j) => {
      all++;
      if (t === b[i][j]) same++;
    }),
  );
  return same / all;
}

describe("quantized weights on a trained model", () => {
  it("perplexity within 1% (int8) and 0.1% (f16) of float32; greedy tokens agree", async () => {
    const f32 = await measure("f32");
    const f16 = await measure("f16");
    const i8 = await measure("int8");
    // The model has learnt something: far below the vocabulary's uniform perplexity.
    expect(f32.ppl).toBeLessThan(tokenizer.vocabSize / 3);
    const rel = (x: number) => Math.abs(x / f32.ppl - 1);
    console.log(
      `perplexity f32 ${f32.ppl.toFixed(4)}, f16 ${f16.ppl.toFixed(4)} (${(100 * rel(f16.ppl)).toFixed(4)}%),` +
        ` int8 ${i8.ppl.toFixed(4)} (${(100 * rel(i8.ppl)).toFixed(3)}%);` +
        ` greedy agreement f16 ${agreement(f16.greedy, f32.greedy)}, int8 ${agreement(i8.greedy, f32.greedy)}`,
    );
    expect(rel(f16.ppl)).toBeLessThan(0.001);
    expect(rel(i8.ppl)).toBeLessThan(0.01);
    // Quantization moved something (int8 is not secretly float32).
    expect(i8.ppl).not.toBe(f32.ppl);
    expect(agreement(f16.greedy, f32.greedy)).toBeGreaterThanOrEqual(0.95);
    expect(agreement(i8.greedy, f32.greedy)).toBeGreaterThanOrEqual(0.75);
    expect([f32.s.weightsDtype, f16.s.weightsDtype, i8.s.weightsDtype]).toEqual([
      "f32",
      "f16",
      "int8",
    ]);
    // The cpu backend computes with the same dequantized values.
    const cpu = await measure("int8", "cpu");
    expect(Math.abs(cpu.ppl / i8.ppl - 1)).toBeLessThan(1e-4);
    for (const m of [f32, f16, i8, cpu]) m.s.close();
  }, 120_000);

  it("saves int8 as I8 + <key>_scale and f16 as F16, and reopens to the same numbers", async () => {
    for (const dtype of ["int8", "f16"] as const) {
      const s = await model.open({
        backend: "webasm",
        tokenizer,
        weights: trained,
        weightsDtype: dtype,
      });
      const bytes = s.safetensors();
      const file = parseSafetensors(bytes);
      const head = file.tensors.get("h.0.mlp.c_fc.weight")!;
      expect(head.dtype).toBe(dtype === "int8" ? "I8" : "F16");
      expect(file.tensors.get("wte.weight")!.dtype).toBe(dtype === "int8" ? "I8" : "F16");
      expect(file.metadata.weights_dtype).toBe(dtype);
      // Layernorms and biases stay float32.
      expect(file.tensors.get("ln_f.weight")!.dtype).toBe("F32");
      if (dtype === "int8") {
        // One scale per output channel: the columns of [in, out], the rows of the tied head [vocab, d].
        expect(file.tensors.get("h.0.mlp.c_fc.weight_scale")!.shape).toEqual([1, head.shape[1]]);
        expect(file.tensors.get("wte.weight_scale")!.shape).toEqual([tokenizer.vocabSize, 1]);
      }
      // A quarter (int8) or half (f16) of the float32 file, roughly.
      expect(bytes.length).toBeLessThan((dtype === "int8" ? 0.4 : 0.6) * 4 * model.parameters);
      const back = await model.open({ backend: "webasm", tokenizer, weights: bytes });
      expect(back.weightsDtype).toBe(dtype);
      for (const [k, w] of s.weights) expect(back.weights.get(k), k).toEqual(w);
      const [a, b] = [await s.perplexity(heldOut), await back.perplexity(heldOut)];
      expect(b).toBe(a);
      // Asked for float32, the same file computes as plain float32 weights.
      const wide = await model.open({
        backend: "webasm",
        tokenizer,
        weights: bytes,
        weightsDtype: "f32",
      });
      expect(wide.weightsDtype).toBe("f32");
      for (const x of [s, back, wide]) x.close();
    }
  }, 120_000);

  it("training a quantized session trains float32 weights from the dequantized values", async () => {
    const s = await model.open({
      backend: "webasm",
      tokenizer,
      weights: trained,
      weightsDtype: "int8",
    });
    await s.train(data, { steps: 2, batch: 2, seq: 8, evalEvery: 0 });
    expect(s.weightsDtype).toBe("f32");
    s.close();
  }, 60_000);

  it("an unknown weightsDtype is a usage error", async () => {
    await expect(
      model.open({ backend: "cpu", tokenizer, weightsDtype: "int4" as "int8" }),
    ).rejects.toMatchObject({
      code: "usage",
      message: expect.stringMatching(/int4.*f32, f16, int8/),
    });
  });
});

describe("gptc generate --weights-dtype", () => {
  const gptc = (args: string[]) =>
    spawnSync(process.execPath, [join(REPO, "bin", "gptc.js"), ...args], {
      cwd: REPO,
      encoding: "utf8",
    });

  it("refuses an unknown type in one line, and generates with int8", () => {
    const bad = gptc(["generate", "specs/gpt2-tiny.model", "--weights-dtype", "int4"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--weights-dtype int4: expected f32, f16, int8/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const ok = gptc([
      "generate",
      "specs/gpt2-tiny.model",
      "--weights-dtype",
      "int8",
      "--prompt",
      "hi",
      "--max-new-tokens",
      "3",
      "--backend",
      "webasm",
    ]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/int8 weights/);
    expect(ok.stderr).toMatch(/3 tokens in/);
  }, 60_000);
});
