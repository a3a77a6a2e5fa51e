// Token files: a prepared corpus is a folder with train.bin and val.bin (raw
// little-endian uint16 or uint32 ids, no header: what nanoGPT's prepare step
// writes) and meta.json, written last, which says how to read them. Training
// reads windows of them by position, so a corpus larger than memory trains
// with flat memory.
import {
  closeSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { endianness } from "node:os";
import { basename, dirname, join } from "node:path";
import { WriteError } from "./atomic.js";
import { DataError } from "./data-error.js";
import type { TokenizerJSON } from "./tokenizer.js";

export type TokenDtype = "uint16" | "uint32";

/** The narrowest type that holds every id of a vocabulary. */
export function dtypeFor(vocabSize: number): TokenDtype {
  return vocabSize <= 65536 ? "uint16" : "uint32";
}

export const bytesPerToken: Record<TokenDtype, number> = { uint16: 2, uint32: 4 };

// The files are little-endian; typed arrays use the host's order.
if (endianness() !== "LE") throw new Error("gptc's token files need a little-endian machine");

/** A run of tokens that can be read by position without holding it in memory. */
export interface TokenSource {
  readonly length: number;
  /** Copies tokens [start, start + out.length) into `out`. */
  read(start: number, out: Uint32Array): void;
}

/** Tokens already in memory (tests, small corpora). */
export function memoryTokens(tokens: Uint32Array): TokenSource {
  return {
    length: tokens.length,
    read: (start, out) => {
      checkRange(start, out.length, tokens.length);
      out.set(tokens.subarray(start, start + out.length));
    },
  };
}

function checkRange(start: number, n: number, length: number): void {
  if (!(Number.isInteger(start) && start >= 0 && start + n <= length))
    throw new RangeError(`tokens [${start}, ${start + n}) outside [0, ${length})`);
}

/** A token file opened for positional reads; `close()` releases its descriptor. */
export class FileTokens implements TokenSource {
  private fd: number | undefined;
  private scratch = Buffer.alloc(0);
  private readonly width: number;

  constructor(
    readonly path: string,
    readonly dtype: TokenDtype,
    readonly length: number,
  ) {
    this.width = bytesPerToken[dtype];
    this.fd = openSync(path, "r");
  }

  read(start: number, out: Uint32Array): void {
    checkRange(start, out.length, this.length);
    if (this.fd === undefined) throw new Error(`${this.path} is closed`);
    const bytes = out.length * this.width;
    // Not from Buffer's shared pool: byteOffset 0 keeps the typed-array views aligned.
    if (this.scratch.length < bytes) this.scratch = Buffer.alloc(Math.max(bytes, 4096));
    let got = 0;
    while (got < bytes) {
      const n = readSync(this.fd, this.scratch, got, bytes - got, start * this.width + got);
      if (n === 0) throw new DataError(`${this.path} ends before token ${start + out.length}`);
      got += n;
    }
    const ids =
      this.dtype === "uint16"
        ? new Uint16Array(this.scratch.buffer, 0, out.length)
        : new Uint32Array(this.scratch.buffer, 0, out.length);
    out.set(ids);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Appends tokens to a temp file next to `path`; `finish()` syncs it and renames
 * it into place, so an interrupted writer never leaves a file under the final name.
 */
export class TokenFileWriter {
  count = 0;
  private fd: number | undefined;
  private readonly tmp: string;
  private readonly width: number;

  constructor(
    readonly path: string,
    readonly dtype: TokenDtype,
  ) {
    this.width = bytesPerToken[dtype];
    this.tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
    this.fd = guardWrite(path, () => openSync(this.tmp, "w+", 0o644));
  }

  append(ids: Uint16Array | Uint32Array | number[]): void {
    const typed =
      this.dtype === "uint16"
        ? ids instanceof Uint16Array
          ? ids
          : Uint16Array.from(ids)
        : ids instanceof Uint32Array
          ? ids
          : Uint32Array.from(ids);
    const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    let off = 0;
    while (off < bytes.length)
      off += guardWrite(this.path, () =>
        writeSync(this.fd!, bytes, off, bytes.length - off, this.count * this.width + off),
      );
    this.count += typed.length;
  }

  /** Drops every token after the first `n`. */
  truncate(n: number): void {
    guardWrite(this.path, () => ftruncateSync(this.fd!, n * this.width));
    this.count = n;
  }

  /** Moves the last `n` tokens to the end of `to` (piece by piece: memory stays flat). */
  moveTail(n: number, to: TokenFileWriter): void {
    const piece = new Uint32Array(Math.min(n, 1 << 20));
    const start = this.count - n;
    const reader = new FileTokens(this.tmp, this.dtype, this.count);
    try {
      for (let done = 0; done < n; done += piece.length) {
        const part = piece.subarray(0, Math.min(piece.length, n - done));
        reader.read(start + done, part);
        to.append(this.dtype === "uint16" ? Uint16Array.from(part) : part);
      }
    } finally {
      reader.close();
    }
    this.truncate(start);
  }

  finish(): void {
    guardWrite(this.path, () => {
      fsyncSync(this.fd!);
      closeSync(this.fd!);
      this.fd = undefined;
      renameSync(this.tmp, this.path);
    });
  }

  /** Closes and deletes the temp file (after an error). */
  abort(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.tmp, { force: true });
  }
}

function guardWrite<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (!code) throw e;
    throw new WriteError(`cannot write ${path}: ${code}`);
  }
}

/** meta.json of a prepared folder. */
export interface TokenMeta {
  format: "gptc-tokens";
  version: 1;
  tokenizer: TokenizerJSON;
  vocabSize: number;
  eot: number;
  dtype: TokenDtype;
  byteOrder: "little";
  /** How validation tokens were chosen (see prepare.ts). */
  split: { valFraction: number; rule: string };
  tokens: { train: number; val: number };
  files: { read: number; skipped: number; skippedFiles: { path: string; reason: string }[] };
  /** Bytes of text tokenized. */
  bytes: number;
  /** sha256 of the sources (each file's size and bytes, in order): the cache key. */
  sourceHash: string;
  source: string;
}

export const formatVersion = 1;
export const metaFile = "meta.json";
export const trainFile = "train.bin";
export const valFile = "val.bin";

/** True when `path` is a folder written by prepare (it has meta.json). */
export function isPreparedDir(path: string): boolean {
  return existsSync(join(path, metaFile)) && statSync(path).isDirectory();
}

/** Reads and checks meta.json and the sizes of the token files it describes. */
export function readMeta(dir: string): TokenMeta {
  const file = join(dir, metaFile);
  let meta: TokenMeta;
  try {
    meta = JSON.parse(readFileSync(file, "utf8")) as TokenMeta;
  } catch (e) {
    throw new DataError(`${file} is not readable JSON: ${(e as Error).message}`);
  }
  if (meta?.format !== "gptc-tokens")
    throw new DataError(`${file} is not a gptc token folder's meta.json`);
  if (meta.version !== formatVersion)
    throw new DataError(
      `${dir} was prepared in format version ${meta.version}; this gptc reads version ${formatVersion}: prepare it again`,
    );
  if (!(meta.dtype in bytesPerToken) || !meta.tokens || !meta.tokenizer)
    throw new DataError(`${file} is damaged (dtype, tokens or tokenizer missing)`);
  for (const [name, count] of [
    [trainFile, meta.tokens.train],
    [valFile, meta.tokens.val],
  ] as const) {
    const path = join(dir, name);
    const expected = count * bytesPerToken[meta.dtype];
    const size = existsSync(path) ? statSync(path).size : -1;
    if (size !== expected)
      throw new DataError(
        `${path} ${size < 0 ? "is missing" : `has ${size} bytes, meta.json says ${expected}`}: the folder is incomplete or damaged; prepare it again`,
      );
  }
  return meta;
}

/** Opens train.bin and val.bin of a prepared folder for positional reads. */
export function openTokenFiles(
  dir: string,
  meta: TokenMeta,
): { train: FileTokens; val: FileTokens } {
  return {
    train: new FileTokens(join(dir, trainFile), meta.dtype, meta.tokens.train),
    val: new FileTokens(join(dir, valFile), meta.dtype, meta.tokens.val),
  };
}
