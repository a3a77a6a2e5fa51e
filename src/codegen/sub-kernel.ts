// Part of a fused kernel as a kernel of its own: what computes node `output`
// when the nodes in `buffers` are read from buffers instead of computed. The
// GEMM path splits a matmul kernel this way (operand prologues, the epilogue
// after the product) and host gathers turn a gather into a buffer.
import type { Graph } from "../ir/graph.js";
import { computedFrom, type Kernel } from "../ir/passes/fuse.js";

export function subKernel(
  g: Graph,
  kernel: Kernel,
  output: number,
  buffers: ReadonlySet<number>,
  role?: string,
): Kernel {
  const { nodes, inputs } = computedFrom(g, output, buffers);
  const anchor =
    kernel.anchor !== undefined && nodes.includes(kernel.anchor) ? kernel.anchor : undefined;
  return {
    index: kernel.index,
    name: role ? `${kernel.name}_${role}` : kernel.name,
    kind: anchor === undefined ? "elementwise" : kernel.kind,
    output,
    anchor,
    nodes,
    inputs,
  };
}
