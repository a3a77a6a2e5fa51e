// Remembers the scan of a list of files (content hash, which are text) by their
// paths, sizes and modification times, so a second `train --data` on the same
// large folder finds its cache entry without reading every byte again. Like
// make or rsync, a file rewritten with the same size and an unchanged mtime is
// not noticed; `gptc prepare` and in-memory sources always scan.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeFileAtomic } from "./atomic.js";
import { scanSources, type ScanResult, type Skipped, type SourceDoc } from "./sources.js";

interface Memo {
  hash: string;
  text: number[];
  skipped: (Skipped & { index: number })[];
}

export function scanRemembered(
  docs: SourceDoc[],
  memoDir: string,
  onBytes?: (done: number, total: number) => void,
): ScanResult & { remembered: boolean } {
  if (docs.some((d) => d.path === undefined || d.mtimeMs === undefined))
    return { ...scanSources(docs, onBytes), remembered: false };
  const key = createHash("sha256")
    .update(JSON.stringify(docs.map((d) => [resolve(d.path!), d.size, d.mtimeMs])))
    .digest("hex");
  const file = join(memoDir, `scan-${key.slice(0, 24)}.json`);
  if (existsSync(file)) {
    try {
      const memo = JSON.parse(readFileSync(file, "utf8")) as Memo;
      const text = memo.text.map((i) => docs[i]);
      const skipped = memo.skipped.map((s) => ({ path: docs[s.index].name, reason: s.reason }));
      if (
        typeof memo.hash === "string" &&
        text.every(Boolean) &&
        skipped.length + text.length === docs.length
      )
        return {
          hash: memo.hash,
          text,
          skipped,
          textBytes: text.reduce((a, d) => a + d.size, 0),
          remembered: true,
        };
    } catch {
      // An unreadable memo is scanned again.
    }
  }
  const scan = scanSources(docs, onBytes);
  const index = new Map(docs.map((d, i) => [d, i]));
  const memo: Memo = {
    hash: scan.hash,
    text: scan.text.map((d) => index.get(d)!),
    skipped: scan.skipped.map((s) => ({ ...s, index: docs.findIndex((d) => d.name === s.path) })),
  };
  try {
    mkdirSync(memoDir, { recursive: true });
    writeFileAtomic(file, JSON.stringify(memo));
  } catch {
    // Without the memo the next run only scans again.
  }
  return { ...scan, remembered: false };
}
