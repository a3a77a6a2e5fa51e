// Every example in examples/ runs with its one command at a small size
// (SMALL=1), each in its own output folder, and shows what its README says.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startCommand, type CliRun as Run } from "./helpers/hardening.js";
import { tempDir } from "./helpers/train.js";

/** Runs an example's command in the repository, at its small size. */
const run = (cmd: string, args: string[], env: Record<string, string>): Promise<Run> =>
  startCommand(cmd, args, { SMALL: "1", ...env }).done;

const ok = (r: Run) => expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
const out = tempDir("gptc-examples-");

describe("examples/", () => {
  it("new-architecture: checks, draws, trains and samples a model not among the specs", async () => {
    const dir = join(out, "parallel");
    const r = await run("bash", ["examples/new-architecture/run.sh"], { OUT: dir });
    ok(r);
    expect(r.stdout).toMatch(/model parallel_gpt: [\d,]+ parameters/);
    expect(readFileSync(`${dir}.mmd`, "utf8")).toMatch(/^flowchart/m);
    expect(r.stderr).toContain("at step 20");
    expect(r.stdout).toMatch(/^The jury/m);
  }, 240_000);

  it("fine-tune: --init from a Hugging Face folder, trains on the text folder, samples", async () => {
    const dir = join(out, "fine-tune");
    const r = await run("bash", ["examples/fine-tune/run.sh"], { OUT: dir });
    ok(r);
    // The stand-in pretrained folder is in Hugging Face's format.
    const config = JSON.parse(readFileSync(join(dir, "pretrained", "config.json"), "utf8"));
    expect(config.model_type).toBe("gpt2");
    expect(existsSync(join(dir, "tuned", "checkpoint.safetensors"))).toBe(true);
    expect(r.stderr).toContain("examples/fine-tune/text");
    expect(r.stdout).toMatch(/^The court/m);
  }, 240_000);

  it("library: a TypeScript program compiles an inline spec, trains, streams a sample", async () => {
    const r = await run(process.execPath, ["--import", "tsx", "examples/library/main.ts"], {});
    ok(r);
    expect(r.stdout).toMatch(/^silu_gpt: [\d,]+ parameters/m);
    expect(r.stdout).toMatch(/^step 10: loss [\d.]+, val [\d.]+/m);
    expect(r.stdout).toMatch(/^sample: The jury/m);
  }, 240_000);

  it("compiler-output: writes every artifact, draws diagrams, and passes the PyTorch fixture", async () => {
    const dir = join(out, "compiler-output");
    const r = await run("bash", ["examples/compiler-output/run.sh"], { OUT: dir });
    ok(r);
    for (const f of [
      "forward.ir",
      "forward-opt.ir",
      "train.ir",
      "kernels.txt",
      "plan.txt",
      "blocks.mmd",
      "kernels.dot",
    ])
      expect(existsSync(join(dir, f)), f).toBe(true);
    expect(r.stdout).toContain("PASS");
    expect(r.stdout).not.toContain("FAIL");
  }, 240_000);
});
