// Reverse-mode autodiff against central finite differences (float64): small models
// written in the language, and the tiny GPT-2 with the fixture's weights (including
// its tied embedding / LM head). Also: what autodiff refuses, and how it says so.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DiagnosticError } from "../src/dsl/diagnostics.js";
import { shapeOf } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import { run } from "../src/ir/interpret.js";
import type { Lowered } from "../src/ir/lower.js";
import { autodiff } from "../src/ir/passes/autodiff.js";
import { dce } from "../src/ir/passes/dce.js";
import { rebuild } from "../src/ir/passes/rebuild.js";
import { verify } from "../src/ir/passes/verify.js";
import { compileGraphs, optimize } from "../src/ir/pipeline.js";
import { readSafetensors } from "../src/runtime/safetensors.js";
import {
  bindingsFor,
  lowerSource,
  lowerSpec,
  maxAbs,
  randInt,
  randn,
  randomInputs,
  randomWeights,
  rng,
  t,
  type Tensor,
} from "./helpers/ir.js";

const h = 1e-6;
const tol = 1e-5;
/**
 * Relative error of one gradient entry. Central differences at h = 1e-6 carry
 * ~1e-10 of absolute round-off (eps·|loss|/h), so entries far below the loss's
 * scale are compared against a floor of 1e-4 instead of their own magnitude.
 */
const entryErr = (g: number, fd: number) =>
  Math.abs(g - fd) / Math.max(Math.abs(fd), Math.abs(g), 1e-4);

interface Env {
  inputs: Record<string, Tensor>;
  weights: Map<string, Tensor>;
  bindings?: Record<string, number>;
}

/** Finite-difference gradient of the loss for one weight entry. */
function fdEntry(lossGraph: Graph, env: Env, key: string, i: number): number {
  const w = env.weights.get(key)!;
  const v = w.data[i];
  const at = (x: number) => {
    w.data[i] = x;
    return run(lossGraph, env).loss.data[0];
  };
  const up = at(v + h);
  const down = at(v - h);
  w.data[i] = v;
  return (up - down) / (2 * h);
}

/** Checks `samples` (key, index) pairs: the autodiff gradient against finite differences. */
function checkEntries(
  l: Lowered,
  env: Env,
  samples: [string, number][],
): { grads: Record<string, Tensor>; checked: { key: string; i: number; g: number; fd: number }[] } {
  // Gradients from the compiled training graph; finite differences on the lowered loss.
  const training = compileGraphs(l).training!;
  expect(verify(training)).toEqual([]);
  const grads = run(training, env);
  const lossGraph = optimize(dce(l.graph, (n) => n === "loss"));
  expect(grads.loss.data[0]).toBeCloseTo(run(lossGraph, env).loss.data[0], 12);
  const checked = samples.map(([key, i]) => {
    const g = grads[`grad.${key}`].data[i];
    const fd = fdEntry(lossGraph, env, key, i);
    return { key, i, g, fd };
  });
  const bad = checked.filter((c) => !(entryErr(c.g, c.fd) < tol));
  expect(bad.map((c) => `${c.key}[${c.i}]: autodiff ${c.g}, finite differences ${c.fd}`)).toEqual(
    [],
  );
  return { grads, checked };
}

/** `n` random (key, index) pairs over all weights, each weight at least once when n allows. */
function sampleEntries(weights: Map<string, Tensor>, n: number, seed: number): [string, number][] {
  const r = rng(seed);
  const keys = [...weights.keys()];
  const out: [string, number][] = [];
  for (let s = 0; s < n; s++) {
    const key = s < keys.length && n >= keys.length ? keys[s] : keys[randInt(r, keys.length)];
    out.push([key, randInt(r, weights.get(key)!.data.length)]);
  }
  return out;
}

// ---- small models in the language --------------------------------------------------------

const classifier = `import "std/nn.model"

model classifier {
  param d = 5
  param classes = 4
  input x: float[B, d]
  input targets: int[B]
  logits = linear(x, classes) as fc
  output probs = softmax(logits)
  loss = cross_entropy(logits, targets)
}
`;

// A hidden layer with layernorm and GELU; the loss is written through softmax itself.
const mlp = `import "std/nn.model"

model mlp {
  param d = 6
  param hidden = 7
  param classes = 3
  input x: float[B, T, d]
  input targets: int[B, T]
  h = gelu(linear(layernorm(x) as ln, hidden) as fc1)
  logits = linear(h, classes) as fc2
  output probs = softmax(logits)
  loss = -mean(log(take(softmax(logits), targets)))
}
`;

function smallEnv(l: Lowered, classes: number, seed: number, std: number): Env {
  const r = rng(seed);
  const bindings = bindingsFor(l.graph, { B: 3, T: 2 });
  return {
    bindings,
    weights: randomWeights(l.graph, r, std),
    inputs: randomInputs(l.graph, bindings, r, classes),
  };
}

describe("autodiff vs finite differences on small models", () => {
  it("linear + softmax + cross-entropy: every weight entry", () => {
    const l = lowerSource(classifier, "classifier.model");
    const env = smallEnv(l, 4, 1, 0.5);
    const samples: [string, number][] = [];
    for (const [key, w] of env.weights)
      for (let i = 0; i < w.data.length; i++) samples.push([key, i]);
    expect(samples.length).toBe(24);
    const { checked } = checkEntries(l, env, samples);
    expect(Math.max(...checked.map((c) => Math.abs(c.g)))).toBeGreaterThan(1e-2);
    // softmax sums to 1 per row
    const probs = run(l.graph, env).probs;
    for (let b = 0; b < 3; b++) {
      let s = 0;
      for (let c = 0; c < 4; c++) s += probs.data[b * 4 + c];
      expect(s).toBeCloseTo(1, 14);
    }
  });

  it("layernorm + GELU MLP, loss through softmax and log: 30 sampled entries", () => {
    const l = lowerSource(mlp, "mlp.model");
    const env = smallEnv(l, 3, 2, 0.5);
    // layernorm starts at weight 1, bias 0 in practice; random values test the general case
    const keys = [...env.weights.keys()].sort();
    expect(keys).toEqual([
      "fc1.bias",
      "fc1.weight",
      "fc2.bias",
      "fc2.weight",
      "ln.bias",
      "ln.weight",
    ]);
    checkEntries(l, env, sampleEntries(env.weights, 30, 3));
  });
});

// ---- the tiny GPT-2 with the fixture weights -------------------------------------------------

const fixtureDir = "test/fixtures/tiny";

function fixtureEnv(): Env {
  const cs = JSON.parse(readFileSync(`${fixtureDir}/case.json`, "utf8")) as {
    inputs: number[][];
    targets: number[][];
  };
  const st = readSafetensors(`${fixtureDir}/model.safetensors`);
  const weights = new Map(
    [...st.tensors].map(([k, v]) => [k, { shape: v.shape, data: Float64Array.from(v.data) }]),
  );
  const [B, T] = [cs.inputs.length, cs.inputs[0].length];
  return {
    weights,
    inputs: { tokens: t([B, T], cs.inputs.flat()), targets: t([B, T], cs.targets.flat()) },
  };
}

describe("autodiff vs finite differences on gpt2-tiny (fixture weights)", () => {
  const l = lowerSpec("specs/gpt2-tiny.model", { small: false });
  const env = fixtureEnv();

  it("30 sampled weight entries, every weight tensor at least once", () => {
    expect([...env.weights.keys()].sort()).toEqual(
      l.graph
        .nodesOf("weight")
        .map((w) => w.attrs.name as string)
        .sort(),
    );
    const samples = sampleEntries(env.weights, 30, 11);
    expect(new Set(samples.map(([k]) => k)).size).toBe(Math.min(30, env.weights.size));
    const { checked } = checkEntries(l, env, samples);
    expect(checked.filter((c) => Math.abs(c.fd) > 1e-4).length).toBeGreaterThan(15);
  });

  it("tied weights: grad.wte.weight = embedding part + LM-head part", () => {
    // Rows used as input tokens get both contributions; other rows only the head's.
    const tokens = new Set(Array.from(env.inputs.tokens.data));
    const r = rng(21);
    const C = 32;
    const used = [...tokens];
    const unused = [...Array(64).keys()].filter((v) => !tokens.has(v));
    const samples: [string, number][] = [];
    for (let s = 0; s < 15; s++)
      samples.push(["wte.weight", used[randInt(r, used.length)] * C + randInt(r, C)]);
    for (let s = 0; s < 15; s++)
      samples.push(["wte.weight", unused[randInt(r, unused.length)] * C + randInt(r, C)]);
    const { grads } = checkEntries(l, env, samples);

    // Untie: the embedding lookup reads a copy of the table under another name.
    const fwd = l.graph;
    const wte = fwd.nodesOf("weight").find((w) => w.attrs.name === "wte.weight")!;
    const untied = rebuild(fwd, (n, inputs, out) => {
      if (n.op !== "gather" || n.inputs[0] !== wte.id) return undefined;
      const copy = out.op("weight", [], { ...wte.attrs, name: "wte_embedding" });
      return out.op("gather", [copy, inputs[1]], n.attrs, n.span);
    }).graph;
    expect(verify(untied)).toEqual([]);
    const weights = new Map(env.weights);
    weights.set("wte_embedding", env.weights.get("wte.weight")!);
    const parts = run(optimize(autodiff(untied)), { ...env, weights });
    const head = parts["grad.wte.weight"].data;
    const emb = parts["grad.wte_embedding"].data;
    const tied = grads["grad.wte.weight"].data;
    const sum = head.map((v, i) => v + emb[i]);
    expect(maxAbs(sum.map((v, i) => v - tied[i]))).toBeLessThan(1e-15 + 1e-12 * maxAbs(tied));
    // Both parts matter: the embedding part is non-zero exactly on the input rows.
    for (let v = 0; v < 64; v++) {
      const row = emb.subarray(v * C, (v + 1) * C);
      if (tokens.has(v)) expect(maxAbs(row), `row ${v}`).toBeGreaterThan(1e-6);
      else expect(maxAbs(row), `row ${v}`).toBe(0);
    }
    expect(maxAbs(head)).toBeGreaterThan(1e-3);
  });
});

// ---- what autodiff refuses ---------------------------------------------------------------

function diagnosticOf(f: () => unknown): DiagnosticError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DiagnosticError);
    return e as DiagnosticError;
  }
  throw new Error("expected a DiagnosticError");
}

describe("autodiff errors", () => {
  it("a loss that depends on a weight through an op without a gradient rule names the op", () => {
    const g = new Graph("nograd");
    const w = g.op("weight", [], { name: "w", shape: shapeOf(3) });
    const c = g.op("cast", [w]);
    g.output("loss", g.op("sum", [g.op("mul", [c, c])], { axes: [0], keepdim: false }));
    const err = diagnosticOf(() => autodiff(g));
    expect(err.diagnostics).toHaveLength(1);
    expect(err.diagnostics[0].message).toMatch(/cannot train through op 'cast'/);
    expect(err.diagnostics[0].message).toMatch(/no gradient rule/);
  });

  it("the message points at the source of the op", () => {
    const l = lowerSource(
      `model m {
  input x: float[N]
  weight w: [3] = ones
  output y = x * 2
  loss = sum(float(w) * 2)
}
`,
      "cast.model",
    );
    const err = diagnosticOf(() => autodiff(l.graph));
    const d = err.diagnostics[0];
    expect(d.message).toMatch(/'cast' \(from .*cast\.model:5:14\)/);
    expect(d.span?.line).toBe(5);
    expect(d.span?.col).toBe(14);
  });

  it("ops without a rule are fine off the loss's path or away from weights", () => {
    const g = new Graph("ok");
    const w = g.op("weight", [], { name: "w", shape: shapeOf(3) });
    const x = g.op("input", [], { name: "x", dtype: "i32", shape: shapeOf(3) });
    const cx = g.op("cast", [x]); // no weight behind it
    g.output("side", g.op("cast", [w])); // not on the loss's path
    g.output("loss", g.op("sum", [g.op("mul", [w, cx])], { axes: [0], keepdim: false }));
    const train = autodiff(g);
    expect(verify(train)).toEqual([]);
    const out = run(train, { inputs: { x: t([3], [1, 2, 3]) }, weights: { w: t([3], [5, 6, 7]) } });
    expect(Array.from(out["grad.w"].data)).toEqual([1, 2, 3]);
  });

  it("comparisons have a zero gradient; a weight the loss ignores gets zeros", () => {
    const g = new Graph("zero");
    const w = g.op("weight", [], { name: "w", shape: shapeOf(2) });
    const v = g.op("weight", [], { name: "v", shape: shapeOf(2, 2) });
    const mask = g.op("gt", [w, g.scalar(0)]);
    const y = g.op("where", [mask, w, g.scalar(0)]); // relu written with where
    g.output("loss", g.op("sum", [y], { axes: [0], keepdim: false }));
    const out = run(autodiff(g), {
      inputs: {},
      weights: { w: t([2], [-1, 2]), v: t([2, 2], () => randn(rng(1))) },
    });
    expect(Array.from(out["grad.w"].data)).toEqual([0, 1]);
    expect(out["grad.v"].shape).toEqual([2, 2]);
    expect(Array.from(out["grad.v"].data)).toEqual([0, 0, 0, 0]);
  });

  it("a graph without the loss output", () => {
    const g = new Graph("noloss");
    const w = g.op("weight", [], { name: "w", shape: shapeOf(2) });
    g.output("y", w);
    const err = diagnosticOf(() => autodiff(g));
    expect(err.message).toMatch(/declares no loss/);
    // another name can be chosen
    g.output("objective", g.op("sum", [w], { axes: [0], keepdim: false }));
    const train = autodiff(g, "objective");
    expect(train.outputs.map((o) => o.name)).toEqual(["y", "objective", "grad.w"]);
  });
});
