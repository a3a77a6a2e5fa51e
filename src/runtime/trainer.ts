// The training loop: batches from the dataset, loss and gradients from the
// compiled training graph, gradient accumulation and clipping, AdamW with
// warmup + cosine decay, periodic validation, checkpoints, a JSON-lines log and
// an SVG loss curve. Seeded: the same options on the same backend give the
// same weights, and a resumed run continues exactly where it stopped.
import { rngKey, rngKeyInput } from "../ir/ops/random.js";
import { GptcError } from "../errors.js";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic.js";
import { saveCheckpoint, type ModelRef, type TrainState } from "./checkpoint.js";
import { sampleBatch, type Dataset } from "./data.js";
import { lossCurveSvg } from "./loss-curve.js";
import { adamwStep, clipGradients, type AdamWConfig, type AdamWState } from "./optimizer.js";
import { Rng } from "./rng.js";
import type { Session } from "./session.js";
import type { Weights } from "./weights.js";

/**
 * The training loop's options, every one given (`ModelSession.train` fills in
 * the defaults); a checkpoint keeps them for a resume.
 */
export interface TrainOptions {
  /** Optimizer steps to reach (a resumed run counts its earlier ones). */
  steps: number;
  /** Sequences per micro-batch (the symbolic dim B). */
  batch: number;
  /** Tokens per sequence (the symbolic dim T). */
  seq: number;
  /** Micro-batches per optimizer step. */
  accum: number;
  /** Peak learning rate, reached at the end of the warmup. */
  lr: number;
  /** Learning rate the cosine decay ends at (step index `steps`, nanoGPT's convention). */
  minLr: number;
  /** Steps of linear warmup from lr / warmup to lr. */
  warmup: number;
  /** AdamW's decoupled weight decay, applied to weights of rank 2 or more only. */
  weightDecay: number;
  /** AdamW's decay rate of the first moment (0.9 as the library fills it in). */
  beta1: number;
  /** AdamW's decay rate of the second moment (0.95 as the library fills it in). */
  beta2: number;
  /** Maximum global norm of the gradients (scaled down above it); 0 for no clipping. */
  clip: number;
  /** Validation every n steps (and at the last), 0 for never. */
  evalEvery: number;
  /** Batches per validation (fixed windows of the validation split). */
  evalBatches: number;
  /** Checkpoint every n steps when the run has a folder, 0 for only at the end. */
  saveEvery: number;
  /** Seed of the batch sampler. */
  seed: number;
  /** The text trained on (absolute path; undefined: the Brown corpus), so a resume reads it again. */
  data?: string;
}

export class TrainError extends GptcError {
  constructor(message: string) {
    super("train", message);
  }
}

/** Linear warmup to `lr`, then cosine decay reaching `minLr` at step index `steps` (nanoGPT's convention). */
export function learningRate(step: number, o: TrainOptions): number {
  if (step < o.warmup) return (o.lr * (step + 1)) / o.warmup;
  const span = Math.max(1, o.steps - o.warmup);
  const t = Math.min(1, (step - o.warmup) / span);
  return o.minLr + 0.5 * (o.lr - o.minLr) * (1 + Math.cos(Math.PI * t));
}

/** What one optimizer step did. */
export interface StepReport {
  /** The step just taken, counted from 1 (a resumed run goes on from its checkpoint's). */
  step: number;
  /** Mean training loss over the step's micro-batches. */
  loss: number;
  /** The learning rate the step used (warmup, then cosine decay). */
  lr: number;
  /** Global gradient norm before clipping; NaN when clipping is off. */
  gradNorm: number;
  /** Tokens of this step per second of its wall time. */
  tokensPerSec: number;
  /** Mean validation loss, on the steps where validation ran. */
  valLoss?: number;
}

export interface TrainerInit {
  session: Session;
  data: Dataset;
  weights: Weights;
  shapes: Map<string, number[]>;
  adam: AdamWState;
  options: TrainOptions;
  /** The run folder (log.jsonl, loss.svg, checkpoints); without one nothing is written. */
  out?: string;
  model: ModelRef;
  hfConfig?: Record<string, unknown>;
  /** Resume point; fresh runs start at step 0 with the seed's generator. */
  step?: number;
  batchRng?: number;
  tokensSeen?: number;
}

export class Trainer {
  step: number;
  tokensSeen: number;
  private readonly rng: Rng;
  private readonly history: { step: number; loss: number; valLoss?: number }[] = [];
  private bestValLoss: number | undefined;

  constructor(private readonly t: TrainerInit) {
    this.step = t.step ?? 0;
    this.tokensSeen = t.tokensSeen ?? 0;
    this.rng = new Rng(t.batchRng ?? t.options.seed);
    this.loadHistory();
  }

  private get o(): TrainOptions {
    return this.t.options;
  }

  private get logFile(): string | undefined {
    return this.t.out === undefined ? undefined : join(this.t.out, "log.jsonl");
  }

  /** The losses so far: step, training loss and (where measured) validation loss. */
  get losses(): readonly { step: number; loss: number; valLoss?: number }[] {
    return this.history;
  }

  /** On resume, the log keeps only steps the checkpoint has seen (a crash may have logged more). */
  private loadHistory(): void {
    if (!this.logFile || !existsSync(this.logFile)) return;
    const kept: string[] = [];
    for (const line of readFileSync(this.logFile, "utf8").split("\n")) {
      if (!line.trim()) continue;
      try {
        const r = JSON.parse(line) as { step: number; loss: number; val_loss?: number };
        if (this.step === 0 || r.step > this.step) continue;
        kept.push(line);
        this.history.push({ step: r.step, loss: r.loss, valLoss: r.val_loss });
        if (r.val_loss !== undefined)
          this.bestValLoss = Math.min(this.bestValLoss ?? Infinity, r.val_loss);
      } catch {
        // A line cut by a crash: drop it.
      }
    }
    // Atomically: a kill during this rewrite must not lose the history.
    writeFileAtomic(this.logFile, kept.map((l) => l + "\n").join(""));
  }

  /** One optimizer step (with `accum` micro-batches). */
  async trainStep(): Promise<StepReport> {
    const { batch, seq, accum } = this.o;
    const started = performance.now();
    let lossSum = 0;
    let grads: Weights | undefined;
    for (let a = 0; a < accum; a++) {
      const { inputs, targets } = sampleBatch(this.t.data.train, batch, seq, this.rng);
      // One micro-batch: its gradients are used where the executor left them;
      // with more, the first's are summed into and must outlive the next run.
      const r = await this.t.session.lossAndGrads(
        this.t.weights,
        // Dropout's key: the same (seed, step, micro-batch) gives the same masks,
        // so a resumed run continues the uninterrupted run's stream.
        { tokens: inputs, targets, [rngKeyInput]: rngKey(this.o.seed, this.step, a) },
        { B: batch, T: seq },
        { views: accum === 1 },
      );
      if (!Number.isFinite(r.loss))
        throw new TrainError(
          `the loss became ${r.loss} at step ${this.step + 1}; stopping without writing a checkpoint (the last one is intact). Try a lower --lr or --clip 1.`,
        );
      lossSum += r.loss;
      if (!grads) grads = r.grads;
      else
        for (const [k, g] of r.grads) {
          const acc = grads.get(k)!;
          for (let i = 0; i < g.length; i++) acc[i] += g[i];
        }
    }
    if (accum > 1)
      for (const g of grads!.values()) for (let i = 0; i < g.length; i++) g[i] /= accum;
    const gradNorm = this.o.clip > 0 ? clipGradients(grads!, this.o.clip) : NaN;
    const lr = learningRate(this.step, this.o);
    const cfg: AdamWConfig = {
      lr,
      beta1: this.o.beta1,
      beta2: this.o.beta2,
      eps: 1e-8,
      weightDecay: this.o.weightDecay,
    };
    adamwStep(this.t.weights, grads!, this.t.shapes, this.t.adam, cfg, lr);
    this.step += 1;
    this.tokensSeen += batch * seq * accum;
    const loss = lossSum / accum;
    const seconds = (performance.now() - started) / 1000;
    const report: StepReport = {
      step: this.step,
      loss,
      lr,
      gradNorm,
      tokensPerSec: (batch * seq * accum) / seconds,
    };
    if (this.o.evalEvery > 0 && (this.step % this.o.evalEvery === 0 || this.step === this.o.steps))
      report.valLoss = await this.validate();
    this.log(report);
    return report;
  }

  /** Mean loss on fixed validation windows (the same ones every time). */
  async validate(): Promise<number> {
    const rng = new Rng(0x5eed);
    let total = 0;
    for (let i = 0; i < this.o.evalBatches; i++) {
      const { inputs, targets } = sampleBatch(this.t.data.val, this.o.batch, this.o.seq, rng);
      total += await this.t.session.evaluate(
        this.t.weights,
        { tokens: inputs, targets },
        { B: this.o.batch, T: this.o.seq },
      );
    }
    const v = total / this.o.evalBatches;
    this.bestValLoss = Math.min(this.bestValLoss ?? Infinity, v);
    return v;
  }

  private log(r: StepReport): void {
    const rec: Record<string, number> = {
      step: r.step,
      loss: r.loss,
      lr: r.lr,
      tokens_per_s: Math.round(r.tokensPerSec),
    };
    if (Number.isFinite(r.gradNorm)) rec.grad_norm = r.gradNorm;
    if (r.valLoss !== undefined) rec.val_loss = r.valLoss;
    if (this.logFile) appendFileSync(this.logFile, JSON.stringify(rec) + "\n");
    this.history.push({ step: r.step, loss: r.loss, valLoss: r.valLoss });
  }

  writeCurve(): void {
    if (this.t.out) writeFileAtomic(join(this.t.out, "loss.svg"), lossCurveSvg(this.history));
  }

  state(): TrainState {
    return {
      format: "gptc-checkpoint-1",
      step: this.step,
      batchRng: this.rng.state,
      tokensSeen: this.tokensSeen,
      model: this.t.model,
      tokenizer: this.t.data.tokenizer.toJSON(),
      options: { ...this.o },
      bestValLoss: this.bestValLoss,
    };
  }

  /** Writes the checkpoint (and model.safetensors, loss.svg) into the run folder. */
  save(): void {
    if (!this.t.out)
      throw new TrainError("this training run has no folder to save a checkpoint in");
    saveCheckpoint(
      this.t.out,
      this.t.weights,
      this.t.shapes,
      this.t.adam,
      this.state(),
      this.t.hfConfig,
    );
    this.writeCurve();
  }
}
