// Part of a fused kernel as a kernel of its own: what computes node `output`
// when the nodes in `buffers` are read from buffers instead of computed. The
// GEMM path splits a matmul kernel this way (operand prologues, the epilogue
// after the product) and host gathers turn a gather into a buffer.
import type { Graph } from "../ir/graph.js";
import type { Kernel } from "../ir/passes/fuse.js";

export function subKernel(
  g: Graph,
  kernel: Kernel,
  output: number,
  buffers: ReadonlySet<number>,
  role?: string,
): Kernel {
  const nodes = new Set<number>();
  const reads = new Set<number>();
  const stack = [output];
  while (stack.length) {
    const id = stack.pop()!;
    if (buffers.has(id)) {
      reads.add(id);
      continue;
    }
    if (nodes.has(id)) continue;
    nodes.add(id);
    stack.push(...g.nodes[id].inputs);
  }
  const anchor =
    kernel.anchor !== undefined && nodes.has(kernel.anchor) ? kernel.anchor : undefined;
  return {
    index: kernel.index,
    name: role ? `${kernel.name}_${role}` : kernel.name,
    kind: anchor === undefined ? "elementwise" : kernel.kind,
    output,
    anchor,
    nodes: [...nodes].sort((p, q) => p - q),
    inputs: [...reads].sort((p, q) => p - q),
  };
}
