// node:path (POSIX) in a browser, over the in-memory file system of fs.ts; the
// working directory is "/".
export const sep = "/";

function normalize(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}
export function resolve(...paths: string[]): string {
  let p = "";
  for (const q of paths) p = q.startsWith("/") ? q : `${p}/${q}`;
  return normalize(p);
}
export function join(...paths: string[]): string {
  const p = paths.filter((q) => q !== "").join("/");
  if (p === "") return ".";
  const abs = p.startsWith("/");
  const n = normalize(p);
  return abs ? n : n.slice(1) || ".";
}
export function dirname(path: string): string {
  const p = path.replace(/\/+$/, "");
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}
export function basename(path: string, ext?: string): string {
  const b = path.replace(/\/+$/, "").split("/").pop() ?? "";
  return ext && b.endsWith(ext) ? b.slice(0, -ext.length) : b;
}
export function relative(from: string, to: string): string {
  const a = resolve(from).split("/").filter(Boolean);
  const b = resolve(to).split("/").filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => ".."), ...b.slice(i)].join("/");
}
export default { sep, resolve, join, dirname, basename, relative };
