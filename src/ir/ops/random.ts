// Random numbers inside a graph: dropout masks from a counter-based generator,
// Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3";
// the generator of PyTorch's CUDA dropout and of JAX). A value is a pure
// function of (run seed, step, micro-batch, op, element index), so every
// backend computes the same mask bit for bit, the backward pass recomputes the
// forward's mask instead of keeping it, and a resumed run continues the stream.
//
// The key reaches the graph as the input `rng_key`, six 16-bit halves (float32
// buffers hold integers exactly only below 2^24): seed, step and micro-batch.
import type { Dim } from "../dims.js";
import { tensor } from "./tensor.js";
import { ShapeError, type OpDef } from "./types.js";

/** The graph input holding the key of a training step's random numbers. */
export const rngKeyInput = "rng_key";
/** Its length: low and high 16 bits of the seed, the step and the micro-batch. */
export const rngKeyLength = 6;

/** `rng_key`'s value for a run seed, an optimizer step (from 0) and a micro-batch. */
export function rngKey(seed: number, step: number, micro: number): Float32Array {
  const words = [seed, step, micro].map((v) => v >>> 0);
  return Float32Array.from(words.flatMap((w) => [w & 0xffff, w >>> 16]));
}

/** The high 32 bits of a * b (both unsigned 32-bit), exactly, in float64 arithmetic. */
function mulhi(a: number, b: number): number {
  const bl = b & 0xffff;
  const bh = b >>> 16;
  // a * b = 2^16 (a bh + floor(a bl / 2^16)) + (a bl mod 2^16); every term < 2^49.
  const u = a * bh + Math.floor((a * bl) / 65536);
  return Math.floor(u / 65536) >>> 0;
}

/** Philox 4x32-10: four 32-bit words of output for a counter and a 2-word key. */
export function philox4x32(ctr: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = ctr.map((v) => v >>> 0);
  let [k0, k1] = key.map((v) => v >>> 0);
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + 0x9e3779b9) >>> 0;
      k1 = (k1 + 0xbb67ae85) >>> 0;
    }
    const hi0 = mulhi(0xd2511f53, c0);
    const lo0 = Math.imul(0xd2511f53, c0) >>> 0;
    const hi1 = mulhi(0xcd9e8d57, c2);
    const lo1 = Math.imul(0xcd9e8d57, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

/** The keep probability's scale, as float32 (what every backend multiplies by). */
export const keepScale = (p: number): number => Math.fround(1 / (1 - p));

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const I32 = 2 ** -32;

/**
 * The dropout mask of op `stream` for a key: element i is 0 where its uniform
 * u = (word >> 8) / 2^24 (exact in float32) falls below p, else 1 / (1 - p).
 * Element i is word i % 4 of Philox at counter (i / 4, step, micro, 0) under the
 * key (seed, stream). The rounds are philox4x32's, written out on locals: the
 * host fills every mask of a training step (millions of elements), and
 * philox4x32's arrays cost 100 times more.
 */
export function dropoutMask(
  key: ArrayLike<number>,
  stream: number,
  p: number,
  n: number,
  out: Float32Array = new Float32Array(n),
): Float32Array {
  const word = (k: number) => ((key[2 * k] & 0xffff) | ((key[2 * k + 1] & 0xffff) << 16)) >>> 0;
  const seed = word(0);
  const step = word(1);
  const micro = word(2);
  const scale = keepScale(p);
  // Integer threshold: u < p  <=>  (word >> 8) < ceil(p 2^24).
  const cut = Math.ceil(p * 2 ** 24);
  const lanes = [0, 0, 0, 0];
  for (let block = 0; block * 4 < n; block++) {
    let c0 = block >>> 0;
    let c1 = step;
    let c2 = micro;
    let c3 = 0;
    let k0 = seed;
    let k1 = stream >>> 0;
    for (let r = 0; r < 10; r++) {
      // M * c = hi 2^32 + lo. lo is exact (Math.imul); the float64 product is
      // off by at most 2^10 and so is subtracting lo, so (M c - lo) / 2^32 is
      // within 2^-21 of the integer hi: rounding gives it exactly.
      const lo0 = Math.imul(M0, c0) >>> 0;
      const hi0 = Math.round((M0 * c0 - lo0) * I32) >>> 0;
      const lo1 = Math.imul(M1, c2) >>> 0;
      const hi1 = Math.round((M1 * c2 - lo1) * I32) >>> 0;
      c0 = (hi1 ^ c1 ^ k0) >>> 0;
      c1 = lo1;
      c2 = (hi0 ^ c3 ^ k1) >>> 0;
      c3 = lo0;
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    lanes[0] = c0;
    lanes[1] = c1;
    lanes[2] = c2;
    lanes[3] = c3;
    const base = block * 4;
    for (let lane = 0; lane < 4 && base + lane < n; lane++)
      out[base + lane] = lanes[lane] >>> 8 < cut ? 0 : scale;
  }
  return out;
}

export const randomOps: OpDef[] = [
  {
    // A dropout mask of shape `shape` keyed by the graph's rng_key input: 0 with
    // probability p, else 1 / (1 - p). attrs: shape, p, stream (the op's number
    // in the model, fixed at compile time). Mode-dependent: evaluation graphs
    // (validation, generation) make it 1 (passes/mode.ts).
    name: "dropout_mask",
    kind: "elementwise",
    arity: 1,
    type: ([key], a) => {
      if (key.shape.length !== 1)
        throw new ShapeError("dropout_mask: the key must be a vector of six 16-bit halves");
      const p = a.p as number;
      if (!(p > 0 && p < 1)) throw new ShapeError(`dropout_mask: p must lie in (0, 1), got ${p}`);
      return { dtype: "f32", shape: a.shape as Dim[] };
    },
    eval: ([key], a, out) => {
      const r = tensor(out);
      r.data.set(dropoutMask(key.data, a.stream as number, a.p as number, r.data.length));
      return r;
    },
    grad: () => [undefined],
    inEval: (b) => b.scalar(1),
    hostFilled: true,
  },
];
