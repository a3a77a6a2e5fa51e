// gptc as a user installs it: `npm pack` (which builds dist/ through prepack)
// in a copy of the repository, the tarball installed with production
// dependencies only into an empty project, then the `gptc` bin (check, train,
// generate) and a TypeScript program type-checked against the installed .d.ts
// that compiles a model written inline, trains it and generates.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO, tempDir } from "./helpers/train.js";

const tmp = tempDir("gptc-package-");
// The copy of the repository and the installed app: ~180 MB a run.
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const app = join(tmp, "app");

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    npm_config_audit: "false",
    npm_config_fund: "false",
  };
  delete env.GPTC_DEBUG;
  // The project's own node_modules/.bin must not leak into the app's PATH.
  env.PATH = (env.PATH ?? "")
    .split(":")
    .filter((p) => !p.includes("node_modules"))
    .join(":");
  return spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout: 240_000 });
}

function ok(r: SpawnSyncReturns<string>): string {
  expect(r.status, `${r.stderr}\n${r.stdout}`).toBe(0);
  return r.stdout;
}

let tarball = "";

beforeAll(() => {
  // A copy of the checkout (tracked files and new ones not ignored): packing
  // builds dist/ there, never under the repository other tests run from.
  const copy = join(tmp, "gptc");
  const files = ok(run("git", ["ls-files", "-co", "--exclude-standard", "-z"], REPO))
    .split("\0")
    .filter(Boolean);
  for (const f of files) cpSync(join(REPO, f), join(copy, f), { recursive: true });
  symlinkSync(join(REPO, "node_modules"), join(copy, "node_modules"));
  ok(run("npm", ["pack", "--pack-destination", tmp], copy));
  tarball = join(
    tmp,
    readdirSync(tmp).find((f) => f.endsWith(".tgz"))!,
  );
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ private: true, type: "module" }));
  // Production dependencies only; optional ones (gpu.js's native `gl`) are left
  // out to keep the test short: the webasm and cpu backends need none of them.
  ok(
    run(
      "npm",
      [
        "install",
        "--omit=dev",
        "--omit=optional",
        "--prefer-offline",
        "--no-package-lock",
        tarball,
      ],
      app,
    ),
  );
}, 300_000);

describe("the npm package", () => {
  it("holds the bin, the bundle, the types and the specs; no tests, no bench, no sources", () => {
    const list = ok(run("tar", ["-tzf", tarball], tmp)).split("\n");
    expect(list).toContain("package/bin/gptc.js");
    expect(list).toContain("package/dist/gptc.js");
    expect(list).toContain("package/dist/index.js");
    expect(list).toContain("package/dist/types/index.d.ts");
    expect(list).toContain("package/specs/std/nn.model");
    for (const f of list) expect(f).not.toMatch(/^package\/(test|bench|src|scripts)\//);
  });

  it("installs without dev dependencies (no tsx, no prettier, no typescript)", () => {
    const installed = readdirSync(join(app, "node_modules"));
    expect(installed).toContain("gptc");
    expect(installed).toContain("gpu.js");
    for (const dev of ["tsx", "prettier", "typescript", "vitest", "esbuild"])
      expect(installed).not.toContain(dev);
  });

  it("npx gptc check prints gpt2-small's summary", () => {
    const out = ok(run("npx", ["gptc", "check", "node_modules/gptc/specs/gpt2-small.model"], app));
    expect(out).toContain("124,439,808 parameters");
  });

  it("npx gptc compile --emit kernels-js works without prettier", () => {
    const out = ok(
      run(
        "npx",
        [
          "gptc",
          "compile",
          "node_modules/gptc/specs/gpt2-tiny.model",
          "--emit",
          "kernels-js",
          "--stdout",
        ],
        app,
      ),
    );
    expect(out).toContain("export const forward = [");
  });

  it("npx gptc train, then generate from the run folder", () => {
    const trained = run(
      "npx",
      [
        "gptc",
        "train",
        "node_modules/gptc/specs/gpt2-tiny.model",
        "--tokenizer",
        "char",
        "--steps",
        "3",
        "--batch",
        "2",
        "--seq",
        "16",
        "--backend",
        "webasm",
        "--out",
        "run",
        "--samples",
        "0",
      ],
      app,
    );
    ok(trained);
    expect(trained.stderr).toContain("saved run/checkpoint.safetensors at step 3");
    const gen = run(
      "npx",
      [
        "gptc",
        "generate",
        "run",
        "--prompt",
        "The",
        "--max-new-tokens",
        "8",
        "--backend",
        "webasm",
      ],
      app,
    );
    expect(ok(gen)).toMatch(/^The/);
    expect(gen.stderr).toMatch(/\d+ tokens in/);
  });

  it("a TypeScript program type-checks against the .d.ts, compiles an inline model, trains and generates", () => {
    writeFileSync(
      join(app, "main.ts"),
      `import { compile, buildCharTokenizer, DiagnosticError, GptcError, memoryTokens, type Dataset } from "gptc";

// A model written here, not shipped with gptc: a two-layer MLP language model.
const spec = \`import "std/nn.model"
model bigram_mlp {
  param vocab = 16 from "vocab_size"
  param d = 32
  input tokens: int[B, T]
  h = relu(linear(embedding(tokens, vocab, d) as emb, 4 * d) as up)
  output logits: [B, T, vocab] = linear(h, vocab) as head
  input targets: int[B, T]
  loss = cross_entropy(logits, targets)
}
\`;

try {
  compile("model broken { output y = nope(1) }");
  throw new Error("a broken spec compiled");
} catch (e) {
  if (!(e instanceof DiagnosticError) || e.code !== "diagnostics") throw e;
  const d = e.diagnostics[0];
  console.log(\`diagnostic \${d.span?.line}:\${d.span?.col} \${d.message}\`);
}

const text = "the cat sat on the mat. ".repeat(200);
const tokenizer = buildCharTokenizer([text]);
const ids = Uint32Array.from(tokenizer.encode(text));
const data: Dataset = {
  tokenizer,
  train: memoryTokens(ids.subarray(0, 4000)),
  val: memoryTokens(ids.subarray(4000)),
  source: "inline text",
  cached: false,
};
const model = compile(spec, { vocabSize: tokenizer.vocabSize });
console.log(\`model \${model.name} \${model.parameters}\`);
const session = await model.open({ backend: "webasm", tokenizer, seed: 1 });
const steps: number[] = [];
const summary = await session.train(data, {
  steps: 30, batch: 4, seq: 8, lr: 1e-2, evalEvery: 0,
  onStep: (r) => steps.push(r.loss),
});
console.log(\`loss \${steps[0].toFixed(3)} -> \${summary.loss!.toFixed(3)}\`);
let streamed = "";
for await (const t of session.stream("the ", { maxNewTokens: 12, temperature: 0 })) streamed += t.text;
console.log(\`sample \${JSON.stringify(streamed)}\`);
session.close();
const err: GptcError | undefined = undefined;
void err;
`,
    );
    writeFileSync(
      join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          skipLibCheck: false,
          typeRoots: [join(REPO, "node_modules/@types")],
          types: ["node"],
          outDir: "out",
        },
        files: ["main.ts"],
      }),
    );
    ok(run(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "-p", "."], app));
    const out = ok(run(process.execPath, ["out/main.js"], app));
    expect(out).toMatch(/^diagnostic 1:\d+ /m);
    expect(out).toMatch(/^model bigram_mlp \d+$/m);
    const [, first, last] = /^loss ([\d.]+) -> ([\d.]+)$/m.exec(out)!;
    expect(Number(last)).toBeLessThan(Number(first));
    expect(out).toMatch(/^sample ".+"$/m);
  });
});
