// How the CLI ends: diagnostics and usage errors exit 1 with a clear message;
// anything else is a bug in gptc and says so (exit 2, stack only with GPTC_DEBUG=1).
import { DiagnosticError, formatDiagnostics } from "../dsl/diagnostics.js";
import { SourceSet } from "../dsl/source.js";
import { WriteError } from "../runtime/atomic.js";
import { BackendError } from "../runtime/backend.js";
import { CheckpointError } from "../runtime/checkpoint.js";
import { DataError } from "../runtime/data.js";
import { NumericsError } from "../runtime/executor.js";
import { GenerateError } from "../runtime/generate.js";
import { SafetensorsError } from "../runtime/safetensors.js";
import { CapacityError } from "../runtime/session.js";
import { TokenizerError } from "../runtime/tokenizer.js";
import { TrainError } from "../runtime/trainer.js";
import { FixtureError } from "../runtime/verify.js";
import { WeightError } from "../runtime/weights.js";

/** A problem with what the user asked for (bad flag, missing file). */
export class UsageError extends Error {}

/** Errors about the user's input or machine, raised below the CLI: reported as messages. */
const userErrors = [
  BackendError,
  CapacityError,
  CheckpointError,
  DataError,
  FixtureError,
  GenerateError,
  NumericsError,
  SafetensorsError,
  TokenizerError,
  TrainError,
  WeightError,
  WriteError,
];

export function reportAndExit(err: unknown, sources?: SourceSet): never {
  if (err instanceof DiagnosticError) {
    process.stderr.write(formatDiagnostics(err.diagnostics, sources ?? new SourceSet()) + "\n");
    const n = err.diagnostics.filter((d) => d.severity === "error").length;
    if (n > 1) process.stderr.write(`${n} errors\n`);
    process.exit(1);
  }
  if (err instanceof UsageError || userErrors.some((E) => err instanceof E)) {
    process.stderr.write(`gptc: error: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const e = err as Error;
  process.stderr.write(
    `gptc: internal error: ${e?.message ?? String(err)}\n` +
      "This is a bug in gptc, not in your input. Please report it with the command you ran.\n",
  );
  if (process.env.GPTC_DEBUG) process.stderr.write(`${e?.stack ?? ""}\n`);
  process.exit(2);
}
