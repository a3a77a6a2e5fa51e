// `gptc graph SPEC`: draws the model as a Mermaid flowchart or a Graphviz digraph,
// at the level of its blocks (as a paper draws it), its IR ops, or its kernels.
import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import {
  blocksDiagram,
  diagramFormats,
  diagramLevels,
  kernelsDiagram,
  opsDiagram,
  renderDiagram,
  type Diagram,
  type DiagramFormat,
  type DiagramLevel,
} from "../ir/diagram.js";
import { fuse } from "../ir/passes/fuse.js";
import { compileGraphs } from "../ir/pipeline.js";
import { addModelFlags } from "./check.js";
import { UsageError } from "./errors.js";
import { loadModel, type ModelFlags } from "./load-model.js";

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
      const { program: prog, lowered } = loadModel(spec, flags);
      const name = lowered.graph.name;
      let diagram: Diagram;
      if (level === "blocks") {
        diagram = blocksDiagram({
          model: prog.model ?? lowered.model,
          functions: prog.functions,
          params: lowered.params,
          title: `${name} (blocks)`,
        });
      } else {
        const { forwardOpt } = compileGraphs(lowered);
        diagram =
          level === "ops"
            ? opsDiagram(forwardOpt, `${name} (forward ops)`)
            : kernelsDiagram(fuse(forwardOpt), `${name} (forward kernels)`);
      }
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
