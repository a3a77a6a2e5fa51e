// Flags shared by several commands: the model flags (--set, --config,
// --preset), --backend/--threads, and number parsers with clear errors.
import type { Command } from "commander";
import { readConfig, parseSets } from "../api/config.js";
import type { CompileOptions } from "../api/compile.js";
import { UsageError } from "../errors.js";
import { backendNames, type BackendName } from "../runtime/backend.js";

export interface ModelFlags {
  set?: string[];
  config?: string;
  preset?: string;
}

/** commander collector for repeatable flags (`--set k=v`, `--prompt`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function addModelFlags(cmd: Command): Command {
  return cmd
    .option("--set <name=value>", "override a parameter (repeatable)", collect)
    .option("--config <config.json>", "read parameters from a Hugging Face config.json")
    .option("--preset <name>", "use a named parameter set of the spec (e.g. medium)");
}

/** The model flags as the library's compile options. */
export function compileOptions(flags: ModelFlags): Omit<CompileOptions, "vocabSize"> {
  return {
    set: parseSets(flags.set),
    config: flags.config ? readConfig(flags.config) : undefined,
    preset: flags.preset,
  };
}

export interface BackendFlags {
  backend?: string;
  threads?: number;
}

export function addBackendFlag(cmd: Command): Command {
  return cmd
    .option("--backend <name>", `auto, ${backendNames.join(", ")}`, "auto")
    .option(
      "--threads <n>",
      "webasm: threads of the WebAssembly engine, 1 or 2 (default: the machine's cores, at most 2)",
      intAtLeast("--threads", 1),
    );
}

export function backendOf(flags: BackendFlags): BackendName | "auto" {
  const name = flags.backend ?? "auto";
  if (name !== "auto" && !(backendNames as readonly string[]).includes(name))
    throw new UsageError(`--backend ${name}: expected auto, ${backendNames.join(", ")}`);
  return name as BackendName | "auto";
}

export function intAtLeast(name: string, min: number) {
  return (text: string): number => {
    const v = Number(text);
    if (!Number.isInteger(v) || v < min)
      throw new UsageError(`${name} must be a whole number >= ${min}, got '${text}'`);
    return v;
  };
}

export const positiveInt = (name: string) => intAtLeast(name, 1);

export function numberAtLeast(name: string, min = -Infinity) {
  return (text: string): number => {
    const v = Number(text);
    if (!Number.isFinite(v) || v < min)
      throw new UsageError(
        `${name} must be a number${min > -Infinity ? ` >= ${min}` : ""}, got '${text}'`,
      );
    return v;
  };
}
