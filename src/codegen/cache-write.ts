// KV caches written in place. `cache_write(past, fresh, len)` is a new cache,
// so as a kernel it copies every element of `past` to change the T rows at
// len..len+T-1: O(context) per decoded token and layer, two caches each. When
// the caller gives `past`'s buffer up (decoding hands its caches from one step
// to the next) only the fresh rows need computing: a kernel over `fresh`'s
// shape, whose rows the host then copies into `past` where they belong.
import { shapeEval } from "../ir/dims.js";
import type { Graph } from "../ir/graph.js";
import type { Kernel } from "../ir/passes/fuse.js";
import { subKernel } from "./sub-kernel.js";

export interface InPlaceWrite {
  /** The cache input whose buffer is written (and becomes the kernel's output). */
  past: number;
  /** The input holding the write position (cache_len). */
  len: number;
  /** The kernel computing the fresh rows, or undefined when they are a buffer already. */
  kernel?: Kernel;
  /** The node holding the fresh rows. */
  fresh: number;
  /** past's extents before the axis (multiplied), along it, and after it (multiplied). */
  outer: number;
  slots: number;
  inner: number;
  /** Rows written (fresh's extent along the axis). */
  rows: number;
}

/**
 * How kernel `k` writes its cache in place, if it can: its output is a
 * cache_write of a graph input that nothing else reads, at a position given
 * as an input.
 */
export function inPlaceWrite(
  g: Graph,
  k: Kernel,
  bindings: Record<string, number>,
): InPlaceWrite | undefined {
  const n = g.nodes[k.output];
  if (n.op !== "cache_write") return undefined;
  const [past, fresh, len] = n.inputs;
  if (g.nodes[past].op !== "input" || g.nodes[len].op !== "input") return undefined;
  const readers = g.nodes.filter((m) => m.inputs.includes(past)).length;
  if (readers !== 1 || g.outputs.some((o) => o.id === past)) return undefined;
  const shape = shapeEval(n.type.shape, bindings);
  const axis = n.attrs.axis as number;
  const prod = (xs: number[]) => xs.reduce((a, b) => a * b, 1);
  return {
    past,
    len,
    fresh,
    kernel: k.inputs.includes(fresh)
      ? undefined
      : subKernel(g, k, fresh, new Set(k.inputs), "fresh"),
    outer: prod(shape.slice(0, axis)),
    slots: shape[axis],
    inner: prod(shape.slice(axis + 1)),
    rows: shapeEval(g.nodes[fresh].type.shape, bindings)[axis],
  };
}

/** Copies the fresh rows ([outer, rows, inner]) into the cache ([outer, slots, inner]) at `at`. */
export function writeRows(cache: Float32Array, fresh: Float32Array, at: number, w: InPlaceWrite) {
  if (!(Number.isInteger(at) && at >= 0 && at + w.rows <= w.slots))
    throw new RangeError(
      `cache position ${at} + ${w.rows} rows is outside the cache's ${w.slots} slots`,
    );
  const block = w.rows * w.inner;
  for (let o = 0; o < w.outer; o++)
    cache.set(fresh.subarray(o * block, (o + 1) * block), (o * w.slots + at) * w.inner);
}
