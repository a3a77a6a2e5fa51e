// Shared helpers of the hardening tests (hostile names, crash safety, fuzzing) and of
// scripts/fuzz.ts: hostile strings and identifiers, a canary that injected code would
// set, a JavaScript token check that user text only ever sits inside literals, and a
// spawner for the gptc command.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
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

interface Token {
  kind: "string" | "comment" | "template" | "code";
  start: number;
  end: number;
}

/**
 * The tokens of generated JavaScript: string literals, comments, template
 * literals (whole: their `${}` holes run, so they count as code) and code
 * (identifiers, numbers, one punctuator each). Enough for what gptc emits,
 * which has no regular-expression literals.
 */
export function tokenizeJs(code: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const closing = (quote: string, from: number) => {
    let k = from;
    while (k < code.length && code[k] !== quote) k += code[k] === "\\" ? 2 : 1;
    if (k >= code.length) throw new Error(`unterminated ${quote} literal at ${from - 1}`);
    return k + 1;
  };
  while (i < code.length) {
    const c = code[i];
    let end: number;
    let kind: Token["kind"] = "code";
    if (/\s/.test(c)) {
      i++;
      continue;
    } else if (c === "/" && code[i + 1] === "/") {
      kind = "comment";
      end = i + 2;
      while (end < code.length && !"\n\r\u2028\u2029".includes(code[end])) end++;
    } else if (c === "/" && code[i + 1] === "*") {
      kind = "comment";
      end = code.indexOf("*/", i + 2);
      if (end < 0) throw new Error(`unterminated comment at ${i}`);
      end += 2;
    } else if (c === '"' || c === "'") {
      kind = "string";
      end = closing(c, i + 1);
    } else if (c === "`") {
      kind = "template";
      end = closing("`", i + 1);
    } else if (/[\w$]/.test(c)) {
      // An identifier, or a number (digits, a point, an exponent).
      const part = /\d/.test(c) ? /[\w.]/ : /[\w$]/;
      end = i + 1;
      while (end < code.length && part.test(code[end])) end++;
    } else end = i + 1;
    tokens.push({ kind, start: i, end });
    i = end;
  }
  return tokens;
}

/**
 * Every occurrence of `needle` in `code` that is not inside a string literal or a
 * (single-line) comment, as "offset: context" strings. A template literal counts as code:
 * its `${}` holes run. Comments must not hold line breaks of any kind, so none can end early.
 */
export function occurrencesOutsideLiterals(code: string, needle: string): string[] {
  const safe = tokenizeJs(code).filter((t) => t.kind === "string" || t.kind === "comment");
  for (const t of safe)
    if (t.kind === "comment" && /[\n\r\u2028\u2029]/.test(code.slice(t.start + 2, t.end)))
      throw new Error(`comment with a line break: ${code.slice(t.start, t.end)}`);
  const bad: string[] = [];
  for (let at = code.indexOf(needle); at >= 0; at = code.indexOf(needle, at + 1)) {
    const end = at + needle.length;
    if (!safe.some((r) => r.start <= at && end <= r.end))
      bad.push(`${at}: ${JSON.stringify(code.slice(Math.max(0, at - 40), end + 40))}`);
  }
  return bad;
}

/**
 * The program's tokens with every string literal (as written, quotes included)
 * passed through `map`, comments and trailing commas dropped (the formatter
 * adds those where a longer literal breaks a line): two programs with equal
 * shapes differ in string literals only (and `map` can undo even that).
 */
export function shapeOfJs(code: string, map: (s: string) => string = (s) => s): string {
  const texts = tokenizeJs(code)
    .filter((t) => t.kind !== "comment")
    .map((t) => ({ kind: t.kind, text: code.slice(t.start, t.end) }));
  return JSON.stringify(
    texts
      .filter(
        (t, k) => !(t.text === "," && t.kind === "code" && /^[\])}]$/.test(texts[k + 1]?.text)),
      )
      .map((t) => (t.kind === "string" ? map(t.text) : t.text)),
  );
}

// ---- the gptc command ---------------------------------------------------------------------

export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts `node bin/gptc.js ARGS` in the repository with the given environment additions. */
export function startGptc(args: string[], env: Record<string, string> = {}) {
  return startCommand(process.execPath, [join(REPO, "bin", "gptc.js"), ...args], env);
}

/**
 * Starts a command in the repository with the given environment additions
 * (GPTC_DEBUG removed: the output must be what a user sees), collecting its output.
 */
export function startCommand(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): {
  child: ChildProcess;
  done: Promise<CliRun>;
  output: () => { stdout: string; stderr: string };
} {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env };
  delete full.GPTC_DEBUG;
  const child = spawn(command, args, { cwd: REPO, env: full });
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
