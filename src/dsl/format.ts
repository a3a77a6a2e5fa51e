// The canonical layout of a .model file (`gptc fmt`): 2-space indentation, one
// statement per line, exactly the parentheses precedence needs, numbers as written,
// and every comment kept. Comments live beside the tree (ModuleAst.comments), so
// they are put back by position: a comment before a statement leads it on its own
// line, one after it on the same line trails it, one inside an expression moves to
// its own line before the statement, and one before a block's `}` stays there.
// Blank lines between statements are kept (at most one); top-level items are
// separated by exactly one. Long lines are not broken.
import type * as A from "./ast.js";
import { DiagnosticBag, type Diagnostic } from "./diagnostics.js";
import { modelLexer, LBrace, RBrace, If } from "./lexer.js";
import { parseModule } from "./parser.js";

// ---- expressions -----------------------------------------------------------------

// Binding strength, loosest first: comparison < additive < multiplicative
// < unary minus < power < postfix (member, index) and primaries.
const CMP = 1;
const ADD = 2;
const MUL = 3;
const UNARY = 4;
const POW = 5;
const POSTFIX = 6;

function binaryPrec(op: A.BinaryOp): number {
  switch (op) {
    case "+":
    case "-":
      return ADD;
    case "*":
    case "/":
    case "@":
      return MUL;
    case "**":
      return POW;
    default:
      return CMP;
  }
}

function prec(e: A.Expr): number {
  if (e.kind === "binary") return binaryPrec(e.op);
  if (e.kind === "unary") return UNARY;
  return POSTFIX;
}

/** `e`, parenthesized when it binds looser than its position allows. */
function operand(e: A.Expr, min: number): string {
  const s = formatExpr(e);
  return prec(e) >= min ? s : `(${s})`;
}

/** A string literal, re-escaped the way the lexer reads it back. */
export function quote(value: string): string {
  const body = value
    .replace(/\\/g, "\\\\")
    .replace(/"/g, '\\"')
    .replace(/\n/g, "\\n")
    .replace(/\t/g, "\\t");
  return `"${body}"`;
}

/** One expression on one line, with exactly the parentheses its structure needs. */
export function formatExpr(e: A.Expr): string {
  switch (e.kind) {
    case "number":
      return e.text || String(e.value);
    case "string":
      return quote(e.value);
    case "bool":
      return e.value ? "true" : "false";
    case "name":
      return e.name;
    case "member": {
      const o = e.object;
      // `1.T` would lex as the number `1.` (`2.5.T` is fine); `f(x) as s.T` would read
      // `s.T` as the scope.
      const paren =
        prec(o) < POSTFIX ||
        (o.kind === "number" && /^\d+$/.test(formatExpr(o))) ||
        (o.kind === "call" && o.scope !== undefined);
      const s = formatExpr(o);
      return `${paren ? `(${s})` : s}.${e.name}`;
    }
    case "index":
      return `${operand(e.object, POSTFIX)}[${formatExpr(e.index)}]`;
    case "call": {
      const args = e.args.map((a) =>
        a.name !== undefined ? `${a.name} = ${formatExpr(a.value)}` : formatExpr(a.value),
      );
      const scope = e.scope && e.scope.length > 0 ? ` as ${e.scope.join(".")}` : "";
      return `${e.callee}(${args.join(", ")})${scope}`;
    }
    case "unary": {
      const inner = operand(e.operand, UNARY);
      // `- -x`, not `--x`.
      return `${e.op}${inner.startsWith("-") ? " " : ""}${inner}`;
    }
    case "binary": {
      const p = binaryPrec(e.op);
      let left: number;
      let right: number;
      if (e.op === "**") {
        // The base is a postfix expression; the exponent a unary one (right-associative).
        left = POSTFIX;
        right = UNARY;
      } else if (p === CMP) {
        // Comparisons do not chain.
        left = ADD;
        right = ADD;
      } else {
        // Left-associative.
        left = p;
        right = p + 1;
      }
      return `${operand(e.left, left)} ${e.op} ${operand(e.right, right)}`;
    }
    case "list":
      return `[${e.items.map(formatExpr).join(", ")}]`;
  }
}

export function formatType(t: A.TypeExpr): string {
  const dims = t.dims.map((d) => (d.kind === "ellipsis" ? "..." : formatExpr(d)));
  return `${t.dtype ?? ""}[${dims.join(", ")}]`;
}

/**
 * True when `e`, printed as it is, ends with a call that has no `as` scope: followed
 * by `as` (in `repeat count as h`), the call would take that scope for itself.
 */
function endsWithUnscopedCall(e: A.Expr): boolean {
  switch (e.kind) {
    case "call":
      return e.scope === undefined;
    case "unary":
      return prec(e.operand) >= UNARY && endsWithUnscopedCall(e.operand);
    case "binary": {
      const min = e.op === "**" ? UNARY : binaryPrec(e.op) + 1;
      return prec(e.right) >= min && endsWithUnscopedCall(e.right);
    }
    default:
      return false;
  }
}

function formatParam(p: A.FnParam): string {
  let s = p.name;
  if (p.type) s += `: ${formatType(p.type)}`;
  if (p.default) s += ` = ${formatExpr(p.default)}`;
  return s;
}

/** A statement without a block, on one line. */
function simpleStmt(s: Exclude<A.Stmt, A.RepeatStmt | A.IfStmt>): string {
  switch (s.kind) {
    case "assign":
      return `${s.targets.map((t) => t.name).join(", ")} = ${formatExpr(s.value)}`;
    case "weight":
      return `weight ${s.name}: ${formatType(s.type)}${s.init ? ` = ${formatExpr(s.init)}` : ""}`;
    case "param":
      return `param ${s.name} = ${formatExpr(s.value)}${
        s.configKey !== undefined ? ` from ${quote(s.configKey)}` : ""
      }`;
    case "input":
      return `input ${s.name}: ${formatType(s.type)}`;
    case "output":
      return `output ${s.name}${s.type ? `: ${formatType(s.type)}` : ""} = ${formatExpr(s.value)}`;
    case "loss":
      return `loss = ${formatExpr(s.value)}`;
    case "return":
      return `return ${formatExpr(s.value)}`;
  }
}

// ---- layout with comments ----------------------------------------------------------

/** Something printed on its own line(s): a statement, a top-level item, a preset value. */
interface Unit {
  start: number;
  /** End offset of its text: comments after it on its last line trail it. */
  end: number;
  /** Comments in [start, interiorEnd) (inside an expression or a header) move before it. */
  interiorEnd: number;
  emit(indent: string): void;
  /** Appended to its last line before any trailing comment (a preset value's comma). */
  suffix?: string;
}

class Printer {
  readonly lines: string[] = [];
  private readonly comments: A.Comment[];
  private readonly used: boolean[];
  private readonly lineStarts: number[] = [0];
  /** Non-comment tokens: start offset and whether it is `{`, `}`, `if`. */
  private readonly tokens: { offset: number; kind: "{" | "}" | "if" | "other" }[] = [];
  private readonly matching = new Map<number, number>();

  constructor(
    ast: A.ModuleAst,
    private readonly src: string,
  ) {
    this.comments = [...ast.comments].sort((a, b) => a.span.start - b.span.start);
    this.used = this.comments.map(() => false);
    for (let i = 0; i < src.length; i++) if (src[i] === "\n") this.lineStarts.push(i + 1);
    const stack: number[] = [];
    for (const tok of modelLexer.tokenize(src).tokens) {
      const kind =
        tok.tokenType === LBrace
          ? "{"
          : tok.tokenType === RBrace
            ? "}"
            : tok.tokenType === If
              ? "if"
              : "other";
      this.tokens.push({ offset: tok.startOffset, kind });
      if (kind === "{") stack.push(tok.startOffset);
      if (kind === "}") {
        const open = stack.pop();
        if (open !== undefined) this.matching.set(open, tok.startOffset);
      }
    }
  }

  // ---- positions ----

  private lineOf(offset: number): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Whether the source has an empty line between offsets a and b. */
  private hasBlank(a: number, b: number): boolean {
    return a < b && /\n[^\S\n]*\n/.test(this.src.slice(a, b));
  }

  private tokenIndexAfter(offset: number): number {
    let lo = 0;
    let hi = this.tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.tokens[mid].offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The offset of the first `{` at or after `offset`, and of its `}`. */
  private braceAfter(offset: number): { open: number; close: number } {
    for (let i = this.tokenIndexAfter(offset); i < this.tokens.length; i++) {
      const t = this.tokens[i];
      if (t.kind === "{")
        return { open: t.offset, close: this.matching.get(t.offset) ?? this.src.length };
    }
    return { open: this.src.length, close: this.src.length };
  }

  /** The kind of the n-th token (0-based) after `offset`. */
  private tokenKindAfter(offset: number, n: number): string | undefined {
    return this.tokens[this.tokenIndexAfter(offset + 1) + n]?.kind;
  }

  // ---- comments ----

  /** Takes (marks as placed) the unplaced comments starting in [from, to). */
  private take(from: number, to: number, pred?: (c: A.Comment) => boolean): A.Comment[] {
    const out: A.Comment[] = [];
    this.comments.forEach((c, i) => {
      if (this.used[i] || c.span.start < from || c.span.start >= to) return;
      if (pred && !pred(c)) return;
      this.used[i] = true;
      out.push(c);
    });
    return out;
  }

  private hasComments(from: number, to: number): boolean {
    return this.comments.some((c, i) => !this.used[i] && c.span.start >= from && c.span.start < to);
  }

  /** Comments after a line's code: two spaces before each (a line comment is always last). */
  private static trailing(cs: A.Comment[]): string {
    return cs.map((c) => `  ${c.text}`).join("");
  }

  private push(line: string): void {
    this.lines.push(line);
  }

  private appendToLast(text: string): void {
    this.lines[this.lines.length - 1] += text;
  }

  // ---- sequences and blocks ----

  /**
   * Units between offsets [from, to), each with its leading, interior and trailing
   * comments; comments left before `to` are printed after the last unit.
   * `pending` comments (from a header that had nowhere else to put them) come first.
   * Blank lines are kept (at most one) where the source had them; at the top level
   * (`grouped` given) one always separates items i-1 and i unless `grouped(i)`.
   */
  private emitUnits(
    units: Unit[],
    indent: string,
    from: number,
    to: number,
    pending: A.Comment[],
    grouped?: (i: number) => boolean,
  ): void {
    let prevEnd = -1;
    const ownLine = (c: A.Comment, blank: boolean) => {
      if (blank) this.push("");
      this.push(indent + c.text);
      prevEnd = c.span.end;
    };
    for (const c of pending) ownLine(c, prevEnd >= 0 && this.hasBlank(prevEnd, c.span.start));
    units.forEach((u, i) => {
      const next = i + 1 < units.length ? units[i + 1].start : to;
      let groupStart = true;
      const blankBefore = (start: number): boolean => {
        const forced = grouped !== undefined && i > 0 && groupStart && !grouped(i);
        groupStart = false;
        return forced || (prevEnd >= 0 && this.hasBlank(prevEnd, start));
      };
      for (const c of this.take(from, u.start)) ownLine(c, blankBefore(c.span.start));
      const interior = this.take(u.start, u.interiorEnd);
      if (blankBefore(u.start)) this.push("");
      for (const c of interior) this.push(indent + c.text);
      u.emit(indent);
      if (u.suffix) this.appendToLast(u.suffix);
      const endLine = this.lineOf(Math.max(u.start, u.end - 1));
      const trail = this.take(u.end, next, (c) => this.lineOf(c.span.start) === endLine);
      this.appendToLast(Printer.trailing(trail));
      prevEnd = Math.max(u.end, ...trail.map((c) => c.span.end));
    });
    for (const c of this.take(from, to))
      ownLine(c, prevEnd >= 0 && this.hasBlank(prevEnd, c.span.start));
  }

  /**
   * `head {` ... `}` for a block whose braces are at `open` and `close`. With `joinPrev`
   * the head continues the last line (`} else {`). An empty block prints as `head {}`.
   */
  private emitBlock(
    indent: string,
    head: string,
    joinPrev: boolean,
    units: Unit[],
    open: number,
    close: number,
    pending: A.Comment[],
  ): void {
    const firstStart = units.length > 0 ? units[0].start : close;
    const openLine = this.lineOf(open);
    const braceTrail = this.take(
      open + 1,
      firstStart,
      (c) => this.lineOf(c.span.start) === openLine,
    );
    const empty =
      units.length === 0 &&
      pending.length === 0 &&
      braceTrail.length === 0 &&
      !this.hasComments(open + 1, close);
    const headLine = `${head} {${empty ? "}" : Printer.trailing(braceTrail)}`;
    if (joinPrev) this.appendToLast(headLine);
    else this.push(indent + headLine);
    if (empty) return;
    this.emitUnits(units, indent + "  ", open + 1, close, pending);
    this.push(`${indent}}`);
  }

  // ---- statements ----

  private stmtUnits(stmts: A.Stmt[]): Unit[] {
    return stmts.map((s) => this.stmtUnit(s));
  }

  private stmtUnit(s: A.Stmt): Unit {
    const { start, end } = s.span;
    if (s.kind === "repeat") {
      const { open, close } = this.braceAfter(s.scopeSpan.end);
      return {
        start,
        end,
        interiorEnd: open,
        emit: (indent) => {
          let count = formatExpr(s.count);
          if (endsWithUnscopedCall(s.count)) count = `(${count})`;
          const index = s.index !== undefined ? `${s.index} in ` : "";
          const head = `repeat ${index}${count} as ${s.scope.join(".")}`;
          this.emitBlock(indent, head, false, this.stmtUnits(s.body), open, close, []);
        },
      };
    }
    if (s.kind === "if") {
      const { open } = this.braceAfter(s.cond.span.end);
      return {
        start,
        end,
        interiorEnd: open,
        emit: (indent) => this.emitIf(s, indent, "if", false, []),
      };
    }
    return { start, end, interiorEnd: end, emit: (indent) => this.push(indent + simpleStmt(s)) };
  }

  private emitIf(
    s: A.IfStmt,
    indent: string,
    head: string,
    joinPrev: boolean,
    pending: A.Comment[],
  ): void {
    const { open, close } = this.braceAfter(s.cond.span.end);
    const units = this.stmtUnits(s.then);
    this.emitBlock(indent, `${head} ${formatExpr(s.cond)}`, joinPrev, units, open, close, pending);
    if (!s.else) return;
    // `else if` as written stays `else if`; `else { if ... }` stays a block.
    const nested = s.else.length === 1 && s.else[0].kind === "if" ? s.else[0] : undefined;
    if (nested && this.tokenKindAfter(close, 1) === "if") {
      const inner = this.braceAfter(nested.cond.span.end);
      // Comments around `else if cond` go to the top of its block.
      const moved = this.take(close + 1, inner.open);
      this.emitIf(nested, indent, " else if", true, moved);
    } else {
      const block = this.braceAfter(close + 1);
      const moved = this.take(close + 1, block.open);
      this.emitBlock(indent, " else", true, this.stmtUnits(s.else), block.open, block.close, moved);
    }
  }

  // ---- top level ----

  private itemUnit(item: A.TopLevel): Unit {
    switch (item.kind) {
      case "import":
        return {
          start: item.span.start,
          end: item.span.end,
          interiorEnd: item.span.end,
          emit: (i) => this.push(`${i}import ${quote(item.path)}`),
        };
      case "fn":
        return this.bodyUnit(item, `fn ${item.name}(${item.params.map(formatParam).join(", ")})`);
      case "model": {
        const d = item.derived;
        if (!d) return this.bodyUnit(item, `model ${item.name}`);
        return this.paramValuesUnit(
          item,
          `model ${item.name} = ${d.base}`,
          d.values,
          d.baseSpan.end,
        );
      }
      case "preset":
        return this.paramValuesUnit(item, `preset ${item.name}`, item.values, item.nameSpan.end);
    }
  }

  /** A function or a model: `head {` statements `}`. */
  private bodyUnit(item: A.FnDef | A.ModelDef, head: string): Unit {
    const { open, close } = this.braceAfter(item.nameSpan.end);
    return {
      start: item.span.start,
      end: item.span.end,
      interiorEnd: open,
      emit: (i) => this.emitBlock(i, head, false, this.stmtUnits(item.body), open, close, []),
    };
  }

  /**
   * `head { a = 1, b = 2 }` (a preset or a derived model) on one line; with comments
   * inside the braces, one value per line so that each keeps its place.
   */
  private paramValuesUnit(
    item: A.TopLevel,
    head: string,
    values: A.ParamValueAst[],
    after: number,
  ): Unit {
    const { start, end } = item.span;
    const { open, close } = this.braceAfter(after);
    const value = (v: A.ParamValueAst) => `${v.name} = ${formatExpr(v.value)}`;
    return {
      start,
      end,
      interiorEnd: open,
      emit: (indent) => {
        if (!this.hasComments(open, close)) {
          const body = values.length > 0 ? ` ${values.map(value).join(", ")} ` : "";
          this.push(`${indent}${head} {${body}}`);
          return;
        }
        const units: Unit[] = values.map((v, k) => ({
          start: v.span.start,
          end: v.span.end,
          interiorEnd: v.span.end,
          emit: (i: string) => this.push(i + value(v)),
          suffix: k + 1 < values.length ? "," : undefined,
        }));
        this.emitBlock(indent, head, false, units, open, close, []);
      },
    };
  }

  print(ast: A.ModuleAst): string {
    const units = ast.items.map((item) => this.itemUnit(item));
    // One blank line between items, except that runs of one-line items of one kind
    // (imports, presets, derived models) may stay together as written.
    const oneLiner = (item: A.TopLevel) =>
      item.kind === "model"
        ? item.derived
          ? "derived"
          : undefined
        : item.kind === "fn"
          ? undefined
          : item.kind;
    const grouped = (i: number) => {
      const kind = oneLiner(ast.items[i - 1]);
      return kind !== undefined && kind === oneLiner(ast.items[i]);
    };
    this.emitUnits(units, "", 0, this.src.length + 1, [], grouped);
    // Never lose a comment, even one the layout above had no place for.
    this.comments.forEach((c, i) => {
      if (!this.used[i]) this.push(c.text);
    });
    return this.lines.length === 0 ? "" : `${this.lines.join("\n")}\n`;
  }
}

/** The canonical text of a parsed module; `source` is the text it was parsed from. */
export function formatModule(ast: A.ModuleAst, source: string): string {
  return new Printer(ast, source).print(ast);
}

/**
 * Formats a spec's text canonically, as `gptc fmt` does (comments kept); `file`
 * names it in diagnostics. On syntax errors returns the diagnostics and no output.
 */
export function formatSource(
  text: string,
  file: string,
): {
  /** The formatted text (ending in a newline unless empty); absent on syntax errors. */
  output?: string;
  /** What the parser reported (errors, when `output` is absent). */
  diagnostics: Diagnostic[];
} {
  const diags = new DiagnosticBag();
  const ast = parseModule(text, file, diags);
  if (diags.hasErrors) return { diagnostics: diags.items };
  return { output: formatModule(ast, text), diagnostics: diags.items };
}
