// `gptc generate CHECKPOINT_DIR|SPEC --prompt TEXT`: samples text from a
// trained checkpoint, a Hugging Face GPT-2 folder, or a spec with --weights.
import type { Command } from "commander";
import { load } from "../api/load.js";
import { UsageError } from "../errors.js";
import { StepProfile } from "../runtime/profile.js";
import { WEIGHTS_DTYPES, type WeightsDtype } from "../runtime/quantize.js";
import {
  addBackendFlag,
  addModelFlags,
  backendOf,
  collect,
  compileOptions,
  intAtLeast,
  numberAtLeast,
  type BackendFlags,
  type ModelFlags,
} from "./options.js";

interface GenerateFlags extends ModelFlags, BackendFlags {
  prompt: string[];
  weights?: string;
  tokenizer?: string;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  profile?: boolean;
  weightsDtype?: WeightsDtype;
}

function weightsDtype(v: string): WeightsDtype {
  if (!(WEIGHTS_DTYPES as readonly string[]).includes(v))
    throw new UsageError(`--weights-dtype ${v}: expected ${WEIGHTS_DTYPES.join(", ")}`);
  return v as WeightsDtype;
}

function unitInterval(v: string): number {
  const x = Number(v);
  if (!(x > 0 && x <= 1)) throw new UsageError(`--top-p must be in (0, 1], got '${v}'`);
  return x;
}

export function registerGenerate(program: Command): void {
  const cmd = program
    .command("generate")
    .argument(
      "<model>",
      "a checkpoint folder from gptc train, a Hugging Face GPT-2 folder, or a .model spec",
    );
  addBackendFlag(addModelFlags(cmd))
    .description("generate text from a model, streamed as tokens arrive")
    .option("--prompt <text>", "prompt (repeatable: several prompts)", collect, [] as string[])
    .option("--weights <file>", "weights for a spec (model.safetensors)")
    .option(
      "--tokenizer <name>",
      "for a spec: gpt2 (default) or a tokenizer.json from a run folder; a checkpoint keeps its own",
    )
    .option(
      "--max-new-tokens <n>",
      "tokens to generate per prompt",
      intAtLeast("--max-new-tokens", 1),
      64,
    )
    .option(
      "--temperature <x>",
      "0 for greedy; higher is more random",
      numberAtLeast("--temperature", 0),
      1,
    )
    .option("--top-k <k>", "sample among the k most likely tokens", intAtLeast("--top-k", 1))
    .option(
      "--top-p <p>",
      "sample from the smallest set with probability >= p, in (0, 1]",
      unitInterval,
    )
    .option("--seed <n>", "sampling seed", intAtLeast("--seed", 0), 0)
    .option(
      "--weights-dtype <type>",
      "matmul weights as int8 (per-channel scales) or f16 for faster generation, or f32 (default: as stored)",
      weightsDtype,
    )
    .option("--profile", "print where the time went: per kernel family, per matmul shape, copies")
    .action(async (path: string, flags: GenerateFlags) => {
      const { session, hasWeights } = await load(path, {
        backend: backendOf(flags),
        threads: flags.threads,
        weights: flags.weights,
        tokenizer: flags.tokenizer,
        compile: compileOptions(flags),
        seed: flags.seed,
        weightsDtype: flags.weightsDtype,
      });
      process.stderr.write(
        `gptc: backend ${session.backendName}${session.weightsDtype === "f32" ? "" : `, ${session.weightsDtype} weights`}\n`,
      );
      if (!hasWeights)
        process.stderr.write(
          "gptc: no --weights given: sampling from randomly initialized weights\n",
        );
      const profile = flags.profile ? new StepProfile() : undefined;
      session.profiler = profile;
      const prompts = flags.prompt.length ? flags.prompt : [""];
      const started = performance.now();
      let generated = 0;
      let slid = false;
      try {
        for (let i = 0; i < prompts.length; i++) {
          if (prompts.length > 1) process.stdout.write(`--- prompt ${i + 1} ---\n`);
          process.stdout.write(prompts[i]);
          await session.generate(prompts[i], {
            maxNewTokens: flags.maxNewTokens,
            temperature: flags.temperature,
            topK: flags.topK,
            topP: flags.topP,
            seed: flags.seed + i,
            onToken: (t) => {
              generated++;
              process.stdout.write(t.text);
            },
            onSlide: (kept) => {
              if (slid) return;
              slid = true;
              process.stderr.write(
                `\ngptc: past the model's context (${session.model.context} tokens): the window slides, keeping the last ${kept} tokens\n`,
              );
            },
          });
          process.stdout.write("\n");
        }
        const seconds = (performance.now() - started) / 1000;
        process.stderr.write(
          `gptc: ${generated} tokens in ${seconds.toFixed(2)} s (${(generated / seconds).toFixed(1)} tokens/s, prompt included)\n`,
        );
        if (profile) process.stderr.write(`profile:\n${profile.table()}\n`);
      } finally {
        session.close();
      }
    });
}
