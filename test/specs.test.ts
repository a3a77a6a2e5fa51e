// The shipped specs compile cleanly, and GPT-2's parameter counts and weight keys
// are exactly those of the public checkpoints.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { frontend } from "../src/dsl/frontend.js";
import { dimValue } from "../src/ir/dims.js";
import { lowerProgram, type Lowered, type LowerOptions } from "../src/ir/lower.js";
import { summarize } from "../src/ir/summary.js";
import { readSafetensors } from "../src/runtime/safetensors.js";
import { REPO, SPEC_DIR } from "./helpers/dsl.js";

const FIXTURE = join(REPO, "test", "fixtures", "tiny");
const tinyConfig = JSON.parse(readFileSync(join(FIXTURE, "config.json"), "utf8")) as Record<
  string,
  unknown
>;

function lower(spec: string, opts: LowerOptions = {}): Lowered {
  const fe = frontend(join(SPEC_DIR, spec));
  expect(fe.diagnostics.items.map((d) => d.message)).toEqual([]);
  return lowerProgram(fe.program!, opts);
}

/** Weight key -> shape (as numbers), in declaration order. */
function weights(l: Lowered): Map<string, number[]> {
  return new Map(
    l.graph
      .nodesOf("weight")
      .map((w) => [w.attrs.name as string, w.type.shape.map((d) => dimValue(d)!)] as const),
  );
}

/** The keys and shapes of Hugging Face's GPT2LMHeadModel checkpoint (transformer.* prefix dropped). */
function gpt2Checkpoint(c: {
  vocab: number;
  ctx: number;
  d: number;
  layers: number;
}): Map<string, number[]> {
  const { vocab, ctx, d, layers } = c;
  const m = new Map<string, number[]>([
    ["wte.weight", [vocab, d]],
    ["wpe.weight", [ctx, d]],
  ]);
  for (let i = 0; i < layers; i++) {
    const h = `h.${i}`;
    m.set(`${h}.ln_1.weight`, [d]);
    m.set(`${h}.ln_1.bias`, [d]);
    m.set(`${h}.attn.c_attn.weight`, [d, 3 * d]);
    m.set(`${h}.attn.c_attn.bias`, [3 * d]);
    m.set(`${h}.attn.c_proj.weight`, [d, d]);
    m.set(`${h}.attn.c_proj.bias`, [d]);
    m.set(`${h}.ln_2.weight`, [d]);
    m.set(`${h}.ln_2.bias`, [d]);
    m.set(`${h}.mlp.c_fc.weight`, [d, 4 * d]);
    m.set(`${h}.mlp.c_fc.bias`, [4 * d]);
    m.set(`${h}.mlp.c_proj.weight`, [4 * d, d]);
    m.set(`${h}.mlp.c_proj.bias`, [d]);
  }
  m.set("ln_f.weight", [d]);
  m.set("ln_f.bias", [d]);
  return m;
}

const count = (shapes: Iterable<number[]>) =>
  [...shapes].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
const sorted = (m: Map<string, number[]>) =>
  [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

const specFiles = readdirSync(SPEC_DIR)
  .filter((f) => f.endsWith(".model"))
  .sort();

describe("every shipped spec", () => {
  it("there are specs to check", () => {
    expect(specFiles).toEqual(expect.arrayContaining(["gpt2-small.model", "gpt2-tiny.model"]));
  });

  for (const spec of specFiles) {
    it(`${spec}: front end and lowering with no diagnostics`, () => {
      const fe = frontend(join(SPEC_DIR, spec));
      expect(fe.diagnostics.items).toEqual([]);
      expect(fe.program).toBeDefined();
      const l = lowerProgram(fe.program!, {});
      const s = summarize(l);
      expect(s.parameters).toBeGreaterThan(0);
      expect(Number.isInteger(s.parameters)).toBe(true);
      expect(s.outputs.length).toBeGreaterThan(0);
      // Weight keys are unique.
      expect(new Set(l.graph.nodesOf("weight").map((w) => w.attrs.name)).size).toBe(s.weights);
    });
  }

  it("the standard library has no model of its own", () => {
    const fe = frontend(join(SPEC_DIR, "std", "nn.model"));
    expect(fe.diagnostics.items.map((d) => d.message)).toEqual([
      expect.stringMatching(/defines no model$/),
    ]);
  });
});

describe("gpt2-small", () => {
  const l = lower("gpt2-small.model");

  it("has exactly 124,439,808 parameters (the tied LM head counted once)", () => {
    expect(summarize(l).parameters).toBe(124_439_808);
    // The head is wte.weight.T: no weight of its own.
    expect(summarize(l).weights).toBe(2 + 12 * 12 + 2);
  });

  it("has the weight keys and shapes of the public checkpoint, exactly", () => {
    const expected = gpt2Checkpoint({ vocab: 50257, ctx: 1024, d: 768, layers: 12 });
    expect(count(expected.values())).toBe(124_439_808);
    const actual = weights(l);
    expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
    expect(sorted(actual)).toEqual(sorted(expected));
    expect(actual.get("h.0.attn.c_attn.weight")).toEqual([768, 2304]);
    expect(actual.get("h.11.attn.c_attn.bias")).toEqual([2304]);
    expect(actual.get("h.5.mlp.c_fc.weight")).toEqual([768, 3072]);
  });

  it("initializers: normal for matrices, ones/zeros for LayerNorm, smaller std for residual projections", () => {
    const byKey = new Map(l.graph.nodesOf("weight").map((w) => [w.attrs.name as string, w.attrs]));
    expect(byKey.get("h.0.ln_1.weight")).toMatchObject({ init: "ones" });
    expect(byKey.get("h.0.ln_1.bias")).toMatchObject({ init: "zeros" });
    expect(byKey.get("wte.weight")).toMatchObject({ init: "normal", std: 0.02 });
    expect(byKey.get("wpe.weight")).toMatchObject({ init: "normal", std: 0.01 });
    expect(byKey.get("h.3.attn.c_proj.weight")).toMatchObject({ init: "normal" });
    expect(byKey.get("h.3.attn.c_proj.weight")!.std).toBeCloseTo(0.02 / Math.sqrt(24), 12);
  });

  it("inputs, outputs and parameters", () => {
    const s = summarize(l);
    expect(s.name).toBe("gpt2");
    expect(s.inputs).toEqual([
      { name: "tokens", type: "i32[B, T]" },
      { name: "targets", type: "i32[B, T]" },
    ]);
    expect(s.outputs).toEqual([
      { name: "logits", type: "f32[B, T, 50257]" },
      { name: "loss", type: "f32[]" },
    ]);
    expect(Object.fromEntries(s.params.map((p) => [p.name, p.value]))).toEqual({
      vocab: 50257,
      ctx: 1024,
      d: 768,
      layers: 12,
      heads: 12,
      eps: 1e-5,
      embd_pdrop: 0.1,
      attn_pdrop: 0.1,
      resid_pdrop: 0.1,
    });
    expect(l.loss).toBeDefined();
  });

  const presets: [string, number, { d: number; layers: number }][] = [
    ["medium", 354_823_168, { d: 1024, layers: 24 }],
    ["large", 774_030_080, { d: 1280, layers: 36 }],
    ["xl", 1_557_611_200, { d: 1600, layers: 48 }],
  ];
  for (const [preset, params, size] of presets) {
    it(`preset ${preset}: ${params.toLocaleString("en-US")} parameters, checkpoint keys and shapes`, () => {
      const lp = lower("gpt2-small.model", { preset });
      expect(summarize(lp).parameters).toBe(params);
      expect(sorted(weights(lp))).toEqual(
        sorted(gpt2Checkpoint({ vocab: 50257, ctx: 1024, ...size })),
      );
      expect(lp.params.find((p) => p.name === "d")).toMatchObject({
        value: size.d,
        source: "preset",
      });
    });
  }

  it("--config of the tiny fixture gives the tiny model's parameter count", () => {
    const lc = lower("gpt2-small.model", { config: tinyConfig });
    expect(summarize(lc).parameters).toBe(summarize(lower("gpt2-tiny.model")).parameters);
    expect(lc.params.find((p) => p.name === "layers")).toMatchObject({
      value: 2,
      source: "config",
    });
    // eps is read from the config too (layer_norm_epsilon).
    expect(lc.params.find((p) => p.name === "eps")).toMatchObject({
      value: 1e-5,
      source: "config",
    });
  });

  it("--set overrides the config, and the config overrides a preset", () => {
    const lc = lower("gpt2-small.model", {
      config: tinyConfig,
      preset: "xl",
      set: { layers: "3" },
    });
    const p = Object.fromEntries(lc.params.map((x) => [x.name, `${x.value} ${x.source}`]));
    expect(p.layers).toBe("3 --set");
    expect(p.d).toBe("32 config");
    expect(p.vocab).toBe("64 config");
  });
});

describe("gpt2-tiny", () => {
  const l = lower("gpt2-tiny.model");

  it("takes its sizes from the fixture's config.json", () => {
    const p = Object.fromEntries(l.params.map((x) => [x.name, x.value]));
    expect(p).toMatchObject({
      vocab: tinyConfig.vocab_size,
      ctx: tinyConfig.n_positions,
      d: tinyConfig.n_embd,
      layers: tinyConfig.n_layer,
      heads: tinyConfig.n_head,
      eps: tinyConfig.layer_norm_epsilon,
    });
    expect(summarize(l).name).toBe("gpt2_tiny");
  });

  it("has exactly the keys and shapes of the fixture's model.safetensors", () => {
    const st = readSafetensors(join(FIXTURE, "model.safetensors"));
    const fixture = new Map([...st.tensors].map(([k, t]) => [k, t.shape] as const));
    expect(sorted(weights(l))).toEqual(sorted(fixture));
    expect(summarize(l).parameters).toBe(count(fixture.values()));
    expect(summarize(l).parameters).toBe(28_544);
  });
});

describe("other specs", () => {
  it("llama-style: no biases, Hugging Face LLaMA key names", () => {
    const w = weights(lower("llama-style.model"));
    expect([...w.keys()].filter((k) => k.endsWith(".bias"))).toEqual([]);
    expect(w.get("embed_tokens.weight")).toEqual([32000, 512]);
    expect(w.get("layers.0.self_attn.q_proj.weight")).toEqual([512, 512]);
    // Grouped-query attention: 2 key/value heads of 64 channels.
    expect(w.get("layers.7.self_attn.k_proj.weight")).toEqual([512, 128]);
    expect(w.get("layers.7.mlp.gate_proj.weight")).toEqual([512, 1376]);
    expect(w.get("norm.weight")).toEqual([512]);
    expect(w.get("lm_head.weight")).toEqual([512, 32000]);
    expect(w.has("layers.8.mlp.up_proj.weight")).toBe(false);
  });

  it("seed-transformer: an output layer of its own, two layers", () => {
    const w = weights(lower("seed-transformer.model"));
    expect(w.get("embed.weight")).toEqual([256, 128]);
    expect(w.get("output.weight")).toEqual([128, 256]);
    expect(w.get("layers.1.ffn.fc1.weight")).toEqual([128, 512]);
    expect(w.has("layers.2.norm1.weight")).toBe(false);
  });
});

describe("lowering speed", () => {
  it("lowers gpt2-small with preset xl (48 layers)", () => {
    const l = lower("gpt2-small.model", { preset: "xl" });
    expect(l.graph.nodes.length).toBeGreaterThan(0);
    expect(weights(l).has("h.47.mlp.c_proj.bias")).toBe(true);
  });
});
