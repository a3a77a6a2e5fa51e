// Dropout masks filled on the host. Philox needs exact 32-bit integer
// arithmetic (32x32 -> 64-bit products, xor), which gpu.js's GLSL translation
// does not give: every value there is a float32, exact only below 2^24. So no
// backend computes the generator in its shader; the host computes the mask of
// a kernel (runtime/dropout-masks.ts, the generator of ops/random.ts in
// WebAssembly) just before the kernel, the kernel reads it as a buffer, and it is dropped
// right after: a backward kernel recomputes it from the same key rather than
// anything keeping it. The multiply by the mask stays fused into its kernel.
import { shapeEval } from "../ir/dims.js";
import type { Graph } from "../ir/graph.js";
import type { Kernel } from "../ir/passes/fuse.js";
import { subKernel } from "./sub-kernel.js";

export interface HostMask {
  /** The dropout_mask node, a buffer the host fills. */
  node: number;
  /** The rng_key input it is keyed by. */
  key: number;
  /** Its element count, probability and stream (the op's number in the model). */
  size: number;
  p: number;
  stream: number;
}

/** The kernel with its dropout masks read from buffers, and the masks to fill; undefined if none. */
export function hostMasks(
  g: Graph,
  kernel: Kernel,
  bindings: Record<string, number>,
): { kernel: Kernel; masks: HostMask[] } | undefined {
  const masks: HostMask[] = kernel.nodes
    .map((id) => g.nodes[id])
    .filter((n) => n.op === "dropout_mask")
    .map((n) => ({
      node: n.id,
      key: n.inputs[0],
      size: shapeEval(n.type.shape, bindings).reduce((p, q) => p * q, 1),
      p: n.attrs.p as number,
      stream: n.attrs.stream as number,
    }));
  if (!masks.length) return undefined;
  if (masks.some((m) => m.node === kernel.output))
    throw new Error(`internal: kernel ${kernel.name} writes a dropout mask (fusion inlines them)`);
  const buffers = new Set([...kernel.inputs, ...masks.map((m) => m.node)]);
  return { kernel: subKernel(g, kernel, kernel.output, buffers), masks };
}
