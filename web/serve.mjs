// Serves the built playground (build/web) with the COOP/COEP headers that make
// the page cross-origin isolated (SharedArrayBuffer). `npm run playground`
// builds and serves it; the browser tests start it the same way (serve()).
import { createReadStream, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildWeb } from "../scripts/build-web.mjs";

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".json": "application/json",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/**
 * Serves `dir` (building the site there first unless `build` is false) on
 * `port` (0: any free one); `isolate: false` leaves out COOP/COEP (as a plain
 * static host would). Resolves with the URL and a close function.
 */
export async function serve({
  dir,
  port = 0,
  build = true,
  host = "127.0.0.1",
  isolate = true,
} = {}) {
  const root = resolve(dir ?? join(fileURLToPath(new URL("..", import.meta.url)), "build/web"));
  if (build) await buildWeb(root);
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    let file = join(root, path);
    if (!file.startsWith(root)) file = root;
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (isolate) {
      res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
      res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
      res.setHeader("Cross-Origin-Resource-Policy", "same-origin");
    }
    if (!existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream" });
    createReadStream(file).pipe(res);
  });
  await new Promise((done) => server.listen(port, host, done));
  const url = `http://${host}:${server.address().port}/`;
  return { url, close: () => new Promise((done) => server.close(done)) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.env.PORT ?? 8080);
  const build = !process.argv.includes("--no-build");
  const { url } = await serve({ port, build });
  console.log(`gptc playground: ${url} (Ctrl-C stops)`);
}
