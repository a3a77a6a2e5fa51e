// The tiny GPT-2 reference fixture (test/fixtures/tiny, PyTorch float64) through the
// float64 interpreter: logits, loss, the global gradient norm and every gradient.
// expected.safetensors stores float32-rounded values of float64 references, so
// tensors are compared at float32 storage precision; the case.json scalars are float64.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { run } from "../src/ir/interpret.js";
import type { Lowered } from "../src/ir/lower.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { readSafetensors } from "../src/runtime/safetensors.js";
import { lowerSource, lowerSpec, maxAbs, relErr, t, type Tensor } from "./helpers/ir.js";

const dir = "test/fixtures/tiny";

interface Case {
  inputs: number[][];
  targets: number[][];
  loss: number;
  grad_global_norm: number;
  gelu_new_samples: { x: number[]; y: number[]; y_erf_gelu_for_contrast: number[] };
}

const cs = JSON.parse(readFileSync(`${dir}/case.json`, "utf8")) as Case;
const config = JSON.parse(readFileSync(`${dir}/config.json`, "utf8")) as Record<string, unknown>;
const expected = readSafetensors(`${dir}/expected.safetensors`).tensors;
const stored = readSafetensors(`${dir}/model.safetensors`).tensors;
const weights = new Map(
  [...stored].map(([k, v]) => [k, { shape: v.shape, data: Float64Array.from(v.data) }]),
);
const [B, T] = [cs.inputs.length, cs.inputs[0].length];
const inputs = { tokens: t([B, T], cs.inputs.flat()), targets: t([B, T], cs.targets.flat()) };

/** float32 storage of a float64 value: relative rounding 2^-24 ≈ 6e-8 per entry. */
const tensorTol = 1e-6;
const scalarTol = 1e-9;

function expectClose(name: string, got: Tensor | undefined, key = name) {
  const ref = expected.get(key);
  expect(ref, `expected.safetensors has ${key}`).toBeDefined();
  expect(got, `the graph computes ${name}`).toBeDefined();
  expect(got!.shape, `shape of ${name}`).toEqual(ref!.shape);
  const err = relErr(got!.data, ref!.data);
  expect(err, `${name}: err ${err}`).toBeLessThanOrEqual(tensorTol);
}

describe.each([
  ["specs/gpt2-tiny.model", undefined],
  ["specs/gpt2-small.model with config.json", config],
] as const)("%s", (label, cfg) => {
  let l: Lowered;
  let out: Record<string, Tensor>;
  let forward: Record<string, Tensor>;
  const setup = () => {
    if (out) return;
    l = cfg
      ? lowerSpec("specs/gpt2-small.model", { config: cfg })
      : lowerSpec(label, { small: false });
    // The fixture was made in PyTorch's evaluation mode: no dropout in training either.
    const c = compileGraphs(l, undefined, { dropout: false });
    out = run(c.training!, { inputs, weights });
    forward = run(c.forwardOpt, { inputs: { tokens: inputs.tokens }, weights });
  };

  it("has the fixture's hyperparameters and weights", () => {
    setup();
    const p = Object.fromEntries(l.params.map((q) => [q.name, q.value]));
    expect(p).toMatchObject({ vocab: 64, ctx: 32, d: 32, layers: 2, heads: 2, eps: 1e-5 });
    const names = l.graph.nodesOf("weight").map((w) => w.attrs.name as string);
    expect(names.sort()).toEqual([...stored.keys()].sort());
  });

  it("logits", () => {
    setup();
    expectClose("logits", forward.logits);
    expectClose("logits (training graph)", out.logits, "logits");
  });

  it("loss and grad_global_norm (float64 scalars)", () => {
    setup();
    const loss = out.loss.data[0];
    expect(Math.abs(loss - cs.loss) / Math.abs(cs.loss)).toBeLessThanOrEqual(scalarTol);
    let sumsq = 0;
    for (const name of Object.keys(out))
      if (name.startsWith("grad.")) for (const v of out[name].data) sumsq += v * v;
    const norm = Math.sqrt(sumsq);
    expect(Math.abs(norm - cs.grad_global_norm) / cs.grad_global_norm).toBeLessThanOrEqual(
      scalarTol,
    );
  });

  it("every grad.<param>", () => {
    setup();
    const gradKeys = [...expected.keys()].filter((k) => k.startsWith("grad.")).sort();
    const computed = Object.keys(out)
      .filter((k) => k.startsWith("grad."))
      .sort();
    expect(computed).toEqual(gradKeys);
    expect(gradKeys.length).toBe(stored.size);
    for (const k of gradKeys) expectClose(k, out[k]);
    // Rows of wpe past T get no gradient at all.
    const wpe = out["grad.wpe.weight"];
    expect(maxAbs(wpe.data.subarray(T * 32))).toBe(0);
    expect(maxAbs(wpe.data.subarray(0, T * 32))).toBeGreaterThan(0);
  });
});

describe("gelu_new_samples", () => {
  const g = lowerSource(
    `import "std/nn.model"

model gelu_probe {
  input x: float[N]
  output y = gelu(x)
}
`,
    "gelu.model",
  );
  const { x, y, y_erf_gelu_for_contrast: yErf } = cs.gelu_new_samples;
  const ours = run(g.graph, { inputs: { x: t([x.length], x) }, weights: {} }).y;

  it("the stdlib's gelu is gelu_new (tanh approximation) to 1e-12", () => {
    expect(ours.shape).toEqual([x.length]);
    const worst = Math.max(...y.map((v, i) => Math.abs(ours.data[i] - v)));
    expect(worst).toBeLessThanOrEqual(1e-12);
  });

  it("and is not the erf GELU", () => {
    const diff = Math.max(...yErf.map((v, i) => Math.abs(ours.data[i] - v)));
    expect(diff).toBeGreaterThan(1e-4);
  });
});
