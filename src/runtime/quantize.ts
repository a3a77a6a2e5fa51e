// Weight-only quantization for inference: the matmul weights stored as int8
// with one float32 scale per output channel, or as float16. Decoding a token
// reads every weight once, so it is bound by memory bandwidth: int8 reads a
// quarter of the bytes of float32, float16 half. The GEMM engine (gemm.ts)
// keeps the packed weights in the narrow type and widens them in registers.
//
// The session's weights stay Float32Arrays holding the *dequantized* values
// (q * scale, or the float16 value), so every other reader (the embedding
// gather of a tied table, the cpu backend, saving) computes with exactly the
// numbers the quantized GEMM multiplies by. The quantized form of such an
// array is found through `quantizedForm`.
import type { Graph } from "../ir/graph.js";
import { GptcError } from "../errors.js";

/** How a session keeps its matmul weights: float32 (as trained), float16, or int8 with scales. */
export type WeightsDtype = "f32" | "f16" | "int8";
export const WEIGHTS_DTYPES: readonly WeightsDtype[] = ["f32", "f16", "int8"];

export class QuantizeError extends GptcError {
  constructor(message: string) {
    super("quantize", message);
  }
}

/** A 2-D weight in a narrow type: row-major like its float32 array. */
export type QuantizedWeight =
  | {
      dtype: "int8";
      shape: [number, number];
      /** The output-channel axis: 1 for a [in, out] weight (x @ W), 0 for [out, in] (x @ W.T). */
      axis: 0 | 1;
      q: Int8Array;
      /** One per output channel: value = q * scale. */
      scales: Float32Array;
    }
  | { dtype: "f16"; shape: [number, number]; axis: 0 | 1; bits: Uint16Array };

const forms = new WeakMap<Float32Array, QuantizedWeight>();

/** The quantized form whose dequantized values `w` holds, if it has one. */
export function quantizedForm(w: Float32Array): QuantizedWeight | undefined {
  return forms.get(w);
}

/** The dequantized float32 array of `qw`, registered so the engine finds its quantized form. */
export function dequantize(qw: QuantizedWeight): Float32Array {
  const [R, C] = qw.shape;
  const out = new Float32Array(R * C);
  if (qw.dtype === "f16") for (let i = 0; i < out.length; i++) out[i] = halfToFloat(qw.bits[i]);
  else
    for (let r = 0; r < R; r++)
      for (let c = 0; c < C; c++) {
        const i = r * C + c;
        out[i] = Math.fround(qw.q[i] * qw.scales[qw.axis === 0 ? r : c]);
      }
  forms.set(out, qw);
  return out;
}

/**
 * `data` ([R, C] row-major) in `dtype`: int8 with scale max|x| / 127 per
 * channel along `axis` (symmetric, round to nearest), or float16 (round to
 * nearest even). `name` is the weight's key, for errors.
 */
export function quantize(
  data: Float32Array,
  shape: [number, number],
  axis: 0 | 1,
  dtype: "int8" | "f16",
  name: string,
): QuantizedWeight {
  const [R, C] = shape;
  for (let i = 0; i < data.length; i++)
    if (!Number.isFinite(data[i]))
      throw new QuantizeError(`weight ${name} holds ${data[i]}: only finite weights quantize`);
  if (dtype === "f16") {
    const bits = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) {
      if (Math.abs(data[i]) > 65504)
        throw new QuantizeError(
          `weight ${name} holds ${data[i]}, beyond float16's range (65504): keep it in f32 or use int8`,
        );
      bits[i] = floatToHalf(data[i]);
    }
    return { dtype, shape, axis, bits };
  }
  const channels = axis === 0 ? R : C;
  const maxAbs = new Float32Array(channels);
  for (let r = 0; r < R; r++)
    for (let c = 0; c < C; c++) {
      const ch = axis === 0 ? r : c;
      maxAbs[ch] = Math.max(maxAbs[ch], Math.abs(data[r * C + c]));
    }
  // An all-zero channel keeps scale 1 (its q are 0 whatever the scale).
  const scales = maxAbs.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(data.length);
  for (let r = 0; r < R; r++)
    for (let c = 0; c < C; c++) {
      const i = r * C + c;
      const v = Math.round(data[i] / scales[axis === 0 ? r : c]);
      q[i] = Math.max(-127, Math.min(127, v));
    }
  return { dtype, shape, axis, q, scales };
}

/**
 * The output-channel axis of every 2-D weight that is the right operand of a
 * matmul in `g` (the linear layers' [in, out] weights: axis 1; a tied LM head
 * `x @ wte.weight.T`: axis 0), by weight key. A weight used with both
 * orientations is left out: one scale per channel cannot serve both.
 */
export function matmulWeights(g: Graph): Map<string, 0 | 1> {
  const axes = new Map<string, 0 | 1 | "both">();
  for (const n of g.nodes) {
    if (n.op !== "matmul") continue;
    let b = g.nodes[n.inputs[1]];
    let axis: 0 | 1 = 1;
    if (b.op === "permute" && String(b.attrs.perm) === "1,0") {
      b = g.nodes[b.inputs[0]];
      axis = 0;
    }
    if (b.op !== "weight" || b.type.shape.length !== 2) continue;
    const key = b.attrs.name as string;
    const had = axes.get(key);
    axes.set(key, had === undefined || had === axis ? axis : "both");
  }
  const out = new Map<string, 0 | 1>();
  for (const [k, a] of axes) if (a !== "both") out.set(k, a);
  return out;
}

/** float32 -> IEEE binary16 bits, round to nearest even (overflow to infinity). */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the mantissa with its implicit bit in.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent, which is still right.
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** IEEE binary16 bits -> number (every half is exact in float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
