// Prepares and trains on a corpus larger than memory should matter (not a CI test):
// writes about --gb GB of text (Brown lines drawn by a seeded generator) plus a
// few binary files to a temp folder, runs `gptc prepare` with 2 workers on all
// of it and with 1 and 2 workers on its first --compare-mb MB, then a few
// training steps from the prepared folder, and prints tokenization MB/s, wall
// and user CPU time and peak RSS of each child process. Deletes the corpus.
//
//   node --import tsx scripts/big-corpus.ts [--gb 2] [--compare-mb 512] [--tokenizer gpt2]
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeCorpus } from "../test/helpers/corpus.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const gb = Number(arg("gb", "2"));
const compareMb = Number(arg("compare-mb", "512"));
const tokenizer = arg("tokenizer", "gpt2");
const fileMb = 64;

interface Measured {
  what: string;
  wallS: number;
  userS: number;
  sysS: number;
  maxRssMb: number;
  status: number | null;
  stderr: string;
}

/** Runs bin/gptc.js under /usr/bin/time: wall, user and system time and peak RSS of the child. */
function gptc(what: string, args: string[], env: NodeJS.ProcessEnv = {}): Measured {
  const times = join(tmpdir(), `gptc-time-${process.pid}`);
  const r = spawnSync(
    "/usr/bin/time",
    ["-f", "%e %U %S %M", "-o", times, process.execPath, join(repo, "bin", "gptc.js"), ...args],
    { cwd: repo, env: { ...process.env, ...env }, encoding: "utf8", maxBuffer: 1 << 26 },
  );
  const [wallS, userS, sysS, rssKb] = readFileSync(times, "utf8")
    .trim()
    .split("\n")
    .pop()!
    .split(" ")
    .map(Number);
  rmSync(times, { force: true });
  const m = {
    what,
    wallS,
    userS,
    sysS,
    maxRssMb: rssKb / 1024,
    status: r.status,
    stderr: r.stderr,
  };
  process.stdout.write(
    `${what}: exit ${r.status}, ${wallS.toFixed(1)} s wall, ${userS.toFixed(1)} s user, ${sysS.toFixed(1)} s sys, peak RSS ${m.maxRssMb.toFixed(0)} MB\n`,
  );
  if (r.status !== 0) process.stdout.write(r.stderr.slice(-3000) + "\n");
  return m;
}

function prepare(what: string, data: string, out: string, workers: number): number {
  const m = gptc(what, [
    "prepare",
    "--data",
    data,
    "--tokenizer",
    tokenizer,
    "-o",
    out,
    "--workers",
    String(workers),
  ]);
  const meta = JSON.parse(readFileSync(join(out, "meta.json"), "utf8"));
  const mb = meta.bytes / 1e6;
  process.stdout.write(
    `  ${mb.toFixed(0)} MB of text -> ${meta.tokens.train + meta.tokens.val} tokens (${meta.dtype}); ` +
      `${meta.files.read} files read, ${meta.files.skipped} skipped; ` +
      `${(mb / m.wallS).toFixed(2)} MB/s wall, ${(mb / m.userS).toFixed(2)} MB per user-CPU second\n`,
  );
  return mb / m.wallS;
}

const root = mkdtempSync(join(tmpdir(), "gptc-big-corpus-"));
try {
  const corpus = join(root, "corpus");
  const t0 = performance.now();
  const files = writeCorpus(corpus, gb * 1e9, fileMb * 1e6, 7);
  for (let i = 0; i < 3; i++) {
    const junk = Buffer.alloc(1 << 20);
    for (let j = 0; j < junk.length; j++) junk[j] = (j * 2654435761 + i) >>> 24;
    writeFileSync(join(corpus, `blob-${i}.bin`), junk);
  }
  writeFileSync(
    join(corpus, "latin1.txt"),
    Buffer.from("caf\xe9 cr\xe8me br\xfbl\xe9e\n".repeat(1000), "latin1"),
  );
  process.stdout.write(
    `corpus: ${files} text files of ${fileMb} MB (${gb} GB) + 3 binary + 1 Latin-1 in ${corpus}, ` +
      `written in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
  );

  // The first compare-mb MB as a folder of links, for 1 worker against 2 on the same text.
  const subset = join(root, "subset");
  mkdirSync(subset);
  const parts = readdirSync(corpus)
    .filter((f) => f.endsWith(".txt") && f.startsWith("part-"))
    .sort();
  for (const f of parts.slice(0, Math.max(1, Math.round(compareMb / fileMb))))
    symlinkSync(join(corpus, f), join(subset, f));
  const one = prepare(`prepare ${compareMb} MB, 1 worker`, subset, join(root, "p1"), 1);
  const two = prepare(`prepare ${compareMb} MB, 2 workers`, subset, join(root, "p2"), 2);
  const same = ["train.bin", "val.bin"].every((f) =>
    readFileSync(join(root, "p1", f)).equals(readFileSync(join(root, "p2", f))),
  );
  process.stdout.write(
    `  2 workers / 1 worker: ${(two / one).toFixed(2)}x; identical token files: ${same}\n`,
  );
  rmSync(join(root, "p1"), { recursive: true });
  rmSync(join(root, "p2"), { recursive: true });

  const full = join(root, "full");
  prepare(`prepare ${gb} GB, 2 workers`, corpus, full, 2);
  const t = gptc(`train 3 steps from the ${gb} GB folder`, [
    "train",
    "specs/gpt2-tiny.model",
    "--data",
    full,
    "--steps",
    "3",
    "--batch",
    "4",
    "--seq",
    "32",
    "--eval-every",
    "3",
    "--eval-batches",
    "2",
    "--samples",
    "0",
    "--backend",
    "cpu",
    "--out",
    join(root, "run"),
  ]);
  process.stdout.write(
    t.stderr
      .split("\n")
      .filter((l) => /training|step 3|tokens in/.test(l))
      .map((l) => `  ${l}\n`)
      .join(""),
  );
  if (!existsSync(join(root, "run", "checkpoint.safetensors"))) process.exitCode = 1;
} finally {
  rmSync(root, { recursive: true, force: true });
  process.stdout.write(`deleted ${root}\n`);
}
