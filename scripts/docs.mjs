// `npm run docs`: the API reference of the library (src/index.ts) with
// TypeDoc, written to build/docs. TypeDoc reads types through the compiler API
// of TypeScript 5/6, which the project's TypeScript 7 does not provide, so it
// runs from its own small install in tools/docs (installed on first use).
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const tools = "tools/docs";
if (!existsSync(`${tools}/node_modules/typedoc`))
  execFileSync("npm", ["ci", "--prefix", tools, "--no-audit", "--no-fund"], { stdio: "inherit" });
execFileSync(
  process.execPath,
  [`${tools}/node_modules/typedoc/bin/typedoc`, ...process.argv.slice(2)],
  {
    stdio: "inherit",
  },
);
