// Memory plan: for concrete B and T, when each kernel output is born and dies,
// and where it lives in one arena whose slots are reused once their tenant is
// dead (greedy by size, first fit in time and address). Weights, gradients and
// optimizer state are reported apart from activations.
import { shapeEval } from "../dims.js";
import type { Schedule } from "./fuse.js";

export const bytesPerElement = 4; // float32 on every backend (ids too: exact below 2^24)

export interface PlannedBuffer {
  node: number;
  bytes: number;
  /** Kernel index that writes it, and the last one that reads it (inclusive). */
  first: number;
  last: number;
  /** Byte offset in the activation arena. */
  offset: number;
}

/**
 * Where a schedule's tensors live at concrete dims, in bytes (4 per element,
 * float32 on every backend; at least one element per tensor).
 */
export interface MemoryPlan {
  /** The values of the symbolic dims the plan is for (e.g. `{ B: 4, T: 128 }`). */
  bindings: Record<string, number>;
  /**
   * The activation arena's tenants, in order of the kernel that writes them:
   * every kernel output except gradients, plus kernel-local scratch (`within`).
   */
  buffers: PlannedBuffer[];
  /** Peak of the activation arena with reuse, and what it would be without. */
  activationBytes: number;
  /** The activation buffers' sizes summed, as if none were reused. */
  activationBytesNoReuse: number;
  /** All weights. */
  weightBytes: number;
  /**
   * All gradients (outputs named `grad.*`), kept in their own persistent
   * buffers; 0 for a forward schedule.
   */
  gradientBytes: number;
  /** AdamW keeps two moments per weight (only when training). */
  optimizerBytes: number;
  /** All model inputs (e.g. tokens and targets). */
  inputBytes: number;
  /** Activations (with reuse), weights, gradients, optimizer state and inputs together. */
  totalBytes: number;
}

/**
 * `within`: bytes a kernel (by index) needs only while it runs (on webasm, a
 * GEMM's product before its epilogue reads it); planned as buffers of that
 * kernel alone, with node id -1 - index.
 */
export function planMemory(
  s: Schedule,
  bindings: Record<string, number>,
  opts: { training: boolean; within?: Map<number, number> },
): MemoryPlan {
  const g = s.graph;
  // At least one element: every backend allocates one for an empty tensor.
  const bytes = (id: number) =>
    Math.max(
      1,
      shapeEval(g.nodes[id].type.shape, bindings).reduce((a, b) => a * b, 1),
    ) * bytesPerElement;
  const last = new Map<number, number>();
  for (const k of s.kernels) for (const i of k.inputs) last.set(i, k.index);
  const end = s.kernels.length;
  const gradients = new Set(g.outputs.filter((o) => o.name.startsWith("grad.")).map((o) => o.id));
  const outputs = new Set(g.outputs.map((o) => o.id));

  const buffers: PlannedBuffer[] = [];
  let gradientBytes = 0;
  for (const k of s.kernels) {
    const size = bytes(k.output);
    if (gradients.has(k.output)) {
      gradientBytes += size;
      continue; // gradients live in their own persistent buffers
    }
    const lastUse = outputs.has(k.output) ? end : (last.get(k.output) ?? k.index);
    buffers.push({ node: k.output, bytes: size, first: k.index, last: lastUse, offset: 0 });
  }

  for (const [index, size] of opts.within ?? [])
    buffers.push({ node: -1 - index, bytes: size, first: index, last: index, offset: 0 });

  // Greedy placement: biggest first, lowest offset free during the whole lifetime.
  const placed: PlannedBuffer[] = [];
  for (const b of [...buffers].sort((x, y) => y.bytes - x.bytes || x.first - y.first)) {
    const overlapping = placed
      .filter((p) => p.first <= b.last && b.first <= p.last)
      .sort((x, y) => x.offset - y.offset);
    let offset = 0;
    for (const p of overlapping) {
      if (offset + b.bytes <= p.offset) break;
      offset = Math.max(offset, p.offset + p.bytes);
    }
    b.offset = offset;
    placed.push(b);
  }

  const weights = g.nodesOf("weight");
  const weightBytes = weights.reduce((a, w) => a + bytes(w.id), 0);
  const inputBytes = g.nodesOf("input").reduce((a, n) => a + bytes(n.id), 0);
  const activationBytes = buffers.reduce((a, b) => Math.max(a, b.offset + b.bytes), 0);
  const optimizerBytes = opts.training ? 2 * weightBytes : 0;
  return {
    bindings,
    buffers: buffers.sort((a, b) => a.first - b.first),
    activationBytes,
    activationBytesNoReuse: buffers.reduce((a, b) => a + b.bytes, 0),
    weightBytes,
    gradientBytes,
    optimizerBytes,
    inputBytes,
    totalBytes: activationBytes + weightBytes + gradientBytes + optimizerBytes + inputBytes,
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

export function printMemoryPlan(p: MemoryPlan, s: Schedule): string {
  const g = s.graph;
  const lines = [
    `memory plan for ${Object.entries(p.bindings)
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")}:`,
    `  activations ${formatBytes(p.activationBytes)} (without reuse ${formatBytes(p.activationBytesNoReuse)})`,
    `  weights     ${formatBytes(p.weightBytes)}`,
    `  gradients   ${formatBytes(p.gradientBytes)}`,
    `  optimizer   ${formatBytes(p.optimizerBytes)}`,
    `  inputs      ${formatBytes(p.inputBytes)}`,
    `  total       ${formatBytes(p.totalBytes)}`,
    `  buffers (node, bytes, kernels first..last, arena offset):`,
  ];
  for (const b of p.buffers)
    lines.push(
      `    ${b.node >= 0 ? `%${b.node} ${g.nodes[b.node].op}` : "(within its kernel)"} ${b.bytes} k${b.first}..k${b.last} @${b.offset}`,
    );
  return lines.join("\n") + "\n";
}
