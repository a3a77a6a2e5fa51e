// Every pass preserves meaning: each shipped spec, at small sizes, computes the
// same outputs (float64 interpreter, random weights and token ids) before and
// after fold, cse, dce, optimize and autodiff-then-optimize; every graph a pass
// produces verifies. Then targeted unit tests of what each pass removes.
import { describe, expect, it } from "vitest";
import { dimConst, dimMul, dimSym, shapeOf } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import { run } from "../src/ir/interpret.js";
import type { Lowered } from "../src/ir/lower.js";
import { autodiff } from "../src/ir/passes/autodiff.js";
import { cse } from "../src/ir/passes/cse.js";
import { dce } from "../src/ir/passes/dce.js";
import { fold } from "../src/ir/passes/fold.js";
import { evalMode } from "../src/ir/passes/mode.js";
import { rngKeyInput } from "../src/ir/ops/random.js";
import { verify } from "../src/ir/passes/verify.js";
import { compileGraphs, optimize, PassVerifyError, runPass } from "../src/ir/pipeline.js";
import { printGraph } from "../src/ir/text.js";
import {
  bindingsFor,
  lowerSpec,
  maxAbs,
  paramValue,
  randomInputs,
  randomWeights,
  relErr,
  rng,
  specFiles,
  t,
  type Tensor,
} from "./helpers/ir.js";

const tol = 1e-12;

/**
 * Each output within `tol` of the reference, relative to its largest magnitude. A
 * tensor that is mathematically zero (the key bias of attention: softmax is
 * shift-invariant) holds only round-off (~1e-20), which differs between equivalent
 * graphs; its scale is floored at 1e-6 of the largest value of the whole run.
 */
function expectSameOutputs(
  what: string,
  got: Record<string, Tensor>,
  want: Record<string, Tensor>,
  names = Object.keys(want),
) {
  const runScale = Math.max(...names.map((n) => maxAbs(want[n].data)));
  for (const name of names) {
    expect(got[name], `${what}: output ${name}`).toBeDefined();
    expect(got[name].shape, `${what}: shape of ${name}`).toEqual(want[name].shape);
    const scale = Math.max(maxAbs(want[name].data), 1e-6 * runScale);
    const err = relErr(got[name].data, want[name].data) * (maxAbs(want[name].data) / scale || 1);
    expect(err, `${what}: ${name} differs by ${err}`).toBeLessThanOrEqual(tol);
  }
}

function expectValid(what: string, g: Graph) {
  expect(verify(g), `${what} verifies`).toEqual([]);
}

describe.each(specFiles)("passes preserve meaning on %s", (file) => {
  let l: Lowered;
  let env: {
    inputs: Record<string, Tensor>;
    weights: Map<string, Tensor>;
    bindings: Record<string, number>;
  };
  let reference: Record<string, Tensor>;

  const setup = () => {
    if (l) return;
    l = lowerSpec(file);
    const r = rng(12345);
    const bindings = bindingsFor(l.graph, { B: 2, T: 4 });
    const vocab = paramValue(l, "vocab")!;
    expect(vocab).toBe(11);
    env = {
      bindings,
      weights: randomWeights(l.graph, r, 0.1),
      inputs: randomInputs(l.graph, bindings, r, vocab),
    };
    expectValid("the lowered graph", l.graph);
    reference = run(l.graph, env);
    expect(Object.keys(reference).sort()).toEqual(["logits", "loss"]);
    // A meaningful reference: finite, not all zero.
    for (const v of Object.values(reference)) {
      expect(v.data.every(Number.isFinite)).toBe(true);
      expect(maxAbs(v.data)).toBeGreaterThan(0);
    }
  };

  for (const [name, pass] of [
    ["fold", fold],
    ["cse", cse],
    ["dce", (g: Graph) => dce(g)],
    ["optimize", optimize],
    ["fold∘fold", (g: Graph) => fold(fold(g))],
    ["cse∘fold∘cse", (g: Graph) => cse(fold(cse(g)))],
  ] as const)
    it(name, () => {
      setup();
      const g = pass(l.graph);
      expectValid(name, g);
      expect(g.outputs.map((o) => o.name)).toEqual(l.graph.outputs.map((o) => o.name));
      expect(g.nodes.length).toBeLessThanOrEqual(l.graph.nodes.length);
      expectSameOutputs(name, run(g, env), reference);
    });

  it("optimize shrinks the graph and is idempotent", () => {
    setup();
    const once = optimize(l.graph);
    expect(once.nodes.length).toBeLessThan(l.graph.nodes.length);
    expect(printGraph(optimize(once))).toBe(printGraph(once));
  });

  it("dce keeping only some outputs", () => {
    setup();
    const onlyLogits = dce(l.graph, (n) => n === "logits");
    expectValid("dce(logits)", onlyLogits);
    expect(onlyLogits.outputs.map((o) => o.name)).toEqual(["logits"]);
    // targets only feed the loss (the dropout key feeds logits too, in training mode)
    expect(
      onlyLogits
        .nodesOf("input")
        .map((n) => n.attrs.name)
        .filter((n) => n !== rngKeyInput),
    ).toEqual(["tokens"]);
    expectSameOutputs("dce(logits)", run(onlyLogits, env), reference, ["logits"]);
  });

  it("autodiff, then optimize, and compileGraphs", () => {
    setup();
    const train = autodiff(l.graph);
    expectValid("autodiff", train);
    const trainRef = run(train, env);
    expectSameOutputs("autodiff (forward part)", trainRef, reference);
    const gradNames = l.graph.nodesOf("weight").map((w) => `grad.${w.attrs.name}`);
    expect(train.outputs.map((o) => o.name)).toEqual(["logits", "loss", ...gradNames]);
    // Some gradient is non-zero, none is NaN.
    let total = 0;
    for (const n of gradNames) {
      expect(trainRef[n].data.every(Number.isFinite), n).toBe(true);
      total += maxAbs(trainRef[n].data);
    }
    expect(total).toBeGreaterThan(0);

    const trainOpt = optimize(train);
    expectValid("optimize(autodiff)", trainOpt);
    expect(trainOpt.nodes.length).toBeLessThan(train.nodes.length);
    expectSameOutputs("optimize(autodiff)", run(trainOpt, env), trainRef);

    const c = compileGraphs(l);
    for (const [what, g] of [
      ["forward", c.forward],
      ["forwardOpt", c.forwardOpt],
      ["training", c.training!],
    ] as const)
      expectValid(what, g);
    expect(c.forward.outputs.map((o) => o.name)).toEqual(["logits"]);
    // The forward graphs are in evaluation mode: compared with the lowered graph's (no dropout).
    const evalRef = run(evalMode(l.graph), env);
    expectSameOutputs("forward", run(c.forward, env), evalRef, ["logits"]);
    expectSameOutputs("forwardOpt", run(c.forwardOpt, env), evalRef, ["logits"]);
    const training = run(c.training!, env);
    expectSameOutputs("training", training, trainRef);
    expect(Object.keys(training).sort()).toEqual(Object.keys(trainRef).sort());
  });
});

// ---- targeted unit tests -------------------------------------------------------------------

function graphWith(build: (g: Graph, x: number) => void, dtype: "f32" | "i32" = "f32"): Graph {
  const g = new Graph("u");
  const x = g.op("input", [], { name: "x", dtype, shape: shapeOf("B", 3) });
  build(g, x);
  return g;
}

const ops = (g: Graph) => g.nodes.map((n) => n.op);
const xIn = (shape: number[], f: (i: number) => number) => ({ x: t(shape, f) });

describe("fold", () => {
  it("removes x*1, 1*x, x+0, 0+x, x-0, x/1", () => {
    const g = graphWith((g, x) => {
      let y = g.op("mul", [x, g.scalar(1)]);
      y = g.op("mul", [g.scalar(1), y]);
      y = g.op("add", [y, g.scalar(0)]);
      y = g.op("add", [g.scalar(0), y]);
      y = g.op("sub", [y, g.scalar(0)]);
      y = g.op("div", [y, g.scalar(1)]);
      g.output("y", y);
    });
    const f = dce(fold(g));
    expectValid("fold", f);
    expect(ops(f)).toEqual(["input"]);
    expect(f.outputs).toEqual([{ name: "y", id: 0 }]);
  });

  it("keeps x*1 when it changes the type (ids become floats)", () => {
    const g = graphWith((g, x) => g.output("y", g.op("mul", [x, g.scalar(1)])), "i32");
    const f = dce(fold(g));
    expect(f.type(f.outputs[0].id).dtype).toBe("f32");
    expect(ops(f)).toContain("mul");
  });

  it("removes a double negation, but not when it turns ids into floats", () => {
    const g = graphWith((g, x) => g.output("y", g.op("neg", [g.op("neg", [x])])));
    expect(ops(dce(fold(g)))).toEqual(["input"]);
    const gi = graphWith((g, x) => g.output("y", g.op("neg", [g.op("neg", [x])])), "i32");
    const fi = dce(fold(gi));
    expectValid("fold", fi);
    // -(-ids) is a float tensor: the output keeps its dtype
    expect(fi.type(fi.outputs[0].id)).toEqual(gi.type(gi.outputs[0].id));
  });

  it("removes identity permutes and composes permutes", () => {
    const g = new Graph("u");
    const x = g.op("input", [], { name: "x", dtype: "f32", shape: shapeOf(2, 3, 4) });
    g.output("id", g.op("permute", [x], { perm: [0, 1, 2] }));
    const p = g.op("permute", [x], { perm: [2, 0, 1] });
    g.output("back", g.op("permute", [p], { perm: [1, 2, 0] })); // inverse of [2, 0, 1]
    g.output("two", g.op("permute", [p], { perm: [0, 2, 1] }));
    const f = dce(fold(g));
    expectValid("fold", f);
    const out = Object.fromEntries(f.outputs.map((o) => [o.name, o.id]));
    expect(out.id).toBe(0);
    expect(out.back).toBe(0);
    const two = f.node(out.two);
    expect(two.op).toBe("permute");
    expect(two.inputs).toEqual([0]);
    // [0, 2, 1] after [2, 0, 1] is [2, 1, 0]
    expect(two.attrs.perm).toEqual([2, 1, 0]);
    const inputs = xIn([2, 3, 4], (i) => i * 1.5 - 7);
    expectSameOutputs("permutes", run(f, { inputs, weights: {} }), run(g, { inputs, weights: {} }));
  });

  it("moves a transpose of a product onto its operands, (A B)ᵀ = Bᵀ Aᵀ, bit for bit", () => {
    const g = new Graph("u");
    const a = g.op("input", [], { name: "a", dtype: "f32", shape: shapeOf(2, 3, 5) });
    const b = g.op("input", [], { name: "b", dtype: "f32", shape: shapeOf(4, 5) });
    const ab = g.op("matmul", [a, g.op("permute", [b], { perm: [1, 0] })]);
    g.output("t", g.op("permute", [ab], { perm: [0, 2, 1] }));
    const f = dce(fold(g));
    expectValid("fold", f);
    const out = f.node(f.outputs[0].id);
    expect(out.op).toBe("matmul");
    expect(f.type(out.id).shape).toEqual(shapeOf(2, 4, 3));
    // (bᵀ)ᵀ is b itself (no permute stacked on a permute); aᵀ a new permute of a.
    expect(f.node(out.inputs[0]).attrs.name).toBe("b");
    expect(f.node(out.inputs[1]).attrs.perm).toEqual([0, 2, 1]);
    expect(f.node(f.node(out.inputs[1]).inputs[0]).attrs.name).toBe("a");
    const r = rng(3);
    const inputs = { a: t([2, 3, 5], () => r() - 0.5), b: t([4, 5], () => r() - 0.5) };
    expect(run(f, { inputs, weights: {} }).t.data).toEqual(run(g, { inputs, weights: {} }).t.data);
  });

  it("keeps a transposed product whose product is used elsewhere (no second matmul)", () => {
    const g = new Graph("u");
    const a = g.op("input", [], { name: "a", dtype: "f32", shape: shapeOf(3, 4) });
    const ab = g.op("matmul", [a, g.op("permute", [a], { perm: [1, 0] })]);
    g.output("ab", ab);
    g.output("t", g.op("permute", [ab], { perm: [1, 0] }));
    // A permute other than the last two axes' swap is left too.
    const a3 = g.op("input", [], { name: "c", dtype: "f32", shape: shapeOf(2, 3, 3) });
    g.output("p", g.op("permute", [g.op("matmul", [a3, a3])], { perm: [1, 0, 2] }));
    // A second use through an alias fold removes (a reshape to the same shape).
    const d = g.op("input", [], { name: "d", dtype: "f32", shape: shapeOf(3, 4) });
    const dd = g.op("matmul", [d, g.op("permute", [d], { perm: [1, 0] })]);
    g.output("dd", dd);
    const same = g.op("reshape", [dd], { shape: shapeOf(3, 3) });
    g.output("u", g.op("permute", [same], { perm: [1, 0] }));
    const f = dce(fold(g));
    expect(ops(f).filter((o) => o === "matmul")).toHaveLength(3);
    expect(f.node(f.outputs[1].id).op).toBe("permute");
    expect(f.node(f.outputs[2].id).op).toBe("permute");
    expect(f.node(f.outputs[4].id).op).toBe("permute");
  });

  it("reshape of reshape is one reshape; reshape and expand to the same shape vanish", () => {
    const g = new Graph("u");
    const x = g.op("input", [], { name: "x", dtype: "f32", shape: shapeOf("B", "T", 4) });
    const flat = g.op("reshape", [x], { shape: [dimMul(dimSym("B"), dimSym("T")), dimConst(4)] });
    g.output("rr", g.op("reshape", [flat], { shape: shapeOf("B", "T", 2, 2) }));
    g.output("same", g.op("reshape", [x], { shape: shapeOf("B", "T", 4) }));
    g.output("ex", g.op("expand", [x], { shape: shapeOf("B", "T", 4) }));
    const f = dce(fold(g));
    expectValid("fold", f);
    expect(ops(f)).toEqual(["input", "reshape"]);
    const out = Object.fromEntries(f.outputs.map((o) => [o.name, o.id]));
    expect(f.node(out.rr).inputs).toEqual([0]);
    expect(out.same).toBe(0);
    expect(out.ex).toBe(0);
    const inputs = xIn([2, 3, 4], (i) => Math.sin(i));
    expectSameOutputs("reshapes", run(f, { inputs, weights: {} }), run(g, { inputs, weights: {} }));
  });

  it("folds arithmetic on constants and constant sizes", () => {
    const g = new Graph("u");
    const c = g.op("add", [g.op("mul", [g.scalar(2), g.scalar(3)]), g.scalar(1)]); // 7
    const e = g.op("exp", [g.op("sub", [c, g.scalar(7)])]); // 1
    const d = g.op("dim", [], { dim: dimConst(5) });
    const sym = g.op("dim", [], { dim: dimSym("T") });
    g.output("c", c);
    g.output("e", e);
    g.output("d", g.op("div", [d, g.scalar(2)]));
    g.output("sym", g.op("mul", [sym, g.scalar(2)]));
    const f = dce(fold(g));
    expectValid("fold", f);
    const out = Object.fromEntries(f.outputs.map((o) => [o.name, f.node(o.id)]));
    expect(out.c.op).toBe("const");
    expect(out.c.attrs.value).toBe(7);
    expect(out.e.op).toBe("const");
    expect(out.e.attrs.value).toBe(1);
    expect(out.d.op).toBe("const");
    expect(out.d.attrs.value).toBe(2.5);
    // a symbolic size is not a constant
    expect(out.sym.op).toBe("mul");
    expect(run(f, { inputs: {}, weights: {}, bindings: { T: 6 } }).sym.data[0]).toBe(12);
  });

  it("does not fold comparisons of constants into float constants", () => {
    const g = new Graph("u");
    const lt = g.op("lt", [g.scalar(1), g.scalar(2)]);
    g.output("lt", lt);
    const f = fold(g);
    expect(f.type(f.outputs[0].id).dtype).toBe("bool");
  });
});

describe("cse", () => {
  it("merges duplicate nodes, including duplicate constants", () => {
    const g = graphWith((g, x) => {
      const a = g.op("exp", [x]);
      const b = g.op("exp", [x]);
      const s1 = g.op("mul", [a, g.scalar(2)]);
      const s2 = g.op("mul", [b, g.scalar(2)]);
      g.output("y", g.op("add", [s1, s2]));
      g.output("a", a);
      g.output("b", b);
    });
    const c = cse(g);
    expectValid("cse", c);
    expect(ops(c)).toEqual(["input", "exp", "const", "mul", "add"]);
    const add = c.node(c.outputs[0].id);
    expect(add.inputs[0]).toBe(add.inputs[1]);
    expect(c.outputs[1].id).toBe(c.outputs[2].id);
    const inputs = xIn([2, 3], (i) => i / 3);
    expectSameOutputs("cse", run(c, { inputs, weights: {} }), run(g, { inputs, weights: {} }));
  });

  it("keeps nodes whose attributes or inputs differ", () => {
    const g = new Graph("u");
    const x = g.op("input", [], { name: "x", dtype: "f32", shape: shapeOf(2, 3) });
    const y = g.op("input", [], { name: "y", dtype: "f32", shape: shapeOf(2, 3) });
    g.output("s0", g.op("sum", [x], { axes: [0], keepdim: false }));
    g.output("s1", g.op("sum", [x], { axes: [1], keepdim: false }));
    g.output("k0", g.op("sum", [x], { axes: [0], keepdim: true }));
    g.output("ey", g.op("exp", [y]));
    g.output("ex", g.op("exp", [x]));
    g.output("sub", g.op("sub", [x, y]));
    g.output("bus", g.op("sub", [y, x]));
    g.output("c1", g.scalar(1));
    g.output("c2", g.scalar(2));
    g.output("m0", g.scalar(-0));
    g.output("p0", g.scalar(0));
    const c = cse(g);
    expect(c.nodes.length).toBe(g.nodes.length);
  });
});

describe("dce", () => {
  it("drops dead nodes and keeps requested outputs", () => {
    const g = graphWith((g, x) => {
      g.op("exp", [x]); // dead
      const w = g.op("weight", [], { name: "unused", shape: shapeOf(3) }); // dead
      g.op("add", [x, w]); // dead
      const y = g.op("neg", [x]);
      const z = g.op("tanh", [x]);
      g.output("y", y);
      g.output("z", z);
    });
    const d = dce(g);
    expectValid("dce", d);
    expect(ops(d)).toEqual(["input", "neg", "tanh"]);
    expect(d.outputs.map((o) => o.name)).toEqual(["y", "z"]);
    const onlyZ = dce(g, (n) => n === "z");
    expect(ops(onlyZ)).toEqual(["input", "tanh"]);
    expect(onlyZ.outputs).toEqual([{ name: "z", id: 1 }]);
    const inputs = xIn([2, 3], (i) => i - 2);
    const before = run(g, { inputs, weights: { unused: t([3], [1, 2, 3]) } });
    // the dropped weight needs no value any more
    expectSameOutputs("dce", run(d, { inputs, weights: {} }), before, ["y", "z"]);
  });

  it("keeps an output that is an input, and two outputs of one node", () => {
    const g = graphWith((g, x) => {
      g.output("x", x);
      const e = g.op("exp", [x]);
      g.output("e1", e);
      g.output("e2", e);
    });
    const d = dce(g);
    expectValid("dce", d);
    expect(d.outputs).toEqual([
      { name: "x", id: 0 },
      { name: "e1", id: 1 },
      { name: "e2", id: 1 },
    ]);
  });
});

describe("the verifier after every pass (GPTC_VERIFY_PASSES=1, set for all tests)", () => {
  it("is on in tests", () => {
    expect(process.env.GPTC_VERIFY_PASSES).toBe("1");
  });

  it("names the pass whose result breaks an invariant", () => {
    const g = new Graph("broken");
    const x = g.op("input", [], { name: "x", shape: shapeOf(3), dtype: "f32" });
    g.output("y", g.op("exp", [x]));
    // A pass that stores a wrong type: the rule gives f32[3].
    const breaks = (h: Graph) => {
      h.nodes[1].type = { dtype: "f32", shape: shapeOf(4) };
      return h;
    };
    expect(() => runPass("breaks", breaks, g)).toThrow(PassVerifyError);
    expect(() => runPass("breaks", breaks, g)).toThrow(/after breaks: %1 \(exp\): stored type/);
    expect(runPass("identity", (h) => h, new Graph("empty")).nodes).toEqual([]);
  });
});
