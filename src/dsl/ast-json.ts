// The AST as plain data without source positions: what `--emit ast` prints and
// what "formatting never changes meaning" compares.
export function stripSpans(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripSpans);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === "span" || k.endsWith("Span") || k === "comments") continue;
      out[k] = stripSpans(v);
    }
    return out;
  }
  return value;
}
