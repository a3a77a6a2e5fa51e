// `gptc train SPEC`: trains a model on text and writes checkpoints, a log and a
// loss curve; Ctrl-C saves a checkpoint and exits; --resume continues a run.
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { configValues, type Lowered } from "../ir/lower.js";
import { hasCheckpoint, loadCheckpoint, type ModelRef } from "../runtime/checkpoint.js";
import { loadDataset } from "../runtime/data.js";
import { inEngine, newAdamWState } from "../runtime/optimizer.js";
import { Session } from "../runtime/session.js";
import { StepProfile } from "../runtime/profile.js";
import { tokenizerFromJSON } from "../runtime/tokenizer.js";
import { Trainer, type TrainOptions } from "../runtime/trainer.js";
import { initWeights, loadWeightsFile, WeightError, weightSpecs } from "../runtime/weights.js";
import { addBackendFlag, openBackend } from "./backend-flag.js";
import { addModelFlags } from "./check.js";
import { positiveInt } from "./compile.js";
import { UsageError } from "./errors.js";
import { parseSets, readConfig, type ModelFlags } from "./load-model.js";
import { contextOf, lowerForGeneration, sampleAndPrint } from "./generate.js";
import { progressReporter } from "./prepare.js";

interface TrainFlags extends ModelFlags {
  data?: string;
  tokenizer: string;
  steps: number;
  batch: number;
  seq: number;
  accum: number;
  lr: number;
  minLr?: number;
  warmup?: number;
  weightDecay: number;
  clip: number;
  evalEvery: number;
  evalBatches: number;
  saveEvery: number;
  seed: number;
  out?: string;
  resume?: string;
  init?: string;
  samples: number;
  profile?: boolean;
  checkNumerics?: boolean;
  backend?: string;
  threads?: boolean;
}

const number =
  (name: string, min = -Infinity) =>
  (text: string) => {
    const v = Number(text);
    if (!Number.isFinite(v) || v < min)
      throw new UsageError(
        `${name} must be a number${min > -Infinity ? ` >= ${min}` : ""}, got '${text}'`,
      );
    return v;
  };
const nonNegativeInt = (name: string) => (text: string) => {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 0)
    throw new UsageError(`${name} must be a whole number >= 0, got '${text}'`);
  return v;
};

/** A Hugging Face config.json for the trained model, from the spec's config keys. */
function hfConfig(l: Lowered): Record<string, unknown> {
  // No prototype: a parameter read `from "__proto__"` is written as a key like any other.
  const out: Record<string, unknown> = Object.create(null);
  if (l.model.name === "gpt2")
    Object.assign(out, {
      model_type: "gpt2",
      architectures: ["GPT2LMHeadModel"],
      activation_function: "gelu_new",
    });
  for (const [key, value] of configValues(l)) out[key] = value;
  return out;
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command("train")
    .argument("[spec]", "a .model file (not needed with --resume)");
  addBackendFlag(addModelFlags(cmd))
    .description("train a model on text; checkpoints, log.jsonl and loss.svg go to --out")
    .option("--data <path>", "a UTF-8 text file or a folder of them (default: the Brown corpus)")
    .option(
      "--tokenizer <kind>",
      "gpt2 (GPT-2 BPE, exact ids) or char (characters of the data)",
      "gpt2",
    )
    .option("--steps <n>", "optimizer steps", positiveInt("--steps"), 200)
    .option("--batch <n>", "sequences per micro-batch", positiveInt("--batch"), 8)
    .option("--seq <n>", "tokens per sequence", positiveInt("--seq"), 64)
    .option(
      "--accum <n>",
      "micro-batches per step (gradient accumulation)",
      positiveInt("--accum"),
      1,
    )
    .option("--lr <x>", "peak learning rate", number("--lr", 0), 1e-3)
    .option(
      "--min-lr <x>",
      "final learning rate of the cosine decay (default lr/10)",
      number("--min-lr", 0),
    )
    .option("--warmup <n>", "linear warmup steps (default steps/20)", nonNegativeInt("--warmup"))
    .option("--weight-decay <x>", "AdamW decay on 2-D weights", number("--weight-decay", 0), 0.1)
    .option("--clip <x>", "global gradient-norm clipping (0: off)", number("--clip", 0), 1)
    .option(
      "--eval-every <n>",
      "validation every n steps (0: never)",
      nonNegativeInt("--eval-every"),
      50,
    )
    .option("--eval-batches <n>", "batches per validation", positiveInt("--eval-batches"), 4)
    .option(
      "--save-every <n>",
      "checkpoint every n steps (0: only at the end)",
      nonNegativeInt("--save-every"),
      100,
    )
    .option("--seed <n>", "seed for initialization and batches", nonNegativeInt("--seed"), 1337)
    .option("-o, --out <dir>", "output folder (default runs/<model>)")
    .option("--resume <dir>", "continue the run saved in this folder")
    .option(
      "--init <path>",
      "start from Hugging Face weights (model.safetensors, or a folder with it and config.json)",
    )
    .option(
      "--samples <n>",
      "samples to print at the end (0: none)",
      nonNegativeInt("--samples"),
      2,
    )
    .option("--profile", "print where the time went: per kernel family, per matmul shape, copies")
    .option(
      "--check-numerics",
      "stop at the first kernel that produces NaN or infinity, naming its ops",
    )
    .action(async (spec: string | undefined, flags: TrainFlags) => {
      let ref: ModelRef;
      let options: TrainOptions;
      let out: string;
      const resumed = flags.resume ? loadCheckpoint(flags.resume) : undefined;
      if (resumed) {
        ref = resumed.state.model;
        options = { ...(resumed.state.options as unknown as TrainOptions) };
        if (cmd.getOptionValueSource("steps") === "cli") options.steps = flags.steps;
        out = flags.resume!;
        if (!existsSync(ref.spec))
          throw new UsageError(`the checkpoint's spec ${ref.spec} no longer exists`);
      } else {
        if (!spec) throw new UsageError("give a spec to train (or --resume DIR)");
        if (flags.tokenizer !== "gpt2" && flags.tokenizer !== "char")
          throw new UsageError(`--tokenizer ${flags.tokenizer}: expected gpt2 or char`);
        const initConfig =
          flags.init && existsSync(join(flags.init, "config.json"))
            ? readConfig(join(flags.init, "config.json"))
            : undefined;
        ref = {
          spec: resolve(spec),
          set: parseSets(flags.set),
          preset: flags.preset,
          config: flags.config ? readConfig(flags.config) : initConfig,
        };
        options = {
          steps: flags.steps,
          batch: flags.batch,
          seq: flags.seq,
          accum: flags.accum,
          lr: flags.lr,
          minLr: flags.minLr ?? flags.lr / 10,
          warmup: flags.warmup ?? Math.floor(flags.steps / 20),
          weightDecay: flags.weightDecay,
          beta1: 0.9,
          beta2: 0.95,
          clip: flags.clip,
          evalEvery: flags.evalEvery,
          evalBatches: flags.evalBatches,
          saveEvery: flags.saveEvery,
          seed: flags.seed,
          data: flags.data === undefined ? undefined : resolve(flags.data),
        };
        out = flags.out ?? join("runs", spec.replace(/^.*\//, "").replace(/\.model$/, ""));
        if (hasCheckpoint(out))
          throw new UsageError(
            `${out} already holds a checkpoint: use --resume ${out}, or another --out`,
          );
      }
      mkdirSync(out, { recursive: true });

      const progress = progressReporter();
      const data = await loadDataset({
        data: resumed ? options.data : flags.data,
        // Unless given, a prepared folder's own tokenizer (gpt2 for raw text).
        tokenizer: resumed
          ? tokenizerFromJSON(resumed.state.tokenizer)
          : cmd.getOptionValueSource("tokenizer") === "cli"
            ? (flags.tokenizer as "gpt2" | "char")
            : undefined,
        minTokens: options.seq + 2,
        onProgress: progress.onProgress,
      }).finally(() => progress.stop());
      // The tokenizer decides the vocabulary (through the parameter read from "vocab_size").
      const { lowered, graphs } = lowerForGeneration(ref, data.tokenizer.vocabSize);
      const ctx = contextOf(lowered);
      if (ctx !== undefined && options.seq > ctx)
        throw new UsageError(
          `--seq ${options.seq} is longer than the model's context (${ctx}); use --seq ${ctx} or --set ctx=${options.seq}`,
        );
      const specs = weightSpecs(lowered.graph);
      const shapes = new Map(specs.map((s) => [s.key, s.shape]));
      let weights = resumed
        ? checkShapes(resumed.weights, specs)
        : flags.init
          ? loadWeightsFile(flags.init, specs)
          : initWeights(specs, options.seed);
      let adam = resumed?.adam ?? newAdamWState(weights);
      const backend = await openBackend(flags);
      // On webasm, weights and moments move into the engine's memory where they
      // fit: no copies in and out of it per step.
      const placed = inEngine(backend, weights, adam);
      if (placed) ({ weights, state: adam } = placed);
      const session = new Session(graphs, backend);
      const profile = flags.profile ? new StepProfile() : undefined;
      session.profiler = profile;
      session.checkNumerics = !!flags.checkNumerics;
      const trainer = new Trainer({
        session,
        data,
        weights,
        shapes,
        adam,
        options,
        out,
        model: ref,
        hfConfig: hfConfig(lowered),
        step: resumed?.state.step,
        batchRng: resumed?.state.batchRng,
        tokensSeen: resumed?.state.tokensSeen,
      });
      const params = specs.reduce((a, s) => a + s.shape.reduce((p, q) => p * q, 1), 0);
      process.stderr.write(
        `gptc: training ${lowered.graph.name} (${params.toLocaleString("en-US")} parameters) on ${data.source}: ` +
          `${data.train.length.toLocaleString("en-US")} train / ${data.val.length.toLocaleString("en-US")} val tokens` +
          `${data.cached ? " (cached)" : ""}, ${data.tokenizer.kind} tokenizer (vocab ${data.tokenizer.vocabSize})\n` +
          (data.dir ? `gptc: tokens in ${data.dir}\n` : ""),
      );
      if (resumed) process.stderr.write(`gptc: resuming ${out} at step ${trainer.step}\n`);

      let interrupted = false;
      const onSigint = () => {
        if (interrupted) process.exit(130); // a second Ctrl-C: leave at once (the last checkpoint is intact)
        interrupted = true;
        process.stderr.write(
          "\ngptc: interrupted; saving a checkpoint after this step (Ctrl-C again to quit now)\n",
        );
      };
      process.on("SIGINT", onSigint);
      const tty = process.stderr.isTTY;
      const bar = tty
        ? new cliProgress.SingleBar(
            {
              format:
                "step {value}/{total} |{bar}| loss {loss} | val {val} | {tps} tok/s | ETA {eta_formatted}",
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      bar?.start(options.steps, trainer.step, { loss: "-", val: "-", tps: "-" });
      let lastVal = "-";
      const startedAt = performance.now();
      const startStep = trainer.step;
      try {
        while (trainer.step < options.steps && !interrupted) {
          const r = await trainer.trainStep();
          // Let the event loop run: with synchronous kernels (cpu, webasm) a step only
          // awaits settled promises, and Ctrl-C (SIGINT) would never reach onSigint.
          await new Promise<void>((done) => setImmediate(done));
          if (r.valLoss !== undefined) lastVal = r.valLoss.toFixed(4);
          const tps = Math.round(
            ((trainer.step - startStep) * options.batch * options.seq * options.accum) /
              ((performance.now() - startedAt) / 1000),
          );
          if (bar) bar.update(trainer.step, { loss: r.loss.toFixed(4), val: lastVal, tps });
          else if (
            trainer.step % 10 === 0 ||
            trainer.step === options.steps ||
            trainer.step === startStep + 1
          )
            process.stderr.write(
              `step ${trainer.step}/${options.steps} loss ${r.loss.toFixed(4)}${r.valLoss !== undefined ? ` val ${r.valLoss.toFixed(4)}` : ""} ${tps} tok/s\n`,
            );
          if (options.saveEvery > 0 && trainer.step % options.saveEvery === 0) trainer.save();
        }
        trainer.save();
      } catch (e) {
        bar?.stop();
        throw e;
      } finally {
        process.off("SIGINT", onSigint);
      }
      bar?.stop();
      if (profile)
        process.stderr.write(
          `\nprofile of ${trainer.step - startStep} steps:\n${profile.table()}\n\n`,
        );
      process.stderr.write(
        `gptc: saved ${out}/checkpoint.safetensors at step ${trainer.step} (log.jsonl, loss.svg, model.safetensors)\n`,
      );
      if (interrupted) {
        session.destroy();
        process.exit(130);
      }
      if (flags.samples > 0)
        await sampleAndPrint(session, weights, data.tokenizer, lowered, {
          count: flags.samples,
          maxNewTokens: Math.min(200, ctx ?? 200),
          seed: options.seed,
        });
      session.destroy();
      placed?.release();
    });
}

function checkShapes(weights: Map<string, Float32Array>, specs: ReturnType<typeof weightSpecs>) {
  const problems = specs
    .filter((s) => weights.get(s.key)?.length !== s.shape.reduce((a, b) => a * b, 1))
    .map(
      (s) =>
        `  ${s.key}: expected [${s.shape.join(", ")}]${weights.has(s.key) ? "" : " (missing)"}`,
    );
  if (problems.length)
    throw new WeightError(`the checkpoint does not fit the spec:\n${problems.join("\n")}`);
  return weights;
}
