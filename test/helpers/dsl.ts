// Shared helpers for the model-language tests: parsing strings, writing temporary
// .model files, running the whole pipeline, and printing expressions compactly.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type * as A from "../../src/dsl/ast.js";
import { DiagnosticBag, DiagnosticError, type Diagnostic } from "../../src/dsl/diagnostics.js";
import { frontend } from "../../src/dsl/frontend.js";
import { parseModule } from "../../src/dsl/parser.js";
import type { SourceSet } from "../../src/dsl/source.js";
import { lowerProgram, type Lowered, type LowerOptions } from "../../src/ir/lower.js";

export const REPO = join(import.meta.dirname, "..", "..");
export const SPEC_DIR = join(REPO, "specs");

/** Parses `text`; returns the AST and every diagnostic (lexical and syntactic). */
export function parse(text: string, file = "t.model"): { ast: A.ModuleAst; diags: Diagnostic[] } {
  const bag = new DiagnosticBag();
  const ast = parseModule(text, file, bag);
  return { ast, diags: bag.items };
}

/** A LISP-like rendering of an expression that makes grouping visible: `a - b - c` is `(- (- a b) c)`. */
export function sx(e: A.Expr): string {
  switch (e.kind) {
    case "number":
      return e.text;
    case "string":
      return JSON.stringify(e.value);
    case "bool":
      return String(e.value);
    case "name":
      return e.name;
    case "member":
      return `(. ${sx(e.object)} ${e.name})`;
    case "index":
      return `([] ${sx(e.object)} ${sx(e.index)})`;
    case "unary":
      return `(neg ${sx(e.operand)})`;
    case "binary":
      return `(${e.op} ${sx(e.left)} ${sx(e.right)})`;
    case "list":
      return `[${e.items.map(sx).join(" ")}]`;
    case "call": {
      const args = e.args
        .map((a) => ` ${a.name !== undefined ? `${a.name}=` : ""}${sx(a.value)}`)
        .join("");
      return `(call ${e.callee}${args}${e.scope ? ` as ${e.scope.join(".")}` : ""})`;
    }
  }
}

/** A fresh temporary folder. */
export function tempDir(prefix = "gptc-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `files` (name -> text) into a fresh temporary folder; returns the path of the first. */
export function writeModels(files: Record<string, string>): { dir: string; root: string } {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return { dir, root: join(dir, Object.keys(files)[0]) };
}

export interface PipelineResult {
  /** Which stage stopped, or "ok". */
  stage: "frontend" | "lower" | "ok";
  diagnostics: Diagnostic[];
  lowered?: Lowered;
  sources: SourceSet;
}

/**
 * Front end, then lowering. Diagnostics of either stage are returned; any other
 * exception propagates (that is a bug in gptc).
 */
export function compile(path: string, opts: LowerOptions = {}): PipelineResult {
  const fe = frontend(path);
  if (!fe.program)
    return { stage: "frontend", diagnostics: fe.diagnostics.items, sources: fe.sources };
  try {
    const lowered = lowerProgram(fe.program, opts);
    return { stage: "ok", diagnostics: fe.diagnostics.items, lowered, sources: fe.sources };
  } catch (e) {
    if (e instanceof DiagnosticError)
      return { stage: "lower", diagnostics: e.diagnostics, sources: fe.sources };
    throw e;
  }
}

/** Writes one model file and compiles it. */
export function compileText(
  text: string,
  opts: LowerOptions = {},
  extra: Record<string, string> = {},
): PipelineResult {
  const { root } = writeModels({ "main.model": text, ...extra });
  return compile(root, opts);
}

/** `line:col message` of each diagnostic, for compact assertions. */
export function where(ds: Diagnostic[]): string[] {
  return ds.map((d) => `${d.span ? `${d.span.line}:${d.span.col}` : "-"} ${d.message}`);
}
