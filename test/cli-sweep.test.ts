// Every command of the CLI with its defaults on every shipped spec, as a new
// user would first type them: no "internal error" ever, and no non-zero exit
// the user could not have avoided (a refusal must be one clear line that says
// what to pass). One at a time: gpt2-small and llama-style train at their real
// sizes, and two cores shared by several trainings only slow each one down.
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startGptc, type CliRun as Run } from "./helpers/hardening.js";
import { REPO, tempDir } from "./helpers/train.js";

const gptc = (args: string[]): Promise<Run> => startGptc(args).done;

const specs = readdirSync(join(REPO, "specs")).filter((f) => f.endsWith(".model"));
const tmp = tempDir("gptc-sweep-");
// gpt2-small's and llama-style's run folders: ~3 GB a run, which fills a disk in a few.
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Exit 0, and nothing on stderr that reads as a crash. */
function clean(r: Run): void {
  expect(r.stderr).not.toContain("internal error");
  expect(r.stderr).not.toMatch(/^ {4}at /m);
  expect(r.status, r.stderr).toBe(0);
}

describe.each(specs)("%s with every command's defaults", (file) => {
  const spec = join("specs", file);
  const name = file.replace(/\.model$/, "");

  it("check, compile and graph succeed", async () => {
    clean(await gptc(["check", spec]));
    clean(await gptc(["compile", spec, "-o", join(tmp, name, "build")]));
    clean(await gptc(["graph", spec]));
  }, 300_000);

  it("train --steps 2 succeeds and generate samples from its run folder", async () => {
    const out = join(tmp, name, "run");
    const trained = await gptc(["train", spec, "--steps", "2", "--out", out]);
    clean(trained);
    expect(trained.stderr).toContain("at step 2");
    expect(trained.stdout).toContain("--- sample 1 ---");
    clean(await gptc(["generate", out, "--max-new-tokens", "4"]));
  }, 1_200_000);

  it("generate from the spec succeeds, or refuses in one line naming both vocabularies", async () => {
    const r = await gptc(["generate", spec, "--prompt", "Hello there", "--max-new-tokens", "4"]);
    expect(r.stderr).not.toContain("internal error");
    if (r.status === 0) {
      expect(r.stdout).toMatch(/^Hello there/);
      return;
    }
    // A spec whose vocabulary is fixed and smaller than GPT-2's: a clear refusal.
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^gptc: error: the gpt2 tokenizer has 50257 ids but \w+'s vocabulary is \d+: .*--tokenizer/,
    );
  }, 300_000);
});
