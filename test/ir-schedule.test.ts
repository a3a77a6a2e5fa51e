// Fusion and memory planning on every shipped spec: the schedule computes every
// node, in an order where each kernel reads only buffers that exist; the
// expected fusions happen on GPT-2; the input limit holds; the arena never puts
// two live buffers at the same address.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { dimSym, dimValue, shapeEval, shapeOf } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import { getOp } from "../src/ir/ops/registry.js";
import { defaultLimits, fuse, type Kernel, type Schedule } from "../src/ir/passes/fuse.js";
import { bytesPerElement, planMemory, type MemoryPlan } from "../src/ir/passes/memory.js";
import { compileGraphs, type CompiledGraphs } from "../src/ir/pipeline.js";
import { bindingsFor, lowerSpec, specFiles } from "./helpers/ir.js";

const anchors = new Set(["matmul", "sum", "mean", "max", "scatter_add"]);
const kindOfAnchor: Record<string, string> = {
  matmul: "matmul",
  sum: "reduce",
  mean: "reduce",
  max: "reduce",
  scatter_add: "scatter",
};

/** Problems with a schedule (empty when every invariant holds). */
function scheduleProblems(s: Schedule, maxInputs?: number): string[] {
  const g = s.graph;
  const problems: string[] = [];
  const check = (ok: boolean, what: () => string) => {
    if (!ok && problems.length < 20) problems.push(what());
  };
  const producedBy = new Map<number, number>();
  const computed = new Set<number>();
  const names = new Set<string>();
  s.kernels.forEach((k, index) => {
    const at = `${k.name} (kernel ${index})`;
    check(k.index === index, () => `${at}: index ${k.index}`);
    check(
      /^k\d+_[a-z_]+$/.test(k.name) && k.name.startsWith(`k${index}_`),
      () => `${at}: bad name`,
    );
    check(!names.has(k.name), () => `${at}: name used twice`);
    names.add(k.name);
    // What it writes is a buffer, written once.
    check(s.materialized.has(k.output), () => `${at}: output %${k.output} has no buffer`);
    check(!producedBy.has(k.output), () => `${at}: %${k.output} written twice`);
    check(k.nodes.includes(k.output), () => `${at}: does not compute its output`);
    // Every input is materialized and exists before the kernel runs.
    const reads = new Set(k.inputs);
    for (const i of k.inputs) {
      check(s.materialized.has(i), () => `${at} reads %${i}, which has no buffer`);
      const op = g.nodes[i].op;
      if (op !== "input" && op !== "weight")
        check(
          (producedBy.get(i) ?? Infinity) < index,
          () => `${at} reads %${i} before it is written`,
        );
    }
    // The nodes it computes are closed: each reads another node of the kernel or an input.
    const inside = new Set(k.nodes);
    for (const id of k.nodes) {
      const op = g.nodes[id].op;
      check(op !== "input" && op !== "weight", () => `${at} computes the source %${id}`);
      check(id === k.output || !s.materialized.has(id), () => `${at} recomputes buffer %${id}`);
      for (const i of g.nodes[id].inputs)
        check(inside.has(i) || reads.has(i), () => `${at}: %${id} reads %${i}, not available`);
      computed.add(id);
    }
    // At most one anchor besides reductions of a row computed per row (each
    // over the last axis, kept), and the kernel's kind says which.
    const perRow = new Set(k.rowReductions ?? []);
    for (const id of perRow) {
      const n = g.nodes[id];
      const rank = g.nodes[n.inputs[0]].type.shape.length;
      check(
        anchors.has(n.op) &&
          n.attrs.keepdim === true &&
          String(n.attrs.axes) === String([rank - 1]) &&
          k.nodes.includes(id),
        () => `${at}: %${id} is no row reduction of the kernel`,
      );
    }
    const own = k.nodes.filter((id) => anchors.has(g.nodes[id].op) && !perRow.has(id));
    check(own.length <= 1, () => `${at}: ${own.length} anchors`);
    if (own.length)
      check(
        k.anchor === own[0] && k.kind === kindOfAnchor[g.nodes[own[0]].op],
        () => `${at}: anchor %${k.anchor} of kind ${k.kind}`,
      );
    else check(k.kind === "elementwise" && k.anchor === undefined, () => `${at}: kind ${k.kind}`);
    if (maxInputs !== undefined)
      check(k.inputs.length <= maxInputs, () => `${at} reads ${k.inputs.length} buffers`);
    producedBy.set(k.output, index);
  });
  // Every non-source node is computed by some kernel; every output has a buffer.
  for (const n of g.nodes)
    if (getOp(n.op).kind !== "source")
      check(computed.has(n.id), () => `%${n.id} ${n.op} is computed by no kernel`);
  for (const o of g.outputs)
    check(s.materialized.has(o.id), () => `output ${o.name} has no buffer`);
  // Buffers are inputs, weights and kernel outputs, nothing else.
  for (const id of s.materialized) {
    const op = g.nodes[id].op;
    check(
      op === "input" || op === "weight" || producedBy.has(id),
      () => `%${id} ${op} is never written`,
    );
  }
  return problems;
}

function checkSchedule(s: Schedule, maxInputs?: number): void {
  expect(scheduleProblems(s, maxInputs)).toEqual([]);
}

/** Problems with the placement of buffers (empty when it is sound). */
function planProblems(p: MemoryPlan, s: Schedule): string[] {
  const g = s.graph;
  const problems: string[] = [];
  const check = (ok: boolean, what: () => string) => {
    if (!ok && problems.length < 20) problems.push(what());
  };
  const bytes = (id: number) =>
    shapeEval(g.nodes[id].type.shape, p.bindings).reduce((a, b) => a * b, 1) * bytesPerElement;
  const lastRead = new Map<number, number>();
  for (const k of s.kernels) for (const i of k.inputs) lastRead.set(i, k.index);
  const outputs = new Set(g.outputs.map((o) => o.id));
  for (const b of p.buffers) {
    const at = `buffer %${b.node}`;
    check(b.bytes === bytes(b.node), () => `${at}: ${b.bytes} bytes`);
    check(s.kernels[b.first]?.output === b.node, () => `${at}: not written by k${b.first}`);
    check(
      b.last >= (lastRead.get(b.node) ?? b.first),
      () => `${at}: dies at k${b.last}, before its last reader`,
    );
    if (outputs.has(b.node))
      check(b.last === s.kernels.length, () => `${at}: an output dies early`);
    check(
      b.offset >= 0 && b.offset + b.bytes <= p.activationBytes,
      () => `${at}: outside the arena`,
    );
  }
  // No two buffers overlap in both time and address.
  const bs = [...p.buffers].filter((b) => b.bytes > 0).sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < bs.length; i++)
    for (let j = i + 1; j < bs.length && bs[j].offset < bs[i].offset + bs[i].bytes; j++) {
      const [a, b] = [bs[i], bs[j]];
      check(
        !(a.first <= b.last && b.first <= a.last),
        () =>
          `%${a.node} [${a.offset}, +${a.bytes}) k${a.first}..k${a.last} and %${b.node} [${b.offset}, +${b.bytes}) k${b.first}..k${b.last} overlap`,
      );
    }
  return problems;
}

function checkPlan(p: MemoryPlan, s: Schedule, training: boolean): void {
  const g = s.graph;
  const bytes = (id: number) =>
    shapeEval(g.nodes[id].type.shape, p.bindings).reduce((a, b) => a * b, 1) * bytesPerElement;
  expect(planProblems(p, s)).toEqual([]);
  // Peak: at least what is live at once, at most everything side by side.
  const delta = new Array<number>(s.kernels.length + 2).fill(0);
  for (const b of p.buffers) {
    delta[b.first] += b.bytes;
    delta[b.last + 1] -= b.bytes;
  }
  let live = 0;
  let peakLive = 0;
  for (const d of delta) peakLive = Math.max(peakLive, (live += d));
  expect(p.activationBytes).toBeGreaterThanOrEqual(peakLive);
  expect(p.activationBytes).toBeLessThanOrEqual(p.activationBytesNoReuse);
  expect(p.activationBytesNoReuse).toBe(p.buffers.reduce((a, b) => a + b.bytes, 0));
  // Weights, gradients, optimizer state.
  const weightBytes = g.nodesOf("weight").reduce((a, w) => a + bytes(w.id), 0);
  expect(p.weightBytes).toBe(weightBytes);
  expect(p.gradientBytes).toBe(training ? weightBytes : 0);
  expect(p.optimizerBytes).toBe(training ? 2 * weightBytes : 0);
  expect(p.totalBytes).toBe(
    p.activationBytes + p.weightBytes + p.gradientBytes + p.optimizerBytes + p.inputBytes,
  );
}

const compiled = new Map<string, CompiledGraphs>();
const graphsOf = (file: string) => {
  if (!compiled.has(file)) compiled.set(file, compileGraphs(lowerSpec(file, { small: false })));
  return compiled.get(file)!;
};

describe.each(specFiles)("%s", (file) => {
  for (const which of ["forwardOpt", "training"] as const) {
    it(`${which}: schedule invariants, and with at most 3 inputs per kernel`, () => {
      const g = graphsOf(file)[which]!;
      const s = fuse(g);
      checkSchedule(s);
      expect(s.kernels.length).toBeLessThan(g.nodes.length);
      const tight = fuse(g, { maxInputs: 3 });
      checkSchedule(tight, 3);
      expect(tight.kernels.length).toBeGreaterThanOrEqual(s.kernels.length);
    });

    it(`${which}: memory plan`, () => {
      const g = graphsOf(file)[which]!;
      const s = fuse(g);
      const bindings = bindingsFor(g, { B: 2, T: 16 });
      checkPlan(
        planMemory(s, bindings, { training: which === "training" }),
        s,
        which === "training",
      );
    });
  }
});

// ---- what GPT-2 fuses ----------------------------------------------------------------------

const nnLines = readFileSync("specs/std/nn.model", "utf8").split("\n");
/** Source lines [first, last] of a stdlib function. */
function fnLines(name: string): [number, number] {
  const first = nnLines.findIndex((l) => l.startsWith(`fn ${name}(`)) + 1;
  const last = nnLines.findIndex((l, i) => i >= first && l === "}") + 1;
  expect(first).toBeGreaterThan(0);
  return [first, last];
}

/** Kernels from `start` back through the producers of values std's layernorm computes. */
function layernormKernels(s: Schedule, start: Kernel): Set<number> {
  const g = s.graph;
  const [first, last] = fnLines("layernorm");
  const inLayernorm = (id: number) => {
    const sp = g.nodes[id].span;
    return !!sp && sp.file.endsWith("std/nn.model") && sp.line >= first && sp.line <= last;
  };
  const producer = new Map(s.kernels.map((k) => [k.output, k]));
  const seen = new Set<number>();
  const stack = [start];
  while (stack.length) {
    const k = stack.pop()!;
    if (seen.has(k.index)) continue;
    seen.add(k.index);
    for (const i of k.inputs) {
      const p = producer.get(i);
      if (p && inLayernorm(p.output)) stack.push(p);
    }
  }
  return seen;
}

describe("gpt2-tiny forward schedule", () => {
  const g = graphsOf("specs/gpt2-tiny.model").forwardOpt;
  const s = fuse(g);
  const ops = (k: { nodes: number[] }) => k.nodes.map((id) => g.nodes[id].op);
  const weightName = (id: number) =>
    g.nodes[id].op === "weight" ? (g.nodes[id].attrs.name as string) : "";

  it("fuses bias + GELU into the c_fc matmul", () => {
    const fc = s.kernels.filter((k) => k.kind === "matmul" && ops(k).includes("tanh"));
    expect(fc.length).toBe(2); // one per layer
    for (const k of fc) {
      expect(k.inputs.map(weightName)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/mlp\.c_fc\.weight$/),
          expect.stringMatching(/mlp\.c_fc\.bias$/),
        ]),
      );
      expect(g.nodes[k.output].op).toBe("mul"); // 0.5 * x * (1 + tanh(...))
    }
    // no separate elementwise kernel computes a tanh
    expect(s.kernels.filter((k) => k.kind !== "matmul" && ops(k).includes("tanh"))).toEqual([]);
  });

  it("never stores the scaled, masked scores: the softmax kernels recompute them; exp is stored once", () => {
    // Q·Kᵀ writes the raw scores; the max and the exp kernels each apply the
    // 1/sqrt(d) scale and the causal mask inline (cheap), and exp, costly and
    // read by both the sum and the division, is computed once and stored.
    const qk = s.kernels.filter(
      (k) =>
        k.kind === "matmul" &&
        s.kernels.some((m) => m.inputs.includes(k.output) && ops(m).includes("causal_mask")),
    );
    expect(qk.length).toBe(2);
    for (const k of qk) {
      expect(g.nodes[k.output].op).toBe("matmul");
      expect(k.inputs.length).toBe(1); // q and k both come out of the c_attn buffer
      const readers = s.kernels.filter((m) => m.inputs.includes(k.output));
      expect(readers.map((m) => m.kind).sort()).toEqual(["elementwise", "reduce"]);
      for (const m of readers)
        expect(ops(m)).toEqual(expect.arrayContaining(["div", "add", "causal_mask"]));
      const exp = readers.find((m) => m.kind === "elementwise")!;
      expect(g.nodes[exp.output].op).toBe("exp");
    }
  });

  it("takes at most 3 kernels per layernorm", () => {
    const lnWeights = g
      .nodesOf("weight")
      .filter((w) => /(^|\.)ln_(1|2|f)\.weight$/.test(w.attrs.name as string));
    expect(lnWeights.length).toBe(5);
    for (const w of lnWeights) {
      const final = s.kernels.filter((k) => k.inputs.includes(w.id));
      expect(final.length, `${w.attrs.name} is read by one kernel`).toBe(1);
      const seen = layernormKernels(s, final[0]);
      // The mean and variance are reductions of their own: the walk reaches them.
      const reductions = [...seen].filter((k) => s.kernels[k].kind === "reduce");
      expect(reductions.length, `${w.attrs.name}`).toBeGreaterThanOrEqual(1);
      expect(seen.size, `${w.attrs.name}`).toBeGreaterThanOrEqual(2);
      expect(seen.size, `${w.attrs.name}`).toBeLessThanOrEqual(3);
    }
  });
});

describe("row reductions computed per row (FusionLimits.rowReductions, the WebAssembly kernels)", () => {
  const rows = { ...defaultLimits, rowReductions: true };
  const tiny = graphsOf("specs/gpt2-tiny.model");
  const ops = (g: Graph, k: { nodes: number[] }) => k.nodes.map((id) => g.nodes[id].op);

  it.each(["forwardOpt", "training"] as const)(
    "%s: the schedule's invariants hold, with fewer kernels than without",
    (which) => {
      const g = tiny[which]!;
      const s = fuse(g, rows);
      checkSchedule(s);
      expect(s.kernels.length).toBeLessThan(fuse(g).kernels.length);
    },
  );

  it("a layernorm is one kernel, its mean and variance computed in it per row", () => {
    const g = tiny.forwardOpt;
    const s = fuse(g, rows);
    const lnWeights = g
      .nodesOf("weight")
      .filter((w) => /(^|\.)ln_(1|2|f)\.weight$/.test(w.attrs.name as string));
    expect(lnWeights.length).toBe(5);
    for (const w of lnWeights) {
      const [k, ...more] = s.kernels.filter((k) => k.inputs.includes(w.id));
      expect(more).toEqual([]);
      expect(k.kind).toBe("elementwise");
      expect(k.rowReductions!.map((id) => g.nodes[id].op)).toEqual(["mean", "mean"]);
      // It reads the residual stream and the two weights, no statistics of another kernel.
      expect(k.inputs.length).toBe(3);
    }
  });

  it("training: a layernorm's forward is two kernels (statistics and x-hat per row, then the affine map)", () => {
    const g = tiny.training!;
    const s = fuse(g, rows);
    const lnWeights = g
      .nodesOf("weight")
      .filter((w) => /ln_(1|2|f)\.weight$/.test(w.attrs.name as string));
    expect(lnWeights.length).toBe(5);
    for (const w of lnWeights) {
      // The forward's kernel reading γ is the first; the backward's come later.
      const affine = s.kernels.find((k) => k.inputs.includes(w.id))!;
      expect(layernormKernels(s, affine).size, `${w.attrs.name}`).toBe(2);
    }
  });

  it("attention's softmax is two kernels: exp(x - max) with the max inside, the division with the sum", () => {
    const g = tiny.forwardOpt;
    const s = fuse(g, rows);
    const exps = s.kernels.filter((k) => g.nodes[k.output].op === "exp");
    expect(exps.length).toBe(2);
    for (const e of exps) {
      expect(e.rowReductions!.map((id) => g.nodes[id].op)).toEqual(["max"]);
      const [div, ...more] = s.kernels.filter((k) => k.inputs.includes(e.output));
      expect(more).toEqual([]);
      expect(ops(g, div)).toEqual(["sum", "div"]);
      expect(div.rowReductions!.map((id) => g.nodes[id].op)).toEqual(["sum"]);
    }
  });

  it("a vocabulary-long row's max read by two kernels stays a kernel of its own", () => {
    // The training loss: max over 50257 logits, read by the exp and the backward.
    const g = graphsOf("specs/gpt2-small.model").training!;
    const s = fuse(g, rows);
    const vocab = (id: number) => dimValue(g.nodes[id].type.shape.at(-1)!) === 50257;
    const maxes = s.kernels.filter(
      (k) => g.nodes[k.output].op === "max" && vocab(g.nodes[k.output].inputs[0]),
    );
    expect(maxes.length).toBe(1);
    for (const k of s.kernels)
      for (const id of k.rowReductions ?? [])
        expect(
          vocab(g.nodes[id].inputs[0]),
          `${k.name} computes a vocabulary row's reduction`,
        ).toBe(false);
  });

  it("a row's max read by two kernels: inlined in both while the row is short, else its own kernel", () => {
    for (const [len, inlined] of [
      [4096, true],
      [4097, false],
    ] as const) {
      const g = new Graph("g");
      const x = g.op("input", [], { name: "x", dtype: "f32", shape: shapeOf("B", len) });
      const m = g.op("max", [x], { axes: [1], keepdim: true });
      g.output("a", g.op("sub", [x, m]));
      g.output("b", g.op("mul", [x, m]));
      const s = fuse(g, rows);
      checkSchedule(s);
      expect(s.materialized.has(m)).toBe(!inlined);
      expect(s.kernels.length).toBe(inlined ? 2 : 3);
    }
  });

  it.each(["a transpose", "another axis's sum"])(
    "a reduction read across rows (%s) stays a kernel",
    (reader) => {
      const g = new Graph("g");
      const x = g.op("input", [], { name: "x", dtype: "f32", shape: shapeOf(8, 8) });
      const m = g.op("mean", [x], { axes: [1], keepdim: true });
      const centered = g.op("sub", [x, m]);
      g.output(
        "y",
        reader === "a transpose"
          ? g.op("permute", [centered], { perm: [1, 0] })
          : g.op("sum", [centered], { axes: [0], keepdim: true }),
      );
      const s = fuse(g, rows);
      checkSchedule(s);
      expect(s.materialized.has(m)).toBe(true);
    },
  );

  it("other targets' schedules are unchanged (gpu.js computes each element on its own)", () => {
    const g = tiny.forwardOpt;
    expect(fuse(g).kernels.every((k) => k.rowReductions === undefined)).toBe(true);
  });
});

describe("memory of gpt2-small", () => {
  it("weighs 124,439,808 float32 parameters", () => {
    const c = graphsOf("specs/gpt2-small.model");
    const s = fuse(c.forwardOpt);
    const p = planMemory(s, bindingsFor(c.forwardOpt, { B: 1, T: 8 }), { training: false });
    expect(p.weightBytes).toBe(124_439_808 * 4);
    expect(p.gradientBytes).toBe(0);
    expect(p.optimizerBytes).toBe(0);
  });
});

describe("buffers within one kernel (a GEMM's product before its epilogue)", () => {
  it("are placed apart from every buffer live at their kernel, reusing dead space", () => {
    const g = graphsOf("specs/gpt2-tiny.model").training!;
    const s = fuse(g);
    const bindings = bindingsFor(g, { B: 2, T: 16 });
    const matmuls = s.kernels.filter((k) => k.kind === "matmul");
    const within = new Map(matmuls.map((k) => [k.index, 4096 + 64 * k.index]));
    const plain = planMemory(s, bindings, { training: true });
    const p = planMemory(s, bindings, { training: true, within });
    const inner = p.buffers.filter((b) => b.node < 0);
    expect(inner.map((b) => -1 - b.node).sort((a, b) => a - b)).toEqual(
      matmuls.map((k) => k.index),
    );
    for (const b of inner) {
      const k = -1 - b.node;
      expect([b.first, b.last, b.bytes]).toEqual([k, k, within.get(k)]);
      expect(b.offset + b.bytes).toBeLessThanOrEqual(p.activationBytes);
      for (const o of p.buffers)
        if (o !== b && o.first <= k && k <= o.last)
          expect(
            o.offset + o.bytes <= b.offset || b.offset + b.bytes <= o.offset,
            `k${k}'s buffer overlaps %${o.node}`,
          ).toBe(true);
    }
    // Dead space is reused: far less than one arena more per product.
    const sum = [...within.values()].reduce((a, b) => a + b, 0);
    expect(p.activationBytes - plain.activationBytes).toBeLessThan(sum / 4);
  });
});

describe("the checks themselves", () => {
  const g = graphsOf("specs/gpt2-tiny.model").forwardOpt;

  it("catch a schedule run out of order, a missing kernel, too many inputs", () => {
    const s = fuse(g);
    const swapped = [...s.kernels];
    [swapped[3], swapped[4]] = [swapped[4], swapped[3]];
    swapped.forEach(
      (k, i) => (swapped[i] = { ...k, index: i, name: k.name.replace(/^k\d+/, `k${i}`) }),
    );
    expect(scheduleProblems({ ...s, kernels: swapped }).join("\n")).toMatch(/before it is written/);
    const dropped = s.kernels.filter((k) => k.index !== 5);
    expect(scheduleProblems({ ...s, kernels: dropped }).length).toBeGreaterThan(0);
    expect(scheduleProblems(s, 2).join("\n")).toMatch(/reads \d+ buffers/);
  });

  it("catch two live buffers at one address", () => {
    const s = fuse(g);
    const p = planMemory(s, bindingsFor(g, { B: 2, T: 8 }), { training: false });
    expect(planProblems(p, s)).toEqual([]);
    const squashed = { ...p, buffers: p.buffers.map((b) => ({ ...b, offset: 0 })) };
    expect(planProblems(squashed, s).join("\n")).toMatch(/overlap/);
  });
});

describe("edge cases", () => {
  it("a graph whose outputs are sources gets well-named kernels", () => {
    const g = new Graph("g");
    const T = dimSym("T");
    g.output("idx", g.op("arange", [], { n: T }));
    g.output("c", g.op("const", [], { value: 2 }));
    g.output("mask", g.op("causal_mask", [], { q: T, k: T }));
    const x = g.op("input", [], { name: "x", dtype: "f32", shape: shapeOf("T") });
    g.output("x", x);
    const s = fuse(g);
    checkSchedule(s);
    expect(s.kernels.map((k) => k.name)).toEqual(["k0_arange", "k1_const", "k2_causal_mask"]);
    checkPlan(planMemory(s, { T: 4 }, { training: false }), s, false);
  });

  it("a node read by many kernels is computed once when it is not cheap to inline", () => {
    const g = new Graph("g");
    const x = g.op("input", [], { name: "x", dtype: "f32", shape: shapeOf("B", 4) });
    const e = g.op("exp", [x]);
    for (let i = 0; i < 4; i++)
      g.output(
        `s${i}`,
        g.op("sum", [g.op("mul", [e, g.scalar(i)])], { axes: [1], keepdim: false }),
      );
    const s = fuse(g);
    checkSchedule(s);
    expect(s.materialized.has(e)).toBe(true);
  });
});
