// A synthetic corpus of any size for the memory tests and scripts/big-corpus.ts:
// lines of the Brown corpus drawn by a seeded generator, written file by file
// (memory stays flat however large the corpus).
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { brownDocuments } from "../../src/runtime/corpus.js";
import { Rng } from "../../src/runtime/rng.js";

/** Writes about `totalBytes` of text in files of `fileBytes` under `dir`; returns the file count. */
export function writeCorpus(dir: string, totalBytes: number, fileBytes: number, seed = 1): number {
  mkdirSync(dir, { recursive: true });
  const lines = brownDocuments().flatMap((d) => d.split("\n").filter((l) => l.trim()));
  const rng = new Rng(seed);
  let files = 0;
  for (let written = 0; written < totalBytes; files++) {
    const fd = openSync(join(dir, `part-${String(files).padStart(5, "0")}.txt`), "w");
    let inFile = 0;
    const want = Math.min(fileBytes, totalBytes - written);
    while (inFile < want) {
      let block = "";
      while (block.length < 1 << 20 && inFile + block.length < want)
        block += lines[Math.floor(rng.next() * lines.length)] + "\n";
      inFile += writeSync(fd, block);
    }
    closeSync(fd);
    written += inFile;
  }
  return files;
}
