// Opening a model from what a user points at: a gptc run folder (checkpoint,
// its spec and tokenizer), a Hugging Face GPT-2 folder (config.json +
// model.safetensors), or a .model spec with optional weights.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { specsDir } from "../dsl/load.js";
import { UsageError } from "../errors.js";
import { hasCheckpoint, readCheckpointState, type ModelRef } from "../runtime/checkpoint.js";
import { gpt2Tokenizer, tokenizerFromJSON, type Tokenizer } from "../runtime/tokenizer.js";
import { WeightError } from "../runtime/weights.js";
import { readConfig } from "./config.js";
import { compile, type CompiledModel, type CompileOptions } from "./compile.js";
import { ModelSession, type OpenOptions, type WeightsSource } from "./session.js";

/** Compiles a checkpoint's model again from what it recorded (spec path or text, overrides). */
export function compileRef(ref: ModelRef, vocabSize?: number): CompiledModel {
  if (ref.source === undefined && !existsSync(ref.spec))
    throw new UsageError(`the checkpoint's spec ${ref.spec} no longer exists`);
  return compile(ref.source ?? { file: ref.spec }, {
    set: ref.set,
    preset: ref.preset,
    config: ref.config,
    vocabSize,
    path: ref.spec,
    files: ref.files,
  });
}

/** How `load` opens a path: OpenOptions (backend, threads, seed) plus these. */
export interface LoadOptions extends Omit<OpenOptions, "tokenizer" | "weights"> {
  /** Weights for a spec, or instead of a folder's model.safetensors. */
  weights?: WeightsSource;
  /**
   * For a spec: "gpt2" (default), the path of a tokenizer.json (as `gptc
   * train` writes into its run folder), or a Tokenizer. The spec's vocabulary
   * is set to the tokenizer's. A checkpoint folder keeps its own.
   */
  tokenizer?: string | Tokenizer;
  /** For a spec: overrides, config, preset, as `compile` takes them. */
  compile?: Omit<CompileOptions, "vocabSize">;
}

/** What `load` opened, and from where. */
export interface Loaded {
  /** The model, open with its weights and tokenizer: generate from it, then close it. */
  session: ModelSession;
  /** "checkpoint" (a gptc run folder), "huggingface" (config.json + model.safetensors) or "spec". */
  kind: "checkpoint" | "huggingface" | "spec";
  /** False when a spec was opened without weights (random initialization). */
  hasWeights: boolean;
}

/**
 * Opens a model for generation from a path: a gptc run folder (its spec,
 * tokenizer and model.safetensors), a Hugging Face GPT-2 folder, or a .model spec.
 */
export async function load(path: string, o: LoadOptions = {}): Promise<Loaded> {
  if (!existsSync(path)) throw new UsageError(`${path}: no such checkpoint folder or spec`);
  const isDir = statSync(path).isDirectory();
  let model: CompiledModel;
  let tokenizer: Tokenizer;
  let weights = o.weights;
  let kind: Loaded["kind"];
  if (isDir && hasCheckpoint(path)) {
    if (o.tokenizer !== undefined)
      throw new UsageError(
        `${path} is a checkpoint: it keeps the tokenizer it was trained with; drop --tokenizer`,
      );
    const state = readCheckpointState(path);
    tokenizer = tokenizerFromJSON(state.tokenizer);
    model = compileRef(state.model, tokenizer.vocabSize);
    weights ??= join(path, "model.safetensors");
    kind = "checkpoint";
  } else if (isDir) {
    if (!existsSync(join(path, "config.json")))
      throw new UsageError(`${path} has neither a gptc checkpoint nor a config.json`);
    const config = readConfig(join(path, "config.json"));
    if (config.model_type !== "gpt2")
      throw new UsageError(
        `${path}: model_type ${JSON.stringify(config.model_type)} is not supported (gpt2 is)`,
      );
    model = compile({ file: join(specsDir, "gpt2-small.model") }, { ...o.compile, config });
    tokenizer = gpt2Tokenizer();
    weights ??= join(path, "model.safetensors");
    kind = "huggingface";
  } else {
    tokenizer = resolveTokenizer(o.tokenizer);
    model = compile({ file: path }, { ...o.compile, vocabSize: tokenizer.vocabSize });
    kind = "spec";
  }
  try {
    const session = await model.open({ ...o, tokenizer, weights });
    return { session, kind, hasWeights: weights !== undefined };
  } catch (e) {
    if (e instanceof WeightError && kind === "spec" && o.tokenizer === undefined)
      throw new WeightError(
        `${e.message}\n(is this checkpoint from a different spec? The model was compiled for the gpt2 tokenizer's ${tokenizer.vocabSize} ids: weights trained with another tokenizer need --tokenizer RUN/tokenizer.json)`,
      );
    if (e instanceof WeightError && kind !== "huggingface")
      throw new WeightError(`${e.message}\n(is this checkpoint from a different spec?)`);
    throw e;
  }
}

/** A tokenizer named on the command line: "gpt2", or a tokenizer.json file. */
export function resolveTokenizer(t: string | Tokenizer | undefined): Tokenizer {
  if (t === undefined || t === "gpt2") return gpt2Tokenizer();
  if (typeof t === "object") return t;
  if (t === "char")
    throw new UsageError(
      "a char tokenizer is built from its training text: pass the tokenizer.json of a run folder (or the run folder itself)",
    );
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(t, "utf8"));
  } catch (e) {
    throw new UsageError(
      `--tokenizer ${t}: expected gpt2 or a tokenizer.json file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  return tokenizerFromJSON(json);
}
