import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { WriteError } from "../src/runtime/atomic.js";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { faults } from "./helpers/fs-faults.js";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  writeSafetensorsAtomic,
  type TensorToWrite,
} from "../src/runtime/safetensors.js";

// Failure injection (writeSync / renameSync) through test/helpers/fs-faults.ts.
vi.mock("node:fs", async (importOriginal) =>
  (await import("./helpers/fs-faults.js")).faultyFs(await importOriginal()),
);

// ---------------------------------------------------------------------------------------------
// helpers

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const fixtureDir = [join(repoRoot, "test/fixtures/tiny"), join(repoRoot, "../shared/fixtures/tiny")]
  .filter((d) => existsSync(join(d, "model.safetensors")))
  .at(0);

/** A file with the given header text (padded with spaces to 8) and data section. */
function fileWith(header: string | object, data: Uint8Array | number = 0): Uint8Array {
  let json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  json = padded;
  const body = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

function f32(...xs: number[]): Float32Array {
  return new Float32Array(xs);
}

/** Runs fn, requires an error of class `kind` (a SafetensorsError by default), and returns its message. */
function errorOf(fn: () => unknown, kind: new (...a: never[]) => Error = SafetensorsError): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(kind);
    return (e as Error).message;
  }
  throw new Error("expected a SafetensorsError, nothing was thrown");
}

function headerText(file: Uint8Array): string {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(file.subarray(8, 8 + n));
}

/** mulberry32: small, seeded, good enough to pick mutations reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------

describe("serializeSafetensors / parseSafetensors", () => {
  it("round-trips tensors and metadata, including awkward names", () => {
    const tensors = new Map<string, TensorToWrite>([
      ["b", { shape: [2, 3], data: f32(1, 2, 3, 4, 5, 6) }],
      ["a", { shape: [], data: f32(-0.5) }], // a scalar
      ["empty", { shape: [0, 4], data: f32() }],
      ["__proto__", { shape: [1], data: f32(7) }],
      ["constructor", { shape: [2], data: f32(NaN, Infinity) }],
      ["é.weight", { shape: [1, 1], data: f32(3.25) }],
    ]);
    const meta = Object.create(null) as Record<string, string>;
    meta.format = "pt";
    meta["__proto__"] = "not a prototype";
    const bytes = serializeSafetensors(tensors, meta);

    const { tensors: back, metadata } = parseSafetensors(bytes);
    expect([...back.keys()]).toEqual(["__proto__", "a", "b", "constructor", "empty", "é.weight"]);
    for (const [name, t] of tensors) {
      const got = back.get(name)!;
      expect(got.dtype).toBe("F32");
      expect(got.shape).toEqual(t.shape);
      expect(Array.from(got.data)).toEqual(Array.from(t.data));
    }
    expect(Object.keys(metadata)).toEqual(["format", "__proto__"]);
    expect(metadata["__proto__"]).toBe("not a prototype");
    expect(Object.getPrototypeOf(metadata)).toBe(null);
    expect(({} as Record<string, unknown>).dtype).toBeUndefined(); // nothing leaked into Object
  });

  it("writes the exact layout of safetensors' save_file", () => {
    const bytes = serializeSafetensors(
      [
        ["w", { shape: [2, 1], data: f32(1, 2) }],
        ["b", { shape: [1], data: f32(-1) }],
      ],
      { format: "pt" },
    );
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
      '"w":{"dtype":"F32","shape":[2,1],"data_offsets":[4,12]}}';
    const padded = header + " ".repeat((8 - (header.length % 8)) % 8);
    expect(headerText(bytes)).toBe(padded);
    expect(bytes.length).toBe(8 + padded.length + 12);
    const data = new DataView(bytes.buffer, 8 + padded.length);
    expect([data.getFloat32(0, true), data.getFloat32(4, true), data.getFloat32(8, true)]).toEqual([
      -1, 1, 2,
    ]);
    // No metadata (or empty metadata) writes no "__metadata__" entry; no tensors: "{}" padded.
    expect(headerText(serializeSafetensors([], {}))).toBe("{}      ");
    expect(parseSafetensors(serializeSafetensors([])).tensors.size).toBe(0);
  });

  it("sorts names by UTF-8 bytes, as the Rust library does", () => {
    // U+FF21 sorts before U+1F600 in code points (UTF-8), after it in UTF-16 code units.
    const bytes = serializeSafetensors([
      ["\u{1F600}", { shape: [1], data: f32(1) }],
      ["\uFF21", { shape: [1], data: f32(2) }],
    ]);
    expect([...parseSafetensors(bytes).tensors.keys()]).toEqual(["\uFF21", "\u{1F600}"]);
  });

  it("copies data: no views into the input, even at unaligned offsets", () => {
    const file = serializeSafetensors([["x", { shape: [3], data: f32(1, 2, 3) }]]);
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    const input = Buffer.from(shifted.buffer, 1, file.length); // byteOffset 1
    const x = parseSafetensors(input).tensors.get("x")!.data;
    expect(Array.from(x)).toEqual([1, 2, 3]);
    expect(x.byteOffset).toBe(0);
    expect(x.buffer.byteLength).toBe(12);
    input.fill(0);
    expect(Array.from(x)).toEqual([1, 2, 3]);
  });

  it("widens F16 and BF16 and narrows F64 to float32", () => {
    const f16 = [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x7e00];
    const bf16 = [0x3f80, 0xc000, 0x7f80, 0x3e20];
    const f64 = [1.5, 0.1, -1e300];
    // F16 first (18 bytes) so the F32 tensor starts at offset 18: not a multiple of 4.
    const data = new Uint8Array(18 + 4 + 8 + 24);
    const dv = new DataView(data.buffer);
    f16.forEach((h, i) => dv.setUint16(2 * i, h, true));
    dv.setFloat32(18, 2.5, true);
    bf16.forEach((h, i) => dv.setUint16(22 + 2 * i, h, true));
    f64.forEach((v, i) => dv.setFloat64(30 + 8 * i, v, true));
    const file = fileWith(
      {
        h: { dtype: "F16", shape: [9], data_offsets: [0, 18] },
        s: { dtype: "F32", shape: [1], data_offsets: [18, 22] },
        b: { dtype: "BF16", shape: [2, 2], data_offsets: [22, 30] },
        d: { dtype: "F64", shape: [3], data_offsets: [30, 54] },
      },
      data,
    );
    const t = parseSafetensors(file).tensors;
    expect(Array.from(t.get("h")!.data)).toEqual([
      1,
      -2,
      0.5,
      65504,
      2 ** -24,
      -0,
      Infinity,
      -Infinity,
      NaN,
    ]);
    expect(t.get("h")!.dtype).toBe("F16");
    expect(Array.from(t.get("s")!.data)).toEqual([2.5]);
    expect(Array.from(t.get("b")!.data)).toEqual([1, -2, Infinity, 0.15625]);
    expect(t.get("b")!.shape).toEqual([2, 2]);
    expect(Array.from(t.get("d")!.data)).toEqual([1.5, Math.fround(0.1), -Infinity]);
  });
});

describe.skipIf(fixtureDir === undefined)("the tiny GPT-2 fixture", () => {
  const modelPath = join(fixtureDir ?? "", "model.safetensors");
  const expectedPath = join(fixtureDir ?? "", "expected.safetensors");

  it("reads the parameters with the shapes the README gives", () => {
    const { tensors, metadata } = readSafetensors(modelPath);
    expect(metadata.format).toBe("pt");
    expect(tensors.size).toBe(2 + 2 * 12 + 2);
    const shapes: Record<string, number[]> = {
      "wte.weight": [64, 32],
      "wpe.weight": [32, 32],
      "h.0.attn.c_attn.weight": [32, 96],
      "h.0.attn.c_attn.bias": [96],
      "h.1.mlp.c_fc.weight": [32, 128],
      "h.1.mlp.c_proj.weight": [128, 32],
      "ln_f.bias": [32],
    };
    for (const [name, shape] of Object.entries(shapes)) {
      const t = tensors.get(name);
      expect(t, name).toBeDefined();
      expect(t!.dtype).toBe("F32");
      expect(t!.shape).toEqual(shape);
      expect(t!.data.length).toBe(shape.reduce((a, b) => a * b, 1));
    }
    // LayerNorm weights are 1 + N(0, 0.1): a cheap check that the bytes are the right ones.
    const ln = tensors.get("h.0.ln_1.weight")!.data;
    const mean = ln.reduce((a, b) => a + b, 0) / ln.length;
    expect(Math.abs(mean - 1)).toBeLessThan(0.1);
    expect(readSafetensors(expectedPath).tensors.get("logits")!.shape).toEqual([2, 8, 64]);
  });

  it("serialize(parse(file)) reproduces the files byte for byte", () => {
    for (const path of [modelPath, expectedPath]) {
      const original = readFileSync(path);
      const parsed = parseSafetensors(original, path);
      const again = serializeSafetensors(parsed.tensors, parsed.metadata);
      expect(Buffer.compare(Buffer.from(again), original), path).toBe(0);
      const reparsed = parseSafetensors(again);
      expect([...reparsed.tensors.keys()]).toEqual([...parsed.tensors.keys()]);
      for (const [name, t] of parsed.tensors) {
        const u = reparsed.tensors.get(name)!;
        expect(u.shape).toEqual(t.shape);
        expect(Buffer.compare(Buffer.from(u.data.buffer), Buffer.from(t.data.buffer)), name).toBe(
          0,
        );
      }
      expect({ ...reparsed.metadata }).toEqual({ ...parsed.metadata });
    }
  });
});

describe("malformed input", () => {
  const ok = { dtype: "F32", shape: [2], data_offsets: [0, 8] };
  const one = (entry: unknown, data = 8) => fileWith({ x: entry }, data);
  const u64 = (n: bigint) => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(0, n, true);
    return b;
  };
  const cases: [string, () => Uint8Array, string[]][] = [
    ["empty file", () => new Uint8Array(0), ["0 bytes", "too short"]],
    ["7-byte file", () => new Uint8Array(7), ["7 bytes", "too short"]],
    ["header longer than the file", () => u64(100n), ["header length 100", "16 bytes"]],
    ["absurd header length", () => u64(1n << 40n), ["1099511627776", "limit"]],
    ["header length 2^64-1", () => new Uint8Array(16).fill(0xff), ["18446744073709551615"]],
    [
      "invalid UTF-8",
      () => {
        const f = fileWith('{"ab":"c"}');
        f.set([0xff, 0xfe], 10); // the bytes of "ab"
        return f;
      },
      ["not valid UTF-8"],
    ],
    ["header length 0", () => u64(0n).subarray(0, 8), ["not valid JSON"]],
    ["not JSON", () => fileWith("{abc"), ["not valid JSON"]],
    ["JSON array", () => fileWith("[]"), ["must be a JSON object"]],
    ["JSON null", () => fileWith("null"), ["must be a JSON object"]],
    ["JSON number", () => fileWith("3"), ["must be a JSON object"]],
    ["byte-order mark", () => fileWith("\uFEFF{}"), ["not valid JSON"]],
    ["entry is a number", () => one(3), ["tensor 'x'", "must be an object"]],
    ["entry is an array", () => one([ok]), ["tensor 'x'", "must be an object"]],
    ["entry is null", () => one(null), ["tensor 'x'", "must be an object"]],
    ["missing dtype", () => one({ shape: [2], data_offsets: [0, 8] }), ["'x'", "dtype"]],
    ["dtype not a string", () => one({ ...ok, dtype: 4 }), ["'x'", "dtype"]],
    ["unknown dtype", () => one({ ...ok, dtype: "Q7" }), ["'x'", "unknown dtype 'Q7'"]],
    ["missing shape", () => one({ dtype: "F32", data_offsets: [0, 8] }), ["'x'", "shape"]],
    ["shape not an array", () => one({ ...ok, shape: 2 }), ["'x'", "shape"]],
    ["negative dim", () => one({ ...ok, shape: [-2] }), ["'x'", "non-negative integers"]],
    ["fractional dim", () => one({ ...ok, shape: [1.5] }), ["'x'", "non-negative integers"]],
    ["infinite dim", () => fileWith('{"x":{"dtype":"F32","shape":[1e400]}}'), ["'x'", "shape"]],
    ["string dim", () => one({ ...ok, shape: ["2"] }), ["'x'", "non-negative integers"]],
    ["too many dims", () => one({ ...ok, shape: new Array(65).fill(1) }), ["65 dimensions"]],
    ["dims overflow", () => one({ ...ok, shape: [2 ** 30, 2 ** 30, 2 ** 30] }), ["too many"]],
    ["missing offsets", () => one({ dtype: "F32", shape: [2] }), ["'x'", "data_offsets"]],
    ["one offset", () => one({ ...ok, data_offsets: [0] }), ["'x'", "data_offsets"]],
    ["negative offset", () => one({ ...ok, data_offsets: [-8, 0] }), ["'x'", "data_offsets"]],
    ["fractional offset", () => one({ ...ok, data_offsets: [0, 7.5] }), ["'x'", "data_offsets"]],
    ["string offset", () => one({ ...ok, data_offsets: ["0", 8] }), ["'x'", "data_offsets"]],
    ["end before begin", () => one({ ...ok, data_offsets: [8, 0] }), ["'x'", "end before"]],
    ["past the data", () => one({ ...ok, data_offsets: [4, 12] }), ["'x'", "past the data"]],
    ["wrong byte count", () => one({ ...ok, data_offsets: [0, 4] }), ["'x'", "needs 8"]],
    [
      "huge offsets",
      () => one({ ...ok, data_offsets: [0, Number.MAX_SAFE_INTEGER] }),
      ["'x'", "past the data"],
    ],
    [
      "overlapping tensors",
      () =>
        fileWith(
          {
            a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
            b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
          },
          12,
        ),
      ["'a'", "'b'", "overlap"],
    ],
    ["metadata not an object", () => fileWith({ __metadata__: ["a"] }), ["__metadata__"]],
    [
      "metadata value not a string",
      () => fileWith({ __metadata__: { format: "pt", step: 3 } }),
      ["__metadata__", "'step'", "string"],
    ],
    [
      "duplicate tensor",
      () => fileWith(`{"x":${JSON.stringify(ok)},"x":${JSON.stringify(ok)}}`, 8),
      ["'x'", "more than once"],
    ],
    [
      "duplicate field",
      () => fileWith('{"x":{"dtype":"I64","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8),
      ["'dtype'", "more than once"],
    ],
    [
      "inherited-looking fields",
      () => fileWith(`{"x":{"__proto__":${JSON.stringify(ok)}}}`, 8),
      ["'x'", "dtype"],
    ],
  ];

  it.each(cases)("%s", (_name, make, fragments) => {
    const message = errorOf(() => parseSafetensors(make(), "bad.safetensors"));
    expect(message.startsWith("bad.safetensors: ")).toBe(true);
    for (const f of fragments) expect(message).toContain(f);
  });

  it("refuses integer tensors, naming key and dtype", () => {
    for (const dtype of ["I64", "I32", "U8", "BOOL"]) {
      const message = errorOf(() => parseSafetensors(one({ ...ok, dtype })));
      expect(message).toBe(
        `<buffer>: tensor 'x' has dtype ${dtype}; gptc reads float tensors (F32, F16, BF16, F64) and I8 only`,
      );
    }
  });

  it("reads names such as __proto__ and constructor as plain names", () => {
    const entry = (i: number) => ({ dtype: "F32", shape: [1], data_offsets: [4 * i, 4 * i + 4] });
    const text = `{"__proto__":${JSON.stringify(entry(0))},"constructor":${JSON.stringify(
      entry(1),
    )},"toString":${JSON.stringify(entry(2))},"__metadata__":{"__proto__":"p","hasOwnProperty":"h"}}`;
    const data = new Uint8Array(f32(1, 2, 3).buffer);
    const { tensors, metadata } = parseSafetensors(fileWith(text, data));
    expect([...tensors.keys()]).toEqual(["__proto__", "constructor", "toString"]);
    expect(Array.from(tensors.get("constructor")!.data)).toEqual([2]);
    expect(Object.keys(metadata)).toEqual(["__proto__", "hasOwnProperty"]);
    expect(Object.getPrototypeOf(metadata)).toBe(null);
  });

  it("never throws anything but SafetensorsError on random corruptions (seeded)", () => {
    const base = serializeSafetensors(
      [
        ["a.weight", { shape: [2, 3], data: f32(1, 2, 3, 4, 5, 6) }],
        ["a.bias", { shape: [3], data: f32(0.5, -0.5, 0) }],
        ["s", { shape: [], data: f32(9) }],
      ],
      { format: "pt" },
    );
    const headerLen = Number(new DataView(base.buffer).getBigUint64(0, true));
    const text = headerText(base);
    const rand = prng(20240607);
    const int = (n: number) => Math.floor(rand() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const tokens = [
      '"',
      "{",
      "}",
      "[",
      "]",
      ",",
      ":",
      "-1",
      "1e400",
      "0.5",
      "null",
      "\\",
      "\u00ff",
    ];
    const numbersIn = [...text.matchAll(/\d+/g)];

    const outcomes = { ok: 0, error: 0 };
    for (let iter = 0; iter < 4000; iter++) {
      let bytes: Uint8Array = base.slice();
      const kind = iter % 6;
      if (kind === 0) {
        // flip 1-4 random bits anywhere
        for (let k = 1 + int(4); k > 0; k--) bytes[int(bytes.length)]! ^= 1 << int(8);
      } else if (kind === 1) {
        bytes = bytes.slice(0, int(bytes.length)); // truncate
      } else if (kind === 2) {
        bytes[int(8 + headerLen)] = int(256); // random byte in the length or the header
      } else {
        // edit the header text and fix the length field (kind 5 leaves it stale)
        let t = text.trimEnd();
        if (kind === 3) {
          const m = pick(numbersIn);
          const repl = pick(["0", "1", "-1", "4", "7", "24", "1.5", "1e9", "9007199254740993"]);
          t = t.slice(0, m.index) + repl + t.slice(m.index! + m[0].length);
        } else {
          const at = int(t.length);
          const del = int(3);
          t = t.slice(0, at) + (rand() < 0.7 ? pick(tokens) : "") + t.slice(at + del);
        }
        const rebuilt = fileWith(t, bytes.subarray(8 + headerLen));
        if (kind === 5) rebuilt.set(bytes.subarray(0, 8), 0);
        bytes = rebuilt;
      }
      try {
        const { tensors } = parseSafetensors(bytes, "fuzz");
        for (const t of tensors.values()) {
          expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        }
        outcomes.ok++;
      } catch (e) {
        if (!(e instanceof SafetensorsError)) {
          throw new Error(`iteration ${iter} (kind ${kind}) threw ${String(e)}`);
        }
        expect(e.message.startsWith("fuzz: ")).toBe(true);
        outcomes.error++;
      }
    }
    // Both paths must have been exercised for the test to mean anything.
    expect(outcomes.ok).toBeGreaterThan(100);
    expect(outcomes.error).toBeGreaterThan(1000);
  });
});

describe("serializeSafetensors input checks", () => {
  it.each([
    ["shape/data mismatch", [["x", { shape: [2, 2], data: f32(1, 2, 3) }]], "needs 4 values"],
    ["negative dim", [["x", { shape: [-1], data: f32() }]], "non-negative"],
    [
      "duplicate name",
      [
        ["x", { shape: [1], data: f32(1) }],
        ["x", { shape: [1], data: f32(2) }],
      ],
      "given twice",
    ],
    ["reserved name", [["__metadata__", { shape: [1], data: f32(1) }]], "reserved"],
    ["lone surrogate", [["\uD800", { shape: [1], data: f32(1) }]], "well-formed"],
    ["not float32", [["x", { shape: [1], data: [1] }]], "Float32Array"],
  ] as [string, [string, TensorToWrite][], string][])("%s", (_name, tensors, fragment) => {
    expect(errorOf(() => serializeSafetensors(tensors))).toContain(fragment);
  });

  it("refuses metadata values that are not strings", () => {
    const meta = { step: 3 } as unknown as Record<string, string>;
    expect(errorOf(() => serializeSafetensors([], meta))).toContain("'step'");
  });
});

describe("readSafetensors / writeSafetensorsAtomic", () => {
  let dir = "";
  const tensors = new Map([["w", { shape: [2], data: f32(1, 2) }]]);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "gptc-st-"));
  });
  afterEach(() => {
    faults.write = null;
    faults.rename = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it("gives a clear error for a missing file or a folder", () => {
    const missing = join(dir, "nope.safetensors");
    const message = errorOf(() => readSafetensors(missing));
    expect(message).toContain(missing);
    expect(message).toContain("ENOENT");
    expect(errorOf(() => readSafetensors(dir))).toContain("EISDIR");
  });

  it("names the file in parse errors", () => {
    const path = join(dir, "short.safetensors");
    writeFileSync(path, new Uint8Array(3));
    expect(errorOf(() => readSafetensors(path))).toBe(
      `${path}: file is 3 bytes, too short for the 8-byte header length`,
    );
  });

  it("writes and replaces a file, leaving no temporary file", () => {
    const path = join(dir, "model.safetensors");
    writeSafetensorsAtomic(path, tensors, { format: "pt" });
    writeSafetensorsAtomic(path, [["v", { shape: [1], data: f32(5) }]]);
    const back = readSafetensors(path);
    expect([...back.tensors.keys()]).toEqual(["v"]);
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
  });

  it("keeps the old file when the rename fails (simulated EACCES)", () => {
    const path = join(dir, "model.safetensors");
    writeSafetensorsAtomic(path, tensors);
    const before = readFileSync(path);
    faults.rename = "EACCES";
    const message = errorOf(
      () => writeSafetensorsAtomic(path, [["v", { shape: [1], data: f32(5) }]]),
      WriteError,
    );
    expect(message).toContain(path);
    expect(message).toContain("EACCES");
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
  });

  it("keeps the old file when the disk fills up mid-write (simulated ENOSPC)", () => {
    const path = join(dir, "model.safetensors");
    writeSafetensorsAtomic(path, tensors);
    const before = readFileSync(path);
    faults.write = { code: "ENOSPC", afterBytes: 16 };
    const big = new Float32Array(1000).fill(1);
    const message = errorOf(
      () => writeSafetensorsAtomic(path, [["big", { shape: [1000], data: big }]]),
      WriteError,
    );
    expect(message).toContain("ENOSPC");
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
  });

  it("fails cleanly on real file-system errors (target is a folder; parent is a file)", () => {
    // Works as root too: no permission bits involved.
    const target = join(dir, "taken");
    mkdirSync(target);
    writeFileSync(join(target, "keep"), "x");
    const message = errorOf(() => writeSafetensorsAtomic(target, tensors), WriteError);
    expect(message).toContain(target);
    expect(message).toMatch(/EISDIR|ENOTEMPTY|EEXIST/);
    expect(readFileSync(join(target, "keep"), "utf8")).toBe("x");
    expect(readdirSync(dir)).toEqual(["taken"]);

    const file = join(dir, "plain");
    writeFileSync(file, "x");
    expect(
      errorOf(() => writeSafetensorsAtomic(join(file, "m.safetensors"), tensors), WriteError),
    ).toContain("ENOTDIR");
    expect(readdirSync(dir).sort()).toEqual(["plain", "taken"]);
  });
});
