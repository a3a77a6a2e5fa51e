// `gptc fmt FILE...`: the canonical layout of .model files.
import { readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { DiagnosticError } from "../dsl/diagnostics.js";
import { formatSource } from "../dsl/format.js";
import { SourceSet } from "../dsl/source.js";
import { reportAndExit, UsageError } from "./errors.js";

export function registerFmt(program: Command): void {
  program
    .command("fmt")
    .argument("<files...>", ".model files")
    .description("format .model files (prints to stdout unless --write or --check)")
    .option("--write", "rewrite the files in place")
    .option("--check", "exit 1 if any file is not formatted")
    .action((files: string[], flags: { write?: boolean; check?: boolean }) => {
      let unformatted = 0;
      for (const file of files) {
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch (e) {
          throw new UsageError(`cannot read '${file}': ${(e as NodeJS.ErrnoException).code ?? e}`);
        }
        const r = formatSource(text, file);
        if (r.output === undefined) {
          const sources = new SourceSet();
          sources.add(file, text);
          reportAndExit(new DiagnosticError(r.diagnostics), sources);
        }
        if (flags.check) {
          if (r.output !== text) {
            unformatted++;
            process.stdout.write(`${file}: not formatted\n`);
          }
        } else if (flags.write) {
          if (r.output !== text) writeFileSync(file, r.output);
        } else process.stdout.write(r.output);
      }
      if (unformatted) process.exit(1);
    });
}
