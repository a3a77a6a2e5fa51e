// Builds what the package ships: the CLI (dist/gptc.js) and the library
// (dist/index.js) as ES modules bundled from the TypeScript sources, with
// dependencies left as imports; prepare's tokenizer worker next to them
// (dist/prepare-worker.js: worker threads load it by that path, see
// src/runtime/worker-pool.ts); and the library's type declarations
// (dist/types) from tsc. `npm pack` runs it (prepack).
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { build } from "esbuild";

rmSync("dist", { recursive: true, force: true });
await build({
  entryPoints: {
    gptc: "src/cli/main.ts",
    index: "src/index.ts",
    "prepare-worker": "src/runtime/prepare-worker.ts",
  },
  outdir: "dist",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
});
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
  stdio: "inherit",
});
