// Shared helpers of the hardening tests (hostile names, crash safety, fuzzing) and of
// scripts/fuzz.ts: hostile strings and identifiers, a canary that injected code would
// set, a JavaScript AST check that user text only ever sits inside literals, and a
// spawner for the gptc command.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import * as acorn from "acorn";
import { REPO } from "./dsl.js";

export { randInt, rng } from "./ir.js";

/** The global that any injected code below sets; tests assert it stays unset. */
export const CANARY = "__gptcCanary";

/** Text that is code if it ever reaches generated JavaScript (or a shell) unquoted. */
export const INJECTIONS = [
  `";globalThis.${CANARY}=1;//`,
  `';globalThis.${CANARY}=2;//`,
  `\`+(globalThis.${CANARY}=3)+\``,
  `\${globalThis.${CANARY}=4}`,
  "${process.exit(7)}",
  `*/globalThis.${CANARY}=5;/*`,
  `\u2028globalThis.${CANARY}=6;//`,
  `\u2029globalThis.${CANARY}=7;//`,
  `</script><script>globalThis.${CANARY}=8</script>`,
  `$(touch /tmp/gptc-pwned-${process.pid})`,
];

/** Strings that are hard to carry through JSON, JavaScript, a terminal or a diagram. */
export const HOSTILE_STRINGS = [
  ...INJECTIONS,
  '"',
  "'",
  "`",
  "\\",
  "\\u0041",
  "\\u{41}",
  "\\x41",
  "\u2028",
  "\u2029",
  "line\nbreak",
  "cr\rreturn",
  "nul\u0000byte",
  "\u001b[31mred\u001b[0m",
  "\u001b]0;title\u0007",
  "\u202eRTL",
  "\uFEFFbom",
  "😀",
  "__proto__",
  "constructor",
  "toString",
  "hasOwnProperty",
  "x".repeat(5000),
];

/**
 * Legal identifiers of the model language that are awkward for a compiler written in
 * JavaScript: Object.prototype members, JavaScript keywords and globals, and names that
 * look like the generated ones (in0, t1, acc0, r0, i, k0_add, ...).
 */
export const HOSTILE_NAMES = [
  "constructor",
  "__proto__",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "__defineGetter__",
  "prototype",
  "in0",
  "in1",
  "t0",
  "t1",
  "acc0",
  "r0",
  "i",
  "x",
  "k0_add",
  "out",
  "Math",
  "this",
  "thread",
  "constants",
  "Float32Array",
  "globalThis",
  "process",
  "require",
  "eval",
  "Function",
  "arguments",
  "undefined",
  "NaN",
  "Infinity",
  "new",
  "var",
  "function",
  "class",
  "delete",
  "typeof",
  "with",
  "yield",
  "await",
  "_",
  "a".repeat(5000),
].filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n));

// ---- JavaScript: user text only inside literals -------------------------------------------

interface Range {
  start: number;
  end: number;
}

function walk(node: unknown, visit: (n: acorn.Node) => void): void {
  if (Array.isArray(node)) {
    for (const n of node) walk(n, visit);
    return;
  }
  if (!node || typeof node !== "object") return;
  const n = node as acorn.Node & Record<string, unknown>;
  if (typeof n.type === "string") visit(n);
  for (const key of Object.keys(n)) {
    if (key === "loc" || key === "start" || key === "end" || key === "type") continue;
    const v = n[key];
    if (v && typeof v === "object") walk(v, visit);
  }
}

export function parseJs(code: string): { ast: acorn.Program; comments: acorn.Comment[] } {
  const comments: acorn.Comment[] = [];
  const ast = acorn.parse(code, {
    ecmaVersion: "latest",
    sourceType: "module",
    onComment: comments,
  });
  return { ast, comments };
}

/**
 * Every occurrence of `needle` in `code` that is not inside a string literal or a
 * (single-line) comment, as "offset: context" strings. A template literal counts as code:
 * its `${}` holes run. Comments must not hold line breaks of any kind, so none can end early.
 */
export function occurrencesOutsideLiterals(code: string, needle: string): string[] {
  const { ast, comments } = parseJs(code);
  const safe: Range[] = [];
  walk(ast, (n) => {
    if (n.type === "Literal" && typeof (n as acorn.Literal).value === "string") safe.push(n);
  });
  for (const c of comments) {
    if (/[\n\r\u2028\u2029]/.test(c.value))
      throw new Error(`comment with a line break: ${c.value}`);
    safe.push(c);
  }
  const bad: string[] = [];
  for (let at = code.indexOf(needle); at >= 0; at = code.indexOf(needle, at + 1)) {
    const end = at + needle.length;
    if (!safe.some((r) => r.start <= at && end <= r.end))
      bad.push(`${at}: ${JSON.stringify(code.slice(Math.max(0, at - 40), end + 40))}`);
  }
  return bad;
}

/**
 * The program's AST with positions dropped and every string literal passed through `map`:
 * two programs with equal shapes differ in string literals only (and `map` can undo even
 * that, when it renames one user name to another).
 */
export function shapeOfJs(code: string, map: (s: string) => string = (s) => s): string {
  const { ast } = parseJs(code);
  return JSON.stringify(ast, (key, value: unknown) => {
    if (key === "start" || key === "end" || key === "raw" || key === "loc") return undefined;
    if (key === "value" && typeof value === "string") return map(value);
    return value;
  });
}

// ---- the gptc command ---------------------------------------------------------------------

export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `node bin/gptc.js ARGS` in the repository with the given environment additions. */
export function startGptc(
  args: string[],
  env: Record<string, string> = {},
): {
  child: ChildProcess;
  done: Promise<CliRun>;
  output: () => { stdout: string; stderr: string };
} {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete full.GPTC_DEBUG;
  const child = spawn(process.execPath, [join(REPO, "bin", "gptc.js"), ...args], {
    cwd: REPO,
    env: full,
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (s: string) => (stdout += s));
  child.stderr!.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  const done = new Promise<CliRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
  return { child, done, output: () => ({ stdout, stderr }) };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Numbers and operators the spec fuzzers splice in (scripts/fuzz.ts, test/dsl-fuzz.test.ts). */
export const FUZZ_NUMBERS = [
  "0",
  "1",
  "2",
  "3",
  "4",
  "7",
  "64",
  "0.5",
  "-1",
  "1e-5",
  "1e308",
  "1e309",
  "2147483649",
  "0.0001",
  "10001",
];
export const FUZZ_OPERATORS = ["+", "-", "*", "/", "@", "**", "<", "<=", "==", "!="];
