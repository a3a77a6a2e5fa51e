// Shared helpers of the IR tests: seeded random numbers, small concrete tensors,
// loading specs at small sizes, random weights and inputs, and error measures.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { paramNames } from "../../src/dsl/check.js";
import { DiagnosticError } from "../../src/dsl/diagnostics.js";
import { frontend } from "../../src/dsl/frontend.js";
import type { Program } from "../../src/dsl/load.js";
import { shapeEval } from "../../src/ir/dims.js";
import type { Graph } from "../../src/ir/graph.js";
import { lowerProgram, type Lowered } from "../../src/ir/lower.js";
import type { Tensor } from "../../src/ir/ops/types.js";

export type { Tensor } from "../../src/ir/ops/types.js";

/** mulberry32: a small seeded generator of uniform numbers in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal sample (Box-Muller). */
export function randn(r: () => number): number {
  const u = 1 - r();
  const v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

export function randInt(r: () => number, n: number): number {
  return Math.floor(r() * n);
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A concrete tensor; `data` as an array, or a function of the flat index. */
export function t(shape: number[], data?: ArrayLike<number> | ((i: number) => number)): Tensor {
  const n = numel(shape);
  const out = new Float64Array(n);
  if (typeof data === "function") for (let i = 0; i < n; i++) out[i] = data(i);
  else if (data) {
    if (data.length !== n) throw new Error(`t(): ${data.length} values for shape [${shape}]`);
    out.set(Array.from(data));
  }
  return { shape, data: out };
}

/** max|a - b| / max|b| (0 when both are all zero). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    num = Number.isNaN(d) ? Infinity : Math.max(num, d);
    den = Math.max(den, Math.abs(b[i]));
  }
  return num === 0 ? 0 : num / den;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

// ---- specs -----------------------------------------------------------------------------

export const specFiles = ["gpt2-small", "gpt2-tiny", "llama-style", "seed-transformer"].map(
  (s) => `specs/${s}.model`,
);

export function loadProgram(file: string): Program {
  const fe = frontend(file);
  if (!fe.program) throw new DiagnosticError(fe.diagnostics.items);
  return fe.program;
}

/** Small sizes for every parameter a spec has (others are ignored). */
export const smallSizes: Record<string, string> = {
  d: "16",
  layers: "1",
  heads: "2",
  vocab: "11",
  ctx: "8",
  hidden: "24",
  kv_heads: "1",
};

export function smallSetFor(program: Program): Record<string, string> {
  const names = paramNames(program.model!);
  return Object.fromEntries(Object.entries(smallSizes).filter(([k]) => names.includes(k)));
}

/** Lowers a spec at small sizes (or with the given options). */
export function lowerSpec(
  file: string,
  opts: { small?: boolean; config?: Record<string, unknown> } = { small: true },
): Lowered {
  const program = loadProgram(file);
  return lowerProgram(program, {
    set: opts.small ? smallSetFor(program) : undefined,
    config: opts.config,
  });
}

/** Writes a model file into a fresh temporary folder, lowers it, and removes the folder. */
export function lowerSource(source: string, name = "m.model"): Lowered {
  const dir = mkdtempSync(join(tmpdir(), "gptc-ir-test-"));
  const path = join(dir, name);
  writeFileSync(path, source);
  try {
    return lowerProgram(loadProgram(path));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function paramValue(l: Lowered, name: string): number | undefined {
  const p = l.params.find((q) => q.name === name);
  return typeof p?.value === "number" ? p.value : undefined;
}

/** Binds every symbol of the graph: to the value given, else to 1. */
export function bindingsFor(g: Graph, given: Record<string, number>): Record<string, number> {
  const b: Record<string, number> = {};
  for (const s of g.symbols()) b[s] = given[s] ?? 1;
  return b;
}

/** Weights ~ N(0, std), one tensor per weight node. */
export function randomWeights(
  g: Graph,
  r: () => number,
  std = 0.1,
  bindings: Record<string, number> = {},
): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const w of g.nodesOf("weight")) {
    const shape = shapeEval(w.type.shape, bindings);
    out.set(
      w.attrs.name as string,
      t(shape, () => std * randn(r)),
    );
  }
  return out;
}

/** Integer inputs get ids in [0, vocab); float inputs N(0, 1). */
export function randomInputs(
  g: Graph,
  bindings: Record<string, number>,
  r: () => number,
  vocab: number,
): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const n of g.nodesOf("input")) {
    const shape = shapeEval(n.type.shape, bindings);
    out[n.attrs.name as string] = t(shape, () =>
      n.type.dtype === "f32"
        ? randn(r)
        : n.type.dtype === "bool"
          ? randInt(r, 2)
          : randInt(r, vocab),
    );
  }
  return out;
}
