// The textual form of the IR: a stable, readable printer and a parser that
// reads it back, so that print(parse(print(g))) === print(g). Golden tests
// compare this text, so it must be deterministic.
//
//   graph gpt2 {
//     %0 = input "tokens" : i32[B, T]
//     %1 = weight "wte.weight" {init="normal", std=0.02} : f32[50257, 768]
//     %2 = gather %1, %0 : f32[B, T, 768]  # specs/gpt2-small.model:19:7
//     output "logits" = %2
//   }
import type { Span } from "../dsl/source.js";
import { dimToString, parseDim, type Dim } from "./dims.js";
import { Graph } from "./graph.js";
import type { AttrValue, Attrs, DType, TypeInfo } from "./ops/types.js";

const isDim = (v: unknown): v is Dim => v instanceof Map;

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

function formatAttr(v: AttrValue): string {
  if (typeof v === "number") return formatNumber(v);
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (isDim(v)) return `size(${dimToString(v)})`;
  if (v.length > 0 && isDim(v[0])) return `<${(v as Dim[]).map(dimToString).join(", ")}>`;
  if (v.length === 0) return "[]";
  return `[${(v as number[]).map(formatNumber).join(", ")}]`;
}

/** Deterministic text of attributes (sorted keys); also the CSE key. */
export function attrsKey(attrs: Attrs, skip: string[] = []): string {
  return Object.keys(attrs)
    .filter((k) => !skip.includes(k))
    .sort()
    .map((k) => `${k}=${formatAttr(attrs[k])}`)
    .join(", ");
}

export function formatType(t: TypeInfo): string {
  return `${t.dtype}[${t.shape.map(dimToString).join(", ")}]`;
}

function formatSpan(s?: Span): string {
  return s && s.line > 0 ? `  # ${s.file}:${s.line}:${s.col}` : "";
}

/** Source ops carry their name as a quoted word and their shape only in the type. */
const namedOps = new Set(["input", "weight"]);

export function printNode(g: Graph, id: number, withSpans = true): string {
  const n = g.nodes[id];
  const parts = [`%${n.id} = ${n.op}`];
  const skip = ["shape", "dtype"];
  if (namedOps.has(n.op)) parts.push(JSON.stringify(n.attrs.name));
  if (n.inputs.length) parts.push(n.inputs.map((i) => `%${i}`).join(", "));
  const attrs = attrsKey(n.attrs, namedOps.has(n.op) ? ["name", ...skip] : []);
  if (attrs) parts.push(`{${attrs}}`);
  return `${parts.join(" ")} : ${formatType(n.type)}${withSpans ? formatSpan(n.span) : ""}`;
}

export function printGraph(g: Graph, opts: { spans?: boolean } = {}): string {
  const lines = [`graph ${g.name} {`];
  for (const n of g.nodes) lines.push(`  ${printNode(g, n.id, opts.spans ?? true)}`);
  for (const o of g.outputs) lines.push(`  output ${JSON.stringify(o.name)} = %${o.id}`);
  lines.push("}");
  return lines.join("\n") + "\n";
}

// ---- parser ------------------------------------------------------------------------

export class IrParseError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = "IrParseError";
  }
}

/** A cursor over one line. */
class LineReader {
  pos = 0;
  constructor(
    readonly text: string,
    readonly line: number,
  ) {}

  fail(what: string): never {
    throw new IrParseError(
      `${what} at column ${this.pos + 1}: ${JSON.stringify(this.text.slice(this.pos, this.pos + 20))}`,
      this.line,
    );
  }

  ws(): void {
    while (this.text[this.pos] === " ") this.pos++;
  }

  peek(s: string): boolean {
    this.ws();
    return this.text.startsWith(s, this.pos);
  }

  eat(s: string): boolean {
    if (!this.peek(s)) return false;
    this.pos += s.length;
    return true;
  }

  expect(s: string): void {
    if (!this.eat(s)) this.fail(`expected '${s}'`);
  }

  match(re: RegExp, what: string): string {
    this.ws();
    const m = re.exec(this.text.slice(this.pos));
    if (!m || m.index !== 0) this.fail(`expected ${what}`);
    this.pos += m[0].length;
    return m[0];
  }

  string(): string {
    const s = this.match(/"(?:[^"\\]|\\.)*"/, "a string");
    try {
      return JSON.parse(s) as string;
    } catch {
      this.fail("bad string escape");
    }
  }

  number(): number {
    const s = this.match(/-?(?:inf|nan|\d+(?:\.\d+)?(?:e[+-]?\d+)?)/, "a number");
    if (s === "inf") return Infinity;
    if (s === "-inf") return -Infinity;
    if (s === "nan" || s === "-nan") return NaN;
    return Number(s);
  }

  dims(close: string): Dim[] {
    const out: Dim[] = [];
    if (this.eat(close)) return out;
    do out.push(this.dim());
    while (this.eat(","));
    this.expect(close);
    return out;
  }

  dim(): Dim {
    const s = this.match(/[A-Za-z0-9_*+-]+/, "a dimension");
    const d = parseDim(s);
    if (!d) this.fail(`bad dimension '${s}'`);
    return d;
  }

  attr(): AttrValue {
    if (this.peek('"')) return this.string();
    if (this.eat("true")) return true;
    if (this.eat("false")) return false;
    if (this.eat("size(")) {
      const d = this.dim();
      this.expect(")");
      return d;
    }
    if (this.eat("<")) return this.dims(">");
    if (this.eat("[")) {
      const xs: number[] = [];
      if (this.eat("]")) return xs;
      do xs.push(this.number());
      while (this.eat(","));
      this.expect("]");
      return xs;
    }
    return this.number();
  }

  type(): TypeInfo {
    const dtype = this.match(/f32|i32|bool/, "a dtype") as DType;
    this.expect("[");
    return { dtype, shape: this.dims("]") };
  }

  atEnd(): boolean {
    this.ws();
    return this.pos >= this.text.length;
  }
}

function parseSpanComment(text: string): Span | undefined {
  const m = /^(.*):(\d+):(\d+)$/.exec(text.trim());
  if (!m) return undefined;
  return { file: m[1], line: Number(m[2]), col: Number(m[3]), start: 0, end: 0 };
}

/** Reads the printer's text back into a graph; shapes are re-checked by each op's rule. */
export function parseGraph(text: string): Graph {
  const lines = text.split("\n");
  let g: Graph | undefined;
  let closed = false;
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === "" || closed) {
      if (line !== "") throw new IrParseError("text after the end of the graph", lineNo);
      return;
    }
    if (!g) {
      const m = /^graph ([A-Za-z_][A-Za-z0-9_]*) \{$/.exec(line);
      if (!m) throw new IrParseError("expected 'graph NAME {'", lineNo);
      g = new Graph(m[1]);
      return;
    }
    if (line === "}") {
      closed = true;
      return;
    }
    const hash = line.indexOf("  # ");
    const body = hash >= 0 ? line.slice(0, hash) : line;
    const span = hash >= 0 ? parseSpanComment(line.slice(hash + 4)) : undefined;
    const r = new LineReader(body, lineNo);
    if (r.eat("output ")) {
      const name = r.string();
      r.expect("=");
      r.expect("%");
      const id = Number(r.match(/\d+/, "a node id"));
      if (!g.nodes[id]) r.fail(`output of unknown node %${id}`);
      if (!r.atEnd()) r.fail("unexpected text");
      g.output(name, id);
      return;
    }
    r.expect("%");
    const id = Number(r.match(/\d+/, "a node id"));
    if (id !== g.nodes.length) r.fail(`expected node %${g.nodes.length}`);
    r.expect("=");
    const op = r.match(/[a-z_]+/, "an op name");
    const attrs: Record<string, AttrValue> = {};
    if (namedOps.has(op)) attrs.name = r.string();
    const inputs: number[] = [];
    if (r.peek("%")) {
      do {
        r.expect("%");
        inputs.push(Number(r.match(/\d+/, "a node id")));
      } while (r.eat(","));
    }
    if (r.eat("{")) {
      do {
        const key = r.match(/[a-z_]+/, "an attribute name");
        r.expect("=");
        attrs[key] = r.attr();
      } while (r.eat(","));
      r.expect("}");
    }
    r.expect(":");
    const type = r.type();
    if (!r.atEnd()) r.fail("unexpected text");
    if (namedOps.has(op)) {
      attrs.shape = [...type.shape];
      if (op === "input") attrs.dtype = type.dtype;
    }
    let got: string;
    try {
      // Formatting the computed type is inside the try too: a rule given attributes
      // of the wrong kind (n=8 for n=size(8), a missing k) can return a malformed type.
      got = formatType(g.type(g.op(op, inputs, attrs, span)));
    } catch (e) {
      throw new IrParseError((e as Error).message, lineNo);
    }
    if (got !== formatType(type))
      throw new IrParseError(
        `%${id} is declared ${formatType(type)} but ${op} gives ${got}`,
        lineNo,
      );
  });
  if (!g) throw new IrParseError("empty input: expected 'graph NAME {'", 1);
  if (!closed) throw new IrParseError("missing '}' at the end of the graph", lines.length);
  return g;
}
