// Bundles the CLI into dist/gptc.js so `gptc` starts without compiling TypeScript,
// and prepare's tokenizer worker into dist/prepare-worker.js next to it (worker
// threads load it by that path: see src/runtime/worker-pool.ts).
import { build } from "esbuild";

await build({
  entryPoints: { gptc: "src/cli/main.ts", "prepare-worker": "src/runtime/prepare-worker.ts" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir: "dist",
  packages: "external",
  sourcemap: true,
});
