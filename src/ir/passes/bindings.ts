// Checks a graph at concrete sizes, before anything runs: every dimension is a
// positive whole number, no buffer is larger than a backend can address, and
// position ids stay inside their embedding table (T <= context). Errors name
// the op and the source line that built it.
import { DiagnosticError, type Diagnostic } from "../../dsl/diagnostics.js";
import { dimEval, dimToString } from "../dims.js";
import type { Graph } from "../graph.js";

/** 2^30 float32 elements = 4 GiB: WebAssembly's whole memory. */
export const maxBufferElements = 2 ** 30;

export function checkBindings(
  g: Graph,
  bindings: Record<string, number>,
  maxElements = maxBufferElements,
): Diagnostic[] {
  const problems: Diagnostic[] = [];
  for (const [name, v] of Object.entries(bindings))
    if (!Number.isInteger(v) || v <= 0)
      problems.push({
        severity: "error",
        message: `dimension ${name} = ${v} must be a positive whole number`,
      });
  if (problems.length) return problems;
  for (const n of g.nodes) {
    let count = 1;
    for (const d of n.type.shape) {
      let v: number;
      try {
        v = dimEval(d, bindings);
      } catch {
        problems.push({
          severity: "error",
          message: `op ${n.op}: dimension ${dimToString(d)} has no size (bind ${dimToString(d)})`,
          span: n.span,
        });
        return problems;
      }
      if (!(v >= 0) || !Number.isInteger(v)) {
        problems.push({
          severity: "error",
          message: `op ${n.op}: dimension ${dimToString(d)} = ${v} is not a valid size`,
          span: n.span,
        });
        return problems;
      }
      count *= v;
    }
    if (count > maxElements) {
      problems.push({
        severity: "error",
        message: `op ${n.op} would produce ${count.toLocaleString("en-US")} elements (${((count * 4) / 2 ** 30).toFixed(1)} GiB), more than a buffer can hold (${maxElements.toLocaleString("en-US")})`,
        span: n.span,
        hint: "use a smaller batch or sequence length",
      });
      return problems;
    }
    // Position ids (arange, maybe shifted) must index inside their table.
    if (n.op === "gather") {
      const ids = g.nodes[n.inputs[1]];
      if (ids.op === "arange") {
        const len = dimEval(ids.attrs.n as never, bindings);
        const rows = dimEval(g.nodes[n.inputs[0]].type.shape[0], bindings);
        if (len > rows)
          problems.push({
            severity: "error",
            message: `positions 0..${len - 1} index a table of ${rows} rows: the sequence is longer than the model's context`,
            span: n.span,
            hint: `use a sequence of at most ${rows} tokens`,
          });
      }
    }
  }
  return problems;
}

export function assertBindings(g: Graph, bindings: Record<string, number>): void {
  const p = checkBindings(g, bindings);
  if (p.length) throw new DiagnosticError(p);
}
