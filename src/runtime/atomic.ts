// Writes a file so that readers see the old content or the new, never a mix:
// temp file in the same folder, fsync, rename, fsync the folder.
import { GptcError } from "../errors.js";
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * A file could not be written (full disk, no permission, a folder in the way): reported as a
 * problem of the machine, not as a bug in gptc.
 */
export class WriteError extends GptcError {
  constructor(message: string) {
    super("write", message);
  }
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(
    dirname(path),
    `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`,
  );
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx", 0o644); // "wx": never reuse a file that is already there
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    try {
      if (fd !== undefined) closeSync(fd);
      rmSync(tmp, { force: true });
    } catch {
      // Not created (its folder is missing or a file), or already gone: the error below says why.
    }
    throw new WriteError(
      `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  try {
    const dfd = openSync(dirname(path), "r");
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    // Some filesystems refuse to fsync a folder; the rename is still atomic.
  }
}
