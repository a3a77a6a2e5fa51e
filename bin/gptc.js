#!/usr/bin/env node
// Entry point for the `gptc` command. In a clone of the repository the
// TypeScript sources run through tsx (a devDependency), so what runs is always
// what is checked out; an installed package has no sources and runs the
// bundled CLI in dist/ (built by `npm run build`, run by `npm pack`).
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const sources = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));
const bundled = fileURLToPath(new URL("../dist/gptc.js", import.meta.url));
let tsx;
if (existsSync(sources)) tsx = await import("tsx/esm/api").catch(() => undefined);
if (tsx) {
  tsx.register();
  await import(pathToFileURL(sources).href);
} else if (existsSync(bundled)) {
  await import(pathToFileURL(bundled).href);
} else {
  process.stderr.write("gptc: error: no dist/gptc.js in this installation: run `npm run build`\n");
  process.exit(1);
}
