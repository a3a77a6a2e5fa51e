// Shared by every command that compiles a model: --set, --config and --preset
// become lowering options; the front end and lowering run; errors are reported.
import { readFileSync } from "node:fs";
import { DiagnosticError } from "../dsl/diagnostics.js";
import { frontend } from "../dsl/frontend.js";
import type { Program } from "../dsl/load.js";
import type { SourceSet } from "../dsl/source.js";
import { lowerProgram, type Lowered, type LowerOptions } from "../ir/lower.js";
import { reportAndExit, UsageError } from "./errors.js";

export interface ModelFlags {
  set?: string[];
  config?: string;
  preset?: string;
}

/** commander collector for repeatable `--set k=v`. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseSets(items: string[] = []): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`--set ${item}: expected name=value, e.g. --set layers=2`);
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

/** Reads a Hugging Face config.json: a JSON object, or a clear error. */
export function readConfig(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(
      `cannot read config '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`config '${path}' is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new UsageError(`config '${path}' must hold a JSON object`);
  return value as Record<string, unknown>;
}

export function lowerOptions(flags: ModelFlags): LowerOptions {
  return {
    set: parseSets(flags.set),
    config: flags.config ? readConfig(flags.config) : undefined,
    preset: flags.preset,
  };
}

export interface LoadedModel {
  program: Program;
  lowered: Lowered;
  sources: SourceSet;
}

/** Front end + lowering; on any problem prints diagnostics and exits 1. */
export function loadModel(spec: string, flags: ModelFlags): LoadedModel {
  const fe = frontend(spec);
  if (!fe.program) reportAndExit(new DiagnosticError(fe.diagnostics.items), fe.sources);
  try {
    const lowered = lowerProgram(fe.program, lowerOptions(flags));
    return { program: fe.program, lowered, sources: fe.sources };
  } catch (e) {
    reportAndExit(e, fe.sources);
  }
}
