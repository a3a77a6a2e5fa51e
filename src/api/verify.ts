// Checking a compiled model against a PyTorch reference fixture (a folder with
// config.json, model.safetensors, case.json and expected.safetensors; see
// test/fixtures/tiny/README.md): logits, loss, gradients, an AdamW step and
// generation, each within the fixture's float32 tolerances.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { specsDir } from "../dsl/load.js";
import { UsageError } from "../errors.js";
import { createBackend, type Backend, type BackendName } from "../runtime/backend.js";
import { Session } from "../runtime/session.js";
import { verifyFixture, type Check } from "../runtime/verify.js";
import { compile, type SpecFile } from "./compile.js";
import { readConfig } from "./config.js";

export type { Check };

const specForModelType: Record<string, string> = { gpt2: "gpt2-small.model" };

/** The spec's own GELU, evaluated on the backend (for the fixture's gelu_new_samples). */
function geluProbe(backend: Backend) {
  return async (x: Float32Array): Promise<Float32Array> => {
    const probe = compile(
      'import "std/nn.model"\nmodel gelu_probe {\n  input x: float[N]\n  output y = gelu(x)\n}\n',
      { path: join(specsDir, "gelu-probe.model") },
    );
    const session = new Session(probe.graphs, backend);
    try {
      return (await session.forward(new Map(), { x }, { N: x.length })).y;
    } finally {
      session.destroy();
    }
  };
}

/** How `verify` runs a fixture; every field is optional. */
export interface VerifyOptions {
  /** Default "auto"; a Backend already created may be given. */
  backend?: BackendName | "auto" | Backend;
  /** The spec to compile (default: from config.json's model_type; gpt2 is gpt2-small.model). */
  spec?: string | SpecFile;
}

/** The outcome of `verify`: every comparison made, and whether all passed. */
export interface VerifyResult {
  /** The fixture folder, as given. */
  dir: string;
  /** The name of the backend that ran (e.g. "webasm"). */
  backend: string;
  /** One per quantity compared, in the order run. */
  checks: Check[];
  /** Every check passed. */
  pass: boolean;
}

/** Runs a PyTorch fixture folder on a backend; one Check per quantity compared. */
export async function verify(dir: string, o: VerifyOptions = {}): Promise<VerifyResult> {
  if (!existsSync(join(dir, "config.json")))
    throw new UsageError(`${dir} is not a fixture folder (no config.json)`);
  const config = readConfig(join(dir, "config.json"));
  const type = String(config.model_type ?? "");
  const spec =
    o.spec ??
    (specForModelType[type] ? { file: join(specsDir, specForModelType[type]) } : undefined);
  if (!spec) throw new UsageError(`${dir}: model_type '${type}' has no default spec; pass a spec`);
  // PyTorch's fixtures are made in evaluation mode: no dropout in any graph.
  const model = compile(spec, { config, dropout: false });
  const backend =
    typeof o.backend === "object" ? o.backend : await createBackend(o.backend ?? "auto");
  const checks = await verifyFixture({
    dir,
    graphs: model.graphs,
    specs: model.weights,
    backend,
    gelu: geluProbe(backend),
  });
  return { dir, backend: backend.name, checks, pass: checks.every((c) => c.pass) };
}
