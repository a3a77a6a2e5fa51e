// Builds what the package ships: the CLI (dist/gptc.js) and the library
// (dist/index.js) as ES modules bundled from the TypeScript sources, with
// dependencies left as imports, and the library's type declarations
// (dist/types) from tsc. `npm pack` runs it (prepack).
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { build } from "esbuild";

rmSync("dist", { recursive: true, force: true });
const common = {
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  sourcemap: true,
};
await build({ ...common, entryPoints: ["src/cli/main.ts"], outfile: "dist/gptc.js" });
await build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/index.js" });
execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
  stdio: "inherit",
});
