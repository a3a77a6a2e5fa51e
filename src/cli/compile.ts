// `gptc compile SPEC`: writes the artifacts of a model into a folder.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import {
  artifactFile,
  artifactKinds,
  formatCompileSummary,
  type ArtifactKind,
} from "../api/artifacts.js";
import { compile } from "../api/compile.js";
import { UsageError } from "../errors.js";
import { addModelFlags, compileOptions, positiveInt, type ModelFlags } from "./options.js";

function parseEmit(items: string[]): ArtifactKind[] {
  const kinds = items
    .flatMap((i) => i.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  for (const k of kinds)
    if (!(artifactKinds as readonly string[]).includes(k))
      throw new UsageError(`--emit ${k}: expected one of ${artifactKinds.join(", ")}`);
  return kinds as ArtifactKind[];
}

export function registerCompile(program: Command): void {
  addModelFlags(program.command("compile").argument("<spec>", "a .model file"))
    .description("compile a model and write its IR, kernels, memory plan and summary")
    .option(
      "--emit <kinds>",
      `what to write: ${artifactKinds.join(", ")} (repeatable; default all)`,
      (v: string, p: string[] = []) => [...p, v],
    )
    .option("-o, --out <dir>", "output folder (default build/<model>)")
    .option("--stdout", "print the emitted artifacts instead of writing files")
    .option(
      "--batch <n>",
      "batch size for the memory plan and FLOP counts (default 4)",
      positiveInt("--batch"),
    )
    .option(
      "--seq <n>",
      "sequence length for the memory plan and FLOP counts (default min(128, the model's context))",
      positiveInt("--seq"),
    )
    .action(
      async (
        spec: string,
        flags: ModelFlags & {
          emit?: string[];
          out?: string;
          stdout?: boolean;
          batch?: number;
          seq?: number;
        },
      ) => {
        const model = compile({ file: spec }, compileOptions(flags));
        const sizes = { batch: flags.batch, seq: flags.seq };
        const fitted = model.defaultSizes(sizes);
        if (flags.seq === undefined && fitted.seq < 128)
          process.stderr.write(
            `gptc: --seq ${fitted.seq}: the model's context (the default is 128)\n`,
          );
        const kinds = flags.emit ? parseEmit(flags.emit) : [...artifactKinds];
        if (flags.stdout) {
          for (const k of kinds) process.stdout.write(await model.artifact(k, sizes));
          return;
        }
        const out = flags.out ?? join("build", model.name);
        mkdirSync(out, { recursive: true });
        for (const k of kinds)
          writeFileSync(join(out, artifactFile[k]), await model.artifact(k, sizes));
        process.stdout.write(
          `${formatCompileSummary(model.compilation(sizes))}\nwrote ${kinds.map((k) => artifactFile[k]).join(", ")} to ${out}\n`,
        );
      },
    );
}
