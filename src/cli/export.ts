// `gptc export SPEC|RUN --format pytorch|onnx -o DIR`: the model as files for
// other engines (see api/export.ts). A run folder exports the model it
// trained (and, for ONNX, its weights).
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { compile, type CompiledModel } from "../api/compile.js";
import { exportFormats, exportModel, type ExportFormat } from "../api/export.js";
import { compileRef } from "../api/load.js";
import { hasCheckpoint, readCheckpointState } from "../runtime/checkpoint.js";
import { readMeta } from "../runtime/token-files.js";
import { tokenizerFromJSON } from "../runtime/tokenizer.js";
import { UsageError } from "../errors.js";
import { addModelFlags, compileOptions, intAtLeast, type ModelFlags } from "./options.js";

interface ExportFlags extends ModelFlags {
  format: string;
  out: string;
  weights?: string;
  seed?: number;
  data?: string;
}

function modelOf(path: string, flags: ExportFlags): { model: CompiledModel; weights?: string } {
  if (!existsSync(path)) throw new UsageError(`${path}: no such spec or run folder`);
  if (statSync(path).isDirectory()) {
    if (!hasCheckpoint(path))
      throw new UsageError(
        `${path} is a folder without a gptc checkpoint: give a .model spec or a run folder`,
      );
    if (flags.set || flags.config || flags.preset || flags.data)
      throw new UsageError(
        `${path} is a run folder: it keeps its own model; drop --set/--config/--preset/--data`,
      );
    const state = readCheckpointState(path);
    const model = compileRef(state.model, tokenizerFromJSON(state.tokenizer).vocabSize);
    return { model, weights: flags.weights ?? join(path, "model.safetensors") };
  }
  const vocabSize = flags.data === undefined ? undefined : readMeta(flags.data).vocabSize;
  return {
    model: compile({ file: path }, { ...compileOptions(flags), vocabSize }),
    weights: flags.weights,
  };
}

export function registerExport(program: Command): void {
  addModelFlags(
    program.command("export").argument("<model>", "a .model spec, or a run folder from gptc train"),
  )
    .description("export a model to PyTorch (module + torchrun training script) or ONNX")
    .requiredOption("--format <name>", exportFormats.join(" or "))
    .requiredOption("-o, --out <dir>", "the folder to write")
    .option(
      "--weights <file>",
      "onnx: weights to embed (model.safetensors; a run folder's by default)",
    )
    .option(
      "--seed <n>",
      "onnx: seed of the random weights when none are given",
      intAtLeast("--seed", 0),
    )
    .option("--data <dir>", "a token folder from gptc prepare: its vocabulary sets the model's")
    .action(async (path: string, flags: ExportFlags) => {
      if (!(exportFormats as readonly string[]).includes(flags.format))
        throw new UsageError(`--format ${flags.format}: expected ${exportFormats.join(" or ")}`);
      const format = flags.format as ExportFormat;
      if (format === "pytorch" && (flags.weights !== undefined || flags.seed !== undefined))
        throw new UsageError(
          "--format pytorch writes code, not weights: drop --weights/--seed and start from a run with train.py --init RUN",
        );
      const { model, weights } = modelOf(path, flags);
      const r = await exportModel(model, {
        format,
        out: flags.out,
        ...(format === "onnx" ? { weights, seed: flags.seed } : {}),
      });
      process.stderr.write(`gptc: exported ${model.name} (${format}): ${r.files.join(", ")}\n`);
    });
}
