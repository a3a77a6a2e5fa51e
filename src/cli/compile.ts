// `gptc compile SPEC`: writes the artifacts of a model into a folder.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { addModelFlags } from "./check.js";
import {
  artifactFile,
  artifactKinds,
  compileModel,
  formatCompileSummary,
  renderArtifact,
  type ArtifactKind,
} from "./artifacts.js";
import { reportAndExit, UsageError } from "./errors.js";
import { loadModel, type ModelFlags } from "./load-model.js";

export function positiveInt(name: string) {
  return (text: string): number => {
    const v = Number(text);
    if (!Number.isInteger(v) || v <= 0)
      throw new UsageError(`${name} must be a positive whole number, got '${text}'`);
    return v;
  };
}

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
      "batch size for the memory plan and FLOP counts",
      positiveInt("--batch"),
      4,
    )
    .option(
      "--seq <n>",
      "sequence length for the memory plan and FLOP counts",
      positiveInt("--seq"),
      128,
    )
    .action(
      async (
        spec: string,
        flags: ModelFlags & {
          emit?: string[];
          out?: string;
          stdout?: boolean;
          batch: number;
          seq: number;
        },
      ) => {
        const { program: prog, lowered, sources } = loadModel(spec, flags);
        let c;
        try {
          c = compileModel(lowered, { batch: flags.batch, seq: flags.seq });
        } catch (e) {
          reportAndExit(e, sources);
        }
        const kinds = flags.emit ? parseEmit(flags.emit) : [...artifactKinds];
        if (flags.stdout) {
          for (const k of kinds) process.stdout.write(await renderArtifact(k, c, prog));
          return;
        }
        const out = flags.out ?? join("build", lowered.graph.name);
        mkdirSync(out, { recursive: true });
        for (const k of kinds)
          writeFileSync(join(out, artifactFile[k]), await renderArtifact(k, c, prog));
        process.stdout.write(
          `${formatCompileSummary(c)}\nwrote ${kinds.map((k) => artifactFile[k]).join(", ")} to ${out}\n`,
        );
      },
    );
}
