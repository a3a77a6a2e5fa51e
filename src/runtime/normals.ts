// Normal samples for weight initialization, four at a time in WebAssembly.
// Box-Muller in float64 through Math.log and Math.cos took ~50 ns a sample, so
// initializing gpt2-124M took 6-12 s before its first training step; here the
// same transform runs in float32 with polynomial log and cos, ~2 ns a sample.
//
// Sample i (counting from the generator's state s) takes the two splitmix32
// draws Rng.next would give at s + (2i + 1) G and s + (2i + 2) G: u = 1 - the
// first (in (0, 1]), v = the second, and is sqrt(-2 ln u) cos(2 pi v), the
// uniforms and the order of draws being those of the float64 Box-Muller gptc
// used before. `normalsJs` spells out every float32 rounding of the module in
// JavaScript: it is the fallback where WebAssembly SIMD is missing, and the
// reference the tests hold the module to, bit for bit.
//
//   ln u: u = m 2^e with m in (sqrt 1/2, sqrt 2]; ln m = 2 atanh(s), s = (m - 1)/(m + 1),
//     |s| <= 0.172, by its series to s^9 (next term < 3e-9). When e = 0, m - 1 is
//     -x exactly, x = the first draw (1 - u rounded to float32 would lose x's low bits).
//   cos 2 pi v: t = v - round(v), a = |t|; cos(2 pi a), or -cos(2 pi (1/2 - a)) for
//     a > 1/4, by its Taylor series in y = 2 pi b in [0, pi / 2] to y^12 (< 7e-9).
import { Fn, moduleBytes, splatF32, splatI32 } from "../codegen/wasm/bytes.js";
import { SPLITMIX, splitmix32 } from "./rng.js";

/** splitmix32's step (see Rng). */
const G = SPLITMIX.step;
const TWO_POW_M32 = 2 ** -32;
/** Coefficients of 1 + s2/3 + s2^2/5 + ..., highest first. */
const ATANH = [1 / 9, 1 / 7, 1 / 5, 1 / 3, 1];
/** Coefficients of cos y in y^2, highest first: (-1)^k / (2k)!, k = 6..0. */
const COS = [1 / 479001600, -1 / 3628800, 1 / 40320, -1 / 720, 1 / 24, -1 / 2, 1];
const f32 = Math.fround;

/** Samples per call of the module's fill (its memory: 4 bytes each). */
const CHUNK = 1 << 16;

/**
 * fill(n, state, std): samples 0..n-1 (n a multiple of 4) times std, as
 * float32 from address 0.
 */
function fillFunction(): Fn {
  const f = new Fn("fill", ["i32", "i32", "f32"]);
  const [n, state, std] = f.params;
  const i = f.local("i32");
  const su = f.local("v128");
  const zu = f.local("v128");
  const zv = f.local("v128");
  const x = f.local("v128");
  const bits = f.local("v128");
  const e = f.local("v128");
  const m = f.local("v128");
  const big = f.local("v128");
  const s = f.local("v128");
  const s2 = f.local("v128");
  const r = f.local("v128");
  const t = f.local("v128");
  const flip = f.local("v128");
  const y2 = f.local("v128");
  /** splitmix32's output for the i32 lanes on the stack. */
  const mix = (f: Fn, into: typeof zu) => {
    f.set(into);
    for (const [shift, mul] of [
      [16, SPLITMIX.mul1],
      [13, SPLITMIX.mul2],
      [16, 0],
    ]) {
      f.get(into).get(into).i32(shift).v("i32x4.shr_u").v("v128.xor");
      if (mul) f.v128Const(splatI32(mul)).v("i32x4.mul");
      f.set(into);
    }
  };
  const horner = (f: Fn, v: typeof s2, c: number[]) => {
    f.v128Const(splatF32(c[0]));
    for (const k of c.slice(1)) f.get(v).f32x4Mul().v128Const(splatF32(k)).f32x4Add();
  };
  // Lane k's first draw is at state + G + 2 G k; each step takes 8 draws.
  f.get(state)
    .v("i32x4.splat")
    .v128Const(Int32Array.from([0, 1, 2, 3], (k) => G + 2 * G * k));
  f.v("i32x4.add").set(su);
  f.for(i, 0, n, 4, (f) => {
    f.get(su);
    mix(f, zu);
    f.get(su).v128Const(splatI32(G)).v("i32x4.add");
    mix(f, zv);
    f.get(su)
      .v128Const(splatI32(8 * G))
      .v("i32x4.add")
      .set(su);
    // x = the first draw; u = 1 - x as (~z + 1) 2^-32, exact where u is small.
    f.get(zu).v("f32x4.convert_i32x4_u").v128Const(splatF32(TWO_POW_M32)).f32x4Mul().set(x);
    f.get(zu).v("v128.not").v("f32x4.convert_i32x4_u").v128Const(splatF32(1)).f32x4Add();
    f.v128Const(splatF32(TWO_POW_M32)).f32x4Mul().set(bits);
    // e, m: u = m 2^e, m in [1, 2), then in (sqrt 1/2, sqrt 2].
    f.get(bits).i32(23).v("i32x4.shr_u").v128Const(splatI32(127)).v("i32x4.sub").set(e);
    f.get(bits).v128Const(splatI32(0x7fffff)).v("v128.and");
    f.v128Const(splatI32(0x3f800000)).v("v128.or").set(m);
    f.get(m).v128Const(splatF32(Math.SQRT2)).v("f32x4.gt").set(big);
    f.get(m).v128Const(splatF32(0.5)).f32x4Mul().get(m).get(big).v("v128.bitselect").set(m);
    f.get(e).get(big).v("i32x4.sub").set(e);
    // s = (m - 1) / (m + 1), with -x for m - 1 where e = 0.
    f.v128Zero().get(x).v("f32x4.sub");
    f.get(m).v128Const(splatF32(1)).v("f32x4.sub");
    f.get(e).v128Zero().v("i32x4.eq").v("v128.bitselect");
    f.get(m).v128Const(splatF32(1)).f32x4Add().v("f32x4.div").set(s);
    f.get(s).get(s).f32x4Mul().set(s2);
    // r = sqrt(-2 ln u), ln u = e ln 2 + 2 s (1 + s2/3 + ...)
    f.get(e).v("f32x4.convert_i32x4_s").v128Const(splatF32(Math.LN2)).f32x4Mul();
    f.get(s).get(s).f32x4Add();
    horner(f, s2, ATANH);
    f.f32x4Mul().f32x4Add();
    f.v128Const(splatF32(-2)).f32x4Mul().v("f32x4.sqrt").set(r);
    // cos 2 pi v
    f.get(zv).v("f32x4.convert_i32x4_u").v128Const(splatF32(TWO_POW_M32)).f32x4Mul().set(t);
    f.get(t).get(t).v("f32x4.nearest").v("f32x4.sub").v("f32x4.abs").set(t);
    f.get(t).v128Const(splatF32(0.25)).v("f32x4.gt").set(flip);
    f.v128Const(splatF32(0.5)).get(t).v("f32x4.sub").get(t).get(flip).v("v128.bitselect");
    f.v128Const(splatF32(2 * Math.PI))
      .f32x4Mul()
      .set(t);
    f.get(t).get(t).f32x4Mul().set(y2);
    horner(f, y2, COS);
    f.set(t);
    f.get(t).v("f32x4.neg").get(t).get(flip).v("v128.bitselect");
    // out[i..i+3] = r cos(2 pi v) std
    f.set(t);
    f.get(i).i32(2).i32Shl();
    f.get(r).get(t).f32x4Mul().get(std).v("f32x4.splat").f32x4Mul().v128Store();
  });
  return f;
}

interface Module {
  memory: WebAssembly.Memory;
  fill: (n: number, state: number, std: number) => void;
}
let module: Module | null | undefined;

/** The module, or null where WebAssembly SIMD is missing (then normalsJs computes the same). */
function instantiate(): Module | null {
  const pages = (CHUNK * 4) / 65536;
  try {
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    const bytes = moduleBytes([fillFunction()], { initial: pages, maximum: pages, shared: false });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    return { memory, fill: inst.exports.fill as Module["fill"] };
  } catch {
    return null;
  }
}

/** The generator's state after `n` samples from `state`. */
export const stateAfter = (state: number, n: number) => (state + Math.imul(2 * n, G)) >>> 0;

/**
 * out[k] = sample k from generator state `state`, times std; returns the state
 * after them (a Rng's state: sample by sample it continues the same stream).
 */
export function fillNormal(out: Float32Array, state: number, std: number): number {
  if (module === undefined) module = instantiate();
  if (!module) {
    normalsJs(out, state, std);
    return stateAfter(state, out.length);
  }
  for (let at = 0; at < out.length; at += CHUNK) {
    const n = Math.min(CHUNK, out.length - at);
    module.fill((n + 3) & ~3, stateAfter(state, at), std);
    out.set(new Float32Array(module.memory.buffer, 0, n), at);
  }
  return stateAfter(state, out.length);
}

/** The module's samples in JavaScript, every float32 rounding spelled out (see the top). */
export function normalsJs(out: Float32Array, state: number, std: number): void {
  const word = new Float32Array(1);
  const wordBits = new Int32Array(word.buffer);
  const horner = (v: number, c: number[]) => {
    let p = f32(c[0]);
    for (const k of c.slice(1)) p = f32(f32(p * v) + f32(k));
    return p;
  };
  const std32 = f32(std);
  for (let k = 0; k < out.length; k++) {
    const su = (state + G + Math.imul(2 * k, G)) | 0;
    const zu = splitmix32(su);
    const zv = splitmix32((su + G) | 0);
    const x = f32(zu >>> 0) * TWO_POW_M32;
    word[0] = f32(f32(~zu >>> 0) + 1) * TWO_POW_M32;
    let e = (wordBits[0] >>> 23) - 127;
    wordBits[0] = (wordBits[0] & 0x7fffff) | 0x3f800000;
    let m = word[0];
    if (m > f32(Math.SQRT2)) {
      m *= 0.5;
      e += 1;
    }
    const s = f32((e === 0 ? f32(0 - x) : f32(m - 1)) / f32(m + 1));
    const s2 = f32(s * s);
    const lnU = f32(f32(e * f32(Math.LN2)) + f32(f32(s + s) * horner(s2, ATANH)));
    const r = f32(Math.sqrt(f32(lnU * -2)));
    const v = f32(zv >>> 0) * TWO_POW_M32;
    // |v - round(v)|: exact, and the same for either way of rounding a tie.
    const a = Math.abs(v - Math.round(v));
    const flip = a > 0.25;
    const y = f32((flip ? f32(0.5 - a) : a) * f32(2 * Math.PI));
    const c = horner(f32(y * y), COS);
    out[k] = f32(f32(r * (flip ? -c : c)) * std32);
  }
}
