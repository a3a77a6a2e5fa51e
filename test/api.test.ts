// The library's public API (src/index.ts), used as a program would: specs as
// text with imports from a map of files, errors as values with codes and
// positions, sessions that generate, stream, train and save.
import { describe, expect, it } from "vitest";
import {
  buildCharTokenizer,
  compile,
  DiagnosticError,
  errorCodes,
  GptcError,
  gpt2Tokenizer,
  load,
  memoryTokens,
  TokenizerError,
  train,
  UsageError,
  type Dataset,
} from "../src/index.js";
import { tempDir } from "./helpers/train.js";

const tinySpec = `import "std/nn.model"
import "blocks.model"

model toy {
  param vocab = 50257 from "vocab_size"
  param ctx = 16 from "n_positions"
  param d = 16
  input tokens: int[B, T]
  x = embedding(tokens, vocab, d) as wte + embedding(positions(T), ctx, d) as wpe
  x = x + block(layernorm(x) as ln, 2) as blk
  output logits: [B, T, vocab] = x @ wte.weight.T
  input targets: int[B, T]
  loss = cross_entropy(logits, targets)
}
`;
const files = {
  "blocks.model": `import "std/nn.model"
fn block(x: [B, T, C], heads) {
  return causal_self_attention(x, heads)
}
`,
};

describe("compile", () => {
  it("takes a spec as text with its imports from a map of files", () => {
    const m = compile(tinySpec, { files, vocabSize: 40 });
    expect(m.name).toBe("toy");
    expect(m.context).toBe(16);
    expect(m.outputs.map((o) => o.name)).toEqual(["logits", "loss"]);
    // wte 40x16 + wpe 16x16 + ln 2x16 + c_attn 16x48+48 + c_proj 16x16+16
    expect(m.parameters).toBe(640 + 256 + 32 + 768 + 48 + 256 + 16);
    expect(m.trainable).toBe(true);
  });

  it("answers with the compiler's texts and a diagram", async () => {
    const m = compile(tinySpec, { files, vocabSize: 40 });
    expect(await m.artifact("ir-opt", { batch: 2, seq: 8 })).toMatch(/^graph toy/m);
    expect(await m.artifact("plan", { batch: 2, seq: 8 })).toContain("B=2");
    expect(m.diagram()).toMatch(/^flowchart/m);
    expect(m.diagram({ format: "dot", level: "kernels" })).toMatch(/^digraph/m);
    // Sizes default to what the model holds: seq at most its context.
    expect(m.compilation().summary.seq).toBe(16);
    expect(() => m.compilation({ seq: 17 })).toThrow(UsageError);
  });

  it("reports a spec's problems as a DiagnosticError with code, file, line and column", () => {
    let err: unknown;
    try {
      compile(
        'import "std/nn.model"\nmodel bad {\n  input x: float[N]\n  output y = gelu(x) + nope\n}\n',
        {
          path: "/virtual/bad.model",
        },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DiagnosticError);
    expect(err).toBeInstanceOf(GptcError);
    const d = err as DiagnosticError;
    expect(d.code).toBe("diagnostics");
    expect(d.diagnostics[0].span).toMatchObject({ line: 4 });
    expect(d.diagnostics[0].message).toContain("nope");
    expect(d.format()).toMatch(/bad\.model:4:\d+: error: .*nope[\s\S]*\^/);
  });

  it("an import that no map or file provides is a diagnostic at the import", () => {
    const e = (() => {
      try {
        compile(tinySpec, { vocabSize: 40, path: "/virtual/toy.model" });
      } catch (x) {
        return x as DiagnosticError;
      }
    })();
    expect(e?.code).toBe("diagnostics");
    expect(e?.diagnostics[0].message).toMatch(/cannot read '.*blocks\.model'/);
    expect(e?.diagnostics[0].span?.line).toBe(2);
  });

  it("every error class's code is in the catalog", () => {
    expect(new UsageError("x").code).toBe("usage");
    expect(new TokenizerError("x").code).toBe("tokenizer");
    for (const code of ["usage", "diagnostics", "tokenizer", "weights", "data"])
      expect(Object.keys(errorCodes)).toContain(code);
  });
});

const text = "the cat sat on the mat. the dog sat on the log. ".repeat(60);
const tokenizer = buildCharTokenizer([text]);
const ids = Uint32Array.from(tokenizer.encode(text));
const data: Dataset = {
  tokenizer,
  train: memoryTokens(ids.subarray(0, 2400)),
  val: memoryTokens(ids.subarray(2400)),
  source: "test text",
  cached: false,
};

describe("sessions", () => {
  it("train lowers the loss; generate and stream give the same text; safetensors reopen to the same weights", async () => {
    const model = compile(tinySpec, { files, vocabSize: tokenizer.vocabSize });
    const session = await model.open({ backend: "cpu", tokenizer, seed: 3 });
    const losses: number[] = [];
    const s = await session.train(data, {
      steps: 25,
      batch: 4,
      seq: 16,
      lr: 1e-2,
      evalEvery: 0,
      onStep: (r) => losses.push(r.loss),
    });
    expect(s.steps).toBe(25);
    expect(losses).toHaveLength(25);
    expect(s.loss!).toBeLessThan(losses[0] - 0.3);

    const opts = { maxNewTokens: 20, temperature: 0, stopAtEnd: false };
    const [gen] = await session.generate("the ", opts);
    let streamed = "";
    for await (const t of session.stream("the ", opts)) streamed += t.text;
    expect(gen.tokens).toHaveLength(20);
    expect(streamed).toBe(gen.text);

    const bytes = session.safetensors();
    const again = await model.open({ backend: "cpu", tokenizer, weights: bytes });
    const [gen2] = await again.generate("the ", opts);
    expect(gen2.tokens).toEqual(gen.tokens);
    session.close();
    again.close();
  }, 120_000);

  it("a tokenizer with more ids than the model's vocabulary is refused, naming both sizes", async () => {
    const model = compile(tinySpec, { files, vocabSize: tokenizer.vocabSize });
    await expect(model.open({ backend: "cpu", tokenizer: gpt2Tokenizer() })).rejects.toThrow(
      new RegExp(`50257 ids but toy's vocabulary is ${tokenizer.vocabSize}`),
    );
  });

  it("an abort signal stops training after the current step", async () => {
    const model = compile(tinySpec, { files, vocabSize: tokenizer.vocabSize });
    const session = await model.open({ backend: "cpu", tokenizer, seed: 1 });
    const stop = new AbortController();
    const s = await session.train(data, {
      steps: 50,
      batch: 2,
      seq: 8,
      evalEvery: 0,
      signal: stop.signal,
      onStep: (r) => r.step === 3 && stop.abort(),
    });
    expect(s.steps).toBe(3);
    expect(s.stopped).toBe(true);
    session.close();
  });
});

describe("train() and load() with a run folder", () => {
  it("a spec given as text trains into a folder that load() opens with its own tokenizer", async () => {
    const out = tempDir("gptc-api-run-");
    const corpus = tempDir("gptc-api-text-");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(`${corpus}/a.txt`, text);
    const run = await train({
      spec: tinySpec,
      compile: { files, path: `${corpus}/toy.model` },
      data: corpus,
      tokenizer: "char",
      steps: 4,
      batch: 2,
      backend: "cpu",
      out,
    });
    expect(run.steps).toBe(4);
    run.session.close();
    // The checkpoint keeps the spec's text: no file needed to open it again.
    const { session, kind } = await load(out, { backend: "cpu" });
    expect(kind).toBe("checkpoint");
    expect(session.tokenizer!.vocabSize).toBe(tokenizer.vocabSize);
    const [g] = await session.generate("the", {
      maxNewTokens: 3,
      temperature: 0,
      stopAtEnd: false,
    });
    expect(g.tokens).toHaveLength(3);
    session.close();
  }, 120_000);
});
