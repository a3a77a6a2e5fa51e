// node:fs in a browser: an in-memory file system (a Map from absolute path to
// bytes). Folders exist implicitly, as prefixes of the files under them.
import { dirname, resolve } from "./path.js";

const files = new Map<string, Uint8Array>();
const dirs = new Set<string>(["/"]);
const enc = new TextEncoder();
const dec = new TextDecoder();

function noEntry(path: string, op: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, ${op} '${path}'`), {
    code: "ENOENT",
  });
}
function addDirs(path: string): void {
  for (let d = dirname(path); !dirs.has(d); d = dirname(d)) dirs.add(d);
}

/** Puts files into the file system (text or bytes), by absolute path. */
export function mount(entries: Record<string, string | Uint8Array>): void {
  for (const [p, data] of Object.entries(entries)) writeFileSync(p, data);
}
/** Removes a file or a folder and everything under it. */
export function unmount(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

export function existsSync(path: string): boolean {
  const p = resolve(path);
  return files.has(p) || dirs.has(p);
}
export function statSync(path: string): {
  isDirectory(): boolean;
  isFile(): boolean;
  size: number;
} {
  const p = resolve(path);
  const f = files.get(p);
  if (!f && !dirs.has(p)) throw noEntry(p, "stat");
  return { isDirectory: () => !f, isFile: () => !!f, size: f?.length ?? 0 };
}
export function readFileSync(path: string, encoding?: string | { encoding?: string }): any {
  const p = resolve(path);
  const f = files.get(p);
  if (!f) throw noEntry(p, "open");
  const e = typeof encoding === "string" ? encoding : encoding?.encoding;
  return e ? dec.decode(f) : f;
}
export function writeFileSync(path: string, data: string | Uint8Array): void {
  const p = resolve(path);
  addDirs(p);
  files.set(p, typeof data === "string" ? enc.encode(data) : new Uint8Array(data));
}
export function appendFileSync(path: string, data: string | Uint8Array): void {
  const p = resolve(path);
  const add = typeof data === "string" ? enc.encode(data) : data;
  const old = files.get(p) ?? new Uint8Array(0);
  const out = new Uint8Array(old.length + add.length);
  out.set(old);
  out.set(add, old.length);
  writeFileSync(p, out);
}
export function readdirSync(path: string): string[] {
  const p = resolve(path);
  if (!dirs.has(p)) throw noEntry(p, "scandir");
  const prefix = p === "/" ? "/" : p + "/";
  const names = new Set<string>();
  for (const k of [...files.keys(), ...dirs])
    if (k.startsWith(prefix) && k !== p) names.add(k.slice(prefix.length).split("/")[0]);
  return [...names].sort();
}
export function mkdirSync(path: string, _o?: unknown): void {
  const p = resolve(path);
  addDirs(p + "/x");
}
export function rmSync(path: string, o: { recursive?: boolean; force?: boolean } = {}): void {
  const p = resolve(path);
  if (!existsSync(p)) {
    if (o.force) return;
    throw noEntry(p, "rm");
  }
  files.delete(p);
  dirs.delete(p);
  for (const k of [...files.keys()]) if (k.startsWith(p + "/")) files.delete(k);
  for (const k of [...dirs]) if (k.startsWith(p + "/")) dirs.delete(k);
}
export function renameSync(from: string, to: string): void {
  const f = files.get(resolve(from));
  if (!f) throw noEntry(from, "rename");
  files.delete(resolve(from));
  writeFileSync(to, f);
}

// File descriptors, for atomic writes (write a temporary file, then rename it).
const open = new Map<number, { path: string; chunks: Uint8Array[]; pos: number }>();
let nextFd = 3;
export function openSync(path: string, flags = "r"): number {
  const p = resolve(path);
  if (flags.startsWith("r") && !files.has(p)) throw noEntry(p, "open");
  if (flags.startsWith("w")) writeFileSync(p, new Uint8Array(0));
  open.set(nextFd, { path: p, chunks: [], pos: 0 });
  return nextFd++;
}
export function writeSync(fd: number, data: Uint8Array | string): number {
  const f = open.get(fd);
  if (!f) throw new Error("EBADF: bad file descriptor");
  appendFileSync(f.path, data);
  return typeof data === "string" ? enc.encode(data).length : data.length;
}
export function readSync(
  fd: number,
  buf: Uint8Array,
  offset = 0,
  length = buf.length - offset,
  position: number | null = null,
): number {
  const f = open.get(fd);
  if (!f) throw new Error("EBADF: bad file descriptor");
  const data = files.get(f.path) ?? new Uint8Array(0);
  const from = position ?? f.pos;
  const n = Math.max(0, Math.min(length, data.length - from));
  buf.set(data.subarray(from, from + n), offset);
  if (position === null) f.pos += n;
  return n;
}
export function fsyncSync(_fd: number): void {}
export function closeSync(fd: number): void {
  open.delete(fd);
}
export default {
  existsSync,
  statSync,
  readFileSync,
  writeFileSync,
  readdirSync,
  mkdirSync,
  rmSync,
};
export function ftruncateSync(fd: number, len = 0): void {
  const f = open.get(fd);
  if (!f) throw new Error("EBADF: bad file descriptor");
  writeFileSync(f.path, (files.get(f.path) ?? new Uint8Array(0)).slice(0, len));
}
