// Dropout: the mask's statistics, the same mask bit for bit on every backend
// for the same key (headlessgl: dropout.gl.ts), gradients against the
// reference interpreter with the same mask, training versus evaluation graphs,
// fusion, and a resumed run continuing the uninterrupted run's losses.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compile } from "../src/api/compile.js";
import { train } from "../src/api/train.js";
import { run } from "../src/ir/interpret.js";
import { lowerProgram } from "../src/ir/lower.js";
import { dropoutMask, keepScale, rngKey, rngKeyInput } from "../src/ir/ops/random.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { modeDependent } from "../src/ir/passes/mode.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { printGraph } from "../src/ir/text.js";
import { backend, cpuBackends } from "./helpers/backend.js";
import {
  gpt2WithDropout,
  gptDims,
  gptInputs,
  gptOn,
  gptReference,
  probeExpected,
  probeOn,
} from "./helpers/dropout.js";
import { loadProgram, lowerSpec, relErr, smallSetFor } from "./helpers/ir.js";

/** |observed - expected| within 5 standard deviations of a binomial count. */
function expectBinomial(count: number, n: number, q: number, what: string): void {
  const sd = Math.sqrt(n * q * (1 - q));
  expect(
    Math.abs(count - n * q),
    `${what}: ${count} of ${n}, expected ${n * q} ± ${5 * sd}`,
  ).toBeLessThan(5 * sd);
}

const zeros = (m: ArrayLike<number>) => Array.from(m).filter((v) => v === 0).length;
const bothZero = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let c = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === 0 && b[i] === 0) c++;
  return c;
};

describe("dropout masks (Philox 4x32-10)", () => {
  const n = 1 << 20;

  it.each([0.1, 0.5, 0.9])(
    "p = %s: a binomial fraction dropped, the rest scaled by 1/(1-p) exactly",
    (p) => {
      const m = dropoutMask(rngKey(1337, 3, 0), 2, p, n);
      expectBinomial(zeros(m), n, p, "dropped");
      const kept = Array.from(m).filter((v) => v !== 0);
      expect(new Set(kept)).toEqual(new Set([keepScale(p)]));
      expect(keepScale(p)).toBe(Math.fround(1 / (1 - p)));
      // E[mask] = 1: the scale keeps the expectation of x.
      const mean = Array.from(m).reduce((a, b) => a + b, 0) / n;
      expect(Math.abs(mean - 1)).toBeLessThan(5 * Math.sqrt(p / (1 - p) / n));
    },
  );

  it("is independent across steps, micro-batches, ops and neighbouring elements", () => {
    const p = 0.1;
    const base = dropoutMask(rngKey(1337, 3, 0), 0, p, n);
    const others: [string, ArrayLike<number>][] = [
      ["next step", dropoutMask(rngKey(1337, 4, 0), 0, p, n)],
      ["next micro-batch", dropoutMask(rngKey(1337, 3, 1), 0, p, n)],
      ["another op", dropoutMask(rngKey(1337, 3, 0), 1, p, n)],
      ["another seed", dropoutMask(rngKey(1338, 3, 0), 0, p, n)],
      ["step 2^16 + 3 (the key's high half)", dropoutMask(rngKey(1337, 65539, 0), 0, p, n)],
      ["element i + 1", Array.from(base).slice(1).concat([0])],
      ["element i + 4", Array.from(base).slice(4).concat([0, 0, 0, 0])],
    ];
    for (const [what, m] of others) expectBinomial(bothZero(base, m), n, p * p, what);
  });

  it("is a pure function of the key: the same key gives the same mask", () => {
    const a = dropoutMask(rngKey(9, 1, 2), 3, 0.2, 4099);
    expect(dropoutMask(rngKey(9, 1, 2), 3, 0.2, 4099)).toEqual(a);
    // A prefix of a longer mask: element i does not depend on the tensor's size.
    expect(dropoutMask(rngKey(9, 1, 2), 3, 0.2, 5000).subarray(0, 4099)).toEqual(a);
  });
});

describe("the same mask bit for bit on every backend", () => {
  it.each(cpuBackends)("%s computes x * mask exactly as the reference does", async (name) => {
    const y = await probeOn(await backend(name));
    const want = probeExpected();
    expect(zeros(want)).toBeGreaterThan(0);
    expect(Array.from(y)).toEqual(Array.from(want));
  });
});

describe("gradients with dropout", () => {
  const key = rngKey(1337, 7, 1);
  const ref = gptReference(key);

  it("the mask changes the loss (dropout is applied) and the key changes the mask", () => {
    const { graphs, graph } = gpt2WithDropout();
    const { weights, tokens, targets } = gptInputs(graph);
    const evalLoss = run(graphs.evaluation!, { inputs: { tokens, targets }, weights }).loss.data[0];
    expect(Math.abs(ref.loss - evalLoss)).toBeGreaterThan(1e-4);
    expect(Math.abs(gptReference(rngKey(1337, 8, 1)).loss - ref.loss)).toBeGreaterThan(1e-6);
  });

  it.each(cpuBackends)(
    "%s: loss and every gradient equal the interpreter's with the same mask",
    async (name) => {
      const got = await gptOn(await backend(name), key);
      expect(Math.abs(got.loss - ref.loss) / Math.abs(ref.loss)).toBeLessThan(1e-5);
      const bad = [...ref.grads]
        .map(([k, g]) => [k, relErr(got.grads.get(k)!, g)] as const)
        .filter(([, e]) => !(e < 1e-4));
      expect(bad).toEqual([]);
    },
    60_000,
  );
});

describe("training and evaluation graphs", () => {
  const l = lowerSpec("specs/gpt2-small.model");
  const graphs = compileGraphs(l);

  it("only the training graph drops: forward, evaluation and decode have no mask and no key", () => {
    // embd once, attn and resid twice per layer (one layer at small sizes).
    expect(modeDependent(graphs.training!)).toHaveLength(4);
    for (const g of [graphs.forward, graphs.forwardOpt, graphs.evaluation!]) {
      expect(modeDependent(g)).toEqual([]);
      expect(g.nodesOf("input").map((n) => n.attrs.name)).not.toContain(rngKeyInput);
    }
  });

  it("with every probability 0 the graphs are the graphs of a model without dropout", () => {
    const set = { embd_pdrop: "0", attn_pdrop: "0", resid_pdrop: "0" };
    const program = loadProgram("specs/gpt2-small.model");
    const off = compileGraphs(lowerProgram(program, { set: { ...smallSetFor(program), ...set } }));
    expect(modeDependent(off.training!)).toEqual([]);
    // Evaluation mode of the dropout model is exactly the p = 0 model, node for node.
    const strip = (s: string) => s.replace(/ {2}# .*$/gm, "");
    expect(strip(printGraph(graphs.evaluation!))).toBe(strip(printGraph(off.evaluation!)));
    expect(strip(printGraph(graphs.forwardOpt))).toBe(strip(printGraph(off.forwardOpt)));
  });

  it("dropout({ dropout: false }) trains in evaluation mode (how PyTorch fixtures are made)", () => {
    const g = compileGraphs(l, undefined, { dropout: false });
    expect(modeDependent(g.training!)).toEqual([]);
  });

  it("fusion inlines every mask: no kernel stores one, and the backward recomputes it", () => {
    const s = fuse(graphs.training!);
    const masks = new Set(modeDependent(graphs.training!).map((n) => n.id));
    expect(s.kernels.filter((k) => masks.has(k.output))).toEqual([]);
    // Each mask is read by the forward kernel and again by the backward's.
    for (const m of masks)
      expect(s.kernels.filter((k) => k.nodes.includes(m)).length).toBeGreaterThanOrEqual(2);
    // Fused: the residual dropouts sit in their GEMM's epilogue, and dropout
    // costs one kernel per layer in all (attention weights feed a matmul, so
    // their masked copy is written once).
    const withMask = s.kernels.filter((k) => k.nodes.some((id) => masks.has(id)));
    expect(withMask.some((k) => k.kind === "matmul")).toBe(true);
    const program = loadProgram("specs/gpt2-small.model");
    const set = { ...smallSetFor(program), embd_pdrop: "0", attn_pdrop: "0", resid_pdrop: "0" };
    const off = fuse(compileGraphs(lowerProgram(program, { set })).training!);
    expect(s.kernels.length).toBe(off.kernels.length + 1);
  });

  it("a backend's input limit counts each mask as a buffer", () => {
    const masks = new Set(modeDependent(graphs.training!).map((n) => n.id));
    const buffers = (k: { inputs: number[]; nodes: number[] }) =>
      k.inputs.length + k.nodes.filter((id) => masks.has(id)).length;
    // The default schedule has kernels within 5 inputs that read a mask besides:
    // a limit of 5 that counted inputs alone would leave them at 6 buffers.
    const wide = fuse(graphs.training!);
    expect(wide.kernels.some((k) => k.inputs.length <= 5 && buffers(k) > 5)).toBe(true);
    const narrow = fuse(graphs.training!, { maxInputs: 5 });
    expect(Math.max(...narrow.kernels.map(buffers))).toBeLessThanOrEqual(5);
  });
});

describe("probabilities from the spec, config.json and --set", () => {
  const small = { vocab: 11, ctx: 8, d: 16, layers: 1, heads: 2 };
  const masks = (m: ReturnType<typeof compile>) => modeDependent(m.graphs.training!);

  it("gpt2-small reads embd_pdrop, attn_pdrop and resid_pdrop; --set overrides them", () => {
    const file = { file: "specs/gpt2-small.model" };
    const all = masks(compile(file, { set: small }));
    expect(all.map((n) => n.attrs.p)).toEqual([0.1, 0.1, 0.1, 0.1]);
    const cfg = compile(file, { set: small, config: { attn_pdrop: 0.25, embd_pdrop: 0 } });
    expect(masks(cfg).map((n) => n.attrs.p)).toEqual([0.25, 0.1, 0.1]);
    const set = compile(file, { set: { ...small, resid_pdrop: 0, attn_pdrop: 0.5 } });
    expect(masks(set).map((n) => n.attrs.p)).toEqual([0.1, 0.5]);
    // Generation's decode graph never drops.
    expect(modeDependent(compile(file, { set: small }).graphs.decode!)).toEqual([]);
  });

  it("a probability outside [0, 1) is a clear error", () => {
    expect(
      () => compile({ file: "specs/seed-transformer.model" }, { set: { pdrop: 1 } }).graphs,
    ).toThrow(/p of dropout_mask must be a number in \[0, 1\), got the number 1/);
  });
});

describe("gptc compile --emit", () => {
  const spec = { file: "specs/seed-transformer.model" };
  const sizes = { batch: 2, seq: 16 };

  it("says which ops are mode-dependent: the summary counts them, ir-train shows them", async () => {
    const model = compile(spec);
    expect(JSON.parse(await model.artifact("summary", sizes)).modeDependent).toBe(4);
    const ir = await model.artifact("ir-train", sizes);
    expect(ir.match(/= dropout_mask %\d+ \{p=0.1, /g)).toHaveLength(4);
    expect(await model.artifact("ir-opt", sizes)).not.toMatch(/dropout_mask|rng_key/);
    const off = compile(spec, { set: { pdrop: 0 } });
    expect(JSON.parse(await off.artifact("summary", sizes)).modeDependent).toBe(0);
  });

  it("prints the count on the command line", () => {
    const r = spawnSync(
      process.execPath,
      [
        "bin/gptc.js",
        "compile",
        spec.file,
        "--emit",
        "summary",
        "--seq",
        "16",
        "-o",
        mkdtempSync(join(tmpdir(), "gptc-drop-c-")),
      ],
      { encoding: "utf8" },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/mode-dependent: 4 dropout ops in training/);
  }, 120_000);
});

describe("resuming a run with dropout", () => {
  const text = "the quick brown fox jumps over the lazy dog. ".repeat(200);
  const spec = `import "std/nn.model"
model drop_tiny {
  param pdrop = 0.2
  input tokens: int[B, T]
  x = dropout(embedding(tokens, 40, 16) as wte, pdrop)
  x = x + dropout(mlp(layernorm(x) as ln, 32), pdrop) as mlp
  output logits = linear(x, 40) as head
  input targets: int[B, T]
  loss = cross_entropy(logits, targets)
}
`;
  const opts = (out: string, data: string) => ({
    spec,
    compile: { path: join(data, "drop.model") },
    data,
    tokenizer: "char" as const,
    steps: 4,
    batch: 2,
    seq: 8,
    accum: 2,
    evalEvery: 0,
    saveEvery: 2,
    backend: "webasm" as const,
    out,
  });

  it("continues with the same losses as an uninterrupted run", async () => {
    const data = mkdtempSync(join(tmpdir(), "gptc-drop-data-"));
    writeFileSync(join(data, "a.txt"), text);
    const whole = await train(opts(mkdtempSync(join(tmpdir(), "gptc-drop-a-")), data));
    whole.session.close();
    // The same run, interrupted after its step-2 checkpoint, then resumed.
    const outB = mkdtempSync(join(tmpdir(), "gptc-drop-b-"));
    const stop = new AbortController();
    const first = await train({
      ...opts(outB, data),
      signal: stop.signal,
      onStep: (r) => r.step === 2 && stop.abort(),
    });
    first.session.close();
    expect(first.steps).toBe(2);
    const resumed = await train({ resume: outB, backend: "webasm" });
    resumed.session.close();
    const losses = (r: typeof whole) => r.losses.map((x) => x.loss);
    expect(losses(whole)).toHaveLength(4);
    expect(losses(resumed)).toEqual(losses(whole));
  }, 120_000);
});
