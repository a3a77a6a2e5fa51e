// The PyTorch fixtures through the whole stack (spec -> IR -> fusion -> gpu.js
// kernels -> runtime) on the CPU backends. CI runs the same on headlessgl.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { frontend } from "../src/dsl/frontend.js";
import { lowerProgram } from "../src/ir/lower.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { createBackend } from "../src/runtime/backend.js";
import { verifyFixture } from "../src/runtime/verify.js";
import { weightSpecs } from "../src/runtime/weights.js";
import { readConfig } from "../src/api/config.js";

const fixtures = readdirSync("test/fixtures").map((d) => join("test/fixtures", d));

describe.each(["cpu", "webasm"] as const)("gptc verify on %s", (name) => {
  for (const dir of fixtures) {
    it(`${dir} passes every check`, async () => {
      const fe = frontend("specs/gpt2-small.model");
      const config = readConfig(join(dir, "config.json"));
      const lowered = lowerProgram(fe.program!, { config });
      const decode = lowerProgram(fe.program!, { config, decode: true });
      const backend = await createBackend(name);
      const checks = await verifyFixture({
        dir,
        // PyTorch's fixtures are made in evaluation mode: no dropout when training either.
        graphs: compileGraphs(lowered, decode, { dropout: false }),
        specs: weightSpecs(lowered.graph),
        backend,
      });
      const failed = checks.filter((c) => !c.pass).map((c) => `${c.name}: ${c.rel}`);
      expect(failed).toEqual([]);
      expect(checks.length).toBeGreaterThan(30);
    });
  }
});
