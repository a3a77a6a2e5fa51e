// The kernels of a schedule as one JavaScript module, for reading and for use
// outside gptc (`gptc compile --emit kernels`): every kernel's gpu.js source with
// its output size and input buffers, formatted with prettier.
import type { Schedule } from "../ir/passes/fuse.js";
import { kernelSource } from "./kernel-source.js";

export function emitKernelModule(
  s: Schedule,
  bindings: Record<string, number>,
  exportName: string,
): string {
  const g = s.graph;
  const lines: string[] = [`export const ${exportName} = [`];
  for (const k of s.kernels) {
    const src = kernelSource(g, k, bindings);
    // Names and shapes go in as JSON strings: nothing from the spec becomes code.
    const reads = JSON.stringify(src.inputs.map((i) => describe(s, i)));
    lines.push(
      `  { name: ${JSON.stringify(src.name)}, kind: ${JSON.stringify(k.kind)}, outputSize: ${src.outputSize}, reads: ${reads}, writes: ${JSON.stringify(describe(s, src.output))},`,
      `    kernel: ${src.source.replace(/\n/g, "\n    ")} },`,
    );
  }
  lines.push("];");
  return lines.join("\n") + "\n";
}

function describe(s: Schedule, id: number): string {
  const n = s.graph.nodes[id];
  if (n.op === "weight" || n.op === "input") return `${n.op} ${String(n.attrs.name)}`;
  return `%${id}`;
}

/**
 * Lays the module out with prettier when it is installed (a development
 * dependency: an installed gptc does not carry it, and starts without it);
 * otherwise the text stays as emitted, the same program.
 */
export async function formatJs(text: string): Promise<string> {
  let prettier: { format(t: string, o: object): Promise<string> };
  try {
    prettier = await import("prettier");
  } catch {
    return text;
  }
  return prettier.format(text, { parser: "babel", printWidth: 100 });
}
