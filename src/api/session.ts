// A compiled model opened on a backend with weights: what a program uses to
// run a model. Generation (whole texts, or streamed token by token), a training
// loop over a dataset, and the weights as safetensors.
import { UsageError } from "../errors.js";
import { configValues } from "../ir/lower.js";
import { createBackend, type Backend, type BackendName } from "../runtime/backend.js";
import { generateCached, type GenerateOptions } from "../runtime/generate.js";
import { inEngine, newAdamWState, type AdamWState } from "../runtime/optimizer.js";
import type { Profiler } from "../runtime/executor.js";
import {
  narrowTensors,
  WEIGHTS_DTYPES,
  weightsDtypeOf,
  withWeightsDtype,
  type WeightsDtype,
} from "../runtime/quantize.js";
import { parseSafetensors, serializeSafetensors } from "../runtime/safetensors.js";
import { Session } from "../runtime/session.js";
import { gpt2Tokenizer, TokenizerError, type Tokenizer } from "../runtime/tokenizer.js";
import {
  initWeights,
  loadWeightsFile,
  weightsFromTensors,
  type Weights,
} from "../runtime/weights.js";
import type { CompiledModel } from "./compile.js";
import type { Dataset } from "../runtime/data.js";
import type { LoadedCheckpoint } from "../runtime/checkpoint.js";
import { Trainer, type StepReport, type TrainOptions } from "../runtime/trainer.js";

/** Where a session's weights come from. */
export type WeightsSource =
  /** Arrays by key (as `session.weights` holds them). */
  | Weights
  /** The bytes of a safetensors file (e.g. a Hugging Face model.safetensors). */
  | Uint8Array
  /** A .safetensors file, or a folder holding model.safetensors. */
  | string;

/** How `CompiledModel.open` opens a session; every field is optional. */
export interface OpenOptions {
  /** `webasm` (WebAssembly SIMD), `cpu` (plain JavaScript), `headlessgl`, `webgpu`, or `auto` (default). */
  backend?: BackendName | "auto";
  /** webasm: threads of the WebAssembly engine, 1 or 2 (default: the machine's cores, at most 2). */
  threads?: number;
  /** The weights; without them the spec's initializers run with `seed`. */
  weights?: WeightsSource;
  /** Seed of the random initialization (default 1337, as `gptc train`). */
  seed?: number;
  /** Turns text into ids and back (default GPT-2's BPE); must fit the model's vocabulary. */
  tokenizer?: Tokenizer;
  /**
   * For inference: the matmul weights as `int8` (one scale per output
   * channel) or `f16`, widened in registers by the webasm GEMM (other
   * backends compute with the same dequantized values), or `f32`. Default: as
   * the weights come (a file saved with int8 or f16 weights keeps them).
   * Training turns them back into float32 (from their dequantized values).
   */
  weightsDtype?: WeightsDtype;
}

/** How `generate` and `stream` sample; every field is optional. */
export interface SampleOptions {
  /** Tokens to generate (default 64). */
  maxNewTokens?: number;
  /** 0 is greedy; higher is more random (default 1). */
  temperature?: number;
  /** Sample among the k most likely tokens. */
  topK?: number;
  /** Sample from the smallest set with probability at least p, in (0, 1]. */
  topP?: number;
  /** Seed of the sampler (default 0). */
  seed?: number;
  /** Stop at the tokenizer's end-of-text token (default true). */
  stopAtEnd?: boolean;
  /**
   * Tokens kept when the context is full and the window slides (default half
   * the context; the whole context re-runs it for every token).
   */
  slideKeep?: number;
  /** Called with each token as it is chosen. */
  onToken?: (token: GeneratedToken) => void;
  /** Called once when generation goes past the model's context and the window starts to slide. */
  onSlide?: (kept: number) => void;
}

/** One generated token, and the text it adds (empty while a multi-byte character is incomplete). */
export interface GeneratedToken {
  /** The token's id. */
  id: number;
  /**
   * The text it completes: "" while a character is incomplete, for the
   * end-of-text token, and in a session without a tokenizer.
   */
  text: string;
  /** Which prompt it continues (0 for a single prompt). */
  prompt: number;
}

/** The continuation of one prompt. */
export interface Generation {
  /** The continuation's text (without the prompt). */
  text: string;
  /** The continuation's ids (the end-of-text id included when it stopped there). */
  tokens: number[];
}

/** Training options; each defaults as `gptc train`'s flag of the same name. */
export interface SessionTrainOptions {
  /** Optimizer steps (default 200). */
  steps?: number;
  /** Sequences per micro-batch (default 8). */
  batch?: number;
  /** Tokens per sequence (default min(64, the model's context)). */
  seq?: number;
  /** Micro-batches per step: gradient accumulation (default 1). */
  accum?: number;
  /** Peak learning rate (default 1e-3). */
  lr?: number;
  /** Final learning rate of the cosine decay (default lr / 10). */
  minLr?: number;
  /** Linear warmup steps (default steps / 20). */
  warmup?: number;
  /** AdamW decay on 2-D weights (default 0.1). */
  weightDecay?: number;
  /** Global gradient-norm clipping, 0 for none (default 1). */
  clip?: number;
  /** Validation every n steps, 0 for never (default 50). */
  evalEvery?: number;
  /** Batches per validation (default 4). */
  evalBatches?: number;
  /** Checkpoint every n steps when `out` is set, 0 for only at the end (default 100). */
  saveEvery?: number;
  /** Seed of the batch sampler (default 1337). */
  seed?: number;
  /** The run folder: log.jsonl, loss.svg, checkpoint.safetensors, model.safetensors. */
  out?: string;
  /** The absolute path of the training text, recorded in checkpoints so a resume reads it again. */
  dataPath?: string;
  /** Called after every step. */
  onStep?: (r: TrainStepReport) => void;
  /** Stops after the current step when aborted. */
  signal?: AbortSignal;
  /** Stop at the first kernel producing NaN or infinity, naming its ops. */
  checkNumerics?: boolean;
  /** @internal Continue a checkpoint's run (used by `train({ resume })`). */
  resume?: LoadedCheckpoint;
}

/**
 * What `onStep` hears after each optimizer step: `step` (the step just
 * taken, counting a resumed run's earlier ones), `loss` (the mean training loss
 * of its micro-batches), `lr` (the learning rate it used), `gradNorm` (the
 * global gradient norm before clipping; NaN when clipping is off),
 * `tokensPerSec` (this step's throughput) and, on validation steps, `valLoss`.
 */
export interface TrainStepReport extends StepReport {
  /** The step training stops at (`steps`). */
  totalSteps: number;
  /** Tokens per second since training started in this call. */
  averageTokensPerSec: number;
}

/** What a call of `train` did. */
export interface TrainSummary {
  /** The step reached (a resumed run counts its earlier steps). */
  steps: number;
  /** Steps run by this call. */
  stepsRun: number;
  /** Training loss of the last step run; absent when no step ran. */
  loss?: number;
  /** The last validation loss measured in this call; absent when none was. */
  valLoss?: number;
  /** Every step's losses, those of a resumed run's earlier steps included (from its log). */
  losses: readonly {
    /** The step. */
    step: number;
    /** Its training loss. */
    loss: number;
    /** Its validation loss, on validation steps. */
    valLoss?: number;
  }[];
  /** True when `signal` stopped it early. */
  stopped: boolean;
  /** Wall-clock seconds this call trained for. */
  seconds: number;
}

/** Options filled in as `gptc train` fills its flags; seq defaults to what the model holds. */
export function trainOptions(o: SessionTrainOptions, model: CompiledModel): TrainOptions {
  const steps = o.steps ?? 200;
  const lr = o.lr ?? 1e-3;
  const seq = o.seq ?? Math.min(64, model.context ?? 64);
  if (model.context !== undefined && seq > model.context)
    throw new UsageError(
      `--seq ${seq} is longer than the model's context (${model.context}); use --seq ${model.context} or --set ctx=${seq}`,
    );
  return {
    steps,
    batch: o.batch ?? 8,
    seq,
    accum: o.accum ?? 1,
    lr,
    minLr: o.minLr ?? lr / 10,
    warmup: o.warmup ?? Math.floor(steps / 20),
    weightDecay: o.weightDecay ?? 0.1,
    beta1: 0.9,
    beta2: 0.95,
    clip: o.clip ?? 1,
    evalEvery: o.evalEvery ?? 50,
    evalBatches: o.evalBatches ?? 4,
    saveEvery: o.saveEvery ?? 100,
    seed: o.seed ?? 1337,
    data: o.dataPath,
  };
}

/** A Hugging Face config.json for a trained model, from the spec's config keys. */
export function hfConfig(model: CompiledModel): Record<string, unknown> {
  // No prototype: a parameter read `from "__proto__"` is written as a key like any other.
  const out: Record<string, unknown> = Object.create(null);
  if (model.lowered.model.name === "gpt2")
    Object.assign(out, {
      model_type: "gpt2",
      architectures: ["GPT2LMHeadModel"],
      activation_function: "gelu_new",
    });
  for (const [key, value] of configValues(model.lowered)) out[key] = value;
  return out;
}

/** A tokenizer whose ids the model cannot take is a clear error naming both sizes. */
export function checkTokenizer(model: CompiledModel, tok: Tokenizer): void {
  const vocab = model.vocabSize;
  if (vocab === undefined || tok.vocabSize <= vocab) return;
  throw new TokenizerError(
    `the ${tok.kind} tokenizer has ${tok.vocabSize} ids but ${model.name}'s vocabulary is ${vocab}: ` +
      `give the model a vocabulary of ${tok.vocabSize} (e.g. --set vocab=${tok.vocabSize}), ` +
      "or use the tokenizer it was trained with (its run folder, or --tokenizer RUN/tokenizer.json; `gptc train --tokenizer char` for a small vocabulary)",
  );
}

/** The weights a session opens with: given ones checked against the model, or the seeded initialization. */
export function readWeights(
  model: CompiledModel,
  src: WeightsSource | undefined,
  seed: number,
): Weights {
  if (src === undefined) return initWeights(model.weights, seed);
  if (typeof src === "string") return loadWeightsFile(src, model.weights);
  if (src instanceof Uint8Array)
    return weightsFromTensors(
      parseSafetensors(src, "safetensors bytes").tensors,
      model.weights,
      "the safetensors bytes",
    );
  return weightsFromTensors(
    new Map([...src].map(([k, data]) => [k, { shape: shapeOf(model, k, data), data }])),
    model.weights,
    "this Map of weights",
  );
}

/** A Map's arrays carry no shape: each one's is the model's, where its size fits. */
function shapeOf(model: CompiledModel, key: string, data: Float32Array): number[] {
  const spec = model.weights.find((w) => w.key === key);
  return spec && spec.shape.reduce((a, b) => a * b, 1) === data.length ? spec.shape : [data.length];
}

/**
 * A model opened on a backend with its weights. Open one with
 * `model.open(options)` (or `load(path)` for a checkpoint folder); `close()`
 * frees what it holds on the backend.
 */
export class ModelSession {
  /** The runtime's session: executors per shape, compiled on first use. */
  readonly runtime: Session;
  /** Collects per-kernel timings when set (what `--profile` prints). */
  set profiler(p: Profiler | undefined) {
    this.runtime.profiler = p;
  }
  private placed?: { release: () => void };
  /** AdamW moments, once the session has trained (or given by a checkpoint). */
  adam?: AdamWState;

  private constructor(
    /** The model the session runs. */
    readonly model: CompiledModel,
    /** The backend its kernels run on. */
    readonly backend: Backend,
    /** The weights by key (views of the engine's memory while training on webasm). */
    public weights: Weights,
    /** Turns text into ids and back; absent when none was given and GPT-2's does not fit (ids only). */
    readonly tokenizer?: Tokenizer,
  ) {
    this.runtime = new Session(model.graphs, backend);
  }

  /** Opens `model` on a backend; see OpenOptions. */
  static async open(model: CompiledModel, o: OpenOptions = {}): Promise<ModelSession> {
    const gpt2Fits = (model.vocabSize ?? 50257) >= 50257;
    const tokenizer = o.tokenizer ?? (gpt2Fits ? gpt2Tokenizer() : undefined);
    if (tokenizer) checkTokenizer(model, tokenizer);
    if (o.weightsDtype !== undefined && !WEIGHTS_DTYPES.includes(o.weightsDtype))
      throw new UsageError(
        `weightsDtype ${JSON.stringify(o.weightsDtype)}: expected ${WEIGHTS_DTYPES.join(", ")}`,
      );
    let weights = readWeights(model, o.weights, o.seed ?? 1337);
    if (o.weightsDtype) weights = withWeightsDtype(model.lowered.graph, weights, o.weightsDtype);
    const backend = await createBackend(o.backend ?? "auto", { threads: o.threads });
    return new ModelSession(model, backend, weights, tokenizer);
  }

  /** How the matmul weights are kept: "f32", or "int8" / "f16" (see OpenOptions.weightsDtype). */
  get weightsDtype(): WeightsDtype {
    return weightsDtypeOf(this.weights);
  }

  /** Which backend runs the kernels, in words (e.g. "webasm (WebAssembly SIMD)"). */
  get backendName(): string {
    return this.backend.describe;
  }

  /**
   * Moves the weights and AdamW moments into the WebAssembly engine's memory
   * where they fit (webasm), so training copies nothing in or out per step.
   * Returns the moments to train with.
   */
  prepareTraining(adam?: AdamWState): AdamWState {
    // Training updates float32 weights: narrow ones train from their
    // dequantized values (and the GEMM no longer reads their narrow packs).
    if (this.weightsDtype !== "f32")
      this.weights = withWeightsDtype(this.model.lowered.graph, this.weights, "f32");
    let state = adam ?? this.adam ?? newAdamWState(this.weights);
    if (!this.placed) {
      const placed = inEngine(this.backend, this.weights, state);
      if (placed) {
        this.weights = placed.weights;
        state = placed.state;
        this.placed = placed;
      }
    }
    this.adam = state;
    return state;
  }

  private tok(): Tokenizer {
    if (!this.tokenizer)
      throw new UsageError(
        `${this.model.name}'s vocabulary does not fit GPT-2's tokenizer: open the session with a tokenizer to give text, or give token ids`,
      );
    return this.tokenizer;
  }

  private encodePrompt(p: string | number[]): number[] {
    const ids = typeof p === "string" ? (p === "" ? [this.tok().eot] : this.tok().encode(p)) : p;
    const vocab = this.model.vocabSize;
    const bad = vocab === undefined ? undefined : ids.find((id) => !(id >= 0 && id < vocab));
    if (bad !== undefined)
      throw new TokenizerError(
        `token id ${bad} is outside ${this.model.name}'s vocabulary of ${vocab}: the prompt was encoded with another tokenizer${this.tokenizer ? ` (the ${this.tokenizer.kind} tokenizer has ${this.tokenizer.vocabSize} ids)` : ""}`,
      );
    return ids;
  }

  private generateOptions(
    o: SampleOptions,
    onToken: (row: number, id: number) => void,
  ): GenerateOptions {
    if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1))
      throw new UsageError(`topP must be in (0, 1], got ${o.topP}`);
    return {
      maxNewTokens: o.maxNewTokens ?? 64,
      temperature: o.temperature ?? 1,
      topK: o.topK,
      topP: o.topP,
      seed: o.seed ?? 0,
      stopToken: o.stopAtEnd === false ? undefined : this.tokenizer?.eot,
      context: this.model.context,
      slideKeep: o.slideKeep,
      onSlide: o.onSlide,
      onToken,
    };
  }

  /**
   * Generates a continuation of each prompt (text, or token ids; "" starts
   * from the end-of-text token). Prompts are batched by length with a KV cache.
   */
  async generate(
    prompts: string | number[] | (string | number[])[],
    o: SampleOptions = {},
  ): Promise<Generation[]> {
    const list =
      typeof prompts === "string" || (Array.isArray(prompts) && typeof prompts[0] === "number")
        ? [prompts as string | number[]]
        : (prompts as (string | number[])[]);
    const ids = list.map((p) => this.encodePrompt(p));
    const tok = this.tokenizer;
    const texts = ids.map(() => (tok ? new TextStream(tok) : undefined));
    const rows = await generateCached(
      this.runtime,
      this.weights,
      ids,
      this.generateOptions(o, (row, id) => {
        const text = texts[row]?.push(id) ?? "";
        o.onToken?.({ id, text, prompt: row });
      }),
    );
    return rows.map((tokens, i) => ({ tokens, text: texts[i]?.text ?? "" }));
  }

  /**
   * Streams a continuation of one prompt token by token:
   * `for await (const t of session.stream("The jury")) process.stdout.write(t.text)`.
   */
  async *stream(prompt: string | number[], o: SampleOptions = {}): AsyncGenerator<GeneratedToken> {
    const queue: GeneratedToken[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: unknown;
    const run = this.generate([prompt], {
      ...o,
      onToken: (t) => {
        o.onToken?.(t);
        queue.push(t);
        wake?.();
      },
    })
      .then(
        () => void (finished = true),
        (e) => {
          failure = e;
          finished = true;
        },
      )
      .finally(() => wake?.());
    while (true) {
      if (queue.length) {
        yield queue.shift()!;
        continue;
      }
      if (finished) break;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    await run;
    if (failure) throw failure;
  }

  /**
   * Perplexity on `text` (or token ids): exp of the mean cross-entropy of
   * each token after the first given the ones before it, in windows of
   * `window` tokens (default the model's context, at most 256) that do not
   * overlap, so each window starts without history. What quantized weights
   * are measured by against float32 (`weightsDtype`).
   */
  async perplexity(text: string | number[], o: { window?: number } = {}): Promise<number> {
    if (!this.model.trainable)
      throw new UsageError(`${this.model.name} declares no loss, so it has no perplexity`);
    const ids = this.encodePrompt(text);
    const T = o.window ?? Math.min(this.model.context ?? 256, 256);
    if (!(Number.isInteger(T) && T >= 1) || (this.model.context && T > this.model.context))
      throw new UsageError(
        `window ${T}: expected 1 to the model's context (${this.model.context})`,
      );
    const windows = Math.floor((ids.length - 1) / T);
    if (windows < 1)
      throw new UsageError(`perplexity needs more than ${T} tokens, got ${ids.length}`);
    let total = 0;
    for (let w = 0; w < windows; w += 8) {
      const B = Math.min(8, windows - w);
      const tokens = new Float32Array(B * T);
      const targets = new Float32Array(B * T);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          tokens[b * T + t] = ids[(w + b) * T + t];
          targets[b * T + t] = ids[(w + b) * T + t + 1];
        }
      total += B * (await this.runtime.evaluate(this.weights, { tokens, targets }, { B, T }));
    }
    return Math.exp(total / windows);
  }

  /**
   * Trains the session's weights in place on `data` (a Dataset from
   * `loadDataset`, tokenized with this session's tokenizer). Options default
   * as `gptc train`'s; `out` keeps log.jsonl, loss.svg and checkpoints there.
   * `signal` stops after the current step (a checkpoint is written when `out` is set).
   */
  async train(data: Dataset, o: SessionTrainOptions = {}): Promise<TrainSummary> {
    if (!this.model.trainable)
      throw new UsageError(`${this.model.name} declares no loss, so it cannot be trained`);
    const t = this.tokenizer;
    if (t && (data.tokenizer.vocabSize !== t.vocabSize || data.tokenizer.kind !== t.kind))
      throw new TokenizerError(
        `the data was tokenized with the ${data.tokenizer.kind} tokenizer (${data.tokenizer.vocabSize} ids), the session uses the ${t.kind} tokenizer (${t.vocabSize} ids): open the session with the data's tokenizer`,
      );
    checkTokenizer(this.model, data.tokenizer);
    const options = trainOptions(o, this.model);
    const adam = this.prepareTraining(o.resume?.adam);
    const trainer = new Trainer({
      session: this.runtime,
      data,
      weights: this.weights,
      shapes: new Map(this.model.weights.map((w) => [w.key, w.shape])),
      adam,
      options,
      out: o.out,
      model: this.model.ref,
      hfConfig: hfConfig(this.model),
      step: o.resume?.state.step,
      batchRng: o.resume?.state.batchRng,
      tokensSeen: o.resume?.state.tokensSeen,
    });
    this.runtime.checkNumerics = !!o.checkNumerics;
    const start = trainer.step;
    const started = performance.now();
    let last: StepReport | undefined;
    let valLoss: number | undefined;
    while (trainer.step < options.steps && !o.signal?.aborted) {
      last = await trainer.trainStep();
      if (last.valLoss !== undefined) valLoss = last.valLoss;
      const seconds = (performance.now() - started) / 1000;
      const tokens = (trainer.step - start) * options.batch * options.seq * options.accum;
      o.onStep?.({ ...last, totalSteps: options.steps, averageTokensPerSec: tokens / seconds });
      if (o.out && options.saveEvery > 0 && trainer.step % options.saveEvery === 0) trainer.save();
      // Let the event loop run: with synchronous kernels (cpu, webasm) a step only
      // awaits settled promises, and an abort (Ctrl-C) would never be seen.
      await new Promise<void>((done) => setImmediate(done));
    }
    if (o.out) trainer.save();
    return {
      steps: trainer.step,
      stepsRun: trainer.step - start,
      loss: last?.loss,
      valLoss,
      losses: trainer.losses,
      stopped: trainer.step < options.steps,
      seconds: (performance.now() - started) / 1000,
    };
  }

  /**
   * The weights as the bytes of a model.safetensors file (Hugging Face keys
   * where the spec uses them). Quantized weights are stored narrow: int8 as
   * `<key>` (I8) with `<key>_scale` (F32, [1, out] or [out, 1]: one per
   * output channel, value = q * scale), float16 as F16.
   */
  safetensors(): Uint8Array {
    const dtype = this.weightsDtype;
    return serializeSafetensors(
      this.model.weights.flatMap((w) => narrowTensors(w.key, w.shape, this.weights.get(w.key)!)),
      dtype === "f32" ? { format: "pt" } : { format: "pt", weights_dtype: dtype },
    );
  }

  /** Frees the executors and the engine memory the session holds; the session is unusable after. */
  close(): void {
    this.runtime.destroy();
    this.placed?.release();
    this.placed = undefined;
  }
}

/**
 * Decodes ids as they come, handing out only whole characters: ids whose bytes
 * end inside a character wait for the next (decoding only those, not the
 * whole text again).
 */
class TextStream {
  private pending: number[] = [];
  text = "";
  constructor(private readonly tok: Tokenizer) {}

  /** Adds an id; returns the text it completes ("" while a character is incomplete). */
  push(id: number): string {
    if (id === this.tok.eot) return "";
    this.pending.push(id);
    const added = this.tok.decode(this.pending);
    if (added.endsWith("\ufffd")) return "";
    this.pending = [];
    this.text += added;
    return added;
  }
}
