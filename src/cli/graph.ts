// `gptc graph SPEC`: draws the model as a Mermaid flowchart or a Graphviz digraph,
// at the level of its blocks (as a paper draws it), its IR ops, or its kernels.
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { compile } from "../api/compile.js";
import { UsageError } from "../errors.js";
import {
  diagramFormats,
  diagramLevels,
  renderDiagram,
  type DiagramFormat,
  type DiagramLevel,
} from "../ir/diagram.js";
import { addModelFlags, compileOptions, type ModelFlags } from "./options.js";

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value))
    throw new UsageError(`${flag} ${value}: expected one of ${allowed.join(", ")}`);
  return value as T;
}

export function registerGraph(program: Command): void {
  addModelFlags(program.command("graph").argument("<spec>", "a .model file"))
    .description("draw the model as a diagram (Mermaid or Graphviz dot)")
    .option("--format <format>", `diagram language: ${diagramFormats.join(" or ")}`, "mermaid")
    .option(
      "--level <level>",
      "blocks (the model's layers, as a paper draws them), ops (the optimized forward IR) " +
        "or kernels (the fused forward kernels)",
      "blocks",
    )
    .option("-o, --out <file>", "write the diagram to a file instead of printing it")
    .action((spec: string, flags: ModelFlags & { format: string; level: string; out?: string }) => {
      const format = oneOf<DiagramFormat>("--format", flags.format, diagramFormats);
      const level = oneOf<DiagramLevel>("--level", flags.level, diagramLevels);
      const diagram = compile({ file: spec }, compileOptions(flags)).diagramData(level);
      const text = renderDiagram(diagram, format);
      if (!flags.out) {
        process.stdout.write(text);
        return;
      }
      try {
        writeFileSync(flags.out, text);
      } catch (e) {
        throw new UsageError(
          `cannot write '${flags.out}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
      }
      process.stdout.write(
        `wrote ${flags.out}: ${diagram.nodes.length} nodes, ${diagram.edges.length} edges (${level}, ${format})\n`,
      );
    });
}
