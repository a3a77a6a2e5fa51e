// A corpus of 24 MB under a 96 MB heap: `gptc prepare` and `gptc train --data`
// stream it (file by file, chunk by chunk, worker threads) and train from token
// files read by position. The old loader, which read every file into one string
// array and tokenized it into one JS array, ran out of heap here (exit 134).
// Also: prepare's bad input ends in one clear line, and a prepare killed while
// writing leaves a folder that does not look complete.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isPreparedDir } from "../src/runtime/token-files.js";
import { writeCorpus } from "./helpers/corpus.js";
import { REPO, tempDir } from "./helpers/train.js";

const dir = tempDir("gptc-big-data-");
const corpus = join(dir, "corpus");
const cache = join(dir, "cache");
const heapMb = 96;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  writeCorpus(corpus, 24e6, 5e6);
  writeFileSync(join(corpus, "zz-image.bin"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]));
}, 120_000); // 24 MB of text: seconds alone, more on a loaded machine

/** `node --max-old-space-size=96 bin/gptc.js ARGS`: exit status and stderr. */
function gptc(args: string[]): Promise<{ status: number | null; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, GPTC_CACHE_DIR: cache };
  delete env.GPTC_DEBUG;
  const child = spawn(
    process.execPath,
    [`--max-old-space-size=${heapMb}`, join(REPO, "bin", "gptc.js"), ...args],
    { cwd: REPO, env, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stderr }));
  });
}

const train = (data: string, out: string) => [
  "train",
  "specs/gpt2-tiny.model",
  "--data",
  data,
  "--steps",
  "2",
  "--batch",
  "2",
  "--seq",
  "16",
  "--eval-every",
  "0",
  "--samples",
  "0",
  "--backend",
  "cpu",
  "--out",
  join(dir, out),
];

describe("gptc prepare: bad input is one clear line, exit 1", () => {
  it("a missing folder, an unknown tokenizer, zero workers, a folder of binary files", async () => {
    const binary = join(dir, "binary");
    mkdirSync(binary);
    writeFileSync(join(binary, "a.bin"), Buffer.from([0, 1, 2, 0xff]));
    const runs = await Promise.all([
      gptc(["prepare", "--data", join(dir, "nope"), "-o", join(dir, "p0")]),
      gptc(["prepare", "--data", corpus, "--tokenizer", "bpe", "-o", join(dir, "p1")]),
      gptc(["prepare", "--data", corpus, "--workers", "0", "-o", join(dir, "p2")]),
      gptc(["prepare", "--data", binary, "-o", join(dir, "p3")]),
    ]);
    const expected = [
      /--data .*nope: no such file or folder/,
      /--tokenizer bpe: expected gpt2 or char/,
      /--workers must be a whole number >= 1, got '0'/,
      /no text in it \(1 files skipped: .*a\.bin \(binary \(NUL bytes\)\)\)/,
    ];
    runs.forEach((r, i) => {
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).not.toMatch(/^ {4}at /m);
      expect(
        r.stderr
          .trim()
          .split("\n")
          .filter((l) => l.trim()),
      ).toHaveLength(1);
      expect(r.stderr).toMatch(expected[i]);
    });
    expect(existsSync(join(dir, "p3", "meta.json"))).toBe(false);
  }, 120_000);
});

describe(`a 24 MB corpus under a ${heapMb} MB heap`, () => {
  it("train --data on the raw folder prepares it into the cache and trains; the second run is a cache hit", async () => {
    const first = await gptc([...train(corpus, "run1"), "--tokenizer", "char"]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(new RegExp(`tokens in ${cache}/tokens-[0-9a-f]+`));
    expect(first.stderr).not.toContain("(cached)");
    expect(existsSync(join(dir, "run1", "checkpoint.safetensors"))).toBe(true);
    const second = await gptc([...train(corpus, "run2"), "--tokenizer", "char"]);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).toContain("(cached)");
    expect(second.stderr).not.toMatch(/tokenizing/);
  }, 300_000);

  it("prepare writes token files (the binary file skipped) that train reads directly", async () => {
    const out = join(dir, "prepared");
    const p = await gptc([
      "prepare",
      "--data",
      corpus,
      "--tokenizer",
      "char",
      "-o",
      out,
      "--workers",
      "2",
    ]);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stderr).toMatch(/skipped .*zz-image\.bin: binary/);
    const meta = JSON.parse(readFileSync(join(out, "meta.json"), "utf8"));
    expect(meta.files).toMatchObject({ read: 5, skipped: 1 });
    expect(meta.dtype).toBe("uint16");
    // Char tokens: one per character (the corpus is ASCII) and an end-of-text between files, in train and in val.
    expect(meta.tokens.train + meta.tokens.val).toBe(meta.bytes + 2 * 4);
    const t = await gptc(train(out, "run3"));
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toContain(`tokens in ${out}`);
    expect(t.stderr).toContain("char tokenizer");
  }, 300_000);

  it("a prepare killed while writing leaves no meta.json, so the folder does not look complete", async () => {
    const out = join(dir, "killed");
    const small = join(dir, "small.txt");
    writeFileSync(small, "a small corpus, prepared completely first.\n".repeat(50));
    expect((await gptc(["prepare", "--data", small, "-o", out])).status).toBe(0);
    expect(existsSync(join(out, "meta.json"))).toBe(true);
    // Again into the same folder, on the 24 MB corpus: killed once token files are being written.
    const child = spawn(
      process.execPath,
      [join(REPO, "bin", "gptc.js"), "prepare", "--data", corpus, "-o", out],
      {
        cwd: REPO,
        env: { ...process.env, GPTC_CACHE_DIR: cache },
        stdio: "ignore",
      },
    );
    const exited = new Promise((done) => child.on("close", done));
    const deadline = Date.now() + 120_000;
    while (!readdirSync(out).some((f) => f.startsWith(".train.bin.tmp-")) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    child.kill("SIGKILL");
    await exited;
    expect(readdirSync(out).some((f) => f.startsWith(".train.bin.tmp-"))).toBe(true);
    expect(existsSync(join(out, "meta.json"))).toBe(false);
    expect(isPreparedDir(out)).toBe(false);
  }, 180_000);
});
