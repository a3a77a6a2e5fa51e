// node:url in a browser: module URLs are http(s) there, so the library's own
// location is taken to be /src/dsl (specsDir then finds /specs, see fs.ts).
export function fileURLToPath(url: string | URL): string {
  const u = String(url);
  return u.startsWith("file://") ? decodeURIComponent(u.slice(7)) : "/src/dsl/load.js";
}
export function pathToFileURL(path: string): URL {
  return new URL(`file://${path}`);
}
