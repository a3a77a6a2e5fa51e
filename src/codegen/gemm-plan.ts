// How a matmul kernel runs on gptc's own GEMM (CPU backends) instead of as a
// gpu.js loop: both operands as strided views of buffers the kernel reads
// (movement ops folded into strides through the registry's `view` rules), and
// whatever the fused kernel computes after the product (bias, GELU, residual,
// mask) as an elementwise epilogue kernel reading the product as a buffer.
import { shapeEval } from "../ir/dims.js";
import type { Graph } from "../ir/graph.js";
import { getOp } from "../ir/ops/registry.js";
import { strides as rowMajor } from "../ir/ops/tensor.js";
import type { View } from "../ir/ops/types.js";
import type { Kernel } from "../ir/passes/fuse.js";
import { subKernel } from "./sub-kernel.js";

/** One matmul operand: a buffer, where each batch's matrix starts, and its strides. */
export interface GemmOperand {
  buffer: number;
  /** Element offset of matrix `b` of the batch. */
  offsets: number[];
  rowStride: number;
  colStride: number;
  /** A weight: constant between optimizer steps, so its packed form can be kept. */
  resident: boolean;
}

export interface GemmPlan {
  a: GemmOperand;
  b: GemmOperand;
  /** Matrices in the batch (the output's leading axes flattened). */
  batch: number;
  M: number;
  N: number;
  K: number;
  /** The node the product is (the kernel's anchor). */
  product: number;
  /** The rest of the fused kernel, reading `product` as a buffer; none when the product is the output. */
  epilogue?: Kernel;
  /**
   * Operands that are no strided view of a buffer (a gather, pad or concat on
   * the path, or a reshape merging axes a permute separated): small kernels
   * that write them out contiguously first, run before the product.
   */
  prologue: Kernel[];
}

/** The GEMM form of a matmul kernel (undefined for kernels of other kinds). */
export function gemmPlan(
  g: Graph,
  kernel: Kernel,
  bindings: Record<string, number>,
): GemmPlan | undefined {
  if (kernel.kind !== "matmul" || kernel.anchor === undefined) return undefined;
  const anchor = g.nodes[kernel.anchor];
  if (anchor.op !== "matmul") return undefined;
  const shape = (id: number) => shapeEval(g.nodes[id].type.shape, bindings);
  const out = shape(anchor.id);
  if (out.some((d) => d === 0)) return undefined;
  const inputs = new Set(kernel.inputs);

  const viewOf = (id: number): { buffer: number; view: View } | undefined => {
    if (inputs.has(id)) return { buffer: id, view: { offset: 0, strides: rowMajor(shape(id)) } };
    const node = g.nodes[id];
    const rule = getOp(node.op).view;
    if (!rule || node.inputs.length !== 1) return undefined;
    const inner = viewOf(node.inputs[0]);
    const view = inner && rule(inner.view, node.attrs, shape(node.inputs[0]), shape(id));
    return view && { buffer: inner.buffer, view };
  };

  const batchShape = out.slice(0, -2);
  const batch = batchShape.reduce((p, q) => p * q, 1);
  const prologue: Kernel[] = [];
  const operand = (id: number): GemmOperand => {
    let v = viewOf(id);
    if (!v) {
      prologue.push(subKernel(g, kernel, id, inputs, "operand"));
      v = { buffer: id, view: { offset: 0, strides: rowMajor(shape(id)) } };
    }
    const s = v.view.strides;
    const rank = s.length;
    // Batch axes broadcast from the right, as the matmul's shape rule does.
    const own = shape(id).slice(0, -2);
    const lead = batchShape.length - own.length;
    const bstride = batchShape.map((_, i) => (i < lead || own[i - lead] === 1 ? 0 : s[i - lead]));
    const offsets: number[] = [];
    for (let flat = 0; flat < batch; flat++) {
      let rest = flat;
      let o = v.view.offset;
      for (let ax = batchShape.length - 1; ax >= 0; ax--) {
        o += (rest % batchShape[ax]) * bstride[ax];
        rest = Math.floor(rest / batchShape[ax]);
      }
      offsets.push(o);
    }
    return {
      buffer: v.buffer,
      offsets,
      rowStride: s[rank - 2],
      colStride: s[rank - 1],
      resident: g.nodes[v.buffer].op === "weight" && offsets.every((o) => o === offsets[0]),
    };
  };

  const [aId, bId] = anchor.inputs;
  const a = operand(aId);
  const b = operand(bId);
  const K = shape(aId).at(-1)!;
  const plan: GemmPlan = {
    a,
    b,
    batch,
    M: out.at(-2)!,
    N: out.at(-1)!,
    K,
    product: anchor.id,
    prologue,
  };
  if (kernel.output !== anchor.id)
    plan.epilogue = subKernel(
      g,
      kernel,
      kernel.output,
      new Set([...inputs, anchor.id]),
      "epilogue",
    );
  return plan;
}
