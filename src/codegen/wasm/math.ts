// exp, log and tanh as WebAssembly functions (float64 in, float64 out) for
// generated kernels: WebAssembly has no transcendental instructions, and a call
// into JavaScript's Math per element costs more than the kernel's arithmetic.
// Accurate to ~1e-8 relative (exp, tanh) and ~1e-15 (log), inside the float32
// the kernels store. exp's polynomial is evaluated by Estrin's scheme: a
// Horner chain of 13 dependent multiply-adds made it latency-bound at ~14 ns.
import { Fn, splatF32 } from "./bytes.js";

export type HelperName = "exp" | "log" | "tanh";
const order: HelperName[] = ["exp", "log", "tanh"];

const LN2_HI = 0.6931471803691238; // ln 2 split so n * LN2_HI is exact for |n| < 2^11
const LN2_LO = 1.9082149292705877e-10;

/** Horner's rule for sum c[k] x^k, x in a local (highest coefficient first in `c`). */
function horner(f: Fn, x: { index: number }, c: number[]): void {
  f.f64(c[0]);
  for (const k of c.slice(1)) f.get(x).ins("f64.mul").f64(k).ins("f64.add");
}

/**
 * exp(x) = 2^n e^r, n = round(x / ln 2), |r| <= ln 2 / 2, e^r by its Taylor
 * series to r^7 (truncation < 5.2e-9 relative; much less for small r, so
 * tanh's E - 1 stays accurate near 0). x is clamped to [-708, 709.8] (2^n stays a normal float64):
 * below, the float32 result is 0 anyway; above, it is +Infinity. NaN stays NaN.
 */
function expFn(): Fn {
  const f = new Fn("", ["f64"], ["f64"]);
  const [x0] = f.params;
  const x = f.local("f64");
  const n = f.local("f64");
  const r = f.local("f64");
  f.get(x0).f64(-708).ins("f64.max").f64(709.8).ins("f64.min").set(x);
  f.get(x).f64(Math.LOG2E).ins("f64.mul").ins("f64.nearest").set(n);
  f.get(x).get(n).f64(LN2_HI).ins("f64.mul").ins("f64.sub");
  f.get(n).f64(LN2_LO).ins("f64.mul").ins("f64.sub").set(r);
  // Estrin: (c0 + c1 r) + r^2 (c2 + c3 r) + r^4 ((c4 + c5 r) + r^2 (c6 + c7 r)).
  const r2 = f.local("f64");
  f.get(r).get(r).ins("f64.mul").set(r2);
  const pair = (k: number) =>
    f
      .f64(1 / factorial(k + 1))
      .get(r)
      .ins("f64.mul")
      .f64(1 / factorial(k))
      .ins("f64.add");
  pair(0);
  pair(2);
  f.get(r2).ins("f64.mul").ins("f64.add");
  pair(4);
  pair(6);
  f.get(r2).ins("f64.mul").ins("f64.add");
  f.get(r2).get(r2).ins("f64.mul").ins("f64.mul").ins("f64.add");
  // 2^n from its bits: (n + 1023) << 52. n is NaN only when x is (then 0: the
  // polynomial is NaN already).
  f.get(n).i32TruncSatF64().i32(1023).ins("i32.add").ins("i64.extend_i32_s");
  f.i64(52n).ins("i64.shl").ins("f64.reinterpret_i64").ins("f64.mul");
  return f;
}

function factorial(k: number): number {
  return k <= 1 ? 1 : k * factorial(k - 1);
}

/**
 * log(x) = e ln 2 + log(m), x = m 2^e with m in [sqrt(1/2), sqrt(2)); log(m) =
 * 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^21.
 * log(0) = -Infinity, log(negative or NaN) = NaN, log(Infinity) = Infinity;
 * subnormals are scaled by 2^54 first.
 */
function logFn(): Fn {
  const f = new Fn("", ["f64"], ["f64"]);
  const [x0] = f.params;
  const x = f.local("f64");
  const e = f.local("f64");
  const m = f.local("f64");
  const s = f.local("f64");
  const s2 = f.local("f64");
  const bits = f.local("i64");
  // Special values first: not (x > 0) or x infinite.
  f.get(x0).f64(0).ins("f64.gt").ins("i32.eqz");
  f.ifElse((f) => {
    f.get(x0).f64(0).ins("f64.eq");
    f.ifElse(
      (f) => f.f64(-Infinity),
      (f) => f.f64(NaN),
      "f64",
    );
    f.return();
  });
  f.get(x0).f64(Infinity).ins("f64.eq");
  f.ifElse((f) => f.get(x0).return());
  f.get(x0).set(x);
  f.f64(0).set(e);
  f.get(x).f64(2.2250738585072014e-308).ins("f64.lt");
  f.ifElse((f) => {
    f.get(x)
      .f64(2 ** 54)
      .ins("f64.mul")
      .set(x);
    f.f64(-54).set(e);
  });
  f.get(x).ins("i64.reinterpret_f64").set(bits);
  // e += biased exponent - 1023; m = mantissa with exponent 0 (in [1, 2)).
  f.get(e).get(bits).i64(52n).ins("i64.shr_u").ins("i32.wrap_i64").i32(1023).ins("i32.sub");
  f.ins("f64.convert_i32_s").ins("f64.add").set(e);
  f.get(bits).i64(0xfffffffffffffn).ins("i64.and").i64(0x3ff0000000000000n).ins("i64.or");
  f.ins("f64.reinterpret_i64").set(m);
  f.get(m).f64(Math.SQRT2).ins("f64.gt");
  f.ifElse((f) => {
    f.get(m).f64(0.5).ins("f64.mul").set(m);
    f.get(e).f64(1).ins("f64.add").set(e);
  });
  f.get(m).f64(1).ins("f64.sub").get(m).f64(1).ins("f64.add").ins("f64.div").set(s);
  f.get(s).get(s).ins("f64.mul").set(s2);
  const coef: number[] = [];
  for (let k = 10; k >= 0; k--) coef.push(1 / (2 * k + 1));
  horner(f, s2, coef);
  f.get(s).ins("f64.mul").f64(2).ins("f64.mul");
  f.get(e).f64(LN2_LO).ins("f64.mul").ins("f64.add");
  f.get(e).f64(LN2_HI).ins("f64.mul").ins("f64.add");
  return f;
}

/**
 * tanh(x) = sign(x) (E - 1) / (E + 1), E = exp(2|x|); x - x^3 / 3 below
 * |x| = 1e-5, where E - 1 would lose digits. Past |x| = 20 it is +-1.
 */
function tanhFn(expIndex: number): Fn {
  const f = new Fn("", ["f64"], ["f64"]);
  const [x] = f.params;
  const a = f.local("f64");
  const E = f.local("f64");
  f.get(x).ins("f64.abs").set(a);
  f.get(a).f64(1e-5).ins("f64.lt");
  f.ifElse((f) => {
    f.get(x)
      .get(x)
      .get(x)
      .get(x)
      .ins("f64.mul")
      .ins("f64.mul")
      .f64(1 / 3)
      .ins("f64.mul");
    f.ins("f64.sub").return();
  });
  f.get(a).f64(20).ins("f64.min").f64(2).ins("f64.mul").call(expIndex).set(E);
  f.get(E).f64(1).ins("f64.sub").get(E).f64(1).ins("f64.add").ins("f64.div");
  f.get(x).ins("f64.copysign");
  return f;
}

/** 1.5 * 2^23: adding it rounds a float32 of magnitude < 2^22 to an integer. */
const MAGIC = 12582912;
const MAGIC_BITS = 0x4b400000;
const FACT = [1, 1, 2, 6, 24, 120, 720, 5040];

/**
 * Four lanes of e^r - 1 and 2^n for t = n ln 2 + r (float32, |r| <= ln 2 / 2):
 * e^r - 1 = r + r^2/2 + ... + r^7/7! keeps its relative accuracy for small t
 * (where e^t - 1 = e^r - 1 exactly, n = 0). Leaves [q, scale] in two locals.
 */
function vexpParts(
  f: Fn,
  t: { index: number },
): { q: { index: number }; scale: { index: number } } {
  const y = f.local("v128");
  const n = f.local("v128");
  const r = f.local("v128");
  const q = f.local("v128");
  const scale = f.local("v128");
  // n = round(t / ln 2) by adding 1.5 * 2^23: the sum's ulp is 1, so it rounds
  // (to nearest even, as f32x4.nearest) and n sits in its low mantissa bits.
  f.get(t).v128Const(splatF32(Math.LOG2E)).v("f32x4.mul").v128Const(splatF32(MAGIC)).v("f32x4.add");
  f.tee(y).v128Const(splatF32(MAGIC)).v("f32x4.sub").set(n);
  // Cody-Waite in float32: 0.693359375 has few bits, so n * hi is exact.
  f.get(t).get(n).v128Const(splatF32(0.693359375)).v("f32x4.mul").v("f32x4.sub");
  f.get(n).v128Const(splatF32(-2.1219444e-4)).v("f32x4.mul").v("f32x4.sub").set(r);
  // q = r P(r), P = 1 + r/2 + r^2/6 + ... + r^6/7!, by Estrin's scheme:
  // (a0 + a1 r) + (a2 + a3 r) r^2 + ((a4 + a5 r) + a6 r^2) r^4 with a_k = 1/(k+1)!.
  // Its chain of dependent operations is half Horner's (7 multiply-adds in a
  // row), which bounded exp-heavy loops (softmax, GELU's tanh) by latency.
  const r2 = f.local("v128");
  const a = (k: number) => splatF32(1 / FACT[k + 1]);
  const pair = (k: number) =>
    f
      .get(r)
      .v128Const(a(k + 1))
      .v("f32x4.mul")
      .v128Const(a(k))
      .v("f32x4.add");
  f.get(r).get(r).v("f32x4.mul").set(r2);
  pair(0);
  pair(2).get(r2).v("f32x4.mul").v("f32x4.add");
  pair(4).get(r2).v128Const(a(6)).v("f32x4.mul").v("f32x4.add");
  f.get(r2).get(r2).v("f32x4.mul").v("f32x4.mul").v("f32x4.add");
  f.get(r).v("f32x4.mul").set(q);
  // 2^n from its bits: (n + 127) << 23, n = bits(y) - bits(MAGIC) (NaN lanes
  // give some power of two; q is NaN there already).
  const bias = (127 - MAGIC_BITS) | 0;
  f.get(y).v128Const(Int32Array.of(bias, bias, bias, bias));
  f.v("i32x4.add").i32(23).v("i32x4.shl").set(scale);
  return { q, scale };
}

/**
 * exp of four float32 lanes: 2^n (1 + q), x clamped to [-87, 88.3] and 0 below
 * -87 (within ~3 float32 ulps; 2.2e38 instead of infinity past 88.3). Emitted
 * into `f` (the result left on its stack): kernels inline it, since a call per
 * four lanes cost more than the arithmetic (V8 does not inline wasm calls).
 */
export function vexpInline(f: Fn, x: { index: number }): void {
  const t = f.local("v128");
  // pmax/pmin with x first: a NaN lane stays NaN.
  f.get(x)
    .v128Const(splatF32(-87))
    .v("f32x4.pmax")
    .v128Const(splatF32(88.3))
    .v("f32x4.pmin")
    .set(t);
  const { q, scale } = vexpParts(f, t);
  f.get(q).v128Const(splatF32(1)).v("f32x4.add").get(scale).v("f32x4.mul");
  f.get(x).v128Const(splatF32(-87)).v("f32x4.lt").v("v128.andnot");
}

/**
 * tanh of four float32 lanes: m / (m + 2) with m = e^(2|x|) - 1 = 2^n q +
 * (2^n - 1), accurate near 0 (no 1 - 2/(e+1) cancellation); the sign of x put
 * back by its bit. |x| is capped at 9, where tanh is 1 in float32. Emitted
 * into `f` like vexpInline.
 */
export function vtanhInline(f: Fn, x: { index: number }): void {
  const t = f.local("v128");
  const m = f.local("v128");
  f.get(x)
    .v("f32x4.abs")
    .v128Const(splatF32(9))
    .v("f32x4.pmin")
    .v128Const(splatF32(2))
    .v("f32x4.mul");
  f.set(t);
  const { q, scale } = vexpParts(f, t);
  f.get(q)
    .get(scale)
    .v("f32x4.mul")
    .get(scale)
    .v128Const(splatF32(1))
    .v("f32x4.sub")
    .v("f32x4.add");
  f.set(m);
  f.get(m).get(m).v128Const(splatF32(2)).v("f32x4.add").v("f32x4.div");
  f.get(x).v128Const(Int32Array.of(-0x80000000, -0x80000000, -0x80000000, -0x80000000));
  f.v("v128.and").v("v128.or");
}

/** The helper functions, to be placed at function indices first, first + 1, ... */
export function mathHelpers(first: number): { fns: Fn[]; index: (name: HelperName) => number } {
  const index = (name: HelperName) => first + order.indexOf(name);
  return { fns: [expFn(), logFn(), tanhFn(index("exp"))], index };
}
