// How the CLI ends: diagnostics and every GptcError (bad input, missing file,
// a model that does not fit) exit 1 with a clear message; anything else is a
// bug in gptc and says so (exit 2, stack only with GPTC_DEBUG=1).
import { DiagnosticError, formatDiagnostics } from "../dsl/diagnostics.js";
import { SourceSet } from "../dsl/source.js";
import { GptcError } from "../errors.js";

export { UsageError } from "../errors.js";

export function reportAndExit(err: unknown, sources?: SourceSet): never {
  if (err instanceof DiagnosticError) {
    process.stderr.write(
      formatDiagnostics(err.diagnostics, sources ?? err.sources ?? new SourceSet()) + "\n",
    );
    const n = err.diagnostics.filter((d) => d.severity === "error").length;
    if (n > 1) process.stderr.write(`${n} errors\n`);
    process.exit(1);
  }
  if (err instanceof GptcError) {
    process.stderr.write(`gptc: error: ${err.message}\n`);
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
