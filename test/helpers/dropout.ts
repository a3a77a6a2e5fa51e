// Helpers of the dropout tests (dropout.test.ts on cpu and webasm,
// dropout.gl.ts on headlessgl): a probe model whose training-mode forward
// output is x times its dropout mask, and gpt2-small at small sizes with
// Hugging Face's dropout, its loss and gradients on a backend and in the
// reference interpreter for the same key.
import { shapeEval } from "../../src/ir/dims.js";
import type { Graph } from "../../src/ir/graph.js";
import { run } from "../../src/ir/interpret.js";
import { dropoutMask, rngKey, rngKeyInput } from "../../src/ir/ops/random.js";
import { fuse } from "../../src/ir/passes/fuse.js";
import { compileGraphs, optimize, type CompiledGraphs } from "../../src/ir/pipeline.js";
import type { Backend } from "../../src/runtime/backend.js";
import { Executor } from "../../src/runtime/executor.js";
import { Session } from "../../src/runtime/session.js";
import { lowerSource, lowerSpec, randInt, randn, rng, t, type Tensor } from "./ir.js";

/** y = dropout(x, 0.3) at [B, T, C] (a rows grid on webasm, a flat one elsewhere). */
export const probeSpec = `import "std/nn.model"
model probe {
  input x: float[B, T, C]
  output y = dropout(x, 0.3)
}
`;
export const probeDims = { B: 3, T: 17, C: 41 };
/** The key every backend is given: seed 1337, step 5, micro-batch 2. */
export const probeKey = rngKey(1337, 5, 2);

/** The probe's graph in training mode (as lowered: dropout applied). */
export function probeGraph(): Graph {
  return optimize(lowerSource(probeSpec, "probe.model").graph);
}

export function probeX(): Float32Array {
  const r = rng(7);
  const n = probeDims.B * probeDims.T * probeDims.C;
  return Float32Array.from({ length: n }, () => randn(r) + 2);
}

/** y on a backend, through fusion, codegen and the executor. */
export async function probeOn(be: Backend): Promise<Float32Array> {
  const g = probeGraph();
  const ex = new Executor(fuse(g), probeDims, be);
  try {
    const feeds = new Map<number, Float32Array>();
    for (const n of g.nodesOf("input"))
      feeds.set(n.id, n.attrs.name === rngKeyInput ? probeKey : probeX());
    const y = g.outputs.find((o) => o.name === "y")!.id;
    return Float32Array.from((await ex.run(feeds)).get(y)!);
  } finally {
    ex.destroy();
  }
}

/** What y must be: x times the mask of the op's stream (0) for the key, rounded once to float32. */
export function probeExpected(): Float32Array {
  const x = probeX();
  const mask = dropoutMask(probeKey, 0, 0.3, x.length);
  return x.map((v, i) => Math.fround(v * mask[i]));
}

/** gpt2-small at small sizes with its default dropout (0.1 in the three places). */
export function gpt2WithDropout(): { graphs: CompiledGraphs; graph: Graph } {
  const l = lowerSpec("specs/gpt2-small.model");
  return { graphs: compileGraphs(l), graph: l.graph };
}

export const gptDims = { B: 2, T: 8 };

/** Float32-rounded random weights and a batch of ids, for the interpreter and a backend alike. */
export function gptInputs(g: Graph): {
  weights: Map<string, Tensor>;
  tokens: Tensor;
  targets: Tensor;
} {
  const r = rng(11);
  const weights = new Map<string, Tensor>();
  for (const w of g.nodesOf("weight")) {
    const shape = shapeEval(w.type.shape, gptDims);
    weights.set(
      w.attrs.name as string,
      t(shape, () => Math.fround(0.1 * randn(r))),
    );
  }
  const ids = () => t([gptDims.B, gptDims.T], () => randInt(r, 11));
  return { weights, tokens: ids(), targets: ids() };
}

const f32 = (x: Tensor) => Float32Array.from(x.data);

/** Loss and gradients of the training graph on a backend for `key`. */
export async function gptOn(
  be: Backend,
  key: Float32Array,
): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  const { graphs, graph } = gpt2WithDropout();
  const { weights, tokens, targets } = gptInputs(graph);
  const session = new Session(graphs, be);
  try {
    const w = new Map([...weights].map(([k, v]) => [k, f32(v)]));
    const inputs = { tokens: f32(tokens), targets: f32(targets), [rngKeyInput]: key };
    const r = await session.lossAndGrads(w, inputs, gptDims);
    return {
      loss: r.loss,
      grads: new Map([...r.grads].map(([k, v]) => [k, Float32Array.from(v)])),
    };
  } finally {
    session.destroy();
  }
}

/** The same in the float64 reference interpreter. */
export function gptReference(key: Float32Array): {
  loss: number;
  grads: Map<string, Float64Array>;
} {
  const { graphs, graph } = gpt2WithDropout();
  const { weights, tokens, targets } = gptInputs(graph);
  const keyT = t([key.length], key);
  const out = run(graphs.training!, {
    inputs: { tokens, targets, [rngKeyInput]: keyT },
    weights,
    bindings: gptDims,
  });
  const grads = new Map<string, Float64Array>();
  for (const [k, v] of Object.entries(out))
    if (k.startsWith("grad.")) grads.set(k.slice(5), v.data);
  return { loss: out.loss.data[0], grads };
}
