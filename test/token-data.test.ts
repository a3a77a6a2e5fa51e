// The data pipeline as a library: token files round trip, prepare gives the ids
// of tokenizing each whole document (gpt2 and char, across many chunks), the
// validation split is per document and stable, worker count does not change
// the output, files that are not text are skipped, the cache answers a second
// load, and batches read by position equal batches drawn from memory.
import {
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  DataError,
  loadDataset,
  memoryTokens,
  sampleBatch,
  type TokenSource,
} from "../src/runtime/data.js";
import { prepareTokens } from "../src/runtime/prepare.js";
import { Rng } from "../src/runtime/rng.js";
import { brownSources, listSources, safeCut, textChunks } from "../src/runtime/sources.js";
import { FileTokens, TokenFileWriter, readMeta } from "../src/runtime/token-files.js";
import { buildCharTokenizer, gpt2Tokenizer, type Tokenizer } from "../src/runtime/tokenizer.js";
import { tempDir } from "./helpers/train.js";

const dirs: string[] = [];
const tmp = () => {
  const d = tempDir("gptc-tokens-");
  dirs.push(d);
  return d;
};
const prevCache = process.env.GPTC_CACHE_DIR;
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (prevCache === undefined) delete process.env.GPTC_CACHE_DIR;
  else process.env.GPTC_CACHE_DIR = prevCache;
});

const all = (t: TokenSource) => {
  const out = new Uint32Array(t.length);
  t.read(0, out);
  return [...out];
};

/** What prepare must write: each document tokenized whole, its last 10% to val, joined by eot. */
function reference(tok: Tokenizer, docs: string[], valFraction = 0.1) {
  const train: number[] = [];
  const val: number[] = [];
  for (const doc of docs) {
    const ids = tok.encode(doc);
    if (!ids.length) continue;
    const nVal = Math.floor(ids.length * valFraction);
    if (train.length) train.push(tok.eot);
    train.push(...ids.slice(0, ids.length - nVal));
    if (nVal === 0) continue;
    if (val.length) val.push(tok.eot);
    val.push(...ids.slice(ids.length - nVal));
  }
  return { train, val };
}

/** Text that is hard to cut: whitespace runs before newlines, CRLF, tabs, markers, emoji. */
function trickyText(seed: number, pieces: number): string {
  const parts = [
    "the",
    "cat's",
    "we're",
    " ",
    "  ",
    "\n",
    "\n\n",
    " \n",
    "\r\n",
    "\t",
    " \t\n ",
    "123",
    "4.5",
    "<|endoftext|>",
    "<|endof",
    "text|>",
    "é",
    "日本語",
    "😀",
    ">",
    "<",
    "!!",
    "\u00a0",
    "\u2028",
    "--",
    "Hello",
    " world",
    ",",
    ".",
    "don't",
    "''",
    '"',
  ];
  const rng = new Rng(seed);
  let s = "";
  for (let i = 0; i < pieces; i++) s += parts[Math.floor(rng.next() * parts.length)];
  return s;
}

function writeDocs(dir: string, docs: string[]): void {
  mkdirSync(dir, { recursive: true });
  docs.forEach((d, i) => writeFileSync(join(dir, `doc${String(i).padStart(3, "0")}.txt`), d));
}

async function prepare(
  dir: string,
  tokenizer: "gpt2" | "char",
  o: { workers?: number; chunkBytes?: number } = {},
) {
  const out = tmp();
  const meta = await prepareTokens({
    sources: listSources(dir),
    source: dir,
    tokenizer,
    out,
    workers: o.workers ?? 2,
    chunkBytes: o.chunkBytes ?? 64,
  });
  const read = (name: string, count: number) => {
    const f = new FileTokens(join(out, name), meta.dtype, count);
    try {
      return all(f);
    } finally {
      f.close();
    }
  };
  return {
    out,
    meta,
    train: read("train.bin", meta.tokens.train),
    val: read("val.bin", meta.tokens.val),
  };
}

describe("token files", () => {
  it("round-trip uint16 and uint32 ids, including the largest of each, read at any position", () => {
    const d = tmp();
    for (const [dtype, max] of [
      ["uint16", 65535],
      ["uint32", 4294967295],
    ] as const) {
      const ids = [0, 1, 2, max, 7, max - 1, 65535, 3].map((v) => Math.min(v, max));
      if (dtype === "uint32") ids.push(65536, 70000, 123456789);
      const path = join(d, `${dtype}.bin`);
      const w = new TokenFileWriter(path, dtype);
      w.append(ids.slice(0, 3));
      w.append(
        dtype === "uint16" ? Uint16Array.from(ids.slice(3)) : Uint32Array.from(ids.slice(3)),
      );
      expect(existsSync(path)).toBe(false); // only under a temp name until finished
      w.finish();
      expect(readFileSync(path).length).toBe(ids.length * (dtype === "uint16" ? 2 : 4));
      const f = new FileTokens(path, dtype, ids.length);
      expect(all(f)).toEqual(ids);
      const window = new Uint32Array(3);
      f.read(2, window);
      expect([...window]).toEqual(ids.slice(2, 5));
      expect(() => f.read(ids.length - 2, window)).toThrow(RangeError);
      f.close();
    }
  });

  it("a char vocabulary over 65536 ids is written as uint32 and equals in-memory tokenizing", async () => {
    const chars: string[] = [];
    for (const [from, to] of [
      [0x4e00, 0x9fff],
      [0x20000, 0x2a6df],
      [0xac00, 0xd7a3],
    ])
      for (let c = from; c <= to; c++) chars.push(String.fromCodePoint(c));
    const docs = [chars.join(""), chars.slice(0, 5000).reverse().join(" ")];
    const src = tmp();
    writeDocs(src, docs);
    const p = await prepare(src, "char", { chunkBytes: 1 << 16 });
    expect(p.meta.vocabSize).toBeGreaterThan(65536);
    expect(p.meta.dtype).toBe("uint32");
    const ref = reference(buildCharTokenizer(docs), docs);
    expect(p.train).toEqual(ref.train);
    expect(p.val).toEqual(ref.val);
    expect(Math.max(...p.train)).toBeGreaterThan(65535);
  });
});

describe("prepare", () => {
  // No ASCII before its newlines: cut after a CJK character ("。"), or before "\u3000" never.
  const cjk = Array.from(
    { length: 300 },
    (_, i) => `日本語の文${i}。${i % 3 ? "" : "\u3000"}`,
  ).join("\n");
  const docs = [trickyText(1, 3000), trickyText(2, 1500), "short one", trickyText(3, 2000), cjk];
  const src = tmp();
  writeDocs(src, docs);

  it("cuts documents into many chunks, each at a safe boundary", () => {
    const chunks = [...textChunks(listSources(src)[0], 64)];
    expect(chunks.length).toBeGreaterThan(50);
    const text = Buffer.concat(chunks).toString("utf8");
    expect(text).toBe(docs[0]);
    // The CJK document is cut at its newlines, not at forced character boundaries.
    const cjkChunks = [...textChunks(listSources(src)[4], 64)];
    expect(cjkChunks.length).toBeGreaterThan(50);
    for (const c of cjkChunks.slice(1)) expect(c[0]).toBe(0x0a);
    expect(Buffer.concat(cjkChunks).toString("utf8")).toBe(cjk);
  });

  it("a cut after a newline is not safe for GPT-2's pre-tokenizer; safeCut's cuts are", () => {
    const tok = gpt2Tokenizer();
    const split = (s: string, p: number) => [
      ...tok.encode(s.slice(0, p)),
      ...tok.encode(s.slice(p)),
    ];
    // "a\n\n\nb": whole, the pieces are "\n\n" and "\n"; cut after the first "\n", three "\n".
    expect(split("a\n\n\nb", 2)).not.toEqual(tok.encode("a\n\n\nb"));
    // Every cut safeCut could choose, in text full of such traps, keeps the ids.
    for (let seed = 10; seed < 14; seed++) {
      const text = trickyText(seed, 200);
      const bytes = Buffer.from(text);
      let cuts = 0;
      for (let end = bytes.length; end > 1;) {
        const p = safeCut(bytes.subarray(0, end));
        if (p <= 0) break;
        const left = bytes.subarray(0, p).toString("utf8");
        expect(split(text, left.length), `cut at ${p} of ${JSON.stringify(text)}`).toEqual(
          tok.encode(text),
        );
        cuts++;
        end = p;
      }
      expect(cuts).toBeGreaterThan(5);
    }
  });

  it("gpt2: the ids of tokenizing each whole document, last 10% of each to val", async () => {
    const p = await prepare(src, "gpt2");
    const ref = reference(gpt2Tokenizer(), docs);
    expect(p.meta.dtype).toBe("uint16");
    expect(p.train).toEqual(ref.train);
    expect(p.val).toEqual(ref.val);
    expect(p.meta.tokens).toEqual({ train: ref.train.length, val: ref.val.length });
    expect(p.meta.files.read).toBe(5);
  });

  it("char: a first pass gathers the vocabulary; ids equal in-memory tokenizing", async () => {
    const p = await prepare(src, "char");
    const tok = buildCharTokenizer(docs);
    expect(p.meta.tokenizer).toEqual(tok.toJSON());
    const ref = reference(tok, docs);
    expect(p.train).toEqual(ref.train);
    expect(p.val).toEqual(ref.val);
  });

  it("1 and 2 workers write identical files", async () => {
    const one = await prepare(src, "gpt2", { workers: 1, chunkBytes: 128 });
    const two = await prepare(src, "gpt2", { workers: 2, chunkBytes: 128 });
    for (const f of ["train.bin", "val.bin", "meta.json"])
      expect(readFileSync(join(two.out, f)).equals(readFileSync(join(one.out, f))), f).toBe(true);
  });

  it("the split is deterministic and each document keeps its validation tokens when files are added", async () => {
    const a = await prepare(src, "gpt2");
    const again = await prepare(src, "gpt2");
    expect(again.train).toEqual(a.train);
    expect(again.val).toEqual(a.val);
    // A new first file: every old document's validation part is still in val, unchanged.
    const grown = tmp();
    writeDocs(grown, [
      "a new document that sorts first, with some words in it. ".repeat(20),
      ...docs,
    ]);
    const g = await prepare(grown, "gpt2");
    const eot = gpt2Tokenizer().eot;
    const parts = (ids: number[]) =>
      ids
        .join(",")
        .split(`${eot}`)
        .map((s) => s.replace(/^,|,$/g, ""));
    expect(parts(g.val).slice(1)).toEqual(parts(a.val));
    expect(g.meta.sourceHash).not.toBe(a.meta.sourceHash);
    expect(again.meta.sourceHash).toBe(a.meta.sourceHash);
  });

  it("skips and counts files that are not UTF-8 text (NUL bytes, invalid bytes, only whitespace)", async () => {
    const d = tmp();
    writeDocs(d, ["good text here", "more good text"]);
    writeFileSync(join(d, "image.bin"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13, 0x49]));
    writeFileSync(join(d, "latin1.txt"), Buffer.from("caf\xe9 cr\xe8me", "latin1"));
    writeFileSync(join(d, "cut.txt"), Buffer.from([0x61, 0x62, 0xe6, 0x97])); // ends inside a character
    writeFileSync(join(d, "blank.txt"), " \n\t\n");
    // A valid character split by the scan's 4 MiB block boundary is still text.
    writeFileSync(join(d, "wide.txt"), "é".repeat(3 << 20));
    const p = await prepare(d, "char", { chunkBytes: 1 << 20 });
    expect(p.meta.files.read).toBe(3);
    expect(p.meta.files.skipped).toBe(4);
    const reasons = Object.fromEntries(
      p.meta.files.skippedFiles.map((s) => [s.path.replace(/^.*\//, ""), s.reason]),
    );
    expect(reasons).toEqual({
      "image.bin": "binary (NUL bytes)",
      "latin1.txt": "not UTF-8",
      "cut.txt": "not UTF-8",
      "blank.txt": "empty",
    });
    expect(p.meta.tokenizer).toEqual(
      buildCharTokenizer(["good text here", "more good text", "é"]).toJSON(),
    );
    // A folder of nothing but binary files: a DataError naming what was skipped.
    const b = tmp();
    writeFileSync(join(b, "x.bin"), Buffer.from([1, 0, 2]));
    await expect(
      prepareTokens({ sources: listSources(b), source: b, tokenizer: "gpt2", out: tmp() }),
    ).rejects.toThrow(/no text in it \(1 files skipped: .*x\.bin \(binary/);
  });
});

describe("loading for training", () => {
  it("reads a prepared folder directly; a wrong tokenizer or a damaged folder is a DataError", async () => {
    const src = tmp();
    writeDocs(src, [trickyText(5, 2000)]);
    const p = await prepare(src, "char");
    const ds = await loadDataset({ data: p.out, minTokens: 10 });
    expect(ds.cached).toBe(true);
    expect(ds.dir).toBe(p.out);
    expect(ds.tokenizer.kind).toBe("char");
    expect(all(ds.train)).toEqual(p.train);
    expect(all(ds.val)).toEqual(p.val);
    ds.close?.();
    await expect(loadDataset({ data: p.out, tokenizer: "gpt2", minTokens: 10 })).rejects.toThrow(
      /prepared with the char tokenizer, not gpt2/,
    );
    truncateSync(join(p.out, "train.bin"), 10);
    await expect(loadDataset({ data: p.out, minTokens: 10 })).rejects.toThrow(DataError);
    await expect(loadDataset({ data: p.out, minTokens: 10 })).rejects.toThrow(
      /incomplete or damaged/,
    );
  });

  it("the Brown corpus goes through the cache: the second load is a hit on the same folder", async () => {
    process.env.GPTC_CACHE_DIR = tmp();
    const first = await loadDataset({ tokenizer: "char", minTokens: 10 });
    expect(first.cached).toBe(false);
    expect(first.dir!.startsWith(process.env.GPTC_CACHE_DIR)).toBe(true);
    const second = await loadDataset({ tokenizer: "char", minTokens: 10 });
    expect(second.cached).toBe(true);
    expect(second.dir).toBe(first.dir);
    const docs = brownSources().map((s) => Buffer.from(s.bytes!).toString("utf8"));
    const ref = reference(buildCharTokenizer(docs), docs);
    expect(second.train.length).toBe(ref.train.length);
    const head = new Uint32Array(1000);
    second.train.read(0, head);
    expect([...head]).toEqual(ref.train.slice(0, 1000));
    first.close?.();
    second.close?.();
  });

  it("a second load of the same files does not scan them again (keyed by path, size and mtime)", async () => {
    process.env.GPTC_CACHE_DIR = tmp();
    const src = tmp();
    writeDocs(src, ["first version of the text, long enough to train on"]);
    const file = join(src, "doc000.txt");
    // A whole second: a Date restores it exactly (the file's own mtime has nanoseconds).
    const mtime = new Date(Math.floor(Date.now() / 1000) * 1000 - 60_000);
    utimesSync(file, mtime, mtime);
    const first = await loadDataset({ data: src, tokenizer: "char", minTokens: 10 });
    expect(first.cached).toBe(false);
    // Same size and mtime, other bytes: the memo answers (the documented limit of the shortcut).
    writeFileSync(file, "FIRST version of the text, long enough to train on");
    utimesSync(file, mtime, mtime);
    const second = await loadDataset({ data: src, tokenizer: "char", minTokens: 10 });
    expect(second.cached).toBe(true);
    expect(second.dir).toBe(first.dir);
    // A new mtime: scanned again, a new entry.
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    const third = await loadDataset({ data: src, tokenizer: "char", minTokens: 10 });
    expect(third.cached).toBe(false);
    expect(third.dir).not.toBe(first.dir);
    for (const d of [first, second, third]) d.close?.();
  });

  it("batches read by position from the files equal sampleBatch on the same tokens in memory", async () => {
    process.env.GPTC_CACHE_DIR = tmp();
    const src = tmp();
    writeDocs(src, [trickyText(7, 4000), trickyText(8, 4000)]);
    const ds = await loadDataset({ data: src, tokenizer: "gpt2", minTokens: 20 });
    const docs = [trickyText(7, 4000), trickyText(8, 4000)];
    const ref = reference(gpt2Tokenizer(), docs);
    const mem = {
      train: memoryTokens(Uint32Array.from(ref.train)),
      val: memoryTokens(Uint32Array.from(ref.val)),
    };
    for (const split of ["train", "val"] as const) {
      const a = new Rng(99);
      const b = new Rng(99);
      for (let i = 0; i < 5; i++) {
        const fromFile = sampleBatch(ds[split], 4, 16, a);
        const fromMemory = sampleBatch(mem[split], 4, 16, b);
        expect([...fromFile.inputs]).toEqual([...fromMemory.inputs]);
        expect([...fromFile.targets]).toEqual([...fromMemory.targets]);
      }
      expect(a.state).toBe(b.state);
    }
    ds.close?.();
  });
});
