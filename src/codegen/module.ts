// The kernels of a schedule as text: their kernel IR (`gptc compile --emit
// kernels`, test/golden) and, for reading and for use outside gptc, one
// JavaScript module of their gpu.js functions (`--emit kernels-js`).
import type { Schedule } from "../ir/passes/fuse.js";
import { buildKernel } from "./kernel-ir/build.js";
import { printKernel } from "./kernel-ir/print.js";
import { verifyKernel } from "./kernel-ir/verify.js";
import { printJs } from "./kernel-js.js";

/** Every kernel's IR, verified, on the rows grid the webasm backend runs. */
export function printKernels(s: Schedule, bindings: Record<string, number>): string {
  return s.kernels
    .map((k) => {
      const ir = buildKernel(s.graph, k, bindings, "rows");
      verifyKernel(ir);
      return printKernel(ir, (id) => describe(s, id));
    })
    .join("\n");
}

export function emitKernelModule(
  s: Schedule,
  bindings: Record<string, number>,
  exportName: string,
): string {
  const lines: string[] = [`export const ${exportName} = [`];
  for (const k of s.kernels) {
    const ir = buildKernel(s.graph, k, bindings, "flat");
    const js = printJs(ir);
    const inputs = ir.buffers.filter((b) => b.kind === "input");
    // Names and shapes go in as JSON strings: nothing from the spec becomes code.
    const reads = JSON.stringify(inputs.map((b) => describe(s, b.node)));
    lines.push(
      `  { name: ${JSON.stringify(ir.name)}, kind: ${JSON.stringify(k.kind)}, outputSize: ${js.dims[0]}, reads: ${reads}, writes: ${JSON.stringify(describe(s, ir.output))},`,
      `    kernel: ${js.source.replace(/\n/g, "\n    ")} },`,
    );
  }
  lines.push("];");
  return lines.join("\n") + "\n";
}

function describe(s: Schedule, id: number): string {
  const n = s.graph.nodes[id];
  if (n.op === "weight" || n.op === "input") return `${n.op} ${String(n.attrs.name)}`;
  if (n.op === "dropout_mask") return `dropout_mask %${id} (filled by the host)`;
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
