#!/usr/bin/env node
// Entry point for the `gptc` command. Runs the bundled CLI when `npm run build`
// produced one, otherwise the TypeScript sources through tsx.
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const bundled = fileURLToPath(new URL("../dist/gptc.js", import.meta.url));
if (existsSync(bundled)) {
  await import(pathToFileURL(bundled).href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import(new URL("../src/cli/main.ts", import.meta.url).href);
}
