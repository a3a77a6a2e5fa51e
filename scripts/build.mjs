// Bundles the CLI into dist/gptc.js so `gptc` starts without compiling TypeScript.
import { build } from "esbuild";

await build({
  entryPoints: ["src/cli/main.ts"],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outfile: "dist/gptc.js",
  packages: "external",
  sourcemap: true,
});
