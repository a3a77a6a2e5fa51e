// Fusion: partitions a graph into kernels (the *how* of the computation; the
// graph stays the *what*). A node is either materialized — it gets a buffer and
// a kernel that writes it — or inlined into every kernel that reads it.
//
// Materialized: inputs and weights (given buffers), outputs, matmuls and
// reductions (each the "anchor" of its kernel), scatter_add, and elementwise
// nodes that would otherwise be recomputed too often (operands of a matmul,
// needed by more than two kernels, or costly ops needed by two). Everything else — elementwise chains,
// movement (index remapping), gathers, masks — is inlined. A matmul or a
// reduction whose only consumer chain is elementwise at its own shape takes
// that chain as its epilogue (bias + GELU after a matmul, scale + mask after
// Q Kᵀ), and its reduce loop takes its prologue (exp(x - max) inside a sum).
import { dimValue, shapeEq, type Shape } from "../dims.js";
import type { Graph } from "../graph.js";
import { getOp } from "../ops/registry.js";
import type { Node } from "../ops/types.js";

export interface FusionLimits {
  /** Most buffers one kernel may read (WebGL: texture units; gpu.js: arguments). */
  maxInputs: number;
  /**
   * The target computes a kernel's values that stay the same along a row of
   * its output once per row (the WebAssembly kernels: their column loop runs
   * inside the row loop), so a reduction over the last axis can be inlined
   * into the kernels that read it along that row (see inlineRowReductions)
   * instead of being a kernel of its own: a layernorm's mean and variance run
   * inside the kernel that normalizes. gpu.js computes every element on its
   * own thread, where an inlined reduction would run once per element.
   */
  rowReductions?: boolean;
}

export const defaultLimits: FusionLimits = { maxInputs: 12 };

export type KernelKind = "elementwise" | "reduce" | "matmul" | "scatter";

export interface Kernel {
  /** Position in execution order. */
  index: number;
  /** Generated identifier, never taken from user text: k<index>_<ops>. */
  name: string;
  kind: KernelKind;
  /** The node whose value this kernel writes. */
  output: number;
  /** The matmul, reduction or scatter that sets the loop structure, if any. */
  anchor?: number;
  /**
   * Reductions over the last axis computed inside this kernel, once per row
   * of its output (see FusionLimits.rowReductions).
   */
  rowReductions?: number[];
  /** Every node computed inside the kernel, in topological order. */
  nodes: number[];
  /** Materialized nodes the kernel reads, in order of id. */
  inputs: number[];
}

/** A graph fused into kernels: what an executor runs, one kernel after another. */
export interface Schedule {
  /** The graph the kernels compute (the one given to `fuse`, unchanged). */
  graph: Graph;
  /** The kernels in execution order (`kernels[i].index === i`). */
  kernels: Kernel[];
  /** Nodes that own a buffer: inputs, weights and kernel outputs. */
  materialized: Set<number>;
}

// dropout_mask too: a mask is recomputed by each kernel reading it, never stored.
const alwaysInline = new Set(["const", "dim", "arange", "causal_mask", "dropout_mask"]);
const anchorKind: Record<string, KernelKind | undefined> = {
  matmul: "matmul",
  sum: "reduce",
  mean: "reduce",
  max: "reduce",
  scatter_add: "scatter",
};
const isMovement = (n: Node) => getOp(n.op).kind === "movement" || n.op === "gather";
const isElementwise = (n: Node) => getOp(n.op).kind === "elementwise";

export function fuse(g: Graph, limits: FusionLimits = defaultLimits): Schedule {
  const n = g.nodes.length;
  const consumers: number[][] = Array.from({ length: n }, () => []);
  for (const node of g.nodes) for (const i of new Set(node.inputs)) consumers[i].push(node.id);
  const outputs = new Set(g.outputs.map((o) => o.id));

  const materialized = new Set<number>();
  /** Roots (materialized nodes) whose kernels read each inlined node. */
  const roots: Set<number>[] = Array.from({ length: n }, () => new Set());
  /** The anchor fused into each root's kernel, if any. */
  const anchorOfRoot = new Map<number, number>();
  /** Inlined nodes that sit on a matmul operand path (would be recomputed per k). */
  const feedsMatmul = new Array<boolean>(n).fill(false);

  for (let id = n - 1; id >= 0; id--) {
    const node = g.nodes[id];
    for (const c of consumers[id]) {
      if (materialized.has(c)) roots[id].add(c);
      else for (const r of roots[c]) roots[id].add(r);
      const cn = g.nodes[c];
      if (cn.op === "matmul" || (!materialized.has(c) && feedsMatmul[c] && isMovement(cn)))
        feedsMatmul[id] = true;
    }
    const materialize = () => {
      materialized.add(id);
      roots[id] = new Set([id]);
    };
    if (node.op === "input" || node.op === "weight" || outputs.has(id)) {
      materialize();
      continue;
    }
    if (alwaysInline.has(node.op)) continue;
    const anchor = anchorKind[node.op];
    if (anchor) {
      // Epilogue fusion: the consumers form one elementwise kernel of the same shape.
      const [root] = roots[id];
      const fits =
        anchor !== "scatter" &&
        roots[id].size === 1 &&
        !anchorOfRoot.has(root) &&
        !feedsMatmul[id] &&
        shapeEq(g.nodes[root].type.shape, node.type.shape) &&
        epilogueIsElementwise(g, id, root, materialized);
      if (fits) anchorOfRoot.set(root, id);
      else materialize();
      continue;
    }
    // Elementwise, movement and index ops are inlined unless that recomputes too much.
    if (feedsMatmul[id] && !isMovement(node)) materialize();
    else if (roots[id].size > 2 && !isMovement(node)) materialize();
    else if (roots[id].size > 1 && getOp(node.op).costly) materialize();
    else if (roots[id].size === 0) materialize(); // nothing reads it (kept alive by a pass)
  }

  const rowReduced = limits.rowReductions
    ? inlineRowReductions(g, materialized, outputs)
    : new Set<number>();
  let kernels = buildKernels(g, materialized, rowReduced);
  // Respect the backend's input limit: materialize the inlined node that reads most buffers.
  // Host-filled values (dropout masks) are buffers too, each its own.
  const hostFilled = (id: number) => getOp(g.nodes[id].op).hostFilled === true;
  const buffers = (k: Kernel) => k.inputs.length + k.nodes.filter(hostFilled).length;
  // A kernel no split brings under the limit is left as it is (the backend
  // refuses it when built); the others are still split.
  const stuck = new Set<number>();
  for (let guard = 0; guard < n; guard++) {
    const over = kernels.find((k) => buffers(k) > limits.maxInputs && !stuck.has(k.output));
    if (!over) break;
    const candidates = over.nodes.filter(
      (id) => id !== over.output && id !== over.anchor && !alwaysInline.has(g.nodes[id].op),
    );
    const reads = (id: number) => inlinedInputs(g, id, materialized).size;
    const best = candidates.length
      ? candidates.reduce((a, b) => (reads(b) > reads(a) ? b : a))
      : undefined;
    if (best === undefined || reads(best) <= 1) {
      stuck.add(over.output);
      continue;
    }
    materialized.add(best);
    kernels = buildKernels(g, materialized, rowReduced);
  }
  return { graph: g, kernels, materialized };
}

/**
 * Most kernels an inlined row reduction is computed in: each reads the row
 * again, which costs less than a kernel of its own only while the row is
 * short (a vocabulary-sized row's max stays a kernel when two kernels read it).
 */
const ROW_READERS = 2;
const SHORT_ROW = 4096;

/**
 * A reduction over the last axis of its input, kept as size 1 (a row's
 * mean, sum or max): its input's shape.
 */
function rowReductionInput(g: Graph, n: Node): Shape | undefined {
  if (anchorKind[n.op] !== "reduce" || n.attrs.keepdim !== true) return undefined;
  const shape = g.nodes[n.inputs[0]].type.shape;
  const axes = (n.attrs.axes as number[]).map((a) => (a < 0 ? a + shape.length : a));
  return axes.length === 1 && axes[0] === shape.length - 1 ? shape : undefined;
}

/**
 * For FusionLimits.rowReductions: each kernel whose work runs along rows
 * (rowWork: a row reduction, or cheap work over row reductions inside it)
 * and is read only by at most ROW_READERS elementwise or row-reduction
 * kernels over the same rows is un-materialized, so those kernels compute
 * it. Along every path from it to such a kernel's output the nodes are
 * elementwise (or an expand) at the row's shape or the input's, or row
 * reductions of the input's shape, so a reduction is the same along each
 * output row and computed once per row there. Latest kernels first, and
 * again until nothing changes: a layernorm's variance goes into the
 * normalizing kernel, then its mean (read by that kernel only, by then),
 * then x - mean once the mean is inside its kernel. Returns the reductions
 * inlined (each kernel's rowReductions).
 */
function inlineRowReductions(
  g: Graph,
  materialized: Set<number>,
  outputs: Set<number>,
): Set<number> {
  const inlined = new Set<number>();
  // The kernels by what they write, kept up to date as readers take a reduction in.
  const kernels = new Map(buildKernels(g, materialized, inlined).map((k) => [k.output, k]));
  // Again until nothing changes: a kernel that took a reduction in may follow it
  // (x - mean(x) once the mean is inside it).
  for (let changed = true; changed;) {
    changed = false;
    for (const id of [...materialized].sort((a, b) => b - a)) {
      const kernel = kernels.get(id);
      if (!kernel || outputs.has(id)) continue;
      const rows = rowWork(g, kernel, materialized);
      if (!rows) continue;
      const { inShape, rowShape } = rows;
      const atRow = (n: Node) => shapeEq(n.type.shape, rowShape) || shapeEq(n.type.shape, inShape);
      const readers = [...kernels.values()].filter((k) => k.inputs.includes(id));
      const rowLength = dimValue(inShape[inShape.length - 1]);
      if (readers.length === 0 || readers.length > ROW_READERS) continue;
      if (readers.length > 1 && !(rowLength !== undefined && rowLength <= SHORT_ROW)) continue;
      const fits = (n: Node) => {
        const reduced = rowReductionInput(g, n);
        return (
          (isElementwise(n) && atRow(n)) ||
          (n.op === "expand" && shapeEq(n.type.shape, inShape)) ||
          (reduced !== undefined && shapeEq(reduced, inShape))
        );
      };
      const readsAlongRows = (k: Kernel) =>
        (k.kind === "elementwise" || k.kind === "reduce") &&
        k.nodes.every((n) => !dependsOn(g, n, id, materialized) || fits(g.nodes[n]));
      if (!readers.every(readsAlongRows)) continue;
      materialized.delete(id);
      if (kernel.anchor !== undefined) inlined.add(kernel.anchor);
      kernels.delete(id);
      for (const r of readers)
        kernels.set(r.output, kernelOf(g, r.output, materialized, inlined, 0));
      changed = true;
    }
  }
  return inlined;
}

/**
 * The rows a kernel's work runs along, when it may be computed inside the
 * kernels reading it (inlineRowReductions): a row reduction (its anchor) with
 * elementwise work at the row's shape after it (a variance's + eps and sqrt),
 * or cheap elementwise work at the input's shape over row reductions already
 * inlined into it (x - mean(x): recomputing it costs a subtraction per
 * element, where storing it costs a pass writing it and one reading it).
 */
function rowWork(
  g: Graph,
  kernel: Kernel,
  materialized: Set<number>,
): { inShape: Shape; rowShape: Shape } | undefined {
  const { anchor, output } = kernel;
  if (anchor !== undefined) {
    const inShape = rowReductionInput(g, g.nodes[anchor]);
    if (!inShape) return undefined;
    const rowShape = g.nodes[anchor].type.shape;
    const after = kernel.nodes.filter((n) => n !== anchor && dependsOn(g, n, anchor, materialized));
    const rowwise = (n: number) =>
      isElementwise(g.nodes[n]) && shapeEq(g.nodes[n].type.shape, rowShape);
    return after.every(rowwise) ? { inShape, rowShape } : undefined;
  }
  const [first, ...rest] = kernel.rowReductions ?? [];
  if (first === undefined) return undefined;
  const inShape = g.nodes[output].type.shape;
  const rowShape = g.nodes[first].type.shape;
  const sameRows = (r: number) => shapeEq(rowReductionInput(g, g.nodes[r])!, inShape);
  if (!sameRows(first) || !rest.every(sameRows)) return undefined;
  // From the output down to the row reductions: cheap elementwise work at those shapes.
  const stack = [output];
  const seen = new Set<number>();
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id) || (id !== output && materialized.has(id))) continue;
    seen.add(id);
    const n = g.nodes[id];
    if (kernel.rowReductions!.includes(id) || alwaysInline.has(n.op)) continue;
    const shape = n.type.shape;
    const cheap = isElementwise(n) && !getOp(n.op).costly;
    if (!cheap || !(shapeEq(shape, inShape) || shapeEq(shape, rowShape))) return undefined;
    stack.push(...n.inputs);
  }
  return { inShape, rowShape };
}

/** Every node between the anchor and the root is elementwise and keeps the root's shape. */
function epilogueIsElementwise(
  g: Graph,
  anchor: number,
  root: number,
  materialized: Set<number>,
): boolean {
  const rootShape = g.nodes[root].type.shape;
  const stack = [root];
  const seen = new Set<number>();
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id) || id === anchor) continue;
    seen.add(id);
    const node = g.nodes[id];
    if (id !== root && materialized.has(id)) continue;
    if (!dependsOn(g, id, anchor, materialized)) continue;
    if (getOp(node.op).kind !== "elementwise" || !shapeEq(node.type.shape, rootShape)) return false;
    stack.push(...node.inputs);
  }
  return true;
}

function dependsOn(g: Graph, id: number, target: number, materialized: Set<number>): boolean {
  if (id === target) return true;
  if (id < target) return false;
  return g.nodes[id].inputs.some(
    (i) => i === target || (!materialized.has(i) && dependsOn(g, i, target, materialized)),
  );
}

/** Buffers an inlined subtree reads (a host-filled value is a buffer of its own). */
function inlinedInputs(g: Graph, id: number, materialized: Set<number>): Set<number> {
  const out = new Set<number>();
  const stack = [...g.nodes[id].inputs];
  const seen = new Set<number>();
  while (stack.length) {
    const i = stack.pop()!;
    if (seen.has(i)) continue;
    seen.add(i);
    if (materialized.has(i) || getOp(g.nodes[i].op).hostFilled) out.add(i);
    else stack.push(...g.nodes[i].inputs);
  }
  return out;
}

/** `rowReduced`: reductions inlined per row (inlineRowReductions), no kernel's anchor. */
function buildKernels(g: Graph, materialized: Set<number>, rowReduced: Set<number>): Kernel[] {
  const kernels: Kernel[] = [];
  for (const id of [...materialized].sort((a, b) => a - b)) {
    const op = g.nodes[id].op;
    if (op !== "input" && op !== "weight")
      kernels.push(kernelOf(g, id, materialized, rowReduced, kernels.length));
  }
  return kernels;
}

/** The kernel that writes materialized node `id`, at position `index`. */
function kernelOf(
  g: Graph,
  id: number,
  materialized: Set<number>,
  rowReduced: Set<number>,
  index: number,
): Kernel {
  const { nodes: sorted, inputs } = computedFrom(g, id, materialized);
  const anchor = sorted.find((i) => anchorKind[g.nodes[i].op] && !rowReduced.has(i));
  const perRow = sorted.filter((i) => rowReduced.has(i));
  const kind: KernelKind = anchor === undefined ? "elementwise" : anchorKind[g.nodes[anchor].op]!;
  const ops = [...new Set(sorted.map((i) => g.nodes[i].op).filter((op) => !alwaysInline.has(op)))];
  // A materialized const/arange/mask (an output) still names its kernel.
  if (!ops.length) ops.push(g.nodes[id].op);
  return {
    index,
    name: `k${index}_${ops.slice(0, 4).join("_")}`,
    kind,
    output: id,
    anchor,
    ...(perRow.length ? { rowReductions: perRow } : {}),
    nodes: sorted,
    inputs,
  };
}

/**
 * What a kernel writing `output` computes when the nodes in `buffers` are read
 * from buffers: the nodes from `output` back to those buffers, and the buffers
 * it reaches (both sorted by id). Fusion cuts the graph at materialized nodes
 * this way; codegen cuts a kernel again (codegen/sub-kernel.ts).
 */
export function computedFrom(
  g: Graph,
  output: number,
  buffers: ReadonlySet<number>,
): { nodes: number[]; inputs: number[] } {
  const nodes = new Set<number>([output]);
  const inputs = new Set<number>();
  const stack = [...g.nodes[output].inputs];
  while (stack.length) {
    const i = stack.pop()!;
    if (buffers.has(i)) {
      inputs.add(i);
      continue;
    }
    if (nodes.has(i)) continue;
    nodes.add(i);
    stack.push(...g.nodes[i].inputs);
  }
  const byId = (a: number, b: number) => a - b;
  return { nodes: [...nodes].sort(byId), inputs: [...inputs].sort(byId) };
}

/** One line per kernel: what it computes, from which ops, reading which buffers. */
export function printSchedule(s: Schedule): string {
  const g = s.graph;
  const lines = [`schedule ${g.name}: ${s.kernels.length} kernels for ${g.nodes.length} nodes`];
  for (const k of s.kernels) {
    const ops = k.nodes.map((i) => `${g.nodes[i].op}%${i}`).join(" ");
    const t = g.nodes[k.output].type;
    lines.push(
      `  ${k.name} [${k.kind}] -> %${k.output} ${t.dtype}[${t.shape.map((d) => [...d].map(([m, c]) => (m ? (c === 1 ? m : `${c}*${m}`) : c)).join("+") || "0").join(", ")}] reads ${k.inputs.map((i) => `%${i}`).join(", ") || "nothing"}: ${ops}`,
    );
  }
  return lines.join("\n") + "\n";
}
