// A training run as `gptc train` makes it: a spec (or a run folder to resume),
// text tokenized into a dataset, the model compiled for the tokenizer's
// vocabulary, weights (random, Hugging Face's, or the checkpoint's), and a run
// folder with checkpoints, log.jsonl and loss.svg.
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { UsageError } from "../errors.js";
import { hasCheckpoint, loadCheckpoint } from "../runtime/checkpoint.js";
import { loadDataset, type Dataset } from "../runtime/data.js";
import type { PrepareProgress } from "../runtime/prepare.js";
import { isPreparedDir } from "../runtime/token-files.js";
import { tokenizerFromJSON } from "../runtime/tokenizer.js";
import type { TrainOptions } from "../runtime/trainer.js";
import { WeightError } from "../runtime/weights.js";
import { readConfig } from "./config.js";
import { compile, type CompiledModel, type CompileOptions, type SpecFile } from "./compile.js";
import { compileRef } from "./load.js";
import type { OpenOptions } from "./session.js";
import { configValues } from "../ir/lower.js";
import {
  trainOptions as trainOptionsOf,
  type ModelSession,
  type SessionTrainOptions,
  type TrainSummary,
} from "./session.js";

/**
 * What `train` trains and how: the model, data and tokenizer, the backend, and
 * the loop's options (SessionTrainOptions: steps, batch, lr, `out`, ...).
 */
export interface TrainRunOptions extends Omit<SessionTrainOptions, "resume" | "dataPath"> {
  /** The model: its text, or `{ file }`. Not needed with `resume`. */
  spec?: string | SpecFile;
  /** Overrides, config and preset for `spec`, as `compile` takes them. */
  compile?: Omit<CompileOptions, "vocabSize">;
  /** Continue the run saved in this folder (its spec, data, options; `steps` may be raised). */
  resume?: string;
  /** Start from Hugging Face weights: model.safetensors, or a folder with it and config.json. */
  init?: string;
  /**
   * A folder made by `gptc prepare` (its token files are read by position),
   * or a UTF-8 text file or a folder of them, prepared into the cache first
   * (default: the Brown corpus).
   */
  data?: string;
  /** Worker threads that tokenize raw text (default: the machine's cores). */
  workers?: number;
  /** Progress of tokenizing raw text (bytes, tokens/s, ETA); nothing is called when the cache answers. */
  onDataProgress?: (p: PrepareProgress) => void;
  /** "gpt2" (GPT-2's BPE, exact ids; default) or "char" (the characters of the data). */
  tokenizer?: "gpt2" | "char";
  /** The backend to train on, as OpenOptions takes it (default "auto"). */
  backend?: OpenOptions["backend"];
  /** webasm: threads of the WebAssembly engine, as OpenOptions takes it. */
  threads?: number;
  /** Called once before the first step: what is about to train. */
  onStart?: (info: TrainStart) => void;
}

/** What `train` is about to do, given to `onStart` before the first step. */
export interface TrainStart {
  /** The model, compiled for the tokenizer's vocabulary. */
  model: CompiledModel;
  /** The session that trains it (the one `train` returns). */
  session: ModelSession;
  /** The training text, tokenized and split into training and validation ids. */
  data: Dataset;
  /** The loop's options with every default filled in. */
  options: TrainOptions;
  /** The step a resumed run continues from (0 for a fresh run). */
  step: number;
  /** The run folder, if any (the resumed one with `resume`). */
  out?: string;
  /** Choices made for the caller, said once (e.g. a sequence length fitted to the context). */
  notes: string[];
}

/** What `train` did, and the trained model. */
export interface TrainRun extends TrainSummary {
  /** The trained model, open: generate from it, then close it. */
  session: ModelSession;
  /** The run folder written to, if any (the resumed one with `resume`). */
  out?: string;
}

/**
 * GPT-2's tokenizer, unless the model's vocabulary is fixed in the spec (not
 * read from "vocab_size") and smaller than GPT-2's: then characters, said in a note.
 */
function defaultTokenizer(model: CompiledModel, notes: string[]): "gpt2" | "char" {
  const vocab = model.vocabSize;
  if (configValues(model.lowered).has("vocab_size") || vocab === undefined || vocab >= 50257)
    return "gpt2";
  notes.push(
    `--tokenizer char: ${model.name}'s vocabulary (${vocab}) is fixed in its spec and smaller than GPT-2's (50257)`,
  );
  return "char";
}

/**
 * Trains a model and returns it open. With `out`, the run folder gets
 * checkpoint.safetensors (everything a resume needs), model.safetensors,
 * config.json, tokenizer.json, log.jsonl and loss.svg.
 */
export async function train(o: TrainRunOptions): Promise<TrainRun> {
  const resumed = o.resume !== undefined ? loadCheckpoint(o.resume) : undefined;
  const notes: string[] = [];
  let model: CompiledModel;
  let data: Dataset;
  let options: SessionTrainOptions;
  let out = o.out;
  if (resumed) {
    const saved = resumed.state.options as unknown as TrainOptions;
    options = {
      ...saved,
      dataPath: saved.data,
      ...(o.steps !== undefined ? { steps: o.steps } : {}),
    };
    out = o.resume;
    data = await loadDataset({
      data: saved.data,
      tokenizer: tokenizerFromJSON(resumed.state.tokenizer),
      minTokens: saved.seq + 2,
      workers: o.workers,
      onProgress: o.onDataProgress,
    });
    model = compileRef(resumed.state.model, data.tokenizer.vocabSize);
  } else {
    if (o.spec === undefined) throw new UsageError("give a spec to train (or resume a run folder)");
    if (o.tokenizer !== undefined && o.tokenizer !== "gpt2" && o.tokenizer !== "char")
      throw new UsageError(`tokenizer ${o.tokenizer}: expected gpt2 or char`);
    if (out !== undefined && hasCheckpoint(out))
      throw new UsageError(
        `${out} already holds a checkpoint: use --resume ${out}, or another --out`,
      );
    const initConfig =
      o.init && existsSync(join(o.init, "config.json"))
        ? readConfig(join(o.init, "config.json"))
        : undefined;
    const compileOptions = { ...o.compile, config: o.compile?.config ?? initConfig };
    // The spec alone says how long a window may be; the data's minimum depends on it.
    const probe = compile(o.spec, compileOptions);
    const seq = trainOptionsOf({ seq: o.seq }, probe).seq;
    if (o.seq === undefined && seq < 64)
      notes.push(`--seq ${seq}: the model's context (the default is 64)`);
    // A prepared folder carries its own tokenizer; raw text gets the model's default.
    const prepared = o.data !== undefined && isPreparedDir(o.data);
    const tokenizer = o.tokenizer ?? (prepared ? undefined : defaultTokenizer(probe, notes));
    data = await loadDataset({
      data: o.data,
      tokenizer,
      minTokens: seq + 2,
      workers: o.workers,
      onProgress: o.onDataProgress,
    });
    // The tokenizer decides the vocabulary (through the parameter read from
    // "vocab_size"): compiled again only where that changes the model.
    const vocab = data.tokenizer.vocabSize;
    model =
      probe.vocabSize === vocab || !configValues(probe.lowered).has("vocab_size")
        ? probe
        : compile(o.spec, { ...compileOptions, vocabSize: vocab });
    const {
      spec: _s,
      compile: _c,
      resume: _r,
      init: _i,
      data: _d,
      tokenizer: _t,
      workers: _w,
      onDataProgress: _p,
      ...rest
    } = o;
    options = { ...rest, seq, dataPath: o.data === undefined ? undefined : resolve(o.data) };
  }
  try {
    const session = await model
      .open({
        backend: o.backend,
        threads: o.threads,
        tokenizer: data.tokenizer,
        weights: resumed?.weights ?? o.init,
        seed: options.seed,
      })
      .catch((e) => {
        // open() checks every weight's key and size; say which file they came from.
        if (resumed && e instanceof WeightError)
          throw new WeightError(
            `the checkpoint in ${o.resume} does not fit its spec:\n${e.message}`,
          );
        throw e;
      });
    try {
      if (out !== undefined) mkdirSync(out, { recursive: true });
      const full = { ...options, out, resume: resumed };
      o.onStart?.({
        model,
        session,
        data,
        options: trainOptionsOf(full, model),
        step: resumed?.state.step ?? 0,
        out,
        notes,
      });
      const summary = await session.train(data, { ...full, onStep: o.onStep, signal: o.signal });
      return { ...summary, session, out };
    } catch (e) {
      session.close();
      throw e;
    }
  } finally {
    // The token files read by position: closed once the run is over.
    data.close?.();
  }
}
