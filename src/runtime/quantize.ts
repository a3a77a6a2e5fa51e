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
import { GptcError } from "../errors.js";
import { dimValue } from "../ir/dims.js";
import type { Graph } from "../ir/graph.js";
import type { TensorToWrite } from "./safetensors.js";

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
  if (qw.dtype === "f16") {
    const table = halves();
    for (let i = 0; i < out.length; i++) out[i] = table[qw.bits[i]];
  } else
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
 * nearest even, no subnormals: see normalHalf). `name` is the weight's key, for errors.
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
      bits[i] = weightHalf(data[i]);
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

/**
 * Half `h` (the rounding of `x`) without subnormals: a subnormal half (|x| <
 * 2^-14, about 6.1e-5) becomes the nearer of ±0 and ±2^-14 (ties to 2^-14).
 * gptc's float16 weights have none because the engine widens a half through
 * the float32 whose bits are the half's shifted into place, 2^-112 times its
 * value (codegen/wasm/gemm.ts): a subnormal half makes a subnormal float32,
 * and x86 runs every multiply that reads one through a microcode assist
 * (~100 cycles). GPT-2's weights (std 0.02, output projections 0.004) hold
 * 0.3-1.2% such values: enough to make float16 decoding 2x slower than
 * float32. GPUs' flush-to-zero half modes drop them too.
 */
export function normalHalf(h: number, x = halfToFloat(h)): number {
  if (h & 0x7c00) return h;
  return (h & 0x8000) | (Math.abs(x) >= 2 ** -15 ? 0x400 : 0);
}

/** `x` as a float16 weight of gptc's: the nearest half, subnormals rounded away (normalHalf). */
const weightHalf = (x: number): number => normalHalf(floatToHalf(x), x);

/** IEEE binary16 bits -> number (every half is exact in float32). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** Every half's value by its bits (256 KB, made on first use): widening 124M weights by lookup. */
let halfTable: Float32Array | undefined;
function halves(): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfTable[h] = halfToFloat(h);
  }
  return halfTable;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A weight's tensor as read from, or written to, a safetensors file. */
interface FileTensor {
  dtype?: string;
  shape: number[];
  data: Float32Array;
}

/** Suffix of an int8 weight's scales in safetensors files: `<key>_scale`. */
export const SCALE_SUFFIX = "_scale";

/**
 * A file's tensors with quantized weights folded back into float32 (their
 * narrow form registered for the GEMM): `<key>` of dtype I8 with
 * `<key>_scale` (F32, [1, C]: one scale per column, the channels of an
 * [in, out] weight; or [R, 1]: per row) becomes q * scale; a 2-D F16 tensor
 * keeps its float16 form, subnormal halves rounded to 0 or 2^-14 (normalHalf).
 * `what` names the file in errors.
 */
export function foldQuantized<T extends FileTensor>(
  tensors: Map<string, T>,
  what: string,
): Map<string, FileTensor> {
  const out = new Map<string, FileTensor>(tensors);
  for (const [key, t] of tensors) {
    if (t.dtype === "F16" && t.shape.length === 2) {
      const [R, C] = t.shape;
      const bits = Uint16Array.from(t.data, weightHalf);
      out.set(key, { ...t, data: dequantize({ dtype: "f16", shape: [R, C], axis: 1, bits }) });
    }
    if (t.dtype !== "I8") continue;
    const scale = tensors.get(key + SCALE_SUFFIX);
    if (t.shape.length !== 2 || !scale)
      throw new QuantizeError(
        `${what}: ${key} is int8 (I8) but ${t.shape.length !== 2 ? "not 2-D" : `has no ${key}${SCALE_SUFFIX} tensor`}: gptc reads int8 weights as [R, C] with per-channel scales ([1, C] or [R, 1])`,
      );
    const [R, C] = t.shape;
    const [a, b] = scale.shape;
    const axis = scale.shape.length === 2 && a === 1 && b === C ? 1 : b === 1 && a === R ? 0 : -1;
    if (axis < 0 || scale.shape.length !== 2)
      throw new QuantizeError(
        `${what}: ${key}${SCALE_SUFFIX} has shape [${scale.shape.join(", ")}], expected [1, ${C}] or [${R}, 1] for ${key} [${R}, ${C}]`,
      );
    const q = Int8Array.from(t.data);
    if (q.some((v) => v === -128))
      throw new QuantizeError(
        `${what}: ${key} holds -128; gptc's int8 weights are symmetric (-127..127)`,
      );
    out.set(key, {
      shape: t.shape,
      data: dequantize({
        dtype: "int8",
        shape: [R, C],
        axis: axis as 0 | 1,
        q,
        scales: Float32Array.from(scale.data),
      }),
    });
    out.delete(key + SCALE_SUFFIX);
  }
  return out;
}

/**
 * The tensors that store weight `key` in a safetensors file: its narrow form
 * when it has one (I8 and `<key>_scale`, or F16), else the float32 values.
 */
export function narrowTensors(
  key: string,
  shape: number[],
  data: Float32Array,
): [string, TensorToWrite][] {
  const q = quantizedForm(data);
  if (!q) return [[key, { shape, data }]];
  if (q.dtype === "f16") return [[key, { shape, data: q.bits, narrow: "F16" }]];
  const [R, C] = q.shape;
  return [
    [key, { shape, data: q.q, narrow: "I8" }],
    [key + SCALE_SUFFIX, { shape: q.axis === 1 ? [1, C] : [R, 1], data: q.scales }],
  ];
}

/** Which narrow type a session's weights use ("f32" when none has a narrow form). */
export function weightsDtypeOf(weights: Map<string, Float32Array>): WeightsDtype {
  let dtype: WeightsDtype = "f32";
  for (const w of weights.values()) {
    const q = quantizedForm(w);
    if (q?.dtype === "int8") return "int8";
    if (q) dtype = "f16";
  }
  return dtype;
}

/**
 * `weights` with the matmul weights of `g` (see matmulWeights) in `dtype`:
 * int8 or float16 (re-quantized from their current values unless already in
 * that form), or "f32": plain float32 copies that the GEMM packs as such.
 * Other weights (biases, layernorms, position tables) stay float32.
 */
export function withWeightsDtype(
  g: Graph,
  weights: Map<string, Float32Array>,
  dtype: WeightsDtype,
): Map<string, Float32Array> {
  const out = new Map(weights);
  if (dtype === "f32") {
    for (const [k, w] of weights) if (quantizedForm(w)) out.set(k, Float32Array.from(w));
    return out;
  }
  const shapes = new Map(g.nodesOf("weight").map((n) => [n.attrs.name as string, n.type.shape]));
  for (const [key, axis] of matmulWeights(g)) {
    const w = weights.get(key);
    if (!w) continue;
    const had = quantizedForm(w);
    if (had && had.dtype === dtype && (dtype === "f16" || had.axis === axis)) continue;
    const [R, C] = shapes.get(key)!.map((d) => dimValue(d)!);
    out.set(key, dequantize(quantize(w, [R, C], axis, dtype, key)));
  }
  return out;
}
