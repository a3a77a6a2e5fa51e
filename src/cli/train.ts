// `gptc train SPEC`: trains a model on text and writes checkpoints, a log and a
// loss curve; Ctrl-C saves a checkpoint and exits; --resume continues a run.
import { join } from "node:path";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import type { ModelSession } from "../api/session.js";
import { train, type TrainStart } from "../api/train.js";
import { UsageError } from "../errors.js";
import { StepProfile } from "../runtime/profile.js";
import { progressReporter } from "./prepare.js";
import {
  addBackendFlag,
  addModelFlags,
  backendOf,
  compileOptions,
  intAtLeast,
  numberAtLeast,
  positiveInt,
  type BackendFlags,
  type ModelFlags,
} from "./options.js";

interface TrainFlags extends ModelFlags, BackendFlags {
  data?: string;
  workers?: number;
  tokenizer?: string;
  steps?: number;
  batch: number;
  seq?: number;
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
}

const nonNegativeInt = (name: string) => intAtLeast(name, 0);

export function registerTrain(program: Command): void {
  const cmd = program
    .command("train")
    .argument("[spec]", "a .model file (not needed with --resume)");
  addBackendFlag(addModelFlags(cmd))
    .description("train a model on text; checkpoints, log.jsonl and loss.svg go to --out")
    .option(
      "--data <path>",
      "a folder from gptc prepare, or a UTF-8 text file or folder of them, prepared into the cache first (default: the Brown corpus)",
    )
    .option(
      "--workers <n>",
      "threads that tokenize raw text (default: the machine's cores)",
      positiveInt("--workers"),
    )
    .option(
      "--tokenizer <kind>",
      "gpt2 (GPT-2 BPE, exact ids; the default) or char (characters of the data; the default where the spec fixes a smaller vocabulary)",
    )
    .option("--steps <n>", "optimizer steps (default 200)", positiveInt("--steps"))
    .option("--batch <n>", "sequences per micro-batch", positiveInt("--batch"), 8)
    .option(
      "--seq <n>",
      "tokens per sequence (default min(64, the model's context))",
      positiveInt("--seq"),
    )
    .option(
      "--accum <n>",
      "micro-batches per step (gradient accumulation)",
      positiveInt("--accum"),
      1,
    )
    .option("--lr <x>", "peak learning rate", numberAtLeast("--lr", 0), 1e-3)
    .option(
      "--min-lr <x>",
      "final learning rate of the cosine decay (default lr/10)",
      numberAtLeast("--min-lr", 0),
    )
    .option("--warmup <n>", "linear warmup steps (default steps/20)", nonNegativeInt("--warmup"))
    .option(
      "--weight-decay <x>",
      "AdamW decay on 2-D weights",
      numberAtLeast("--weight-decay", 0),
      0.1,
    )
    .option("--clip <x>", "global gradient-norm clipping (0: off)", numberAtLeast("--clip", 0), 1)
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
      if (!flags.resume && !spec) throw new UsageError("give a spec to train (or --resume DIR)");
      const abort = new AbortController();
      let interrupted = false;
      const onSigint = () => {
        if (interrupted) process.exit(130); // a second Ctrl-C: leave at once (the last checkpoint is intact)
        interrupted = true;
        abort.abort();
        process.stderr.write(
          "\ngptc: interrupted; saving a checkpoint after this step (Ctrl-C again to quit now)\n",
        );
      };
      process.on("SIGINT", onSigint);
      const profile = flags.profile ? new StepProfile() : undefined;
      const progress = new Progress();
      const dataProgress = progressReporter();
      let session: ModelSession | undefined;
      try {
        const run = await train({
          spec: spec === undefined ? undefined : { file: spec },
          compile: compileOptions(flags),
          resume: flags.resume,
          init: flags.init,
          data: flags.data,
          workers: flags.workers,
          tokenizer: flags.tokenizer as "gpt2" | "char" | undefined,
          backend: backendOf(flags),
          threads: flags.threads,
          // With --resume the saved run's options hold; only --steps may raise its length.
          steps: flags.steps,
          batch: flags.batch,
          seq: flags.seq,
          accum: flags.accum,
          lr: flags.lr,
          minLr: flags.minLr,
          warmup: flags.warmup,
          weightDecay: flags.weightDecay,
          clip: flags.clip,
          evalEvery: flags.evalEvery,
          evalBatches: flags.evalBatches,
          saveEvery: flags.saveEvery,
          seed: flags.seed,
          out:
            flags.resume ??
            flags.out ??
            join("runs", spec!.replace(/^.*\//, "").replace(/\.model$/, "")),
          checkNumerics: flags.checkNumerics,
          signal: abort.signal,
          onDataProgress: dataProgress.onProgress,
          onStart: (s) => {
            dataProgress.stop();
            session = s.session;
            session.profiler = profile;
            progress.start(s);
          },
          onStep: (r) => progress.step(r),
        });
        progress.stop();
        session = run.session;
        if (profile)
          process.stderr.write(`\nprofile of ${run.stepsRun} steps:\n${profile.table()}\n\n`);
        process.stderr.write(
          `gptc: saved ${run.out}/checkpoint.safetensors at step ${run.steps} (log.jsonl, loss.svg, model.safetensors)\n`,
        );
        if (interrupted) {
          run.session.close();
          process.exit(130);
        }
        if (flags.samples > 0) await printSamples(run.session, flags.samples, flags.seed);
        run.session.close();
      } finally {
        dataProgress.stop();
        progress.stop();
        process.off("SIGINT", onSigint);
      }
    });
}

/** `count` samples from the start-of-text token (after training). */
async function printSamples(session: ModelSession, count: number, seed: number): Promise<void> {
  const rows = await session.generate(new Array(count).fill(""), {
    maxNewTokens: Math.min(200, session.model.context ?? 200),
    temperature: 0.8,
    topK: 40,
    seed,
  });
  rows.forEach((r, i) => process.stdout.write(`--- sample ${i + 1} ---\n${r.text}\n`));
}

/** The progress bar on a terminal; plain lines every 10 steps otherwise. */
class Progress {
  private bar?: cliProgress.SingleBar;
  private lastVal = "-";
  private first = 0;

  start(s: TrainStart): void {
    const o = s.options;
    const params = s.model.parameters.toLocaleString("en-US");
    process.stderr.write(`gptc: backend ${s.session.backendName}\n`);
    for (const note of s.notes) process.stderr.write(`gptc: ${note}\n`);
    process.stderr.write(
      `gptc: training ${s.model.name} (${params} parameters) on ${s.data.source}: ` +
        `${s.data.train.length.toLocaleString("en-US")} train / ${s.data.val.length.toLocaleString("en-US")} val tokens` +
        `${s.data.cached ? " (cached)" : ""}, ${s.data.tokenizer.kind} tokenizer (vocab ${s.data.tokenizer.vocabSize})\n`,
    );
    if (s.data.dir) process.stderr.write(`gptc: tokens in ${s.data.dir}\n`);
    if (s.step > 0) process.stderr.write(`gptc: resuming ${s.out} at step ${s.step}\n`);
    this.first = s.step + 1;
    if (process.stderr.isTTY) {
      this.bar = new cliProgress.SingleBar(
        {
          format:
            "step {value}/{total} |{bar}| loss {loss} | val {val} | {tps} tok/s | ETA {eta_formatted}",
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(o.steps, s.step, { loss: "-", val: "-", tps: "-" });
    }
  }

  step(r: {
    step: number;
    totalSteps: number;
    loss: number;
    valLoss?: number;
    averageTokensPerSec: number;
  }): void {
    if (r.valLoss !== undefined) this.lastVal = r.valLoss.toFixed(4);
    const tps = Math.round(r.averageTokensPerSec);
    if (this.bar) this.bar.update(r.step, { loss: r.loss.toFixed(4), val: this.lastVal, tps });
    else if (r.step % 10 === 0 || r.step === r.totalSteps || r.step === this.first)
      process.stderr.write(
        `step ${r.step}/${r.totalSteps} loss ${r.loss.toFixed(4)}${r.valLoss !== undefined ? ` val ${r.valLoss.toFixed(4)}` : ""} ${tps} tok/s\n`,
      );
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
