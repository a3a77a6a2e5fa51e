// Training checkpoints. One file, checkpoint.safetensors, holds everything a
// resume needs (weights, AdamW moments, step, random state, config, tokenizer)
// and is written atomically (temp file, fsync, rename), so a crash or kill -9 at
// any moment leaves the previous checkpoint whole. Next to it, model.safetensors
// (the weights alone, keys as in the Hugging Face checkpoint), config.json and
// tokenizer.json are written the same way for other tools.
import { GptcError } from "../errors.js";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { AdamWState } from "./optimizer.js";
import {
  printableName,
  readSafetensors,
  SafetensorsError,
  writeSafetensorsAtomic,
} from "./safetensors.js";
import type { TokenizerJSON } from "./tokenizer.js";
import type { Weights } from "./weights.js";
import { writeFileAtomic } from "./atomic.js";

/** How to compile a model again: what a checkpoint records of it (see `compileRef`). */
export interface ModelRef {
  /** Absolute path of the spec file. */
  spec: string;
  /** The spec's text, when it was given as text rather than read from `spec`. */
  source?: string;
  /** Files it imports that were given as text, by path relative to `spec`. */
  files?: Record<string, string>;
  /** Parameter overrides (`--set`), values as text. */
  set: Record<string, string>;
  /** The named parameter set compiled with, if any. */
  preset?: string;
  /**
   * The config.json object compiled with, if any (`vocab_size` included when
   * a vocabulary size was given).
   */
  config?: Record<string, unknown>;
}

/** The training state a checkpoint holds besides its tensors (JSON in its metadata). */
export interface TrainState {
  /** The version of this layout; a checkpoint with another is refused. */
  format: "gptc-checkpoint-1";
  /** Optimizer steps taken. */
  step: number;
  /** State of the batch sampler's generator (the data position). */
  batchRng: number;
  /** Training tokens consumed so far (steps × batch × seq × accum). */
  tokensSeen: number;
  /** The model trained, to compile it again. */
  model: ModelRef;
  /** The tokenizer the data was encoded with. */
  tokenizer: TokenizerJSON;
  /** The training options, so --resume continues the same run. */
  options: Record<string, unknown>;
  /** The lowest validation loss measured so far; absent before the first validation. */
  bestValLoss?: number;
}

export class CheckpointError extends GptcError {
  constructor(message: string) {
    super("checkpoint", message);
  }
}

const M = "optimizer.m.";
const V = "optimizer.v.";

export function saveCheckpoint(
  dir: string,
  weights: Weights,
  shapes: Map<string, number[]>,
  adam: AdamWState,
  state: TrainState,
  hfConfig?: Record<string, unknown>,
): void {
  removeStaleTemps(dir);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, w] of weights) {
    const shape = shapes.get(k)!;
    tensors.set(k, { shape, data: w });
    tensors.set(M + k, { shape, data: adam.m.get(k)! });
    tensors.set(V + k, { shape, data: adam.v.get(k)! });
  }
  const meta = { gptc_state: JSON.stringify({ ...state, adamStep: adam.step }) };
  // The resume file first: if anything below fails, the run can still continue.
  writeSafetensorsAtomic(join(dir, "checkpoint.safetensors"), tensors, meta);
  writeSafetensorsAtomic(
    join(dir, "model.safetensors"),
    new Map([...weights].map(([k, w]) => [k, { shape: shapes.get(k)!, data: w }])),
    { format: "pt" },
  );
  writeFileAtomic(join(dir, "tokenizer.json"), JSON.stringify(state.tokenizer) + "\n");
  if (hfConfig) writeFileAtomic(join(dir, "config.json"), JSON.stringify(hfConfig, null, 2) + "\n");
}

/**
 * Temp files that a killed writer left behind (`.name.tmp-<pid>-<random>`, from
 * another process): invisible to loading, but they would pile up.
 */
function removeStaleTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^\..+\.tmp-(\d+)-[0-9a-z]+$/.exec(name);
    if (m && Number(m[1]) !== process.pid) rmSync(join(dir, name), { force: true });
  }
}

/** The state's shape, so a damaged or foreign file is refused with a message. */
function checkState(file: string, state: TrainState | undefined): asserts state is TrainState {
  if (state?.format !== "gptc-checkpoint-1")
    throw new CheckpointError(
      `${file} is not a gptc checkpoint (format ${JSON.stringify(state?.format)})`,
    );
  // typeof null is "object": an object field must be a real, non-array object.
  const isObject = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v);
  const ok =
    Number.isInteger(state.step) &&
    state.step >= 0 &&
    typeof state.batchRng === "number" &&
    isObject(state.model) &&
    typeof state.model.spec === "string" &&
    (state.model.source === undefined || typeof state.model.source === "string") &&
    (state.model.files === undefined ||
      (isObject(state.model.files) &&
        Object.values(state.model.files).every((v) => typeof v === "string"))) &&
    isObject(state.model.set) &&
    Object.values(state.model.set).every((v) => typeof v === "string") &&
    (state.model.config === undefined || isObject(state.model.config)) &&
    isObject(state.tokenizer) &&
    isObject(state.options);
  if (!ok)
    throw new CheckpointError(
      `${file} has a damaged gptc state (step, model, tokenizer or options missing)`,
    );
}

/** Everything a resume needs, as `loadCheckpoint` reads it. */
export interface LoadedCheckpoint {
  /** The model's weights by key. */
  weights: Weights;
  /** AdamW's moments and step count. */
  adam: AdamWState;
  /** Step, data position, model, tokenizer and options. */
  state: TrainState;
}

/** Whether `dir` holds a gptc checkpoint (a checkpoint.safetensors file); reads nothing. */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, "checkpoint.safetensors"));
}

/**
 * Reads `dir`/checkpoint.safetensors: weights, AdamW moments and training
 * state. A missing, damaged or foreign file is a CheckpointError.
 */
export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const file = join(dir, "checkpoint.safetensors");
  if (!existsSync(file))
    throw new CheckpointError(`${dir} holds no gptc checkpoint (no checkpoint.safetensors)`);
  let st;
  try {
    st = readSafetensors(file);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(e.message);
    throw e;
  }
  let state: TrainState & { adamStep?: number };
  try {
    state = JSON.parse(st.metadata.gptc_state ?? "");
  } catch {
    throw new CheckpointError(`${file} has no readable gptc state in its metadata`);
  }
  checkState(file, state);
  const weights: Weights = new Map();
  const m: Weights = new Map();
  const v: Weights = new Map();
  for (const [k, t] of st.tensors) {
    if (k.startsWith(M)) m.set(k.slice(M.length), t.data);
    else if (k.startsWith(V)) v.set(k.slice(V.length), t.data);
    else weights.set(k, t.data);
  }
  for (const k of weights.keys())
    if (!m.has(k) || !v.has(k))
      throw new CheckpointError(`${file} lacks the optimizer state of '${printableName(k)}'`);
  return { weights, adam: { step: state.adamStep ?? state.step, m, v }, state };
}

/** The training state only (for generation): spec, tokenizer, step. */
export function readCheckpointState(dir: string): TrainState {
  const file = join(dir, "checkpoint.safetensors");
  if (!existsSync(file))
    throw new CheckpointError(`${dir} holds no gptc checkpoint (no checkpoint.safetensors)`);
  // The header alone holds the state: read just it.
  // Plain Uint8Array reads (no Buffer methods): the browser build reads this too.
  const buf: Uint8Array = readFileSync(file);
  if (buf.length < 8) throw new CheckpointError(`${file} is truncated`);
  const n = Number(new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true));
  if (n > buf.length - 8) throw new CheckpointError(`${file} is truncated`);
  let state: TrainState;
  try {
    const header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
    state = JSON.parse(header.__metadata__.gptc_state) as TrainState;
  } catch {
    throw new CheckpointError(`${file} has no readable gptc state`);
  }
  // As loadCheckpoint: a state of another format (or none) is refused, not used.
  checkState(file, state);
  return state;
}
