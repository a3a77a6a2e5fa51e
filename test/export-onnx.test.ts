// The ONNX export: for every shipped spec (small sizes) the files pass onnx's
// checker, ONNX Runtime's logits equal gptc's, and greedy decoding through the
// decode graph (KV cache as inputs and outputs) gives the tokens of gptc's own
// generator, each step's logits equal to gptc's forward pass over the prefix.
// On the tiny fixture, the reference logits and greedy tokens.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile, type CompiledModel } from "../src/api/compile.js";
import { exportModel, onnxDecodeSignature } from "../src/api/export.js";
import { ExportError } from "../src/export/common.js";
import { graphToOnnx } from "../src/export/onnx/model.js";
import { run } from "../src/ir/interpret.js";
import { readSafetensors } from "../src/runtime/safetensors.js";
import type { Weights } from "../src/runtime/weights.js";
import { err, randomIds, randomWeights, shippedSpecs, smallModel, tol } from "./helpers/export.js";
import { t } from "./helpers/ir.js";
import { ortGreedy, ortLogits } from "./helpers/onnx.js";
import { runPython } from "./helpers/python.js";

const tmp = mkdtempSync(join(tmpdir(), "gptc-export-onnx-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const [B, T] = [2, 6];

interface Exported {
  model: CompiledModel;
  weights: Weights;
  dir: string;
}
const exported = new Map<string, Exported>();

/** gptc's float64 forward pass (the reference interpreter on the optimized forward graph). */
function gptcLogits(e: Exported, tokens: number[], b: number, n: number) {
  const w = new Map(
    e.model.weights.map((s) => [
      s.key,
      { shape: s.shape, data: Float64Array.from(e.weights.get(s.key)!) },
    ]),
  );
  return run(e.model.graphs.forwardOpt, { inputs: { tokens: t([b, n], tokens) }, weights: w })
    .logits;
}

beforeAll(async () => {
  for (const [i, file] of shippedSpecs.entries()) {
    const model = smallModel(file);
    const weights = randomWeights(model, 40 + i);
    const dir = join(tmp, `spec${i}`);
    await exportModel(model, { format: "onnx", out: dir, weights });
    exported.set(file, { model, weights, dir });
  }
  const files = [...exported.values()].flatMap((e) => [
    join(e.dir, "model.onnx"),
    join(e.dir, "decode.onnx"),
  ]);
  // onnx's own checker, with shape inference (full_check): any malformed node fails here.
  runPython([
    "-c",
    "import sys, onnx\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\nprint(onnx.__version__)",
    ...files.map((f) => resolve(f)),
  ]);
}, 240_000);

describe.each(shippedSpecs)("%s", (file) => {
  it("ONNX Runtime's logits equal gptc's", async () => {
    const e = exported.get(file)!;
    const tokens = randomIds(B, T, e.model.vocabSize!, 7);
    const got = await ortLogits(join(e.dir, "model.onnx"), tokens, B, T);
    const ref = gptcLogits(e, tokens, B, T);
    expect(got.dims).toEqual(ref.shape);
    expect(err(got.data, ref.data)).toBeLessThanOrEqual(tol.logits);
  });

  it("greedy decoding through decode.onnx gives gptc's tokens", async () => {
    const e = exported.get(file)!;
    const prompt = randomIds(1, 3, e.model.vocabSize!, 8);
    const steps = 5;
    const ort = await ortGreedy(join(e.dir, "decode.onnx"), prompt, steps);
    const session = await e.model.open({ backend: "cpu", weights: e.weights });
    try {
      const [g] = await session.generate([prompt], {
        temperature: 0,
        maxNewTokens: steps,
        stopAtEnd: false,
      });
      expect(ort.tokens).toEqual(g.tokens);
    } finally {
      session.close();
    }
    // Each step's logits (read from the cache) equal a full forward pass over the prefix.
    const seq = [...prompt, ...ort.tokens];
    ort.logits.forEach((row, s) => {
      const n = prompt.length + s;
      const full = gptcLogits(e, seq.slice(0, n), 1, n);
      const V = row.length;
      expect(err(row, full.data.subarray((n - 1) * V)), `step ${s}`).toBeLessThanOrEqual(
        tol.logits,
      );
    });
  });
});

describe("the tiny fixture", () => {
  const fixture = "test/fixtures/tiny";
  const cs = JSON.parse(readFileSync(`${fixture}/case.json`, "utf8"));
  const expected = readSafetensors(`${fixture}/expected.safetensors`).tensors;
  const dir = join(tmp, "tiny");

  it("exports a session's weights; logits, greedy tokens and their logits equal the reference", async () => {
    const model = compile({ file: "specs/gpt2-tiny.model" });
    const session = await model.open({ backend: "cpu", weights: `${fixture}/model.safetensors` });
    try {
      await exportModel(model, { format: "onnx", out: dir, weights: session });
    } finally {
      session.close();
    }
    const logits = await ortLogits(
      join(dir, "model.onnx"),
      cs.inputs.flat(),
      2,
      cs.inputs[0].length,
    );
    expect(err(logits.data, expected.get("logits")!.data)).toBeLessThanOrEqual(tol.logits);
    const gen = await ortGreedy(
      join(dir, "decode.onnx"),
      cs.generation.prompt,
      cs.generation.new_tokens.length,
    );
    expect(gen.tokens).toEqual(cs.generation.new_tokens);
    const genLogits = expected.get("gen_logits")!;
    const V = genLogits.shape[1];
    gen.logits.forEach((row, s) =>
      expect(
        err(row, genLogits.data.subarray(s * V, (s + 1) * V)),
        `step ${s}`,
      ).toBeLessThanOrEqual(tol.logits),
    );
    expect(onnxDecodeSignature(model)).toEqual({
      inputs: [
        "tokens",
        "cache_len",
        ...[0, 1].flatMap((l) => [0, 1].map((c) => `cache.h.${l}.attn.cache${c}`)),
      ],
      outputs: [
        ...[0, 1].flatMap((l) => [0, 1].map((c) => `cache.h.${l}.attn.cache${c}.next`)),
        "logits",
      ],
    });
  });
});

describe("bad input", () => {
  it("an op with no ONNX mapping is named with its spec line", () => {
    const model = compile({ file: "specs/gpt2-tiny.model" });
    // The training graph holds autodiff's scatter_add, which has no ONNX operator here.
    expect(() => graphToOnnx(model.graphs.training!, new Map(), "")).toThrow(ExportError);
    expect(() => graphToOnnx(model.graphs.training!, new Map(), "")).toThrow(
      /op '(scatter_add|put)' has no ONNX mapping \(from specs\/std\/nn\.model:\d+:\d+\)/,
    );
  });

  it("weights that do not fit are refused before anything is written", async () => {
    const model = compile({ file: "specs/gpt2-tiny.model" });
    const out = join(tmp, "refused");
    await expect(exportModel(model, { format: "onnx", out, weights: new Map() })).rejects.toThrow(
      /missing/,
    );
    expect(() => readFileSync(join(out, "model.onnx"))).toThrow();
  });
});
