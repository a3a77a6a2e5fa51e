// `gptc train` and `gptc generate` as a user runs them: a real process, its exit
// code, its output and the files it leaves. A short run, sampling from it, a
// resume, Ctrl-C, and bad input that must end in one clear line (exit 1, no stack).
// Each spawn costs a second or two (tsx compiles the CLI): independent ones run together.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadCheckpoint } from "../src/runtime/checkpoint.js";
import { REPO, tempDir } from "./helpers/train.js";

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const dir = tempDir("gptc-cli-train-");
const cache = join(dir, "cache");
const textFile = join(dir, "text.txt");
const emptyFile = join(dir, "empty.txt");
const run = join(dir, "run");
const TEXT = "the cat sat on the mat and the dog ran to the hat with a bat. ".repeat(24).trim();
writeFileSync(textFile, TEXT);
writeFileSync(emptyFile, "");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function start(args: string[]): { child: ChildProcess; done: Promise<Run> } {
  const env: NodeJS.ProcessEnv = { ...process.env, GPTC_CACHE_DIR: cache };
  delete env.GPTC_DEBUG;
  const child = spawn(process.execPath, [join(REPO, "bin", "gptc.js"), ...args], {
    cwd: REPO,
    env,
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const done = new Promise<Run>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  return { child, done };
}
const gptc = (args: string[]) => start(args).done;

const trainArgs = (out: string, extra: string[] = []) => [
  "train",
  "specs/gpt2-tiny.model",
  "--tokenizer",
  "char",
  "--data",
  textFile,
  "--batch",
  "2",
  "--seq",
  "8",
  "--backend",
  "cpu",
  "--out",
  out,
  ...extra,
];

function logOf(out: string): Record<string, number>[] {
  const file = join(out, "log.jsonl");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, number>);
}

/** Exit 1, one "gptc: error:" line matching `pattern` (and nothing but info lines), no stack. */
function expectCleanError(r: Run, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/^ {4}at /m);
  expect(r.stderr).not.toContain("internal error");
  const lines = r.stderr.split("\n").filter((l) => l.trim() && !/^gptc: backend /.test(l));
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^gptc: error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.status, r.stderr).toBe(1);
}

describe("gptc train, generate, resume", () => {
  const runs: Record<string, Run> = {};
  beforeAll(async () => {
    // The training run, and the bad input that needs no checkpoint, together.
    const spec = "specs/gpt2-tiny.model";
    const [train, noData, emptyData, temp, topP0, topP15] = await Promise.all([
      gptc(
        trainArgs(run, [
          "--steps",
          "6",
          "--eval-every",
          "3",
          "--save-every",
          "3",
          "--samples",
          "1",
        ]),
      ),
      gptc([
        "train",
        spec,
        "--tokenizer",
        "char",
        "--data",
        join(dir, "nope.txt"),
        "--out",
        join(dir, "r1"),
      ]),
      gptc(["train", spec, "--tokenizer", "char", "--data", emptyFile, "--out", join(dir, "r2")]),
      gptc(["generate", spec, "--prompt", "th", "--temperature", "-1"]),
      gptc(["generate", spec, "--prompt", "th", "--top-p", "0"]),
      gptc(["generate", spec, "--prompt", "th", "--top-p", "1.5"]),
    ]);
    Object.assign(runs, { train, noData, emptyData, temp, topP0, topP15 });
  }, 120_000);

  it("trains 6 steps and writes the checkpoint, weights, tokenizer, config, log and curve", () => {
    const r = runs.train;
    expect(r.status, r.stderr).toBe(0);
    for (const f of [
      "checkpoint.safetensors",
      "model.safetensors",
      "tokenizer.json",
      "config.json",
      "log.jsonl",
      "loss.svg",
    ])
      expect(existsSync(join(run, f)), f).toBe(true);
    const log = logOf(run);
    expect(log.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const l of log) expect(Number.isFinite(l.loss)).toBe(true);
    expect(log.filter((l) => l.val_loss !== undefined).map((l) => l.step)).toEqual([3, 6]);
    expect(readFileSync(join(run, "loss.svg"), "utf8")).toMatch(/^<svg/);
    const tok = JSON.parse(readFileSync(join(run, "tokenizer.json"), "utf8"));
    expect(tok.kind).toBe("char");
    const config = JSON.parse(readFileSync(join(run, "config.json"), "utf8"));
    expect(config.model_type).toBe("gpt2");
    expect(config.vocab_size).toBe(tok.chars.length + 1);
    expect(config.n_positions).toBe(32);
    const ck = loadCheckpoint(run);
    expect(ck.state.step).toBe(6);
    expect(ck.state.tokensSeen).toBe(6 * 2 * 8);
    expect(r.stderr).toContain(`on ${textFile}`);
    expect(r.stdout).toMatch(/^--- sample 1 ---\n/);
  });

  it("bad training data: one clear line, exit 1", () => {
    expectCleanError(runs.noData, /--data .*nope\.txt: no such file or folder/);
    expectCleanError(runs.emptyData, /--data .*empty\.txt: no text in it/);
    expect(existsSync(join(dir, "r1", "checkpoint.safetensors"))).toBe(false);
  });

  it("bad sampling flags: one clear line, exit 1", () => {
    expectCleanError(runs.temp, /--temperature must be a number >= 0, got '-1'/);
    expectCleanError(runs.topP0, /--top-p must be in \(0, 1\], got '0'/);
    expectCleanError(runs.topP15, /--top-p must be in \(0, 1\], got '1\.5'/);
  });

  describe("with the trained checkpoint", () => {
    const after: Record<string, Run> = {};
    beforeAll(async () => {
      const [gen, wrongSpec, longPrompt] = await Promise.all([
        gptc([
          "generate",
          run,
          "--prompt",
          "th",
          "--max-new-tokens",
          "5",
          "--temperature",
          "0",
          "--backend",
          "cpu",
        ]),
        gptc([
          "generate",
          "specs/gpt2-small.model",
          "--weights",
          join(run, "model.safetensors"),
          "--prompt",
          "hi",
          "--backend",
          "cpu",
        ]),
        gptc(["generate", run, "--prompt", TEXT.slice(0, 40), "--backend", "cpu"]),
      ]);
      Object.assign(after, { gen, wrongSpec, longPrompt });
    }, 120_000);

    it("generate prints the prompt and up to 5 greedy characters", () => {
      const r = after.gen;
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^th[^\n]{0,5}\n$/);
      expect(r.stderr).not.toContain("error");
    });

    it("weights of another spec: exit 1 with a clear error, no stack", () => {
      const r = after.wrongSpec;
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).not.toMatch(/^ {4}at /m);
      // The first line says what is wrong; the problems follow, one a line, then a hint.
      const first = r.stderr.split("\n")[0];
      expect(first).toMatch(/^gptc: error: .*model\.safetensors does not fit the model/);
      expect(r.stderr).toContain("shape    wte.weight: expected [50257, 768]");
      expect(r.stderr).toContain("is this checkpoint from a different spec?");
    });

    it("a prompt longer than the context: one clear line, exit 1", () => {
      expectCleanError(
        after.longPrompt,
        /the prompt is 40 tokens, longer than the model's context \(32\)/,
      );
    });

    it("--resume continues the run on its own data to step 8", async () => {
      const before = logOf(run);
      const r = await gptc([
        "train",
        "--resume",
        run,
        "--steps",
        "8",
        "--backend",
        "cpu",
        "--samples",
        "0",
      ]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toContain(`resuming ${run} at step 6`);
      // The text it was trained on, not the default corpus.
      expect(r.stderr).toContain(`on ${textFile}`);
      const log = logOf(run);
      expect(log.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(log.slice(0, 6)).toEqual(before);
      expect(log[7].val_loss).toBeDefined();
      const ck = loadCheckpoint(run);
      expect(ck.state.step).toBe(8);
      expect(ck.adam.step).toBe(8);
      expect(ck.state.tokensSeen).toBe(8 * 2 * 8);
    }, 60_000);
  });
});

describe("Ctrl-C", () => {
  it("saves a checkpoint after the current step and exits 130", async () => {
    const out = join(dir, "sigint");
    const { child, done } = start(
      trainArgs(out, ["--steps", "10000", "--eval-every", "0", "--samples", "0"]),
    );
    // Wait for two logged steps (the run must be under way), then interrupt.
    const deadline = Date.now() + 60_000;
    while (logOf(out).length < 2 && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 50));
    expect(logOf(out).length).toBeGreaterThanOrEqual(2);
    const sentAt = Date.now();
    child.kill("SIGINT");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    const r = await done;
    clearTimeout(timer);
    expect(r.signal, "still running 10 s after SIGINT").toBeNull();
    expect(r.status, r.stderr).toBe(130);
    expect(Date.now() - sentAt).toBeLessThan(10_000);
    expect(r.stderr).toContain("interrupted");
    const ck = loadCheckpoint(out);
    expect(ck.state.step).toBeGreaterThanOrEqual(2);
    expect(ck.state.step).toBeLessThan(10_000);
    expect(logOf(out).map((l) => l.step)).toEqual(
      Array.from({ length: ck.state.step }, (_, i) => i + 1),
    );
  }, 90_000);
});
