// Failure injection for node:fs: as root, permissions cannot make a write or a
// rename fail, so tests switch these on to make writeSync/renameSync fail the
// way a full disk or a read-only folder would. Everything else passes through.
// Use from a test file (vi.mock factories are hoisted, so they import lazily):
//   vi.mock("node:fs", async (orig) => (await import("./helpers/fs-faults.js")).faultyFs(await orig()));
// This module must not import node:fs itself.

export const faults = {
  write: null as null | { code: string; afterBytes: number },
  rename: null as null | string,
};

export function faultyFs(actual: typeof import("node:fs")) {
  const sysError = (code: string, syscall: string) =>
    Object.assign(new Error(`${code}: simulated failure, ${syscall}`), { code, syscall });
  let written = 0;
  const writeSync = (fd: number, buf: Uint8Array, offset = 0, length = buf.length - offset) => {
    const f = faults.write;
    if (!f) return actual.writeSync(fd, buf, offset, length);
    if (written >= f.afterBytes) {
      written = 0;
      throw sysError(f.code, "write");
    }
    // A short write first, so the temporary file really holds something when the error comes.
    const n = actual.writeSync(fd, buf, offset, Math.min(length, f.afterBytes - written));
    written += n;
    return n;
  };
  const renameSync = (from: string, to: string) => {
    if (faults.rename) throw sysError(faults.rename, "rename");
    return actual.renameSync(from, to);
  };
  const patched = { ...actual, writeSync, renameSync };
  return { ...patched, default: patched };
}
