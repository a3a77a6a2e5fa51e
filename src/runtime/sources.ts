// The documents a corpus is made of (the files under --data, or the Brown
// corpus), read as bytes a block at a time: never a whole file in memory.
// A first pass (scanSources) hashes them and sorts out the ones that are not
// UTF-8 text, so tokenizing never decodes binary files as garbage.
import { createHash } from "node:crypto";
import { isUtf8 } from "node:buffer";
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { brownDocuments } from "./corpus.js";
import { DataError } from "./data-error.js";

/** One document: a file (read by position) or text already in memory. */
export interface SourceDoc {
  name: string;
  size: number;
  path?: string;
  /** Of a file: with the size and path, what the scan memo is keyed by. */
  mtimeMs?: number;
  bytes?: Uint8Array;
}

/** Every file under `path` (a file, or a folder walked in sorted order). */
export function listSources(path: string): SourceDoc[] {
  if (!existsSync(path)) throw new DataError(`--data ${path}: no such file or folder`);
  const docs: SourceDoc[] = [];
  const walk = (p: string) => {
    try {
      const st = statSync(p);
      if (st.isDirectory()) for (const f of readdirSync(p).sort()) walk(join(p, f));
      else if (st.isFile()) docs.push({ name: p, path: p, size: st.size, mtimeMs: st.mtimeMs });
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(`cannot read ${p}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  };
  walk(path);
  return docs;
}

/** The Brown corpus (about 6 MB of text) as in-memory documents. */
export function brownSources(): SourceDoc[] {
  return brownDocuments().map((text, i) => {
    const bytes = Buffer.from(text, "utf8");
    return { name: `brown/${i}`, size: bytes.length, bytes };
  });
}

/** Reads a document block by block into fresh arrays. */
export function* blocks(doc: SourceDoc, blockBytes: number): Generator<Uint8Array> {
  if (doc.bytes) {
    for (let at = 0; at < doc.bytes.length; at += blockBytes)
      yield doc.bytes.subarray(at, Math.min(at + blockBytes, doc.bytes.length));
    return;
  }
  let fd: number;
  try {
    fd = openSync(doc.path!, "r");
  } catch (e) {
    throw new DataError(`cannot read ${doc.name}: ${(e as NodeJS.ErrnoException).code}`);
  }
  try {
    for (let at = 0; ;) {
      const buf = new Uint8Array(blockBytes);
      let n = 0;
      while (n < blockBytes) {
        const got = readSync(fd, buf, n, blockBytes - n, at + n);
        if (got === 0) break;
        n += got;
      }
      if (n === 0) return;
      at += n;
      yield n === blockBytes ? buf : buf.subarray(0, n);
      if (n < blockBytes) return;
    }
  } finally {
    closeSync(fd);
  }
}

export interface Skipped {
  path: string;
  reason: "not UTF-8" | "binary (NUL bytes)" | "empty";
}

export interface ScanResult {
  /** sha256 of every document's size and bytes, in order. */
  hash: string;
  /** The documents that are UTF-8 text with something besides whitespace. */
  text: SourceDoc[];
  skipped: Skipped[];
  /** Bytes of the documents in `text`. */
  textBytes: number;
}

const scanBlock = 4 << 20;

/** One pass over the sources: their hash, and which ones are text. */
export function scanSources(
  docs: SourceDoc[],
  onBytes?: (done: number, total: number) => void,
): ScanResult {
  const hash = createHash("sha256");
  const total = docs.reduce((a, d) => a + d.size, 0);
  const text: SourceDoc[] = [];
  const skipped: Skipped[] = [];
  let done = 0;
  for (const doc of docs) {
    hash.update(`${doc.size}\n`);
    const check = new TextCheck();
    for (const block of blocks(doc, scanBlock)) {
      hash.update(block);
      check.add(block);
      done += block.length;
      onBytes?.(done, total);
    }
    const verdict = check.end();
    if (verdict === "text") text.push(doc);
    else skipped.push({ path: doc.name, reason: verdict });
  }
  return {
    hash: hash.digest("hex"),
    text,
    skipped,
    textBytes: text.reduce((a, d) => a + d.size, 0),
  };
}

/** Streaming test: valid UTF-8, no NUL byte, not only whitespace. */
class TextCheck {
  private carry: Uint8Array = new Uint8Array(0);
  private nul = false;
  private valid = true;
  private blank = true;

  add(block: Uint8Array): void {
    if (this.nul || !this.valid) return;
    if (block.includes(0)) {
      this.nul = true;
      return;
    }
    if (this.blank) this.blank = isBlank(block);
    // A character cut by the block boundary is checked with the next block.
    const joined = this.carry.length ? concat(this.carry, block) : block;
    const cut = completeUtf8(joined);
    if (!isUtf8(joined.subarray(0, cut))) this.valid = false;
    this.carry = copy(joined.subarray(cut));
  }

  end(): Skipped["reason"] | "text" {
    if (this.nul) return "binary (NUL bytes)";
    if (!this.valid || this.carry.length) return "not UTF-8";
    return this.blank ? "empty" : "text";
  }
}

const asciiSpace = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);

function isBlank(block: Uint8Array): boolean {
  for (let i = 0; i < block.length; i++) if (!asciiSpace(block[i])) return false;
  return true;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * A fresh array with its own memory: chunks are moved to worker threads, which
 * detaches their memory (a Buffer's slice() would be a view of the document).
 */
const copy = (b: Uint8Array) => new Uint8Array(b);

/** Length of the prefix of `b` that does not end inside a multi-byte UTF-8 character. */
export function completeUtf8(b: Uint8Array): number {
  let k = b.length - 1;
  while (k >= 0 && k > b.length - 4 && (b[k] & 0xc0) === 0x80) k--;
  if (k < 0) return b.length;
  const lead = b[k];
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return k + need > b.length ? k : b.length;
}

// Chunks for the tokenizer workers. A chunk ends where tokenizing the parts
// gives the ids of tokenizing the whole. GPT-2's pre-tokenizer (r50k_base:
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
// never joins a non-space character and the whitespace after it into one
// piece, and nothing before that point looks past it, so a cut between them
// is safe. After a newline is NOT safe in general: whole, "a\n\n\nb" has the
// pieces "\n\n" and "\n" (ids 628, 198); cut after its first "\n", the second
// part starts "\n", "\n" (198, 198). The character
// before the cut must not be ">" either: removing "<|endoftext|>" (which the
// gpt2 tokenizer does) would otherwise glue two whitespace runs. The test runs
// on bytes: the cut is at an ASCII whitespace byte, and the character before it
// is decoded only when it is not ASCII (a CJK character, or a Unicode space).
const asciiNonSpace = (b: number) => b >= 0x21 && b <= 0x7e && b !== 0x3e;

function safeAt(b: Uint8Array, p: number): boolean {
  if (p <= 0 || !asciiSpace(b[p])) return false;
  if (b[p - 1] < 0x80) return asciiNonSpace(b[p - 1]);
  let k = p - 1;
  while (k > 0 && k > p - 4 && (b[k] & 0xc0) === 0x80) k--;
  const before = Buffer.from(b.buffer, b.byteOffset + k, p - k).toString("utf8");
  return !/^\s$/u.test(before) && before !== "\ufffd";
}

/** The last safe cut in `b` (a newline in its second half preferred), or -1 when there is none. */
export function safeCut(b: Uint8Array): number {
  const half = b.length >> 1;
  for (let p = b.lastIndexOf(0x0a); p > half; p = b.lastIndexOf(0x0a, p - 1))
    if (safeAt(b, p)) return p;
  for (let p = b.length - 1; p > 0; p--) if (safeAt(b, p)) return p;
  return -1;
}

/**
 * A document in chunks of about `chunkBytes`, each ending at a safe cut.
 * Text with no safe cut in `maxChunkBytes` (say, a long run without spaces)
 * is cut at a character boundary: exact for the char tokenizer, and at worst
 * one different BPE merge at that seam for gpt2.
 */
export function* textChunks(
  doc: SourceDoc,
  chunkBytes: number,
  maxChunkBytes = 16 * chunkBytes,
): Generator<Uint8Array> {
  let carry: Uint8Array = new Uint8Array(0);
  for (const block of blocks(doc, chunkBytes)) {
    carry = carry.length ? concat(carry, block) : block;
    if (carry.length < chunkBytes) continue;
    let cut = safeCut(carry);
    if (cut <= 0 && carry.length >= maxChunkBytes) cut = completeUtf8(carry);
    if (cut <= 0) continue;
    yield copy(carry.subarray(0, cut));
    carry = copy(carry.subarray(cut));
  }
  if (carry.length) yield copy(carry);
}
