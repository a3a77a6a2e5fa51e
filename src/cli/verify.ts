// `gptc verify FIXTURE_DIR...`: runs PyTorch reference fixtures and prints
// PASS/FAIL per quantity; exits 1 if anything fails.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { frontend } from "../dsl/frontend.js";
import { specsDir } from "../dsl/load.js";
import { DiagnosticError } from "../dsl/diagnostics.js";
import { lowerProgram } from "../ir/lower.js";
import { compileGraphs } from "../ir/pipeline.js";
import type { Backend } from "../runtime/backend.js";
import { Session } from "../runtime/session.js";
import { formatChecks, verifyFixture } from "../runtime/verify.js";
import { weightSpecs } from "../runtime/weights.js";
import { addBackendFlag, openBackend } from "./backend-flag.js";
import { reportAndExit, UsageError } from "./errors.js";
import { readConfig } from "./load-model.js";

const specForModelType: Record<string, string> = { gpt2: "gpt2-small.model" };

/** The spec's own GELU, evaluated on the backend (for the fixture's gelu_new_samples). */
function geluProbe(backend: Backend) {
  return async (x: Float32Array): Promise<Float32Array> => {
    const text =
      'import "std/nn.model"\nmodel gelu_probe {\n  input x: float[N]\n  output y = gelu(x)\n}\n';
    const fe = frontend(join(specsDir, "gelu-probe.model"), text);
    if (!fe.program) throw new DiagnosticError(fe.diagnostics.items);
    const session = new Session(compileGraphs(lowerProgram(fe.program)), backend);
    try {
      return (await session.forward(new Map(), { x }, { N: x.length })).y;
    } finally {
      session.destroy();
    }
  };
}

export function registerVerify(program: Command): void {
  addBackendFlag(
    program
      .command("verify")
      .argument(
        "<fixtures...>",
        "fixture folders (config.json, model.safetensors, case.json, expected.safetensors)",
      ),
  )
    .description("check a compiled model against PyTorch reference fixtures")
    .option("--spec <file>", "the spec to compile (default: from config.json's model_type)")
    .action(
      async (dirs: string[], flags: { spec?: string; backend?: string; threads?: boolean }) => {
        const backend = await openBackend(flags);
        let failed = 0;
        for (const dir of dirs) {
          if (!existsSync(join(dir, "config.json")))
            throw new UsageError(`${dir} is not a fixture folder (no config.json)`);
          const config = readConfig(join(dir, "config.json"));
          const type = String(config.model_type ?? "");
          const spec =
            flags.spec ??
            (specForModelType[type] ? join(specsDir, specForModelType[type]) : undefined);
          if (!spec)
            throw new UsageError(`${dir}: model_type '${type}' has no default spec; pass --spec`);
          const fe = frontend(resolve(spec));
          if (!fe.program) reportAndExit(new DiagnosticError(fe.diagnostics.items), fe.sources);
          let lowered, decode;
          try {
            lowered = lowerProgram(fe.program, { config });
            decode = lowerProgram(fe.program, { config, decode: true });
          } catch (e) {
            reportAndExit(e, fe.sources);
          }
          const checks = await verifyFixture({
            dir,
            graphs: compileGraphs(lowered, decode),
            specs: weightSpecs(lowered.graph),
            backend,
            gelu: geluProbe(backend),
          });
          process.stdout.write(formatChecks(dir, backend.name, checks) + "\n");
          failed += checks.filter((c) => !c.pass).length;
        }
        if (failed) process.exit(1);
      },
    );
}
