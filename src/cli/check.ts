// `gptc check FILE`: parse, check and lower a model; print its summary.
import type { Command } from "commander";
import { formatSummary, summarize } from "../ir/summary.js";
import { collect, loadModel, type ModelFlags } from "./load-model.js";

export function addModelFlags(cmd: Command): Command {
  return cmd
    .option("--set <name=value>", "override a parameter (repeatable)", collect)
    .option("--config <config.json>", "read parameters from a Hugging Face config.json")
    .option("--preset <name>", "use a named parameter set of the spec (e.g. medium)");
}

export function registerCheck(program: Command): void {
  addModelFlags(program.command("check").argument("<file>", "a .model file"))
    .description("parse and check a model; print a summary")
    .option("--json", "print the summary as JSON")
    .action((file: string, flags: ModelFlags & { json?: boolean }) => {
      const { lowered } = loadModel(file, flags);
      const s = summarize(lowered);
      process.stdout.write((flags.json ? JSON.stringify(s, null, 2) : formatSummary(s)) + "\n");
    });
}
