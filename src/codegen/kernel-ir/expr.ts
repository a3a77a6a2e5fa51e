// Constructors for kernel IR expressions, folding what index arithmetic makes
// trivial (adding 0, scaling by 1) so the IR says only what a kernel computes,
// and the walks over expressions the builder and the printers share.
import { reshapeGroups, strides as stridesOf } from "../../ir/ops/tensor.js";
import type { AluOp, Expr, Ty } from "./types.js";

/** Largest finite float32, which stands for infinity: GLSL has no infinite literal. */
export const BIG = 3.4e38;

export const f32 = (value: number): Expr => ({
  k: "const",
  ty: "f32",
  value: value === Infinity ? BIG : value === -Infinity ? -BIG : value,
});
export const i32 = (value: number): Expr => ({ k: "const", ty: "i32", value });
export const ref = (name: string, ty: Ty): Expr => ({ k: "var", ty, name });
export const op = (o: AluOp, ty: Ty, ...args: Expr[]): Expr => ({ k: "alu", ty, op: o, args });
export const select = (cond: Expr, a: Expr, b: Expr): Expr => {
  const ty = join(a, b);
  return { k: "select", ty, cond, then: as(a, ty), else: as(b, ty) };
};

const isConst = (e: Expr): e is Expr & { k: "const" } => e.k === "const";
const isZero = (e: Expr): boolean => e.k === "const" && e.value === 0;

/** The type two operands meet at: i32 if both are, else f32. */
export const join = (a: Expr, b: Expr): Ty => (a.ty === "i32" && b.ty === "i32" ? "i32" : "f32");

/** `e` as a value of type `ty` (i32 <-> f32 conversions; constants converted in place). */
export function as(e: Expr, ty: Ty): Expr {
  if (e.ty === ty) return e;
  if (e.ty === "bool" || ty === "bool") throw new Error(`internal: ${e.ty} used as ${ty}`);
  if (isConst(e)) return ty === "i32" ? i32(Math.trunc(e.value)) : f32(e.value);
  return op(ty, ty, e);
}

// ---- i32 index arithmetic ---------------------------------------------------

export function add(a: Expr, b: Expr): Expr {
  if (isConst(a) && isConst(b)) return i32(a.value + b.value);
  if (isZero(b)) return a;
  if (isZero(a)) return b;
  return op("add", "i32", a, b);
}

export function sub(a: Expr, b: Expr): Expr {
  if (isConst(a) && isConst(b)) return i32(a.value - b.value);
  if (isZero(b)) return a;
  return op("sub", "i32", a, b);
}

export function scale(a: Expr, k: number): Expr {
  if (k === 0 || isZero(a)) return i32(0);
  if (isConst(a)) return i32(a.value * k);
  return k === 1 ? a : op("mul", "i32", a, i32(k));
}

/** Flat offset of coordinates in a row-major array of `shape`. */
export function flatIndex(coords: readonly Expr[], shape: readonly number[]): Expr {
  const st = stridesOf(shape);
  return coords.reduce<Expr>(
    (acc, c, i) => (shape[i] === 1 ? acc : add(acc, scale(c, st[i]))),
    i32(0),
  );
}

/** Coordinates of `shape` at the flat offset `flat` (floor division and remainder by constants). */
export function unravel(flat: Expr, shape: readonly number[]): Expr[] {
  const st = stridesOf(shape);
  // An empty tensor has no element to address (its kernel's one thread writes nothing real).
  if (shape.includes(0)) return shape.map(() => i32(0));
  return shape.map((d, i) => {
    if (d === 1) return i32(0);
    const q = st[i] === 1 ? flat : op("floordiv", "i32", flat, i32(st[i]));
    return i === 0 ? q : op("rem", "i32", q, i32(d));
  });
}

/**
 * Coordinates in the input of a reshape from coordinates of its output. Axes are
 * matched in groups of equal size products, so splitting C into (H, D) gives
 * c = h * D + d with no division, and only truly mixed groups pay div/mod.
 */
export function reshapeCoords(
  outCoords: readonly Expr[],
  outShape: readonly number[],
  inShape: readonly number[],
): Expr[] {
  const result: Expr[] = [];
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

/** Coordinates of an input broadcast into the output (size-1 axes read index 0). */
export function broadcastCoords(outCoords: readonly Expr[], inShape: readonly number[]): Expr[] {
  const off = outCoords.length - inShape.length;
  return inShape.map((d, i) => (d === 1 ? i32(0) : outCoords[off + i]));
}

/**
 * `coord` clamped into [0, n - 1]. A kernel reads both sides of a select
 * before choosing (pad, concat, cache_write), so the read for the side not
 * taken must still fall inside its buffer. Written max(c, 0) - max(c - (n - 1),
 * 0): gpu.js's GL translation rejects a bare Math.min/Math.max call as a whole
 * array index.
 */
export function clamp(coord: Expr, n: number): Expr {
  if (n <= 1) return i32(0);
  const max0 = (e: Expr) => op("max", "i32", e, i32(0));
  return op("sub", "i32", max0(coord), max0(sub(coord, i32(n - 1))));
}

// ---- walks --------------------------------------------------------------------

export function children(e: Expr): Expr[] {
  switch (e.k) {
    case "load":
      return e.coords;
    case "alu":
      return e.args;
    case "select":
      return [e.cond, e.then, e.else];
    default:
      return [];
  }
}

/** Names an expression reads. */
export function freeVars(e: Expr, out = new Set<string>()): Set<string> {
  if (e.k === "var") out.add(e.name);
  for (const c of children(e)) freeVars(c, out);
  return out;
}

/** Every load in `e`, outermost first. */
export function loads(e: Expr, out: (Expr & { k: "load" })[] = []): (Expr & { k: "load" })[] {
  if (e.k === "load") out.push(e);
  for (const c of children(e)) loads(c, out);
  return out;
}
