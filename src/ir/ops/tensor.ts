// Small helpers over concrete shapes, shared by the ops' reference semantics.
import type { Tensor } from "./types.js";

export function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i];
  }
  return out;
}

export function tensor(shape: number[], data?: Float64Array): Tensor {
  return { shape, data: data ?? new Float64Array(size(shape)) };
}

/** Strides of `shape` read as if broadcast to `out` (0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const st = strides(shape);
  const off = out.length - shape.length;
  return out.map((_d, i) => {
    const j = i - off;
    if (j < 0 || shape[j] === 1) return 0;
    return st[j];
  });
}

/** Calls fn(flatOutIndex, multiIndex) over every element of `shape` in row-major order. */
export function forEachIndex(
  shape: readonly number[],
  fn: (flat: number, idx: number[]) => void,
): void {
  const n = size(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    fn(flat, idx);
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
}

export function dot(idx: readonly number[], st: readonly number[]): number {
  let o = 0;
  for (let i = 0; i < idx.length; i++) o += idx[i] * st[i];
  return o;
}

/**
 * Axes of two shapes with the same element count, matched in groups of equal
 * size products, in order (reshaping [B, T, C] to [B, T, H, D] pairs C with
 * H, D). Axis indices past a shape's rank stand for trailing size-1 axes.
 */
export function reshapeGroups(
  from: readonly number[],
  to: readonly number[],
): { from: number[]; to: number[] }[] {
  const groups: { from: number[]; to: number[] }[] = [];
  let i = 0;
  let j = 0;
  while (i < from.length || j < to.length) {
    const gi = [i];
    const gj = [j];
    let pi = from[i++] ?? 1;
    let pj = to[j++] ?? 1;
    while (pi !== pj) {
      if (pi < pj) {
        pi *= from[i] ?? 1;
        gi.push(i++);
      } else {
        pj *= to[j] ?? 1;
        gj.push(j++);
      }
    }
    groups.push({ from: gi, to: gj });
  }
  return groups;
}
