// Model options that come from outside the spec: `--set name=value` pairs and
// a Hugging Face config.json. Shared by the library and the CLI.
import { readFileSync } from "node:fs";
import { UsageError } from "../errors.js";

/** Parses `name=value` items (the CLI's repeatable `--set`). */
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
