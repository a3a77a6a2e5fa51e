// Reading and writing the safetensors format (https://github.com/huggingface/safetensors).
//
// Layout: an unsigned 64-bit little-endian header length N, then N bytes of UTF-8 JSON, then
// the data section. The header maps each tensor name to
//   {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
// with offsets relative to the first byte of the data section, plus an optional
// "__metadata__" object of string -> string.
//
// gptc computes in float32, so the reader converts every float dtype (F32, F16, BF16, F64), and
// I8 (quantized weights, runtime/quantize.ts), to a fresh Float32Array; the writer writes F32,
// and F16 or I8 given as their bits. The reader treats its input as untrusted:
// every malformed file ends in a SafetensorsError (never a RangeError, TypeError or an
// out-of-bounds read), and tensor names are only ever used as Map keys, so names such as
// "__proto__" cannot touch any object's prototype.

import { GptcError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import { readFileSync } from "node:fs";

/** Every problem with a safetensors file or with data given to the writer. */
export class SafetensorsError extends GptcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("safetensors", message, options);
  }
}

/** One tensor as read. `dtype` is the dtype stored in the file; `data` is always float32. */
export interface SafetensorsTensor {
  /** The dtype stored in the file: "F32", "F16", "BF16", "F64" or "I8". */
  dtype: string;
  /** Dimensions, outermost first ([] for a scalar). */
  shape: number[];
  /** The values, row-major, converted to float32 (a fresh copy). */
  data: Float32Array;
}

/** A parsed safetensors file. */
export interface SafetensorsFile {
  /** In header order (which is sorted order for files written by the safetensors library). */
  tensors: Map<string, SafetensorsTensor>;
  /** A null-prototype object: keys such as "__proto__" are plain own keys. */
  metadata: Record<string, string>;
}

/** What the writer needs of a tensor; a SafetensorsTensor fits. */
export type TensorToWrite =
  | {
      /** Dimensions, outermost first; their product must equal `data.length`. */
      shape: readonly number[];
      /** The values, row-major; written as F32. */
      data: Float32Array;
    }
  /** float16 bits, written as F16. */
  | { shape: readonly number[]; data: Uint16Array; narrow: "F16" }
  /** int8 values, written as I8. */
  | { shape: readonly number[]; data: Int8Array; narrow: "I8" };

/** The safetensors library refuses headers above this size; so do we, before decoding them. */
export const MAX_HEADER_BYTES = 100_000_000;
/** PyTorch's own limit on the number of dimensions. */
export const MAX_DIMS = 64;

const FLOAT_DTYPE_BYTES: ReadonlyMap<string, number> = new Map([
  ["F32", 4],
  ["F16", 2],
  ["BF16", 2],
  ["F64", 8],
  ["I8", 1],
]);
// Dtypes the format defines that gptc does not read: named so the error says "unsupported"
// rather than "unknown".
const OTHER_KNOWN_DTYPES = new Set([
  "BOOL",
  "U8",
  "U16",
  "I16",
  "U32",
  "I32",
  "U64",
  "I64",
  "C64",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F6_E2M3",
  "F6_E3M2",
  "F4",
]);
const METADATA_KEY = "__metadata__";
// Typed arrays use the host's byte order; the format is little-endian. Every platform Node
// runs on today is little-endian, but a big-endian host takes the slower DataView path.
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
// With the u flag this matches only unpaired surrogates, which have no UTF-8 encoding.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

// Characters that would let a name from a file break a message into lines, move the cursor,
// recolour the terminal or reorder the text: C0 and C1 controls, line and paragraph
// separators, bidirectional overrides and isolates, the byte-order mark.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * A name read from a file as it may appear in a message: cut short so a hostile header cannot
 * flood the log, and with every unprintable character written as a \uXXXX escape.
 */
export function printableName(name: string): string {
  const cut = name.length > 120 ? `${name.slice(0, 120)}...` : name;
  return cut.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Quotes a name for an error message (see printableName). */
function q(name: string): string {
  return `'${printableName(name)}'`;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The first duplicated key of any object in `json`, which must already be known to be valid
 * JSON. JSON.parse silently keeps the last duplicate; the safetensors library refuses such
 * headers, and a file that means two things to two readers should not load.
 */
function findDuplicateKey(json: string): string | undefined {
  const stack: (Set<string> | null)[] = []; // a Set of keys per open object, null per array
  let expectKey = false; // true right after '{' or after ',' inside an object
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      while (json.charCodeAt(j) !== 0x22) j += json.charCodeAt(j) === 0x5c /* \ */ ? 2 : 1;
      const keys = stack[stack.length - 1];
      if (expectKey && keys) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      expectKey = false;
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return undefined;
}

/** Product of the dims, refusing anything that is not a list of safe non-negative integers. */
function checkedShape(shape: unknown, what: string, fail: (msg: string) => never): number[] {
  if (!Array.isArray(shape)) fail(`${what}: "shape" must be an array of integers`);
  if (shape.length > MAX_DIMS) {
    fail(`${what}: shape has ${shape.length} dimensions (at most ${MAX_DIMS} allowed)`);
  }
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      fail(`${what}: shape ${JSON.stringify(shape)} must hold non-negative integers`);
    }
  }
  return shape as number[];
}

function elementCount(shape: readonly number[], what: string, fail: (msg: string) => never) {
  let n = 1;
  for (const d of shape) {
    // Multiply only while the result stays exact; the safetensors library does the same
    // checked multiplication, left to right.
    if (d !== 0 && n > Number.MAX_SAFE_INTEGER / d) {
      fail(`${what}: shape ${JSON.stringify(shape)} has too many elements`);
    }
    n *= d;
  }
  return n;
}

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

/**
 * Parses a complete safetensors file held in memory. The tensors are copies (aligned, never
 * views into `bytes`), converted to float32. `source` names the file in error messages.
 *
 * Accepted beyond the letter of the format: unused bytes between or after tensors (the
 * safetensors library insists on a gap-free data section) and a null "__metadata__".
 */
export function parseSafetensors(bytes: Uint8Array, source = "<buffer>"): SafetensorsFile {
  const fail: (msg: string) => never = (msg) => {
    throw new SafetensorsError(`${source}: ${msg}`);
  };

  if (bytes.length < 8) {
    fail(`file is ${bytes.length} bytes, too short for the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) {
    fail(`header length ${headerLen64} is over the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerLen = Number(headerLen64);
  if (headerLen > bytes.length - 8) {
    fail(`header length ${headerLen} runs past the end of the file (${bytes.length} bytes)`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;

  let text = "";
  try {
    // fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: keep a BOM so JSON.parse refuses it.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, dataStart),
    );
  } catch {
    fail("header is not valid UTF-8");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (!isPlainObject(header)) fail("header must be a JSON object");
  const dup = findDuplicateKey(text);
  if (dup !== undefined) fail(`header has the key ${q(dup)} more than once`);

  const metadata = Object.create(null) as Record<string, string>;
  const entries: Entry[] = [];
  // Object.keys lists own keys only, "__proto__" included (JSON.parse defines it as a plain
  // own property), and values are read back through the same own keys.
  for (const name of Object.keys(header)) {
    const value = header[name];
    if (name === METADATA_KEY) {
      if (value === null) continue;
      if (!isPlainObject(value)) fail(`"${METADATA_KEY}" must be an object of strings`);
      for (const key of Object.keys(value)) {
        const v = value[key];
        if (typeof v !== "string") {
          fail(`"${METADATA_KEY}" value for ${q(key)} must be a string, got ${typeof v}`);
        }
        metadata[key] = v;
      }
      continue;
    }

    const what = `tensor ${q(name)}`;
    if (!isPlainObject(value)) fail(`${what}: entry must be an object`);
    const dtype = Object.hasOwn(value, "dtype") ? value.dtype : undefined;
    const shape = Object.hasOwn(value, "shape") ? value.shape : undefined;
    const offsets = Object.hasOwn(value, "data_offsets") ? value.data_offsets : undefined;

    if (typeof dtype !== "string") fail(`${what}: "dtype" must be a string`);
    const itemSize = FLOAT_DTYPE_BYTES.get(dtype);
    if (itemSize === undefined) {
      if (OTHER_KNOWN_DTYPES.has(dtype)) {
        fail(
          `${what} has dtype ${dtype}; gptc reads float tensors (F32, F16, BF16, F64) and I8 only`,
        );
      }
      fail(`${what} has unknown dtype ${q(dtype)}`);
    }

    const dims = checkedShape(shape, what, fail);
    const count = elementCount(dims, what, fail);

    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => typeof o === "number" && Number.isSafeInteger(o) && o >= 0)
    ) {
      fail(`${what}: "data_offsets" must be [begin, end] with non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`${what}: data_offsets [${begin}, ${end}] end before they begin`);
    if (end > dataLen) {
      fail(`${what}: data_offsets [${begin}, ${end}] run past the data section (${dataLen} bytes)`);
    }
    // count * itemSize may exceed 2^53 only when it cannot match end - begin anyway.
    if (count * itemSize !== end - begin) {
      fail(
        `${what}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape ` +
          `${JSON.stringify(dims)} of ${dtype} needs ${count * itemSize}`,
      );
    }
    entries.push({ name, dtype, shape: [...dims], count, begin, end });
  }

  // Two tensors sharing bytes would alias once loaded; empty tensors occupy nothing.
  const byOffset = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1]!;
    const cur = byOffset[i]!;
    if (cur.begin < prev.end) {
      fail(
        `tensors ${q(prev.name)} [${prev.begin}, ${prev.end}] and ` +
          `${q(cur.name)} [${cur.begin}, ${cur.end}] overlap`,
      );
    }
  }

  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    const data = toFloat32(bytes, view, dataStart + e.begin, e.count, e.dtype);
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Converts `count` little-endian values of a float dtype starting at byte `at`. */
function toFloat32(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  count: number,
  dtype: string,
): Float32Array {
  const out = new Float32Array(count);
  switch (dtype) {
    case "F32":
      if (HOST_IS_LITTLE_ENDIAN) {
        // Copy into the fresh (aligned) buffer: a Float32Array view of `bytes` could sit at an
        // offset that is not a multiple of 4, and would keep the whole file alive.
        new Uint8Array(out.buffer).set(bytes.subarray(at, at + 4 * count));
      } else {
        for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i, true);
      }
      break;
    case "F64":
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(at + 8 * i, true); // rounds
      break;
    case "BF16": {
      // bfloat16 is the top half of a float32: shift the bits in, keeping NaN payloads. The
      // Uint32Array and Float32Array views share the host byte order, so this works on any host.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(at + 2 * i, true) << 16;
      break;
    }
    case "F16":
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(at + 2 * i, true));
      break;
    case "I8":
      for (let i = 0; i < count; i++) out[i] = view.getInt8(at + i);
      break;
  }
  return out;
}

/** IEEE binary16 -> number; every half value is exact in float32. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** Reads and parses a safetensors file; any failure, a missing file included, is a SafetensorsError. */
export function readSafetensors(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(`cannot read ${path}: ${reason(e)}`, { cause: e });
  }
  return parseSafetensors(bytes, path);
}

/**
 * Serializes float32 tensors exactly as the safetensors library (`safetensors.torch.save_file`)
 * does for F32 tensors: compact JSON with "__metadata__" first (when not empty), then the tensors
 * sorted by name (byte order of their UTF-8, as Rust sorts strings), each as
 * {"dtype":"F32","shape":[...],"data_offsets":[b,e]}; the header is padded with spaces to a
 * multiple of 8 bytes and the data follows in the same order, with no gaps.
 */
export function serializeSafetensors(
  tensors: Iterable<readonly [string, TensorToWrite]>,
  metadata?: Record<string, string>,
): Uint8Array {
  const enc = new TextEncoder();
  const items: {
    name: string;
    key: Uint8Array;
    shape: readonly number[];
    data: Float32Array | Uint16Array | Int8Array;
    dtype: string;
  }[] = [];
  const seen = new Set<string>();
  for (const [name, t] of tensors) {
    const what = `tensor ${q(String(name))}`;
    const fail: (msg: string) => never = (msg) => {
      throw new SafetensorsError(`cannot serialize ${msg}`);
    };
    if (typeof name !== "string" || LONE_SURROGATE.test(name)) {
      fail(`${what}: names must be well-formed strings`);
    }
    if (name === METADATA_KEY) fail(`${what}: the name is reserved for metadata`);
    if (seen.has(name)) fail(`${what}: the name is given twice`);
    seen.add(name);
    const dtype = t && "narrow" in t ? t.narrow : "F32";
    const arrayType = { F32: Float32Array, F16: Uint16Array, I8: Int8Array }[dtype];
    if (!arrayType)
      fail(`${what}: dtype ${q(String(dtype))} is not one gptc writes (F32, F16, I8)`);
    if (!(t.data instanceof arrayType))
      fail(`${what}: data of ${dtype} must be a ${arrayType.name}`);
    const shape = checkedShape(t.shape, what, fail);
    const count = elementCount(shape, what, fail);
    if (count !== t.data.length) {
      fail(
        `${what}: shape ${JSON.stringify(shape)} needs ${count} values, data has ${t.data.length}`,
      );
    }
    items.push({ name, key: enc.encode(name), shape: [...shape], data: t.data, dtype });
  }
  items.sort((a, b) => compareBytes(a.key, b.key));

  // Built as text rather than through an object, so no name is ever used as a property key.
  const parts: string[] = [];
  // Metadata keys keep the caller's order (the library's own order is that of a Rust HashMap,
  // i.e. unspecified), so parse + serialize reproduces a file byte for byte. Empty metadata is
  // left out, as `save_file(..., metadata=None)` does.
  const metaKeys = metadata === undefined ? [] : Object.keys(metadata);
  if (metaKeys.length > 0) {
    const fields: string[] = [];
    for (const key of metaKeys) {
      const v = metadata![key];
      if (typeof v !== "string" || LONE_SURROGATE.test(key) || LONE_SURROGATE.test(v)) {
        throw new SafetensorsError(
          `cannot serialize "${METADATA_KEY}": ${q(key)} must map a well-formed string to one`,
        );
      }
      fields.push(`${JSON.stringify(key)}:${JSON.stringify(v)}`);
    }
    parts.push(`"${METADATA_KEY}":{${fields.join(",")}}`);
  }
  let offset = 0;
  for (const it of items) {
    const end = offset + it.data.byteLength;
    parts.push(
      `${JSON.stringify(it.name)}:{"dtype":"${it.dtype}","shape":${JSON.stringify(it.shape)},` +
        `"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = enc.encode(`{${parts.join(",")}}`);
  const headerLen = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLen + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20 /* space */, 8 + json.length, 8 + headerLen);
  let at = 8 + headerLen;
  for (const it of items) {
    if (HOST_IS_LITTLE_ENDIAN) {
      out.set(new Uint8Array(it.data.buffer, it.data.byteOffset, it.data.byteLength), at);
    } else {
      const d = it.data;
      for (let i = 0; i < d.length; i++)
        if (d instanceof Float32Array) view.setFloat32(at + 4 * i, d[i]!, true);
        else if (d instanceof Uint16Array) view.setUint16(at + 2 * i, d[i]!, true);
        else view.setInt8(at + i, d[i]!);
    }
    at += it.data.byteLength;
  }
  return out;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Writes a safetensors file atomically (runtime/atomic.ts): readers see the old
 * file or the complete new one, even after a crash; a failure leaves `path` as
 * it was and raises a WriteError giving the reason (e.g. ENOSPC). Invalid
 * tensors fail before any I/O.
 */
export function writeSafetensorsAtomic(
  path: string,
  tensors: Iterable<readonly [string, TensorToWrite]>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
