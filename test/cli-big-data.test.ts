// A corpus of 40 MB under a 96 MB heap: `gptc prepare` and `gptc train --data`
// stream it (file by file, chunk by chunk, worker threads) and train from token
// files read by position. The old loader, which read every file into one string
// array and tokenized it into one JS array, ran out of heap here (exit 134).
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeCorpus } from "./helpers/corpus.js";
import { REPO, tempDir } from "./helpers/train.js";

const dir = tempDir("gptc-big-data-");
const corpus = join(dir, "corpus");
const cache = join(dir, "cache");
const heapMb = 96;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  writeCorpus(corpus, 40e6, 8e6);
  writeFileSync(join(corpus, "zz-image.bin"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]));
});

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

describe(`a 40 MB corpus under a ${heapMb} MB heap`, () => {
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
});
