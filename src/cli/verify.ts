// `gptc verify FIXTURE_DIR...`: runs PyTorch reference fixtures and prints
// PASS/FAIL per quantity; exits 1 if anything fails.
import type { Command } from "commander";
import { verify } from "../api/verify.js";
import { createBackend } from "../runtime/backend.js";
import { formatChecks } from "../runtime/verify.js";
import { addBackendFlag, backendOf, type BackendFlags } from "./options.js";

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
    .action(async (dirs: string[], flags: BackendFlags & { spec?: string }) => {
      const backend = await createBackend(backendOf(flags), { threads: flags.threads });
      process.stderr.write(`gptc: backend ${backend.describe}\n`);
      let failed = 0;
      for (const dir of dirs) {
        const r = await verify(dir, {
          backend,
          spec: flags.spec ? { file: flags.spec } : undefined,
        });
        process.stdout.write(formatChecks(dir, backend.name, r.checks) + "\n");
        failed += r.checks.filter((c) => !c.pass).length;
      }
      if (failed) process.exit(1);
    });
}
