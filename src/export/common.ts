// What both exporters share: the error they raise, the check that every op of
// a graph has a mapping (run before anything is written), and the symbolic
// dims a graph's inputs bind.
import { GptcError } from "../errors.js";
import type { Graph, Node } from "../ir/graph.js";

/** A model or an option the exporter cannot express in the target format. */
export class ExportError extends GptcError {
  constructor(message: string) {
    super("export", message);
  }
}

/** The spec line an IR node came from, as `file:line:col`, for messages. */
export function whereFrom(node: Node): string {
  const s = node.span;
  return s ? `${s.file}:${s.line}:${s.col}` : "an op the compiler added";
}

/**
 * Refuses a graph with an op the target has no mapping for, naming the op and
 * the spec line it comes from, before any file is written.
 */
export function checkMapped(graph: Graph, mapped: ReadonlySet<string>, format: string): void {
  for (const n of graph.nodes)
    if (!mapped.has(n.op))
      throw new ExportError(
        `op '${n.op}' has no ${format} mapping (from ${whereFrom(n)}); the ${format} exporter maps: ${[...mapped].sort().join(", ")}`,
      );
}

/** A symbolic dim bound by an input axis: `B` is axis 0 of `tokens`. */
export interface DimSource {
  symbol: string;
  input: string;
  axis: number;
}

/**
 * Where each symbol of the graph's dims can be read: the first input axis that
 * is exactly that symbol. A symbol no input binds cannot be exported.
 */
export function dimSources(graph: Graph): Map<string, DimSource> {
  const out = new Map<string, DimSource>();
  for (const n of graph.nodesOf("input"))
    n.type.shape.forEach((d, axis) => {
      const [[key, coef] = ["", 0]] = [...d];
      if (d.size === 1 && coef === 1 && key !== "" && !key.includes("*") && !out.has(key))
        out.set(key, { symbol: key, input: n.attrs.name as string, axis });
    });
  for (const s of graph.symbols())
    for (const k of s.split("*"))
      if (!out.has(k))
        throw new ExportError(
          `the size ${k} is not an axis of any input, so it cannot be exported`,
        );
  return out;
}
