// --backend, shared by every command that runs a model.
import type { Command } from "commander";
import { backendNames, createBackend, type Backend, type BackendName } from "../runtime/backend.js";
import { UsageError } from "./errors.js";

export function addBackendFlag(cmd: Command): Command {
  return cmd
    .option("--backend <name>", `auto, ${backendNames.join(", ")}`, "auto")
    .option("--threads", "webasm: split kernels across worker threads");
}

export async function openBackend(flags: {
  backend?: string;
  threads?: boolean;
}): Promise<Backend> {
  const name = flags.backend ?? "auto";
  if (name !== "auto" && !(backendNames as readonly string[]).includes(name))
    throw new UsageError(`--backend ${name}: expected auto, ${backendNames.join(", ")}`);
  // A BackendError is reported as a user error by the CLI's error handler.
  return createBackend(name as BackendName | "auto", { threads: flags.threads });
}
