// Diagnostics: every error gptc reports about a user's input. They are values,
// collected several per file, and rendered as `file:line:col: error: message`
// followed by the source line and a caret under the offending text.
import { GptcError } from "../errors.js";
import { SourceSet, type Span } from "./source.js";

/** One problem found in a spec, with where it is. */
export interface Diagnostic {
  /** Errors stop compilation; warnings do not. */
  severity: "error" | "warning";
  /** What is wrong, in one sentence. */
  message: string;
  /** Where it is; absent for problems of no particular text (e.g. an unreadable root file). */
  span?: Span;
  /** A suggestion, e.g. "did you mean 'layernorm'?" */
  hint?: string;
  /** Further positions worth showing, e.g. where a duplicate was first declared. */
  notes?: {
    /** What this position is, e.g. "first defined here". */
    message: string;
    /** The position. */
    span?: Span;
  }[];
}

/** Thrown to abort a stage; carries every diagnostic found so far. */
export class DiagnosticError extends GptcError {
  constructor(
    /** Every problem found, in the order found. */
    readonly diagnostics: Diagnostic[],
    /** The texts the spans point into, so the error can be printed with excerpts. */
    readonly sources?: SourceSet,
  ) {
    super("diagnostics", diagnostics.map((d) => d.message).join("\n"));
  }

  /** Every diagnostic as `file:line:col: error: message` with the source line and a caret. */
  format(): string {
    return formatDiagnostics(this.diagnostics, this.sources ?? new SourceSet());
  }
}

export function error(message: string, span?: Span, hint?: string): Diagnostic {
  return { severity: "error", message, span, hint };
}

/** Collects diagnostics; a stage checks `hasErrors` before handing work on. */
export class DiagnosticBag {
  readonly items: Diagnostic[] = [];

  add(d: Diagnostic): void {
    this.items.push(d);
  }

  error(message: string, span?: Span, hint?: string): Diagnostic {
    const d = error(message, span, hint);
    this.items.push(d);
    return d;
  }

  get hasErrors(): boolean {
    return this.items.some((d) => d.severity === "error");
  }

  /** Throws a DiagnosticError when any error was collected. */
  throwIfErrors(): void {
    if (this.hasErrors) throw new DiagnosticError(this.items);
  }
}

function excerpt(span: Span, sources: SourceSet): string[] {
  const text = sources.get(span.file);
  if (text === undefined || span.line < 1) return [];
  const lines = text.split(/\r\n|\r|\n/);
  const line = lines[span.line - 1];
  if (line === undefined) return [];
  const num = String(span.line);
  const gutter = " ".repeat(num.length);
  // The caret covers the span on its first line only (at least one character).
  const lineEndOffset = span.start - (span.col - 1) + line.length;
  const width = Math.max(1, Math.min(span.end, lineEndOffset) - span.start);
  const shown = line.replace(/\t/g, " ");
  return [
    ` ${num} | ${shown}`,
    ` ${gutter} | ${" ".repeat(Math.max(0, span.col - 1))}${"^".repeat(width)}`,
  ];
}

function location(span?: Span): string {
  if (!span || span.line < 1) return span ? `${span.file}: ` : "";
  return `${span.file}:${span.line}:${span.col}: `;
}

export function formatDiagnostic(d: Diagnostic, sources: SourceSet): string {
  const out = [`${location(d.span)}${d.severity}: ${d.message}`];
  if (d.span) out.push(...excerpt(d.span, sources));
  for (const note of d.notes ?? []) {
    out.push(`${location(note.span)}note: ${note.message}`);
    if (note.span) out.push(...excerpt(note.span, sources));
  }
  if (d.hint) out.push(`  hint: ${d.hint}`);
  return out.join("\n");
}

/**
 * Diagnostics as `gptc check` prints them: each as `file:line:col: error:
 * message`, the source line with a caret under the span, its notes and hint;
 * blank lines between them. `sources` holds the texts the spans point into.
 */
export function formatDiagnostics(ds: Diagnostic[], sources: SourceSet): string {
  return ds.map((d) => formatDiagnostic(d, sources)).join("\n\n");
}

/** Levenshtein distance, for "did you mean" hints. */
function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** The closest candidate to `name`, if one is close enough to be a likely typo. */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  return bestDist <= limit ? best : undefined;
}

export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  const c = closestName(name, candidates);
  return c === undefined ? undefined : `did you mean '${c}'?`;
}
