// `gptc check FILE`: parse, check and lower a model; print its summary.
import type { Command } from "commander";
import { compile } from "../api/compile.js";
import { formatSummary } from "../ir/summary.js";
import { addModelFlags, compileOptions, type ModelFlags } from "./options.js";

export function registerCheck(program: Command): void {
  addModelFlags(program.command("check").argument("<file>", "a .model file"))
    .description("parse and check a model; print a summary")
    .option("--json", "print the summary as JSON")
    .action((file: string, flags: ModelFlags & { json?: boolean }) => {
      const s = compile({ file }, compileOptions(flags)).summary;
      process.stdout.write((flags.json ? JSON.stringify(s, null, 2) : formatSummary(s)) + "\n");
    });
}
