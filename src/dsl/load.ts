// Reads a model file and everything it imports into one Program: the root
// module's model and presets, and the functions of every module.
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FnDef, ImportDecl, ModelDef, ModuleAst, ParamValueAst, PresetDef } from "./ast.js";
import { DiagnosticBag, didYouMean } from "./diagnostics.js";
import { parseModule } from "./parser.js";
import { SourceSet } from "./source.js";

/** The specs shipped with gptc, and their standard library (imported as "std/..."). */
export const specsDir = findSpecs(dirname(fileURLToPath(import.meta.url)));

/** The package's specs folder, from src/dsl or from the bundle in dist/. */
function findSpecs(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "specs", "std"))) return join(dir, "specs");
    if (dirname(dir) === dir) return resolve(from, "../../specs");
  }
}
/** gptc's standard library of spec functions (`import "std/nn.model"` resolves here). */
export const stdlibDir = resolve(specsDir, "std");

/** A spec and everything it imports, parsed: what the front end hands to lowering. */
export interface Program {
  /** The AST of the file compiled. */
  root: ModuleAst;
  /** Every module read (the root and its imports), each once, imports before their importers. */
  modules: ModuleAst[];
  /** The model to compile: the root file's, or the one it derives from (with a body). */
  model?: ModelDef;
  /** The root file's model as written (differs from `model` when it is derived). */
  rootModel?: ModelDef;
  /** Parameter values of `model x = base { ... }` chains, base first, so later ones win. */
  derivedValues: ParamValueAst[];
  /** The functions of every module, by name (names are global across modules). */
  functions: Map<string, FnDef>;
  /** The root file's presets (`preset medium { ... }`), by name. */
  presets: Map<string, PresetDef>;
  /** The text of every file read, so diagnostics can quote it. */
  sources: SourceSet;
}

/** A readable name for a file in messages: relative to the working directory when shorter. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith("..") ? rel : path;
}

/**
 * Reads a spec file by absolute path: the file system by default; a program
 * that holds its specs in memory (the library's `files`, a browser) passes its
 * own. Throws with a short reason ("no such file") when it cannot.
 */
export type SpecReader = (absolutePath: string) => string;

/** The file system as a SpecReader. */
export function readSpecFile(abs: string): string {
  if (!existsSync(abs)) throw new Error("no such file");
  if (statSync(abs).isDirectory()) throw new Error("it is a folder, not a file");
  return readFileSync(abs, "utf8");
}

function resolveImport(from: string, path: string): string {
  if (path.startsWith("std/")) return resolve(stdlibDir, path.slice(4));
  return resolve(dirname(from), path);
}

/** Loads `path` and its imports. Problems go into `diags`; the result is partial if there are errors. */
export function loadProgram(
  path: string,
  diags: DiagnosticBag,
  sources = new SourceSet(),
  /** Text of the root file, when it is not on disk (its imports still are). */
  rootText?: string,
  readFile: SpecReader = readSpecFile,
): Program {
  const modules: ModuleAst[] = [];
  const loaded = new Map<string, ModuleAst>();
  const stack: string[] = [];

  const read = (abs: string, via?: ImportDecl): ModuleAst | undefined => {
    const file = displayPath(abs);
    let text: string;
    if (rootText !== undefined && abs === resolve(path)) {
      sources.add(file, rootText);
      return parseModule(rootText, file, diags);
    }
    try {
      text = readFile(abs);
    } catch (e) {
      diags.error(`cannot read '${file}': ${(e as Error).message}`, via?.span);
      return undefined;
    }
    sources.add(file, text);
    return parseModule(text, file, diags);
  };

  const visit = (abs: string, via?: ImportDecl): ModuleAst | undefined => {
    if (stack.includes(abs)) {
      const cycle = [...stack.slice(stack.indexOf(abs)), abs].map(displayPath).join(" -> ");
      diags.error(
        `import cycle: ${cycle}`,
        via?.span,
        "a file cannot import itself, directly or through others",
      );
      return undefined;
    }
    const done = loaded.get(abs);
    if (done) return done;
    const mod = read(abs, via);
    if (!mod) return undefined;
    loaded.set(abs, mod);
    stack.push(abs);
    for (const item of mod.items)
      if (item.kind === "import") visit(resolveImport(abs, item.path), item);
    stack.pop();
    modules.push(mod);
    return mod;
  };

  const rootAbs = resolve(path);
  const root = visit(rootAbs) ?? { file: displayPath(rootAbs), items: [], comments: [] };

  const functions = new Map<string, FnDef>();
  for (const mod of modules)
    for (const item of mod.items) {
      if (item.kind !== "fn") continue;
      const prev = functions.get(item.name);
      if (prev && prev !== item) {
        diags.add({
          severity: "error",
          message: `function '${item.name}' is defined twice`,
          span: item.nameSpan,
          notes: [{ message: "first defined here", span: prev.nameSpan }],
        });
        continue;
      }
      functions.set(item.name, item);
    }

  const presets = new Map<string, PresetDef>();
  let model: ModelDef | undefined;
  for (const item of root.items) {
    if (item.kind === "model") {
      if (model)
        diags.add({
          severity: "error",
          message: `a file holds one model; '${item.name}' is a second one`,
          span: item.nameSpan,
          notes: [{ message: `'${model.name}' is defined here`, span: model.nameSpan }],
        });
      else model = item;
    } else if (item.kind === "preset") {
      if (presets.has(item.name))
        diags.error(`preset '${item.name}' is defined twice`, item.nameSpan);
      presets.set(item.name, item);
    }
  }
  // Models of every module, for `model tiny = gpt2 { ... }`.
  const models = new Map<string, ModelDef>();
  for (const mod of modules)
    for (const item of mod.items) if (item.kind === "model") models.set(item.name, item);
  const rootModel = model;
  const derivedValues: ParamValueAst[] = [];
  const seen = new Set<string>();
  while (model?.derived) {
    seen.add(model.name);
    derivedValues.unshift(...model.derived.values);
    const base = models.get(model.derived.base);
    if (!base || seen.has(base.name)) {
      diags.error(
        base
          ? `model '${model.name}' derives from itself`
          : `unknown model '${model.derived.base}'`,
        model.derived.baseSpan,
        base
          ? undefined
          : (didYouMean(model.derived.base, models.keys()) ?? "import the file that defines it"),
      );
      model = undefined;
      break;
    }
    model = base;
  }
  return { root, modules, model, rootModel, derivedValues, functions, presets, sources };
}
