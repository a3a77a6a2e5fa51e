// The PyTorch export against gptc and against the PyTorch fixture: for every
// shipped spec (small sizes) the generated module's logits, loss and every
// gradient equal gptc's on the same weights and ids (the fixture's
// tolerances); on the tiny fixture they equal the reference too. Then a
// two-process torchrun (gloo, CPU) trains a tiny spec for 20 steps, lowers
// the validation loss, and gptc samples from the checkpoint it wrote.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compile } from "../src/api/compile.js";
import { exportModel } from "../src/api/export.js";
import { compileRef } from "../src/api/load.js";
import { ExportError } from "../src/export/common.js";
import { pytorchModule } from "../src/export/pytorch/module.js";
import { UsageError } from "../src/errors.js";
import { readSafetensors, writeSafetensorsAtomic } from "../src/runtime/safetensors.js";
import type { Tensor } from "../src/ir/ops/types.js";
import {
  err,
  gptcReference,
  randomIds,
  randomWeights,
  shippedSpecs,
  smallModel,
  tol,
} from "./helpers/export.js";
import { maxAbs } from "./helpers/ir.js";
import { runPython, torchrun, python } from "./helpers/python.js";
import { startGptc } from "./helpers/hardening.js";

const tmp = mkdtempSync(join(tmpdir(), "gptc-export-pt-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const [B, T] = [2, 8];
// torchrun's rendezvous port: apart from another test run's on the same machine.
const port = 30000 + (process.pid % 5000) * 2;
const fixture = "test/fixtures/tiny";

interface Case {
  label: string;
  ref: Record<string, Tensor>;
  out: string;
}
const cases: Case[] = [];
const torchOut = (c: Case) => readSafetensors(c.out).tensors;

function writeIds(path: string, tokens: number[], targets: number[]): void {
  writeSafetensorsAtomic(
    path,
    new Map([
      ["tokens", { shape: [B, T], data: Float32Array.from(tokens) }],
      ["targets", { shape: [B, T], data: Float32Array.from(targets) }],
    ]),
  );
}

beforeAll(async () => {
  const jobs: { dir: string; weights: string; inputs: string; out: string }[] = [];
  for (const [i, file] of shippedSpecs.entries()) {
    const model = smallModel(file);
    const dir = join(tmp, `spec${i}`);
    await exportModel(model, { format: "pytorch", out: dir });
    const weights = randomWeights(model, 10 + i);
    const tokens = randomIds(B, T, model.vocabSize!, 20 + i);
    const targets = randomIds(B, T, model.vocabSize!, 30 + i);
    const w = join(dir, "weights.safetensors");
    writeSafetensorsAtomic(
      w,
      model.weights.map((s) => [s.key, { shape: s.shape, data: weights.get(s.key)! }] as const),
    );
    writeIds(join(dir, "ids.safetensors"), tokens, targets);
    const out = join(dir, "torch.safetensors");
    jobs.push({ dir, weights: w, inputs: join(dir, "ids.safetensors"), out });
    cases.push({ label: file, ref: gptcReference(model, weights, tokens, targets, B, T), out });
  }
  // The tiny fixture: its weights and ids through the exported gpt2-tiny.
  const cs = JSON.parse(readFileSync(`${fixture}/case.json`, "utf8"));
  const tinyDir = jobs[shippedSpecs.indexOf("specs/gpt2-tiny.model")].dir;
  const ids = join(tinyDir, "fixture-ids.safetensors");
  writeIds(ids, cs.inputs.flat(), cs.targets.flat());
  const out = join(tinyDir, "fixture-torch.safetensors");
  jobs.push({ dir: tinyDir, weights: `${fixture}/model.safetensors`, inputs: ids, out });
  const model = compile({ file: "specs/gpt2-tiny.model" });
  const stored = readSafetensors(`${fixture}/model.safetensors`).tensors;
  const weights = new Map([...stored].map(([k, v]) => [k, v.data]));
  cases.push({
    label: "tiny fixture",
    ref: gptcReference(model, weights, cs.inputs.flat(), cs.targets.flat(), B, T),
    out,
  });
  writeFileSync(join(tmp, "cases.json"), JSON.stringify(jobs));
  runPython([resolve("test/helpers/torch_check.py"), join(tmp, "cases.json")]);
}, 240_000);

describe("the exported module equals gptc", () => {
  it("covers every shipped spec and the tiny fixture", () => {
    expect(cases.map((c) => c.label)).toEqual([...shippedSpecs, "tiny fixture"]);
  });

  it.each(
    shippedSpecs.map((s, i) => [s, i] as const).concat([["tiny fixture", shippedSpecs.length]]),
  )("%s: logits, loss and every gradient", (_label, i) => {
    const c = cases[i];
    const got = torchOut(c);
    const logits = got.get("logits")!;
    expect(logits.shape).toEqual([B, T, c.ref.logits.shape[2]]);
    expect(err(logits.data, c.ref.logits.data)).toBeLessThanOrEqual(tol.logits);
    const loss = c.ref.loss.data[0];
    expect(Math.abs(got.get("loss")!.data[0] - loss)).toBeLessThanOrEqual(tol.loss(loss));
    const grads = Object.keys(c.ref).filter((k) => k.startsWith("grad."));
    expect(grads.length).toBeGreaterThan(0);
    expect([...got.keys()].filter((k) => k.startsWith("grad.")).sort()).toEqual(grads.sort());
    // A gradient that is mathematically zero (a key bias: softmax is
    // shift-invariant) is round-off on both sides: measured against the
    // model's largest gradient instead of its own.
    const scale = Math.max(...grads.map((k) => maxAbs(c.ref[k].data)));
    for (const k of grads) {
      const floor = Math.max(maxAbs(c.ref[k].data), 1e-3 * scale);
      const g = got.get(k)!.data;
      const e = maxAbs(c.ref[k].data.map((r, j) => r - g[j])) / floor;
      expect(e, k).toBeLessThanOrEqual(tol.grad);
    }
  });

  it("model.py reads as the spec: comments name the function and quote its line; keys are gptc's", () => {
    const dir = join(tmp, `spec${shippedSpecs.indexOf("specs/gpt2-tiny.model")}`);
    const py = readFileSync(join(dir, "model.py"), "utf8");
    expect(py).toContain("# specs/std/nn.model:90: causal_self_attention: q, k, v = split(");
    expect(py).toContain("# specs/gpt2-small.model:27: model gpt2: x = x + mlp(");
    expect(py).toContain('_w("h.1.mlp.c_proj.weight")');
    expect(py).toContain('("wte.weight", (64, 32), "normal", 0.02),');
  });

  it("tiny fixture: equals the PyTorch float64 reference", () => {
    const got = torchOut(cases[shippedSpecs.length]);
    const expected = readSafetensors(`${fixture}/expected.safetensors`).tensors;
    const cs = JSON.parse(readFileSync(`${fixture}/case.json`, "utf8"));
    expect(err(got.get("logits")!.data, expected.get("logits")!.data)).toBeLessThanOrEqual(
      tol.logits,
    );
    expect(Math.abs(got.get("loss")!.data[0] - cs.loss)).toBeLessThanOrEqual(tol.loss(cs.loss));
    for (const [k, ref] of expected)
      if (k.startsWith("grad."))
        expect(err(got.get(k)!.data, ref.data), k).toBeLessThanOrEqual(tol.grad);
  });
});

describe("torchrun", () => {
  it("two processes (gloo, CPU) train a tiny spec for 20 steps; gptc samples from the checkpoint", async () => {
    const dir = join(tmp, "ddp");
    const text = join(tmp, "text.txt");
    writeFileSync(text, readFileSync("README.md", "utf8").slice(0, 40_000));
    const gptc = (args: string[]) => startGptc(args).done;
    const prep = await gptc([
      "prepare",
      "--data",
      text,
      "--tokenizer",
      "char",
      "-o",
      join(tmp, "tok"),
    ]);
    expect(prep.status, prep.stderr).toBe(0);
    const exp = await gptc([
      "export",
      "specs/gpt2-tiny.model",
      "--format",
      "pytorch",
      "-o",
      dir,
      "--data",
      join(tmp, "tok"),
    ]);
    expect(exp.status, exp.stderr).toBe(0);
    // --redirects 1 --tee 1: torch 1.13's torchrun on Python 3.11 fails with its
    // default of 0 (IntFlag iteration changed); any other torch takes them too.
    const r = spawnSync(
      torchrun,
      [
        "--nproc_per_node",
        "2",
        "--master_port",
        String(port),
        "--redirects",
        "1",
        "--tee",
        "1",
        join(dir, "train.py"),
        "--data",
        join(tmp, "tok"),
        "--steps",
        "20",
        "--batch",
        "4",
        "--seq",
        "32",
        "--lr",
        "3e-3",
        "--out",
        join(tmp, "run"),
      ],
      { encoding: "utf8", timeout: 180_000, env: { ...process.env, OMP_NUM_THREADS: "1" } },
    );
    expect(
      r.status,
      `${torchrun} (with ${python}'s torch): ${r.error?.message ?? ""}\n${r.stdout}\n${r.stderr}`,
    ).toBe(0);
    // train.py's log lines are flat JSON objects; torchrun's --tee can join two
    // processes' output on one line (seen once), so objects are taken as found.
    const logs = (r.stdout.match(/\{"[^{}\n]*\}/g) ?? []).map((l) => JSON.parse(l));
    const val = logs.filter((l) => l.valLoss !== undefined);
    expect(val.map((l) => l.step)).toEqual([0, 20]);
    expect(val[1].valLoss).toBeLessThan(val[0].valLoss - 0.3);
    expect(logs.filter((l) => l.loss !== undefined)).toHaveLength(20);
    const gen = await gptc([
      "generate",
      join(tmp, "run"),
      "--prompt",
      "The ",
      "--max-new-tokens",
      "12",
      "--backend",
      "cpu",
      "--temperature",
      "0",
    ]);
    expect(gen.status, gen.stderr).toBe(0);
    expect(gen.stdout.startsWith("The ")).toBe(true);
    expect(gen.stderr).toMatch(/gptc: 12 tokens in/);
    // gptc train goes on from it: the checkpoint holds AdamW's moments and the step.
    const more = await gptc([
      "train",
      "specs/gpt2-tiny.model",
      "--resume",
      join(tmp, "run"),
      "--steps",
      "21",
      "--backend",
      "cpu",
    ]);
    expect(more.status, more.stderr).toBe(0);
    expect(more.stderr).toMatch(/resuming .* at step 20/);
  }, 300_000);
  it("starts from a gptc checkpoint (train.py --init): the weights it loads are gptc's, bit for bit", async () => {
    const tok = join(tmp, "tok");
    const gptcRun = join(tmp, "gptc-run");
    const tr = await startGptc([
      "train",
      "specs/gpt2-tiny.model",
      "--data",
      tok,
      "--steps",
      "2",
      "--batch",
      "2",
      "--seq",
      "16",
      "--backend",
      "cpu",
      "-o",
      gptcRun,
    ]).done;
    expect(tr.status, tr.stderr).toBe(0);
    const out = join(tmp, "from-gptc");
    const r = spawnSync(
      torchrun,
      [
        "--nproc_per_node",
        "1",
        "--master_port",
        String(port + 1),
        "--redirects",
        "1",
        "--tee",
        "1",
        join(tmp, "ddp", "train.py"),
        "--data",
        tok,
        "--init",
        gptcRun,
        "--steps",
        "0",
        "--out",
        out,
      ],
      { encoding: "utf8", timeout: 120_000, env: { ...process.env, OMP_NUM_THREADS: "1" } },
    );
    expect(r.status, `${r.error?.message ?? ""}\n${r.stdout}\n${r.stderr}`).toBe(0);
    const want = readSafetensors(join(gptcRun, "model.safetensors")).tensors;
    const got = readSafetensors(join(out, "model.safetensors")).tensors;
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, v] of want) expect(got.get(k)!.data, k).toEqual(v.data);
  }, 180_000);
});

describe("dropout in the exported module", () => {
  it("train() drops at the spec's rates with 1/(1-p) scaling; eval() is the evaluation graph, deterministic", () => {
    const dir = join(tmp, `spec${shippedSpecs.indexOf("specs/gpt2-small.model")}`);
    const model = readFileSync(join(dir, "model.py"), "utf8");
    // gpt2-small's three places, at config.json's default 0.1.
    expect(
      model.match(/_dropout_mask\(self\.training, .*, 0\.1, _dev\)/g)?.length,
    ).toBeGreaterThanOrEqual(3);
    const script = `
import importlib.util, json, sys, torch
spec = importlib.util.spec_from_file_location("m", sys.argv[1] + "/model.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
torch.manual_seed(0)
mask = mod._dropout_mask(True, [200000], 0.25, None)
m = mod.Model()
x = torch.randint(0, 8, (2, 8))
m.eval(); e1 = m(x)["logits"]; e2 = m(x)["logits"]
m.train(); t1 = m(x)["logits"]; t2 = m(x)["logits"]
print(json.dumps({
  "dropped": (mask == 0).float().mean().item(),
  "kept": sorted(set(mask[mask != 0].tolist())),
  "evalSame": torch.equal(e1, e2),
  "trainDiffers": (t1 - e1).abs().max().item(),
  "trainRuns": (t1 - t2).abs().max().item(),
}))
`;
    const r = JSON.parse(runPython(["-c", script, dir]).trim().split("\n").pop()!);
    // Binomial: n = 200000, p = 0.25, sd ~ 0.001; 5 sd.
    expect(Math.abs(r.dropped - 0.25)).toBeLessThan(0.005);
    expect(r.kept).toHaveLength(1);
    expect(r.kept[0]).toBeCloseTo(1 / 0.75, 6);
    expect(r.evalSame).toBe(true);
    expect(r.trainDiffers).toBeGreaterThan(0);
    expect(r.trainRuns).toBeGreaterThan(0);
  });
});

describe("the model reference", () => {
  it("carries the spec's text and imports: a run trained elsewhere compiles again without the files", async () => {
    const dir = join(tmp, `spec${shippedSpecs.indexOf("specs/gpt2-tiny.model")}`);
    const { model } = JSON.parse(readFileSync(join(dir, "gptc-export.json"), "utf8"));
    expect(Object.keys(model.files)).toEqual(["gpt2-small.model"]);
    const again = compileRef({ ...model, spec: "/nowhere/specs/gpt2-tiny.model" });
    expect(again.weights).toEqual(compile({ file: "specs/gpt2-tiny.model" }).weights);
  });
});

describe("bad input", () => {
  it("an op with no PyTorch mapping is named with its spec line", () => {
    const model = compile({ file: "specs/gpt2-tiny.model" });
    // The training graph holds autodiff's ops (scatter_add), which the module leaves to torch.
    const call = () =>
      pytorchModule({
        spec: "x",
        name: "m",
        weights: [],
        graph: model.graphs.training!,
        quote: () => "",
      });
    expect(call).toThrow(ExportError);
    expect(call).toThrow(
      /op '(scatter_add|put)' has no PyTorch mapping \(from specs\/std\/nn\.model:\d+:\d+\)/,
    );
  });

  it("refuses weights for the PyTorch export before writing anything", async () => {
    const out = join(tmp, "refused");
    const model = compile({ file: "specs/gpt2-tiny.model" });
    await expect(exportModel(model, { format: "pytorch", out, weights: "x" })).rejects.toThrow(
      UsageError,
    );
    await expect(exportModel(model, { format: "tflite" as "onnx", out })).rejects.toThrow(
      /unknown export format/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it("refuses an input name model.py cannot use, naming it, before writing", async () => {
    const out = join(tmp, "badname");
    const model = compile(
      `import "std/nn.model"\nmodel m {\n  input self: int[B, T]\n  output logits = embedding(self, 5, 4)\n}\n`,
    );
    await expect(exportModel(model, { format: "pytorch", out })).rejects.toThrow(/input 'self'/);
    expect(existsSync(out)).toBe(false);
  });

  it("a hostile spec path and spec text stay inside comments and strings of model.py", async () => {
    const out = join(tmp, "hostile");
    const path = join(tmp, 'evil\nimport os\nos.system("x")\n""".model');
    const text = `import "std/nn.model"\nmodel m {\n  input tokens: int[B, T]\n  output logits = embedding(tokens, 5, 4) as e // \u2028import os\u0085os.system(1)\n}\n`;
    const model = compile(text, { path });
    await exportModel(model, { format: "pytorch", out });
    const py = readFileSync(join(out, "model.py"), "utf8");
    const lines = py.split("\n");
    // (model.py's own safetensors writer imports os, indented inside its function.)
    expect(lines.filter((l) => /^import os|^\s*os\.system|^"""/.test(l))).toEqual([]);
    expect(py).not.toMatch(/[\u2028\u0085]/);
    // Python itself agrees: the module compiles, and defines only what gptc writes.
    const names = runPython([
      "-c",
      "import ast, sys\ntree = ast.parse(open(sys.argv[1], encoding='utf-8').read())\nprint(sorted(type(n).__name__ + ':' + getattr(n, 'name', '') for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom, ast.Assign, ast.Expr))))",
      join(out, "model.py"),
    ]);
    expect(names.trim()).toBe(
      "['ClassDef:Model', 'ClassDef:_Scope', 'FunctionDef:_causal_mask', 'FunctionDef:_dropout_mask', 'FunctionDef:_pad', 'FunctionDef:load_safetensors', 'FunctionDef:save_safetensors']",
    );
  });

  it("train.py refuses a model without a loss, with a message", async () => {
    const out = join(tmp, "no-loss");
    const model = compile(
      `import "std/nn.model"\nmodel m {\n  input tokens: int[B, T]\n  output logits = embedding(tokens, 5, 4) as e\n}\n`,
    );
    await exportModel(model, { format: "pytorch", out });
    const r = spawnSync(python, [join(out, "train.py"), "--data", out], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("train.py: error: m declares no loss");
  });

  it("the CLI exits 1 with the message and writes nothing", async () => {
    const out = join(tmp, "cli-refused");
    const r = await startGptc([
      "export",
      "specs/gpt2-tiny.model",
      "--format",
      "pytorch",
      "--weights",
      "w.safetensors",
      "-o",
      out,
    ]).done;
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/gptc: error: --format pytorch writes code, not weights/);
    expect(existsSync(out)).toBe(false);
  });
});
