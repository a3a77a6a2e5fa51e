// Embedding lookups done on the host. A kernel that gathers a few rows of a
// large weight by ids the host holds (token ids) would have the backend copy
// the whole table in per call (gpu.js copies every argument: 154 MB of wte
// per generated token for gpt2-124M); the host copies just the rows, and the
// kernel reads them as a buffer.
import { shapeEval } from "../ir/dims.js";
import type { Graph } from "../ir/graph.js";
import type { Kernel } from "../ir/passes/fuse.js";
import { subKernel } from "./sub-kernel.js";

export interface HostGather {
  /** The gather node, now a buffer the host fills. */
  node: number;
  table: number;
  ids: number;
  /** Elements per row of the table, and rows in it. */
  row: number;
  rows: number;
}

/** Gathers worth doing on the host: rows read are under 1/4 of the table. */
export function hostGathers(
  g: Graph,
  kernel: Kernel,
  bindings: Record<string, number>,
): { kernel: Kernel; gathers: HostGather[] } | undefined {
  const size = (id: number) =>
    shapeEval(g.nodes[id].type.shape, bindings).reduce((p, q) => p * q, 1);
  const buffers = new Set(kernel.inputs);
  const gathers: HostGather[] = [];
  for (const id of kernel.nodes) {
    const n = g.nodes[id];
    if (n.op !== "gather" || id === kernel.output) continue;
    const [table, ids] = n.inputs;
    if (!buffers.has(table) || !buffers.has(ids) || g.nodes[ids].op !== "input") continue;
    if (4 * size(id) > size(table)) continue;
    const shape = shapeEval(g.nodes[table].type.shape, bindings);
    gathers.push({ node: id, table, ids, row: size(table) / shape[0], rows: shape[0] });
  }
  if (!gathers.length) return undefined;
  const moved = gathers.map((h) => h.node);
  return {
    kernel: subKernel(g, kernel, kernel.output, new Set([...buffers, ...moved])),
    gathers,
  };
}

/** table[ids] on the host (ids must lie in the table: the reference semantics refuses others). */
export function gatherRows(table: Float32Array, ids: Float32Array, h: HostGather): Float32Array {
  const out = new Float32Array(ids.length * h.row);
  ids.forEach((id, i) => {
    if (!(id >= 0 && id < h.rows && Number.isInteger(id)))
      throw new RangeError(`id ${id} is outside the ${h.rows} rows of the embedding table`);
    out.set(table.subarray(id * h.row, (id + 1) * h.row), i * h.row);
  });
  return out;
}
