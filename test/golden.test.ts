// Golden IR: the compiler's output for every shipped spec, compared exactly,
// down to every kernel's IR (kernels.txt). `npm run golden:update` rewrites
// the files, so a compiler change shows up as a reviewable diff of what it
// emits; without it a missing file is a failure, not a new golden.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import { DiagnosticError } from "../src/dsl/diagnostics.js";
import { frontend } from "../src/dsl/frontend.js";
import { lowerProgram } from "../src/ir/lower.js";
import {
  compileModel,
  renderArtifact,
  artifactFile,
  type ArtifactKind,
} from "../src/api/artifacts.js";

const update = process.env.GOLDEN_UPDATE === "1";
const stages: ArtifactKind[] = ["ir", "ir-opt", "ir-train", "kernels", "plan"];
const specs = readdirSync("specs")
  .filter((f) => f.endsWith(".model"))
  .sort();

describe("golden IR", () => {
  for (const spec of specs) {
    it(`${spec} matches test/golden/${basename(spec, ".model")}`, async () => {
      const fe = frontend(join("specs", spec));
      if (!fe.program) throw new DiagnosticError(fe.diagnostics.items);
      const c = compileModel(lowerProgram(fe.program), { batch: 2, seq: 16 });
      const dir = join("test", "golden", basename(spec, ".model"));
      if (update) mkdirSync(dir, { recursive: true });
      for (const stage of stages) {
        const file = join(dir, artifactFile[stage]);
        const text = await renderArtifact(stage, c, fe.program);
        if (update) writeFileSync(file, text);
        // A missing file fails too: only an explicit update writes one.
        expect(existsSync(file), `${file} is missing: run npm run golden:update`).toBe(true);
        expect(text, `${file} differs: run npm run golden:update and review the diff`).toBe(
          readFileSync(file, "utf8"),
        );
      }
    });
  }
});
