// `gptc prepare`: tokenizes a corpus once into a folder of token files that
// `gptc train --data DIR` reads directly. The work is in runtime/prepare.ts;
// this file parses flags and shows progress.
import cliProgress from "cli-progress";
import type { Command } from "commander";
import type { PrepareProgress } from "../runtime/prepare.js";
import { prepareCorpus } from "../runtime/prepare.js";
import { positiveInt } from "./options.js";
import { UsageError } from "./errors.js";

const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
const phases: Record<PrepareProgress["phase"], string> = {
  scan: "reading",
  vocab: "characters",
  encode: "tokenizing",
};

/**
 * Shows prepare's progress on stderr: a bar on a terminal, a line every few
 * seconds otherwise (logs, CI). `stop()` ends the bar.
 */
export function progressReporter(): { onProgress: (p: PrepareProgress) => void; stop(): void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: "{phase} |{bar}| {done}/{total} MB | {tps} tok/s | ETA {eta}s",
        hideCursor: true,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    let phase: string | undefined;
    return {
      onProgress: (p) => {
        const payload = {
          phase: phases[p.phase].padEnd(10),
          done: mb(p.bytesDone),
          total: mb(p.bytesTotal),
          tps: Math.round(p.tokensPerSecond),
          eta: p.etaSeconds === undefined ? "-" : Math.round(p.etaSeconds),
        };
        if (p.phase !== phase) {
          if (phase) bar.stop();
          phase = p.phase;
          bar.start(p.bytesTotal, p.bytesDone, payload);
        } else bar.update(p.bytesDone, payload);
      },
      stop: () => bar.stop(),
    };
  }
  // Nothing for work done within 5 s (a small file, a cache hit); then a line every 5 s.
  let last = performance.now();
  return {
    onProgress: (p) => {
      const now = performance.now();
      if (now - last < 5000) return;
      last = now;
      process.stderr.write(
        `gptc: ${phases[p.phase]} ${mb(p.bytesDone)}/${mb(p.bytesTotal)} MB` +
          (p.phase === "encode"
            ? `, ${p.tokens} tokens, ${Math.round(p.tokensPerSecond)} tok/s`
            : "") +
          (p.etaSeconds !== undefined && p.bytesDone < p.bytesTotal
            ? `, ETA ${Math.round(p.etaSeconds)} s`
            : "") +
          "\n",
      );
    },
    stop: () => {},
  };
}

export function registerPrepare(program: Command): void {
  program
    .command("prepare")
    .description(
      "tokenize text once into train.bin, val.bin and meta.json for `gptc train --data DIR`",
    )
    .option("--data <path>", "a UTF-8 text file or a folder of them (default: the Brown corpus)")
    .option("--tokenizer <kind>", "gpt2 (GPT-2 BPE) or char (characters of the data)", "gpt2")
    .requiredOption("-o, --out <dir>", "the folder to write")
    .option("--workers <n>", "tokenizer threads (default: every core)", positiveInt("--workers"))
    .action(async (flags: { data?: string; tokenizer: string; out: string; workers?: number }) => {
      if (flags.tokenizer !== "gpt2" && flags.tokenizer !== "char")
        throw new UsageError(`--tokenizer ${flags.tokenizer}: expected gpt2 or char`);
      const started = performance.now();
      const progress = progressReporter();
      let meta;
      try {
        meta = await prepareCorpus({
          data: flags.data,
          tokenizer: flags.tokenizer,
          out: flags.out,
          workers: flags.workers,
          onProgress: progress.onProgress,
        });
      } finally {
        progress.stop();
      }
      const seconds = (performance.now() - started) / 1000;
      const skipped = meta.files.skippedFiles.map((s) => `\n  skipped ${s.path}: ${s.reason}`);
      process.stderr.write(
        `gptc: prepared ${flags.out}: ${meta.tokens.train} train / ${meta.tokens.val} val tokens (${meta.dtype}), ` +
          `${meta.tokenizer.kind} tokenizer (vocab ${meta.vocabSize}); ${meta.files.read} files read, ${meta.files.skipped} skipped; ` +
          `${mb(meta.bytes)} MB in ${seconds.toFixed(1)} s (${mb(meta.bytes / seconds)} MB/s)` +
          skipped.join("") +
          (meta.files.skipped > skipped.length
            ? `\n  ... and ${meta.files.skipped - skipped.length} more`
            : "") +
          "\n",
      );
    });
}
