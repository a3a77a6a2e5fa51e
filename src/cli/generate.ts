// `gptc generate CHECKPOINT_DIR|SPEC --prompt TEXT`: samples text from a
// trained checkpoint, a Hugging Face GPT-2 folder, or a spec with --weights.
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { DiagnosticError } from "../dsl/diagnostics.js";
import { frontend } from "../dsl/frontend.js";
import { specsDir } from "../dsl/load.js";
import { configValues, lowerProgram, type Lowered } from "../ir/lower.js";
import { compileGraphs, type CompiledGraphs } from "../ir/pipeline.js";
import { hasCheckpoint, readCheckpointState, type ModelRef } from "../runtime/checkpoint.js";
import { checkPromptLengths, generateCached, type GenerateOptions } from "../runtime/generate.js";
import { Session } from "../runtime/session.js";
import { StepProfile } from "../runtime/profile.js";
import { gpt2Tokenizer, tokenizerFromJSON, type Tokenizer } from "../runtime/tokenizer.js";
import {
  initWeights,
  loadWeightsFile,
  WeightError,
  weightSpecs,
  type Weights,
} from "../runtime/weights.js";
import { addBackendFlag, openBackend } from "./backend-flag.js";
import { addModelFlags } from "./check.js";
import { reportAndExit, UsageError } from "./errors.js";
import { parseSets, readConfig, type ModelFlags } from "./load-model.js";

interface GenerateFlags extends ModelFlags {
  prompt: string[];
  weights?: string;
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  seed: number;
  profile?: boolean;
  backend?: string;
  threads?: boolean;
}

/** Lowers the model twice: as written, and for decoding with a KV cache. */
export function lowerForGeneration(
  ref: ModelRef,
  vocab?: number,
): { lowered: Lowered; graphs: CompiledGraphs } {
  const fe = frontend(ref.spec);
  if (!fe.program) reportAndExit(new DiagnosticError(fe.diagnostics.items), fe.sources);
  try {
    const opts = {
      set: ref.set,
      preset: ref.preset,
      config: vocab === undefined ? ref.config : { ...(ref.config ?? {}), vocab_size: vocab },
    };
    const lowered = lowerProgram(fe.program, opts);
    return {
      lowered,
      graphs: compileGraphs(lowered, lowerProgram(fe.program, { ...opts, decode: true })),
    };
  } catch (e) {
    reportAndExit(e, fe.sources);
  }
}

/** The context length: the parameter read from "n_positions", if the spec has one. */
export function contextOf(l: Lowered): number | undefined {
  const v = configValues(l).get("n_positions");
  return typeof v === "number" ? v : undefined;
}

/** Prints `count` samples from the start-of-text token (used after training). */
export async function sampleAndPrint(
  session: Session,
  weights: Weights,
  tok: Tokenizer,
  l: Lowered,
  o: { count: number; maxNewTokens: number; seed: number },
): Promise<void> {
  const prompts = Array.from({ length: o.count }, () => [tok.eot]);
  const rows = await generateCached(session, weights, prompts, {
    maxNewTokens: o.maxNewTokens,
    temperature: 0.8,
    topK: 40,
    seed: o.seed,
    stopToken: tok.eot,
    context: contextOf(l),
  });
  rows.forEach((r, i) => process.stdout.write(`--- sample ${i + 1} ---\n${tok.decode(r)}\n`));
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
    .option(
      "--prompt <text>",
      "prompt (repeatable: several prompts)",
      (v: string, p: string[] = []) => [...p, v],
      [] as string[],
    )
    .option("--weights <file>", "weights for a spec (model.safetensors)")
    .option(
      "--max-new-tokens <n>",
      "tokens to generate per prompt",
      (v) => intAtLeast("--max-new-tokens", v, 1),
      64,
    )
    .option(
      "--temperature <x>",
      "0 for greedy; higher is more random",
      (v) => {
        const x = Number(v);
        if (!Number.isFinite(x) || x < 0)
          throw new UsageError(`--temperature must be a number >= 0, got '${v}'`);
        return x;
      },
      1,
    )
    .option("--top-k <k>", "sample among the k most likely tokens", (v) =>
      intAtLeast("--top-k", v, 1),
    )
    .option("--top-p <p>", "sample from the smallest set with probability >= p, in (0, 1]", (v) => {
      const x = Number(v);
      if (!(x > 0 && x <= 1)) throw new UsageError(`--top-p must be in (0, 1], got '${v}'`);
      return x;
    })
    .option("--seed <n>", "sampling seed", (v) => intAtLeast("--seed", v, 0), 0)
    .option("--profile", "print where the time went: per kernel family, per matmul shape, copies")
    .action(async (model: string, flags: GenerateFlags) => {
      if (!existsSync(model)) throw new UsageError(`${model}: no such checkpoint folder or spec`);
      let ref: ModelRef;
      let tok: Tokenizer;
      let weightsPath: string | undefined;
      const isDir = statSync(model).isDirectory();
      if (isDir && hasCheckpoint(model)) {
        const state = readCheckpointState(model);
        ref = state.model;
        tok = tokenizerFromJSON(state.tokenizer);
        weightsPath = flags.weights ?? join(model, "model.safetensors");
      } else if (isDir) {
        if (!existsSync(join(model, "config.json")))
          throw new UsageError(`${model} has neither a gptc checkpoint nor a config.json`);
        const config = readConfig(join(model, "config.json"));
        if (config.model_type !== "gpt2")
          throw new UsageError(
            `${model}: model_type ${JSON.stringify(config.model_type)} is not supported (gpt2 is)`,
          );
        ref = { spec: join(specsDir, "gpt2-small.model"), set: parseSets(flags.set), config };
        tok = gpt2Tokenizer();
        weightsPath = flags.weights ?? join(model, "model.safetensors");
      } else {
        ref = {
          spec: resolve(model),
          set: parseSets(flags.set),
          preset: flags.preset,
          config: flags.config ? readConfig(flags.config) : undefined,
        };
        tok = gpt2Tokenizer();
        weightsPath = flags.weights;
      }
      const { lowered: l, graphs } = lowerForGeneration(
        ref,
        tok.kind === "char" ? tok.vocabSize : undefined,
      );
      const specs = weightSpecs(l.graph);
      let weights: Weights;
      try {
        weights = weightsPath
          ? loadWeightsFile(weightsPath, specs)
          : initWeights(specs, flags.seed);
      } catch (e) {
        if (e instanceof WeightError)
          throw new UsageError(`${e.message}\n(is this checkpoint from a different spec?)`);
        throw e;
      }
      if (!weightsPath)
        process.stderr.write(
          "gptc: no --weights given: sampling from randomly initialized weights\n",
        );
      const prompts = (flags.prompt.length ? flags.prompt : [""]).map((p) =>
        p === "" ? [tok.eot] : tok.encode(p),
      );
      const backend = await openBackend(flags);
      const session = new Session(graphs, backend);
      const profile = flags.profile ? new StepProfile() : undefined;
      session.profiler = profile;
      const started = performance.now();
      let generated = 0;
      const o: GenerateOptions = {
        maxNewTokens: flags.maxNewTokens,
        temperature: flags.temperature,
        topK: flags.topK,
        topP: flags.topP,
        seed: flags.seed,
        stopToken: tok.eot,
        context: contextOf(l),
      };
      try {
        checkPromptLengths(prompts, o);
        for (let i = 0; i < prompts.length; i++) {
          if (prompts.length > 1) process.stdout.write(`--- prompt ${i + 1} ---\n`);
          const prompt = prompts[i];
          process.stdout.write(
            prompt.length === 1 && prompt[0] === tok.eot ? "" : tok.decode(prompt),
          );
          const seen: number[] = [];
          let shown = "";
          await generateCached(session, weights, [prompt], {
            ...o,
            seed: o.seed + i,
            onToken: (_row, id) => {
              generated++;
              if (id === tok.eot) return;
              seen.push(id);
              // Decode the whole continuation so multi-byte characters come out whole.
              const text = tok.decode(seen);
              if (!text.endsWith("\ufffd")) {
                process.stdout.write(text.slice(shown.length));
                shown = text;
              }
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
        session.destroy();
      }
    });
}

function intAtLeast(name: string, v: string, min: number): number {
  const x = Number(v);
  if (!Number.isInteger(x) || x < min)
    throw new UsageError(`${name} must be a whole number >= ${min}, got '${v}'`);
  return x;
}
