// Tokenizers: GPT-2's byte-pair encoding (r50k_base: the exact GPT-2 ids) and a
// character-level vocabulary built from the data. Both serialize to JSON so a
// checkpoint decodes the way it was trained.
import { GptcError } from "../errors.js";
import { decode as bpeDecode, encode as bpeEncode } from "gpt-tokenizer/encoding/r50k_base";

/**
 * The text `decode` gives for the end-of-text id. `encode` never produces that id
 * from text: occurrences of this string are dropped (documents are joined by id).
 */
export const endOfText = "<|endoftext|>";

/** Turns text into token ids and back. */
export interface Tokenizer {
  /** "gpt2" (GPT-2's byte-pair encoding) or "char" (a character vocabulary). */
  kind: "gpt2" | "char";
  /** Number of ids, end-of-text included (50257 for GPT-2); ids are 0 to vocabSize - 1. */
  vocabSize: number;
  /** Id that separates documents (and stops generation). */
  eot: number;
  /** The ids of `text`, without end-of-text (the char tokenizer drops characters it lacks). */
  encode(text: string): number[];
  /** The text of `ids`, the end-of-text id as {@link endOfText}. */
  decode(ids: number[]): string;
  /** What rebuilds this tokenizer with `tokenizerFromJSON` (a run folder's tokenizer.json). */
  toJSON(): TokenizerJSON;
}

/** A tokenizer as stored in tokenizer.json and in checkpoints. */
export type TokenizerJSON =
  | {
      /** GPT-2's BPE: nothing else to store. */
      kind: "gpt2";
    }
  | {
      /** A character vocabulary. */
      kind: "char";
      /** The characters (code points) with ids 0, 1, ...; end-of-text is the next id. */
      chars: string[];
    };

/** Encodes each document and joins them with the end-of-text id. */
export function encodeDocuments(tok: Tokenizer, docs: Iterable<string>): number[] {
  const out: number[] = [];
  for (const doc of docs) {
    if (out.length) out.push(tok.eot);
    for (const id of tok.encode(doc)) out.push(id);
  }
  return out;
}

/** GPT-2's byte-pair encoding (r50k_base): GPT-2's exact ids, 50257 of them, end-of-text 50256. */
export function gpt2Tokenizer(): Tokenizer {
  return {
    kind: "gpt2",
    vocabSize: 50257,
    eot: 50256,
    // The special token is never produced from text: documents are joined by id. Removed
    // until none is left ("<|endo<|endoftext|>ftext|>" leaves one), else bpeEncode throws.
    encode: (text) => {
      while (text.includes(endOfText)) text = text.split(endOfText).join("");
      return bpeEncode(text);
    },
    decode: (ids) => ids.map((id) => (id === 50256 ? endOfText : bpeDecode([id]))).join(""),
    toJSON: () => ({ kind: "gpt2" }),
  };
}

/** A character vocabulary: every code point in the data, sorted, then end-of-text. */
export function charTokenizer(chars: string[]): Tokenizer {
  const index = new Map(chars.map((c, i) => [c, i]));
  const eot = chars.length;
  return {
    kind: "char",
    vocabSize: chars.length + 1,
    eot,
    encode: (text) => {
      const ids: number[] = [];
      for (const c of text) {
        const id = index.get(c);
        if (id !== undefined) ids.push(id); // characters unseen in training are dropped
      }
      return ids;
    },
    decode: (ids) => ids.map((id) => (id === eot ? endOfText : (chars[id] ?? ""))).join(""),
    toJSON: () => ({ kind: "char", chars }),
  };
}

/** A character tokenizer of every code point that occurs in `docs` (see {@link charTokenizer}). */
export function buildCharTokenizer(docs: Iterable<string>): Tokenizer {
  const set = new Set<string>();
  for (const d of docs) for (const c of d) set.add(c);
  return charTokenizer([...set].sort());
}

export class TokenizerError extends GptcError {
  constructor(message: string) {
    super("tokenizer", message);
  }
}

/**
 * The tokenizer a {@link TokenizerJSON} describes (e.g. a parsed tokenizer.json);
 * throws a TokenizerError for anything else.
 */
export function tokenizerFromJSON(j: unknown): Tokenizer {
  const v = j as TokenizerJSON;
  if (v?.kind === "gpt2") return gpt2Tokenizer();
  if (v?.kind === "char" && Array.isArray(v.chars) && v.chars.every((c) => typeof c === "string"))
    return charTokenizer(v.chars);
  throw new TokenizerError("the checkpoint's tokenizer.json is not a gptc tokenizer");
}
