// Index arithmetic for generated kernels: coordinates are JavaScript expressions
// (strings) over thread and loop variables, and every size is a constant baked
// into the kernel. Movement ops become coordinate remappings, never copies.
import { reshapeGroups, strides as stridesOf } from "../ir/ops/tensor.js";

/**
 * Whether `e` can be an operand of `*` as it is: no `+`, `-`, comparison or `?:`
 * outside parentheses (a merged reshape coordinate such as `c0 * 5 + c1` cannot).
 */
function isFactor(e: string): boolean {
  let depth = 0;
  for (let k = 0; k < e.length; k++) {
    const ch = e[k];
    if (ch === "(" || ch === "[") depth++;
    else if (ch === ")" || ch === "]") depth--;
    else if (depth === 0 && k > 0 && "+-<>=!&|?:".includes(ch)) return false;
  }
  return true;
}

/** `a * k` simplified for k = 0 and k = 1. */
function scaled(coord: string, k: number): string | undefined {
  if (k === 0 || coord === "0") return undefined;
  if (k === 1) return coord;
  return `${isFactor(coord) ? coord : `(${coord})`} * ${k}`;
}

/** Flat offset of coordinates in a row-major buffer; axes of size 1 contribute nothing. */
export function flatIndex(coords: readonly string[], shape: readonly number[]): string {
  const st = stridesOf(shape);
  const terms = coords
    .map((c, i) => (shape[i] === 1 ? undefined : scaled(c, st[i])))
    .filter((t) => t !== undefined);
  return terms.length ? terms.join(" + ") : "0";
}

/** Coordinates of `shape` at the flat offset `flat` (div/mod by constants). */
export function unravel(flat: string, shape: readonly number[]): string[] {
  const st = stridesOf(shape);
  const wrap = (e: string) => (/^[\w.]+$/.test(e) ? e : `(${e})`);
  return shape.map((d, i) => {
    if (d === 1) return "0";
    const q = st[i] === 1 ? wrap(flat) : `Math.floor(${wrap(flat)} / ${st[i]})`;
    return i === 0 ? q : `${q.startsWith("Math") ? q : wrap(q)} % ${d}`;
  });
}

/**
 * Coordinates in the input of a reshape from coordinates of its output. Axes are
 * matched in groups of equal size products, so splitting C into (H, D) gives
 * c = h * D + d with no division, and only truly mixed groups pay div/mod.
 */
export function reshapeCoords(
  outCoords: readonly string[],
  outShape: readonly number[],
  inShape: readonly number[],
): string[] {
  const result: string[] = [];
  for (const { from: gi, to: gj } of reshapeGroups(outShape, inShape)) {
    const oc = gi.filter((k) => k < outShape.length).map((k) => outCoords[k]);
    const os = gi.filter((k) => k < outShape.length).map((k) => outShape[k]);
    const is = gj.filter((k) => k < inShape.length).map((k) => inShape[k]);
    const flat = flatIndex(oc, os);
    if (is.length === 1) result.push(flat);
    else result.push(...unravel(flat, is));
  }
  return result.slice(0, inShape.length);
}

/** Coordinates of an input broadcast into `outShape` (size-1 axes read index 0). */
export function broadcastCoords(
  outCoords: readonly string[],
  inShape: readonly number[],
): string[] {
  const off = outCoords.length - inShape.length;
  return inShape.map((d, i) => (d === 1 ? "0" : outCoords[off + i]));
}

/**
 * `coord` clamped into [0, n - 1]. A kernel reads both sides of a select before
 * choosing (pad, concat, cache_write), so the read for the side not taken must
 * still fall inside its buffer: webasm traps on an out-of-bounds load. Written
 * max(c, 0) - max(c - (n - 1), 0) rather than min(max(c, 0), n - 1): gpu.js's GL
 * translation rejects a bare Math.min/Math.max call as a whole array index
 * ("'max' : no matching overloaded function").
 */
export function clampCoord(coord: string, n: number): string {
  if (n <= 1) return "0";
  return `Math.max(${coord}, 0) - Math.max(${coord} - ${n - 1}, 0)`;
}

/** Formats a float constant for generated code (finite only; callers clamp infinities). */
export function literal(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "3.4e38";
  if (v === -Infinity) return "-3.4e38";
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}
