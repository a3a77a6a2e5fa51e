// `gptc check` as a user runs it: a real process, its exit code, stdout and stderr.
// Each spawn costs about a second (tsx compiles the CLI), so the runs start together
// once and the tests read their results.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { REPO, tempDir } from "./helpers/dsl.js";

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function gptc(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.GPTC_DEBUG;
    const child = spawn(process.execPath, [join(REPO, "bin", "gptc.js"), ...args], {
      cwd: REPO,
      env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const dir = tempDir("gptc-cli-");
const bad = join(dir, "bad.model");
writeFileSync(
  bad,
  [
    'import "std/nn.model"',
    "model m {",
    "  input x: [B, 8]",
    "  y = layernrm(x)",
    "  output o = y * dpth",
    "}",
    "",
  ].join("\n"),
);
const shape = join(dir, "shape.model");
writeFileSync(
  shape,
  "model m {\n  input x: [B, T, 768]\n  weight w: [512, 768]\n  output y = x @ w\n}\n",
);

const runs: Record<string, Run> = {};
const commands: Record<string, string[]> = {
  good: ["check", "specs/gpt2-small.model"],
  errors: ["check", bad],
  shape: ["check", shape],
  missing: ["check", join(dir, "missing.model")],
  unknownOption: ["check", "--bogus", "specs/gpt2-small.model"],
  json: [
    "check",
    "specs/gpt2-small.model",
    "--config",
    "test/fixtures/tiny/config.json",
    "--set",
    "layers=1",
    "--json",
  ],
};

beforeAll(async () => {
  const names = Object.keys(commands);
  const results = await Promise.all(names.map((n) => gptc(commands[n])));
  names.forEach((n, i) => (runs[n] = results[i]));
}, 60_000);

/** No JavaScript stack trace may reach a user. */
function noStack(r: Run): void {
  expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/internal error/);
}

describe("gptc check", () => {
  it("a good spec: exit 0 and the parameter count", () => {
    const r = runs.good;
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("model gpt2: 124,439,808 parameters in 148 weights");
    expect(r.stdout).toContain("outputs: logits: f32[B, T, 50257], loss: f32[]");
  });

  it("a spec with errors: exit 1, every error as file:line:col with a caret, no stack", () => {
    const r = runs.errors;
    expect(r.status).toBe(1);
    expect(r.stdout).toBe("");
    noStack(r);
    const lines = r.stderr.split("\n");
    const file = lines[0].split(":")[0];
    expect(file).toMatch(/bad\.model$/);
    expect(r.stderr).toContain(
      [
        `${file}:4:7: error: unknown function 'layernrm'`,
        " 4 |   y = layernrm(x)",
        "   |       ^^^^^^^^",
        "  hint: did you mean 'layernorm'?",
      ].join("\n"),
    );
    expect(r.stderr).toContain(
      `${file}:5:18: error: unknown name 'dpth'\n 5 |   output o = y * dpth\n   |                  ^^^^`,
    );
    expect(r.stderr.trimEnd().endsWith("2 errors")).toBe(true);
  });

  it("a shape error found while lowering: exit 1, at the '@'", () => {
    const r = runs.shape;
    expect(r.status).toBe(1);
    noStack(r);
    expect(r.stderr).toMatch(
      /shape\.model:4:16: error: '@' inner dimensions differ: \[B, T, 768\] @ \[512, 768\]\n/,
    );
    expect(r.stderr).toContain(" 4 |   output y = x @ w\n   |                ^\n");
  });

  it("a missing file: exit 1 and a clear message", () => {
    const r = runs.missing;
    expect(r.status).toBe(1);
    noStack(r);
    expect(r.stderr.trim()).toBe(
      `error: cannot read '${join(dir, "missing.model")}': no such file`,
    );
  });

  it("an unknown option: exit 1 and the usage", () => {
    const r = runs.unknownOption;
    expect(r.status).toBe(1);
    noStack(r);
    expect(r.stderr).toContain("unknown option '--bogus'");
    expect(r.stdout).toBe("");
  });

  it("--json prints a summary that parses; --config and --set apply", () => {
    const r = runs.json;
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout) as {
      name: string;
      parameters: number;
      weights: number;
      params: { name: string; value: number; source: string }[];
      outputs: { name: string; type: string }[];
    };
    expect(s.name).toBe("gpt2");
    // The tiny fixture's sizes with one layer: 28,544 less one layer of 12,704.
    expect(s.parameters).toBe(15_840);
    expect(s.weights).toBe(2 + 12 + 2);
    expect(s.params.find((p) => p.name === "layers")).toEqual({
      name: "layers",
      value: 1,
      source: "--set",
    });
    expect(s.params.find((p) => p.name === "d")).toEqual({
      name: "d",
      value: 32,
      source: "config",
    });
    expect(s.outputs).toEqual([
      { name: "logits", type: "f32[B, T, 64]" },
      { name: "loss", type: "f32[]" },
    ]);
  });
});
