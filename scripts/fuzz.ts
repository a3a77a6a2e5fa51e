// Seeded, time-bounded fuzzing of everything gptc reads from users:
//
//   front end    token mutations of every shipped spec, and random specs, through the
//                parser, the checks and lowering (a quarter of what lowers, on through
//                compilation to kernel sources)
//   IR text      mutations of printed graphs through parseGraph
//   safetensors  byte flips, truncations and header edits through parseSafetensors (and,
//                for checkpoints, loadCheckpoint and readCheckpointState)
//   config.json  random configs through readConfig and lowering
//
// Every case must end in a result or a diagnostic (a known error class with a message).
// Anything else — another exception, a broken invariant, or a case slower than the per-case
// limit — is a finding, printed with its seed and input; the script then exits 1.
//
//   npm run fuzz                                  the default run (>= 10,000 front-end cases)
//   npm run fuzz -- --seconds 60                  as many cases as fit in about 60 s
//   npm run fuzz -- --seed 7                      another seed
//   npm run fuzz -- --target ir --replay 123456   one case again, by the seed a finding printed
//
// The cases run in a worker thread; the main thread watches it, so a case that hangs is
// reported (with its seed) instead of hanging the script.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { compileModel } from "../src/api/artifacts.js";
import { UsageError } from "../src/cli/errors.js";
import { readConfig } from "../src/api/config.js";
import { buildKernel } from "../src/codegen/kernel-ir/build.js";
import { verifyKernel } from "../src/codegen/kernel-ir/verify.js";
import { printJs } from "../src/codegen/kernel-js.js";
import { wasmKernel } from "../src/codegen/wasm/kernel.js";
import { DiagnosticError, formatDiagnostics } from "../src/dsl/diagnostics.js";
import { frontend } from "../src/dsl/frontend.js";
import { modelLexer } from "../src/dsl/lexer.js";
import type { Program } from "../src/dsl/load.js";
import type { Graph } from "../src/ir/graph.js";
import { lowerProgram, type LowerOptions } from "../src/ir/lower.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { IrParseError, parseGraph, printGraph } from "../src/ir/text.js";
import { CheckpointError, loadCheckpoint, readCheckpointState } from "../src/runtime/checkpoint.js";
import {
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
} from "../src/runtime/safetensors.js";
import { REPO, SPEC_DIR } from "../test/helpers/dsl.js";
import {
  FUZZ_NUMBERS as NUMBERS,
  FUZZ_OPERATORS as OPERATORS,
  HOSTILE_NAMES,
  HOSTILE_STRINGS,
} from "../test/helpers/hardening.js";
import { randInt, rng } from "../test/helpers/ir.js";

// ---- cases, targets, statistics ---------------------------------------------------------

export const targetNames = ["frontend", "ir", "safetensors", "config"] as const;
export type TargetName = (typeof targetNames)[number];

export const targetLabels: Record<TargetName, string> = {
  frontend: "front end",
  ir: "IR text",
  safetensors: "safetensors",
  config: "config.json",
};

/** What a case ended in: a result (compiled, parsed, loaded) or a diagnostic (a known error). */
export type Outcome = "result" | "diagnostic";

export interface FuzzCase {
  seed: number;
  /** What was fuzzed: the spec, graph or file the case started from. */
  base: string;
  /** The input, as text (bytes are shown as hex with the header as text). */
  input: string | Uint8Array;
}

export interface Target {
  name: TargetName;
  /** The words for the two outcomes in the summary line. */
  words: [result: string, diagnostic: string];
  make(seed: number): FuzzCase;
  /** Runs a case; throws on anything that is neither a result nor a diagnostic. */
  run(c: FuzzCase): Outcome;
}

export interface Finding {
  target: TargetName;
  seed: number;
  base: string;
  why: string;
  ms: number;
  input: string;
}

export interface TargetStats {
  target: TargetName;
  cases: number;
  results: number;
  diagnostics: number;
  crashes: number;
  slow: number;
  maxMs: number;
  /** The seed of the slowest case (to replay it). */
  slowestSeed: number;
  seconds: number;
}

/** A finding that is not an exception: a broken invariant of a case. */
export class InvariantError extends Error {}

/** The seed of case `i` of a target: a 32-bit mix of the run's seed, the target and i. */
export function caseSeed(runSeed: number, target: TargetName, i: number): number {
  let h = Math.imul(runSeed ^ 0x9e3779b9, 0x85ebca6b) ^ (targetNames.indexOf(target) + 1);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) + i;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) >>> 0;
}

const pickFrom =
  (r: () => number) =>
  <T>(xs: readonly T[]): T =>
    xs[randInt(r, xs.length)];

function errorText(e: unknown): string {
  const err = e as Error;
  return (err?.stack ?? String(e)).split("\n").slice(0, 8).join("\n");
}

/** An input as printable text: strings JSON-quoted when they hold control characters. */
export function showInput(input: string | Uint8Array, max = 4000): string {
  if (typeof input === "string") {
    const cut = input.length > max ? `${input.slice(0, max)}... (${input.length} chars)` : input;
    return /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/.test(cut)
      ? JSON.stringify(cut)
      : cut;
  }
  const n =
    input.length >= 8
      ? Number(new DataView(input.buffer, input.byteOffset).getBigUint64(0, true))
      : -1;
  const header =
    n >= 0 && n <= input.length - 8
      ? Buffer.from(input.subarray(8, 8 + Math.min(n, max))).toString("latin1")
      : "";
  const head = Buffer.from(input.subarray(0, Math.min(input.length, 64))).toString("hex");
  return `${input.length} bytes; first 64 as hex: ${head}${header ? `\nheader (latin1): ${JSON.stringify(header)}` : ""}`;
}

// ---- front end ------------------------------------------------------------------------------

interface SpecText {
  name: string;
  text: string;
}

/** Tokens no spec holds: broken strings, odd whitespace, huge numbers, deep nests. */
const ODD_TOKENS = [
  '"',
  '"unterminated',
  "`",
  "${x}",
  "\u2028",
  "\u2029",
  "\r",
  "\t",
  "\0",
  "\\",
  "'",
  "#",
  "$",
  "é",
  "😀",
  "\uFEFF",
  "1e309",
  "1e-400",
  "9".repeat(400),
  "(".repeat(60),
  ")".repeat(60),
  "[".repeat(60),
  "-".repeat(60),
  "/*",
  "*/",
  "//",
  '"\\"',
  '"\\u2028"',
  "...",
  "h.0.attn",
  "NaN",
  "inf",
  "pi",
];

function frontendTarget(tmp: string): Target {
  const specs: SpecText[] = [
    ...readdirSync(SPEC_DIR)
      .filter((f) => f.endsWith(".model"))
      .sort()
      .map((f) => ({ name: f, text: readFileSync(join(SPEC_DIR, f), "utf8") })),
    { name: "std/nn.model", text: readFileSync(join(SPEC_DIR, "std", "nn.model"), "utf8") },
  ];
  const lexed = new Map(specs.map((s) => [s.name, modelLexer.tokenize(s.text).tokens]));
  const pool = [
    ...new Set([...lexed.values()].flatMap((ts) => ts.map((t) => t.image))),
    ...ODD_TOKENS,
    ...HOSTILE_NAMES,
    ...HOSTILE_STRINGS.map((s) => JSON.stringify(s)),
  ];
  // A mutated standard library is imported by an intact gpt2-small from this folder.
  const dir = join(tmp, "frontend");
  mkdirSync(dir, { recursive: true });
  const stdRoot = join(dir, "uses-std.model");
  writeFileSync(
    stdRoot,
    readFileSync(join(SPEC_DIR, "gpt2-small.model"), "utf8").replace(
      'import "std/nn.model"',
      'import "nn.model"',
    ),
  );
  // One layer, and small sizes, wherever the spec reads them from the config: lowering stays
  // cheap even when a mutation makes a size the repeat count (`repeat ctx as h` unrolls 1,024
  // layers of GPT-2 in about a second: slow, but not a bug).
  const opts: LowerOptions = {
    config: {
      n_layer: 1,
      num_hidden_layers: 1,
      n_positions: 32,
      n_embd: 48,
      hidden_size: 64,
      intermediate_size: 96,
    },
  };

  function mutateSpec(spec: SpecText, r: () => number): string {
    const pick = pickFrom(r);
    const tokens = lexed.get(spec.name)!;
    const toks = tokens.map((t) => t.image);
    const kinds = tokens.map((t) => t.tokenType.name);
    const names = [
      ...new Set(tokens.filter((t) => t.tokenType.name === "Identifier").map((t) => t.image)),
    ];
    // Half the cases: blind edits (the parser's recovery); half: same-kind replacements
    // (a name for a name, a number for a number), which mostly parse and test the checks
    // and lowering.
    const semantic = r() < 0.5;
    const n = semantic ? 1 + randInt(r, 2) : 1 + Math.floor(r() * r() * 3);
    for (let m = 0; m < n && toks.length > 0; m++) {
      const i = randInt(r, toks.length);
      switch (semantic ? 5 : randInt(r, 5)) {
        case 0:
          toks.splice(i, 1);
          kinds.splice(i, 1);
          break;
        case 1:
          toks.splice(i, 0, toks[i]);
          kinds.splice(i, 0, kinds[i]);
          break;
        case 2: {
          const j = randInt(r, toks.length);
          [toks[i], toks[j]] = [toks[j], toks[i]];
          [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
          break;
        }
        case 3:
          toks[i] = pick(pool);
          kinds[i] = "?";
          break;
        case 4:
          toks.splice(i, 0, pick(pool));
          kinds.splice(i, 0, "?");
          break;
        default: {
          const j = kinds.findIndex(
            (k, idx) =>
              idx >= i &&
              (k === "Identifier" ||
                k === "NumberLiteral" ||
                k === "StringLiteral" ||
                OPERATORS.includes(toks[idx])),
          );
          if (j < 0) break;
          toks[j] =
            kinds[j] === "Identifier"
              ? r() < 0.85
                ? pick(names)
                : pick(HOSTILE_NAMES)
              : kinds[j] === "NumberLiteral"
                ? pick(NUMBERS)
                : kinds[j] === "StringLiteral"
                  ? JSON.stringify(pick(HOSTILE_STRINGS)).replace(/[\u2028\u2029]/g, "")
                  : pick(OPERATORS);
        }
      }
    }
    return toks.join(" ");
  }

  return {
    name: "frontend",
    words: ["compiled", "diagnostics"],
    make(seed) {
      const r = rng(seed);
      if (r() < 0.2) return { seed, base: "random spec", input: randomSpec(r) };
      const spec = specs[randInt(r, specs.length)];
      return { seed, base: spec.name, input: mutateSpec(spec, r) };
    },
    run(c) {
      const text = c.input as string;
      let fe;
      if (c.base === "std/nn.model") {
        writeFileSync(join(dir, "nn.model"), text);
        fe = frontend(stdRoot);
      } else if (c.base === "random spec") fe = frontend(join(dir, "random.model"), text);
      // In place of the shipped file, so its relative imports resolve.
      else fe = frontend(join(SPEC_DIR, c.base), text);
      let diagnostics = fe.diagnostics.items;
      if (fe.program) {
        try {
          const l = lowerProgram(fe.program, opts);
          if (l.graph.outputs.length === 0)
            throw new InvariantError("lowered to a graph without outputs");
          // One compiled case in four goes on through the middle and back end: optimization,
          // autodiff, fusion, the memory plan, kernel IR (verified) and both printers at B=2, T=4. Sizes that do
          // not fit these bindings are diagnostics; anything else thrown is a finding. (Graphs of
          // many layers are left out: they only cost time.)
          if (c.seed % 4 === 0 && l.graph.nodes.length <= 400) {
            try {
              const comp = compileModel(l, { batch: 2, seq: 4 });
              for (const s of [comp.forwardSchedule, comp.trainingSchedule])
                if (s)
                  for (const k of s.kernels) {
                    const ir = buildKernel(s.graph, k, comp.plan.bindings, "rows");
                    verifyKernel(ir);
                    printJs(ir);
                    wasmKernel(ir, { initial: 1, maximum: 65536, shared: false });
                  }
            } catch (e) {
              if (!(e instanceof DiagnosticError)) throw e;
            }
          }
          return "result";
        } catch (e) {
          if (!(e instanceof DiagnosticError)) throw e;
          diagnostics = e.diagnostics;
        }
      }
      if (diagnostics.length === 0) throw new InvariantError("failed without diagnostics");
      if (!formatDiagnostics(diagnostics, fe.sources).includes("error: "))
        throw new InvariantError("diagnostics did not render");
      return "diagnostic";
    },
  };
}

/** A random model: mostly well-formed, often ill-typed, sometimes with hostile names. */
export function randomSpec(r: () => number): string {
  const pick = pickFrom(r);
  let scopes = 0;
  let fresh = 0;
  const name = (prefix: string) => (r() < 0.08 ? pick(HOSTILE_NAMES) : `${prefix}${fresh++}`);
  const scope = () => (r() < 0.1 ? pick(HOSTILE_NAMES) : `s${scopes++}`);
  const num = () =>
    r() < 0.6
      ? pick(["d", "8", "16", "2 * d", "vocab"])
      : pick([
          "0",
          "1",
          "2",
          "3",
          "4",
          "8",
          "0.5",
          "-1",
          "1e-5",
          "16",
          "d",
          "2 * d",
          "d / heads",
          "vocab",
        ]);
  const axis = () => pick(["-1", "0", "1", "2", "-2", "3", "-4"]);
  const vars: string[] = ["x"];
  const expr = (depth: number): string => {
    const v = pick(vars);
    if (depth <= 0) return r() < 0.85 ? v : num();
    const e = () => expr(depth - 1);
    switch (randInt(r, 24)) {
      case 0:
        return `${e()} ${pick(["+", "-", "*", "/"])} ${e()}`;
      case 1:
        return `${e()} @ ${e()}${r() < 0.5 ? ".T" : ""}`;
      case 2:
        return `linear(${e()}, ${num()}${r() < 0.3 ? ", use_bias = false" : ""}) as ${scope()}`;
      case 3:
        return `layernorm(${e()}) as ${scope()}`;
      case 4:
        return `${pick(["exp", "log", "tanh", "sqrt", "relu", "sin", "cos", "abs", "gelu", "silu", "sigmoid", "softmax", "log_softmax"])}(${e()})`;
      case 5:
        return `${pick(["sum", "mean", "max"])}(${e()}${r() < 0.7 ? `, axis = ${axis()}` : ""}${r() < 0.5 ? `, keepdim = ${pick(["true", "false"])}` : ""})`;
      case 6:
        return `reshape(${e()}, [${pick(["B, T, -1", "B * T, d", "B, T, heads, d / heads", "-1", "B, -1, -1", "T, B, d"])}])`;
      case 7:
        return `permute(${e()}, [${pick(["0, 2, 1", "1, 0, 2", "2, 1, 0", "0, 1", "0, 1, 2, 3"])}])`;
      case 8:
        return `transpose(${e()})`;
      case 9:
        return `concat([${e()}, ${e()}], axis = ${axis()})`;
      case 10:
        return `causal_self_attention(${e()}, heads, 0.02) as ${scope()}`;
      case 11:
        return `mlp(${e()}, 4 * d, 0.02) as ${scope()}`;
      case 12:
        return `softmax(${e()} @ ${e()}.T + causal_mask(T, T)) @ ${e()}`;
      case 13:
        return `where(${e()} < ${num()}, ${e()}, ${e()})`;
      case 14:
        return `${e()} * reshape(float(arange(${pick(["T", "d", "B"])})), [${pick(["T, 1", "1, d", "d", "B, 1, 1"])}])`;
      case 15:
        return `${e()} ** ${pick(["2", "0.5", "3", "-1"])}`;
      case 16:
        return `detach(${e()})`;
      case 17:
        return `maximum(${e()}, ${e()})`;
      case 18:
        return `-${e()}`;
      case 19:
        return `${e()} / sqrt(dim(${e()}, ${axis()}))`;
      case 20:
        return `embedding(tokens, vocab, d) as ${scope()}`;
      case 21:
        return `f0(${e()}) as ${scope()}`;
      case 22:
        return `cache(${e()}${r() < 0.3 ? `, axis = ${axis()}` : ""})`;
      default:
        return `(${e()})`;
    }
  };
  // The first value is a good one, and the most likely.
  const paramDecl = (n: string, values: string[], key: string) =>
    `  param ${n} = ${r() < 0.75 ? values[0] : pick(values)}${r() < 0.4 ? ` from ${JSON.stringify(r() < 0.8 ? key : pick(HOSTILE_STRINGS)).replace(/[\u2028\u2029]/g, " ")}` : ""}`;
  const lines = [
    'import "std/nn.model"',
    "",
    "fn f0(x: [..., C]) {",
    `  weight ${r() < 0.2 ? pick(HOSTILE_NAMES) : "w"}: [C, C] = ${pick(["normal(0.02)", "zeros", "ones"])}`,
    `  return ${pick(["x @ w", "relu(x @ w) + x", "x * w", "linear(x, C) as inner"])}`,
    "}",
    "",
    `model ${r() < 0.1 ? pick(HOSTILE_NAMES) : "rnd"} {`,
    paramDecl("d", ["8", "4", "16", "0", "-2", "3", "2.5", "1e9"], "n_embd"),
    paramDecl("heads", ["2", "1", "4", "0", "3"], "n_head"),
    paramDecl("vocab", ["11", "7", "1", "0"], "vocab_size"),
    paramDecl("layers", ["1", "2", "0", "-1", "1.5"], "n_layer"),
    "  input tokens: int[B, T]",
    "  x = embedding(tokens, vocab, d) as emb",
  ];
  // The weight of f0 may have a hostile name: the return statement uses that name.
  const weightName = lines[3].match(/weight (\w+):/)![1];
  lines[4] = lines[4].replace(/\bw\b/g, weightName);
  const statements = 1 + randInt(r, 4);
  for (let s = 0; s < statements; s++) {
    const depth = 1 + randInt(r, 3);
    switch (randInt(r, 5)) {
      case 0: {
        const idx = r() < 0.5 ? `${pick(["i", "j", "k", "layers"])} in ` : "";
        lines.push(`  repeat ${idx}layers as ${scope()} {`, `    x = x + ${expr(depth)}`, "  }");
        break;
      }
      case 1: {
        const a = name("a");
        const b = name("b");
        lines.push(
          `  ${a}, ${b} = split(${expr(depth)}, ${pick(["2", "3", "heads"])}, axis = ${axis()})`,
        );
        vars.push(a, b);
        break;
      }
      case 2:
        lines.push(
          `  if ${pick(["layers > 1", "d == 8", "true", "false"])} {`,
          `    x = ${expr(depth)}`,
          "  } else {",
          `    x = ${expr(depth)}`,
          "  }",
        );
        break;
      default: {
        const v = name("v");
        lines.push(`  ${v} = ${expr(depth)}`);
        vars.push(v);
      }
    }
  }
  lines.push(`  output logits = linear(${expr(1)}, vocab) as head`);
  if (r() < 0.6)
    lines.push("  input targets: int[B, T]", "  loss = cross_entropy(logits, targets)");
  lines.push("}", "");
  if (r() < 0.2)
    lines.push(
      `preset ${pick(["small", "constructor", "__proto__"])} { d = ${num()}, layers = 1 }`,
      "",
    );
  return lines.join("\n");
}

// ---- IR text ----------------------------------------------------------------------------------

const IR_ALPHABET = ' %{}[]<>(),=:"#*+-._0123456789abcdefghijklmnopqrstuvwxyzBT\\';
const IR_TOKENS = [
  "%0",
  "%999",
  "%-1",
  "f32",
  "i32",
  "bool",
  "size(",
  "<",
  "[",
  "]",
  "{",
  "}",
  "nan",
  "-inf",
  "1e-5",
  "1e400",
  '"',
  "output",
  "neg",
  "matmul",
  "reshape",
  "gather",
  "concat",
  "B*T",
  "T-1",
  "B/0",
  "keepdim=true",
  "axes=[0, 9]",
  "perm=[1, 0]",
  "n=8",
  "shape=[2]",
  "__proto__=1",
  "constructor=2",
  "toString",
];

function irTarget(): Target {
  const graphs: { name: string; text: string }[] = [];
  const smallSets: Record<string, Record<string, string>> = {
    "gpt2-tiny": { layers: "1" },
    "gpt2-small": { d: "8", heads: "2", layers: "1", vocab: "11", ctx: "8" },
    "llama-style": { d: "8", heads: "2", kv_heads: "1", layers: "1", vocab: "11", hidden: "12" },
    "seed-transformer": { d: "8", heads: "2", layers: "1", vocab: "11", hidden: "12" },
  };
  for (const [spec, set] of Object.entries(smallSets)) {
    const fe = frontend(join(SPEC_DIR, `${spec}.model`));
    const c = compileGraphs(lowerProgram(fe.program!, { set }));
    const add = (kind: string, g: Graph | undefined) =>
      g && graphs.push({ name: `${spec} ${kind}`, text: printGraph(g) });
    add("forward", c.forward);
    add("forward-opt", c.forwardOpt);
    add("training", c.training);
  }
  const names = ["x", "tokens", "wte.weight", ...HOSTILE_STRINGS, ...HOSTILE_NAMES.slice(0, 10)];

  function mutate(text: string, r: () => number): string {
    const pick = pickFrom(r);
    const lines = text.split("\n");
    const li = 1 + randInt(r, Math.max(1, lines.length - 3));
    const line = lines[li] ?? "";
    const pos = randInt(r, line.length + 1);
    const put = (s: string) => {
      lines[li] = s;
      return lines.join("\n");
    };
    switch (randInt(r, 11)) {
      case 0:
        return put(line.slice(0, pos) + line.slice(pos + 1));
      case 1:
        return put(line.slice(0, pos) + pick([...IR_ALPHABET]) + line.slice(pos));
      case 2:
        return put(line.slice(0, pos) + pick([...IR_ALPHABET]) + line.slice(pos + 1));
      case 3:
        return put(line.slice(0, pos) + pick(IR_TOKENS) + line.slice(pos));
      case 4: {
        const runs = [...line.matchAll(/\d+/g)];
        if (!runs.length) return put(line + pick(IR_TOKENS));
        const m = pick(runs);
        const v = pick([0, 1, 2, 7, 31, 65535, 2 ** 31, 2 ** 53, 1e21]);
        return put(line.slice(0, m.index) + String(v) + line.slice(m.index! + m[0].length));
      }
      case 5: {
        const words = [...line.matchAll(/[a-z_]+/g)];
        if (!words.length) return put(line);
        const m = pick(words);
        const w = pick([
          "neg",
          "sum",
          "input",
          "weight",
          "expand",
          "take",
          "put",
          "f32",
          "bool",
          "axes",
          "perm",
          "n",
          "x",
          "const",
          "scatter_add",
          "softmax",
          "where",
          "slice",
        ]);
        return put(line.slice(0, m.index) + w + line.slice(m.index! + m[0].length));
      }
      case 6: {
        // a quoted name replaced by a hostile one (JSON-escaped, as the printer writes it)
        const strings = [...line.matchAll(/"(?:[^"\\]|\\.)*"/g)];
        if (!strings.length) return put(line);
        const m = pick(strings);
        return put(
          line.slice(0, m.index) + JSON.stringify(pick(names)) + line.slice(m.index! + m[0].length),
        );
      }
      case 7:
        lines.splice(li, 1);
        return lines.join("\n");
      case 8:
        lines.splice(li, 0, line);
        return lines.join("\n");
      case 9: // truncate the text
        return text.slice(0, randInt(r, text.length));
      default: {
        const lj = 1 + randInt(r, Math.max(1, lines.length - 3));
        [lines[li], lines[lj]] = [lines[lj], lines[li]];
        return lines.join("\n");
      }
    }
  }

  return {
    name: "ir",
    words: ["parsed", "parse errors"],
    make(seed) {
      const r = rng(seed);
      const g = graphs[randInt(r, graphs.length)];
      let text = g.text;
      for (let k = 1 + randInt(r, 3); k > 0; k--) text = mutate(text, r);
      return { seed, base: g.name, input: text };
    },
    run(c) {
      const text = c.input as string;
      let g: Graph;
      try {
        g = parseGraph(text);
      } catch (e) {
        if (!(e instanceof IrParseError)) throw e;
        const lines = text.split("\n").length;
        if (!(e.line >= 1 && e.line <= lines))
          throw new InvariantError(`error line ${e.line} is outside the text (${lines} lines)`);
        return "diagnostic";
      }
      const printed = printGraph(g);
      if (printGraph(parseGraph(printed)) !== printed)
        throw new InvariantError("what parses does not print stably");
      return "result";
    },
  };
}

// ---- safetensors --------------------------------------------------------------------------

/** A file with the given header text (space-padded to 8 bytes) and data section. */
function fileWith(header: string, data: Uint8Array): Uint8Array {
  const json = Buffer.from(header, "utf8");
  const len = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + len + data.length).fill(0x20, 8, 8 + len);
  new DataView(out.buffer).setBigUint64(0, BigInt(len), true);
  out.set(json, 8);
  out.set(data, 8 + len);
  return out;
}

function headerOf(bytes: Uint8Array): { text: string; length: number } {
  if (bytes.length < 8) return { text: "", length: 0 };
  const declared = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
  const length = Number(declared > BigInt(bytes.length - 8) ? BigInt(bytes.length - 8) : declared);
  return { text: Buffer.from(bytes.subarray(8, 8 + length)).toString("utf8"), length };
}

function safetensorsTarget(tmp: string): Target {
  const f32 = (n: number, k = 1) => Float32Array.from({ length: n }, (_, i) => (i + 1) * k);
  const bases: { name: string; bytes: Uint8Array; checkpoint?: boolean }[] = [];
  bases.push({
    name: "small F32 file",
    bytes: serializeSafetensors(
      [
        ["a.weight", { shape: [2, 3], data: f32(6) }],
        ["a.bias", { shape: [3], data: f32(3, -0.5) }],
        ["s", { shape: [], data: f32(1, 9) }],
        ["empty", { shape: [0, 4], data: f32(0) }],
      ],
      { format: "pt" },
    ),
  });
  {
    // F16, BF16, F64 and F32 at unaligned offsets, written by hand.
    const data = new Uint8Array(18 + 4 + 8 + 24);
    const dv = new DataView(data.buffer);
    [0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00, 0x7e00].forEach((h, i) =>
      dv.setUint16(2 * i, h, true),
    );
    dv.setFloat32(18, 2.5, true);
    [0x3f80, 0xc000, 0x7f80, 0x3e20].forEach((h, i) => dv.setUint16(22 + 2 * i, h, true));
    [1.5, 0.1, -1e300].forEach((v, i) => dv.setFloat64(30 + 8 * i, v, true));
    const header = JSON.stringify({
      __metadata__: { format: "pt", note: "mixed dtypes" },
      h: { dtype: "F16", shape: [9], data_offsets: [0, 18] },
      s: { dtype: "F32", shape: [1], data_offsets: [18, 22] },
      b: { dtype: "BF16", shape: [2, 2], data_offsets: [22, 30] },
      d: { dtype: "F64", shape: [3], data_offsets: [30, 54] },
    });
    bases.push({ name: "mixed dtypes", bytes: fileWith(header, data) });
  }
  {
    // A gptc checkpoint: weights, AdamW moments and the training state in the metadata.
    const state = {
      format: "gptc-checkpoint-1",
      step: 3,
      batchRng: 12345,
      tokensSeen: 48,
      model: { spec: join(SPEC_DIR, "gpt2-tiny.model"), set: {} },
      tokenizer: { kind: "char", chars: ["a", "b"] },
      options: { steps: 10, batch: 2, seq: 8 },
      adamStep: 3,
    };
    const tensors: [string, { shape: number[]; data: Float32Array }][] = [];
    for (const k of ["w", "b"]) {
      tensors.push([k, { shape: [2, 2], data: f32(4) }]);
      tensors.push([`optimizer.m.${k}`, { shape: [2, 2], data: f32(4, 0.1) }]);
      tensors.push([`optimizer.v.${k}`, { shape: [2, 2], data: f32(4, 0.01) }]);
    }
    bases.push({
      name: "checkpoint",
      bytes: serializeSafetensors(tensors, { gptc_state: JSON.stringify(state) }),
      checkpoint: true,
    });
  }
  const fixture = join(REPO, "test", "fixtures", "tiny", "model.safetensors");
  try {
    bases.push({
      name: "fixtures/tiny/model.safetensors",
      bytes: new Uint8Array(readFileSync(fixture)),
    });
  } catch {
    // not in every checkout
  }
  const dir = join(tmp, "checkpoint");
  mkdirSync(dir, { recursive: true });
  const tokens = [
    '"',
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "-1",
    "1e400",
    "0.5",
    "null",
    "\\",
    "\u00ff",
    "true",
    '""',
    "{}",
    "[]",
  ];
  const numbers = [
    "0",
    "1",
    "-1",
    "4",
    "7",
    "24",
    "1.5",
    "1e9",
    "9007199254740993",
    "18446744073709551616",
    "-0",
    "1e-400",
  ];
  const dtypes = ["F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "Q7", "", "f32"];

  function mutate(bytes0: Uint8Array, r: () => number): Uint8Array {
    const pick = pickFrom(r);
    let bytes: Uint8Array = bytes0.slice();
    const { text, length } = headerOf(bytes);
    const data = bytes.subarray(8 + length);
    const trimmed = text.trimEnd();
    const rebuild = (t: string) => fileWith(t, data);
    switch (randInt(r, 12)) {
      case 0: // flip 1-4 bits anywhere
        for (let k = 1 + randInt(r, 4); k > 0; k--)
          bytes[randInt(r, bytes.length)] ^= 1 << randInt(r, 8);
        return bytes;
      case 1: // truncate
        return bytes.slice(0, randInt(r, bytes.length));
      case 2: // a random byte in the length or the header
        bytes[randInt(r, Math.min(bytes.length, 8 + length))] = randInt(r, 256);
        return bytes;
      case 3: {
        // a number of the header replaced (dims, offsets)
        const ms = [...trimmed.matchAll(/\d+/g)];
        if (!ms.length) return bytes;
        const m = pick(ms);
        return rebuild(
          trimmed.slice(0, m.index) + pick(numbers) + trimmed.slice(m.index! + m[0].length),
        );
      }
      case 4: {
        // a structural token inserted or deleted
        const at = randInt(r, trimmed.length);
        return rebuild(
          trimmed.slice(0, at) +
            (r() < 0.7 ? pick(tokens) : "") +
            trimmed.slice(at + randInt(r, 3)),
        );
      }
      case 5: {
        // header edit with the length left stale
        const at = randInt(r, trimmed.length);
        const out = rebuild(trimmed.slice(0, at) + pick(tokens) + trimmed.slice(at));
        out.set(bytes.subarray(0, 8), 0);
        return out;
      }
      case 6: {
        // the length field set to something else
        if (bytes.length < 8) return bytes;
        const v = pick([
          0n,
          1n,
          7n,
          BigInt(length - 1),
          BigInt(length + 8),
          BigInt(bytes.length),
          1n << 40n,
          (1n << 64n) - 1n,
          100_000_001n,
        ]);
        new DataView(bytes.buffer).setBigUint64(0, v, true);
        return bytes;
      }
      case 7: {
        // a tensor name (or metadata key or value) replaced by a hostile string
        const ms = [...trimmed.matchAll(/"(?:[^"\\]|\\.)*"/g)].filter(
          (m) => !['"dtype"', '"shape"', '"data_offsets"'].includes(m[0]),
        );
        if (!ms.length) return bytes;
        const m = pick(ms);
        return rebuild(
          trimmed.slice(0, m.index) +
            JSON.stringify(pick(HOSTILE_STRINGS)) +
            trimmed.slice(m.index! + m[0].length),
        );
      }
      case 8: {
        // a dtype swapped
        const ms = [...trimmed.matchAll(/"dtype":"[^"]*"/g)];
        if (!ms.length) return bytes;
        const m = pick(ms);
        return rebuild(
          trimmed.slice(0, m.index) +
            `"dtype":${JSON.stringify(pick(dtypes))}` +
            trimmed.slice(m.index! + m[0].length),
        );
      }
      case 9: {
        // bytes appended or the data section cut
        if (r() < 0.5) {
          const extra = new Uint8Array(1 + randInt(r, 64)).map(() => randInt(r, 256));
          const out = new Uint8Array(bytes.length + extra.length);
          out.set(bytes);
          out.set(extra, bytes.length);
          return out;
        }
        return bytes.slice(0, 8 + length + randInt(r, data.length + 1));
      }
      case 10: {
        // one entry duplicated under another name, or the metadata made strange
        const v = pick([
          `"__metadata__":${pick(["null", "[]", '{"a":1}', '{"__proto__":"x"}', '"s"', `{"k":${JSON.stringify(pick(HOSTILE_STRINGS))}}`])}`,
          `"dup":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`,
          `"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`,
        ]);
        return rebuild(trimmed.replace(/^\{/, `{${v},`));
      }
      default: {
        // the gptc state (or any metadata value) edited as JSON text
        const m = trimmed.match(/"gptc_state":"((?:[^"\\]|\\.)*)"/);
        if (!m) return bytes;
        let state: string;
        try {
          state = JSON.parse(`"${m[1]}"`) as string; // an earlier edit may have broken it
        } catch {
          return bytes;
        }
        const at = randInt(r, state.length);
        state = pick([
          () => state.slice(0, at) + state.slice(at + 1 + randInt(r, 8)),
          () =>
            state.replace(
              /"(format|model|tokenizer|options|step|spec)"/,
              `"${pick(["x", "__proto__", "constructor"])}"`,
            ),
          () => state.replace(/:(\d+)/, `:${pick(numbers)}`),
          () => state.replace(/"gptc-checkpoint-1"/, pick(['"gptc-checkpoint-2"', "null", "1"])),
          () => pick(["null", "1", '"s"', "[]", "{}", '{"format":"gptc-checkpoint-1"}']),
        ])();
        return rebuild(trimmed.replace(m[0], `"gptc_state":${JSON.stringify(state)}`));
      }
    }
  }

  return {
    name: "safetensors",
    words: ["loaded", "errors"],
    make(seed) {
      const r = rng(seed);
      const b = bases[randInt(r, bases.length)];
      let bytes = b.bytes;
      for (let k = r() < 0.8 ? 1 : 2; k > 0; k--) bytes = mutate(bytes, r);
      return { seed, base: b.name, input: bytes };
    },
    run(c) {
      const bytes = c.input as Uint8Array;
      let outcome: Outcome;
      try {
        const { tensors } = parseSafetensors(bytes, "fuzz");
        for (const [k, t] of tensors)
          if (t.data.length !== t.shape.reduce((a, b) => a * b, 1))
            throw new InvariantError(
              `tensor ${JSON.stringify(k)}: ${t.data.length} values for shape [${t.shape}]`,
            );
        outcome = "result";
      } catch (e) {
        if (!(e instanceof SafetensorsError)) throw e;
        if (!e.message.startsWith("fuzz: "))
          throw new InvariantError(`message does not name the file: ${e.message}`);
        outcome = "diagnostic";
      }
      if (c.base !== "checkpoint") return outcome;
      // The same bytes as a checkpoint: what `gptc train --resume` and `gptc generate` read.
      writeFileSync(join(dir, "checkpoint.safetensors"), bytes);
      let loaded = false;
      try {
        const ck = loadCheckpoint(dir);
        if (ck.state.format !== "gptc-checkpoint-1")
          throw new InvariantError("loadCheckpoint accepted another format");
        loaded = true;
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
      }
      try {
        const state = readCheckpointState(dir);
        // generate uses the state it returns: a state that is not a gptc state must be refused.
        if (state?.format !== "gptc-checkpoint-1")
          throw new InvariantError(
            `readCheckpointState returned a state of format ${JSON.stringify((state as { format?: unknown } | null)?.format)}`,
          );
      } catch (e) {
        if (!(e instanceof CheckpointError)) throw e;
      }
      return loaded ? "result" : "diagnostic";
    },
  };
}

// ---- config.json ---------------------------------------------------------------------------

function configTarget(tmp: string): Target {
  const programs: { name: string; program: Program; keys: string[] }[] = [];
  for (const spec of ["gpt2-small", "gpt2-tiny", "llama-style", "seed-transformer"]) {
    const fe = frontend(join(SPEC_DIR, `${spec}.model`));
    const keys = fe.program!.model!.body.flatMap((s) =>
      s.kind === "param" && s.configKey ? [s.configKey] : [],
    );
    programs.push({ name: spec, program: fe.program!, keys });
  }
  const dir = join(tmp, "config");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "config.json");
  // Values as JSON text: 1e400 parses to Infinity, -0 to -0.
  const values = [
    "0",
    "1",
    "2",
    "3",
    "4",
    "-1",
    "0.5",
    "1e-5",
    "1e308",
    "1e400",
    "-1e400",
    "-0",
    "2147483648",
    "9007199254740993",
    "10001",
    '"12"',
    '""',
    "true",
    "false",
    "null",
    "[]",
    "[2]",
    "{}",
    '{"n_layer":1}',
    "1.0000000001",
  ];
  const layerKeys = new Set(["n_layer", "num_hidden_layers"]);

  return {
    name: "config",
    words: ["lowered", "errors"],
    make(seed) {
      const r = rng(seed);
      const pick = pickFrom(r);
      const p = programs[randInt(r, programs.length)];
      const fields: string[] = [];
      for (const k of p.keys) {
        if (r() < 0.3) continue;
        // Depth stays small (lowering unrolls every layer); the rest may be anything.
        const v = layerKeys.has(k)
          ? pick(["0", "1", "2", "-1", "1.5", "10001", "1e400", '"2"', "null"])
          : r() < 0.5
            ? pick(["2", "4", "8", "16"])
            : pick(values);
        fields.push(`${JSON.stringify(k)}:${v}`);
      }
      for (let k = randInt(r, 3); k > 0; k--)
        fields.push(
          `${JSON.stringify(pick([...HOSTILE_STRINGS, ...HOSTILE_NAMES.slice(0, 8)]))}:${pick(values)}`,
        );
      if (r() < 0.2) fields.push(`"model_type":${pick(['"gpt2"', '"llama"', "1", "null"])}`);
      let text = `{${fields.join(",")}}`;
      switch (randInt(r, 12)) {
        case 0:
          text = text.slice(0, randInt(r, text.length)); // truncated
          break;
        case 1:
          text = pick(["[]", "null", "1", '"s"', "", "\uFEFF{}", "{}", "[{}]"]);
          break;
        case 2:
          text = text.replace(/^\{/, "{\n  // a comment\n"); // JSON has no comments
          break;
        case 3:
          text = text.replace(/,/, ",,");
          break;
        case 4: // a duplicate key: the last one wins in JSON.parse
          if (p.keys.length)
            text = text.replace(/^\{/, `{${JSON.stringify(pick(p.keys))}:${pick(values)},`);
          break;
        default:
          break;
      }
      return { seed, base: p.name, input: text };
    },
    run(c) {
      const p = programs.find((q) => q.name === c.base)!;
      writeFileSync(file, c.input);
      let config: Record<string, unknown>;
      try {
        config = readConfig(file);
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        return "diagnostic";
      }
      try {
        const l = lowerProgram(p.program, { config });
        for (const v of l.params)
          if (typeof v.value === "number" && !Number.isFinite(v.value))
            throw new InvariantError(`parameter ${v.name} is ${v.value} after lowering`);
        return "result";
      } catch (e) {
        if (!(e instanceof DiagnosticError)) throw e;
        if (e.diagnostics.length === 0)
          throw new InvariantError("a DiagnosticError without diagnostics");
        return "diagnostic";
      }
    },
  };
}

// ---- running --------------------------------------------------------------------------------

/** The targets, set up in `tmp` (a fresh temporary folder the caller removes). */
export function createTargets(tmp: string, only?: readonly TargetName[]): Target[] {
  const make: Record<TargetName, () => Target> = {
    frontend: () => frontendTarget(tmp),
    ir: () => irTarget(),
    safetensors: () => safetensorsTarget(tmp),
    config: () => configTarget(tmp),
  };
  return (only ?? targetNames).map((n) => make[n]());
}

export interface RunOptions {
  seed: number;
  /** Cases to run (stops earlier when `seconds` runs out). */
  cases?: number;
  /** Time for this target; with no `cases`, it runs until this is spent. */
  seconds?: number;
  /** A case slower than this is a finding. */
  caseLimitMs: number;
  /** Called before each case (the watchdog's heartbeat). */
  onCase?: (i: number, seed: number) => void;
}

/** Runs a target's cases; returns the counts and the findings. */
export function runTarget(t: Target, o: RunOptions): { stats: TargetStats; findings: Finding[] } {
  const stats: TargetStats = {
    target: t.name,
    cases: 0,
    results: 0,
    diagnostics: 0,
    crashes: 0,
    slow: 0,
    maxMs: 0,
    slowestSeed: 0,
    seconds: 0,
  };
  const findings: Finding[] = [];
  const started = performance.now();
  const deadline = o.seconds === undefined ? Infinity : started + o.seconds * 1000;
  const limit = o.cases ?? Infinity;
  for (let i = 0; i < limit && performance.now() < deadline; i++) {
    const seed = caseSeed(o.seed, t.name, i);
    o.onCase?.(i, seed);
    let c: FuzzCase;
    try {
      c = t.make(seed);
    } catch (e) {
      // A bug of the fuzzer, not of gptc; reported all the same, so it gets fixed.
      stats.crashes++;
      findings.push({
        target: t.name,
        seed,
        base: "?",
        why: `the case generator failed: ${errorText(e)}`,
        ms: 0,
        input: "",
      });
      continue;
    }
    const t0 = performance.now();
    let why: string | undefined;
    try {
      const outcome = t.run(c);
      if (outcome === "result") stats.results++;
      else stats.diagnostics++;
    } catch (e) {
      why = e instanceof InvariantError ? e.message : `uncaught ${errorText(e)}`;
    }
    const ms = performance.now() - t0;
    stats.cases++;
    if (ms > stats.maxMs) {
      stats.maxMs = ms;
      stats.slowestSeed = seed;
    }
    if (why === undefined && ms > o.caseLimitMs) {
      why = `took ${ms.toFixed(0)} ms (limit ${o.caseLimitMs} ms)`;
      stats.slow++;
    } else if (why !== undefined) stats.crashes++;
    if (why !== undefined)
      findings.push({ target: t.name, seed, base: c.base, why, ms, input: showInput(c.input) });
  }
  stats.seconds = (performance.now() - started) / 1000;
  return { stats, findings };
}

export function formatStats(s: TargetStats, words: [string, string]): string {
  return (
    `${targetLabels[s.target]}: ${s.cases.toLocaleString("en-US")} cases, ` +
    `${s.diagnostics.toLocaleString("en-US")} ${words[1]}, ${s.results.toLocaleString("en-US")} ${words[0]}, ` +
    `${s.crashes} crashes, ${s.slow} over the time limit (slowest ${s.maxMs.toFixed(0)} ms, seed ${s.slowestSeed}; ${s.seconds.toFixed(1)} s)`
  );
}

export function formatFinding(f: Finding): string {
  return (
    `FINDING in ${targetLabels[f.target]}: seed ${f.seed} (from ${f.base}, ${f.ms.toFixed(0)} ms)\n` +
    `  replay: npm run fuzz -- --target ${f.target} --replay ${f.seed}\n` +
    `  ${f.why.replace(/\n/g, "\n  ")}\n--- input ---\n${f.input}\n--- end of input ---`
  );
}

/** Cases per target of the default run (the front end gets the most). */
export const defaultCases: Record<TargetName, number> = {
  frontend: 10_000,
  ir: 4_000,
  safetensors: 6_000,
  config: 3_000,
};
/** Shares of --seconds per target. */
const timeShare: Record<TargetName, number> = {
  frontend: 0.55,
  ir: 0.15,
  safetensors: 0.15,
  config: 0.15,
};

interface Args {
  seed: number;
  seconds?: number;
  cases?: number;
  caseLimitMs: number;
  hangSeconds: number;
  targets: TargetName[];
  replay?: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { seed: 1, caseLimitMs: 2000, hangSeconds: 60, targets: [...targetNames] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const number = (min: number) => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < min) throw new Error(`${flag} must be a number >= ${min}`);
      return v;
    };
    if (flag === "--seed") a.seed = Math.trunc(number(0)) >>> 0;
    else if (flag === "--seconds") a.seconds = number(0.1);
    else if (flag === "--cases") a.cases = Math.trunc(number(1));
    else if (flag === "--case-ms") a.caseLimitMs = number(1);
    else if (flag === "--hang-seconds") a.hangSeconds = number(1);
    else if (flag === "--replay") a.replay = Math.trunc(number(0)) >>> 0;
    else if (flag === "--target") {
      const names = value().split(",");
      for (const n of names)
        if (!(targetNames as readonly string[]).includes(n))
          throw new Error(`--target ${n}: expected ${targetNames.join(", ")}`);
      a.targets = names as TargetName[];
    } else if (flag === "--help" || flag === "-h") {
      process.stdout.write(
        "usage: npm run fuzz -- [--seconds S] [--seed N] [--cases N] [--target frontend,ir,safetensors,config]\n" +
          "                       [--case-ms MS] [--hang-seconds S] [--replay SEED --target T]\n",
      );
      process.exit(0);
    } else throw new Error(`unknown option ${flag}`);
  }
  if (a.replay !== undefined && a.targets.length !== 1)
    throw new Error("--replay needs one --target");
  return a;
}

/** Worker side: runs the targets, reporting each case start in `beat` and the results by message. */
function workerMain(): void {
  const { args, beat } = workerData as { args: Args; beat: SharedArrayBuffer };
  const heart = new Int32Array(beat);
  const tmp = mkdtempSync(join(tmpdir(), "gptc-fuzz-"));
  try {
    const targets = createTargets(tmp, args.targets);
    for (const t of targets) {
      const k = targetNames.indexOf(t.name);
      const res = runTarget(t, {
        seed: args.seed,
        cases: args.seconds === undefined ? (args.cases ?? defaultCases[t.name]) : args.cases,
        seconds:
          args.seconds === undefined
            ? undefined
            : (args.seconds * timeShare[t.name]) /
              args.targets.reduce((s, n) => s + timeShare[n], 0),
        caseLimitMs: args.caseLimitMs,
        onCase: (i, seed) => {
          heart[0] = k;
          heart[1] = i;
          heart[2] = seed | 0;
          Atomics.add(heart, 3, 1);
        },
      });
      parentPort!.postMessage({
        kind: "target",
        stats: res.stats,
        words: t.words,
        findings: res.findings,
      });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  parentPort!.postMessage({ kind: "done" });
}

function replay(args: Args): number {
  const tmp = mkdtempSync(join(tmpdir(), "gptc-fuzz-"));
  try {
    const [t] = createTargets(tmp, args.targets);
    const c = t.make(args.replay!);
    process.stdout.write(
      `${targetLabels[t.name]} seed ${c.seed} (from ${c.base}):\n${showInput(c.input, 100_000)}\n---\n`,
    );
    const t0 = performance.now();
    const outcome = t.run(c); // lets any exception surface with its full stack
    process.stdout.write(`${outcome} in ${(performance.now() - t0).toFixed(1)} ms\n`);
    return 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`fuzz: ${(e as Error).message}\n`);
    return 2;
  }
  if (args.replay !== undefined) return replay(args);
  process.stdout.write(
    `fuzzing ${args.targets.map((t) => targetLabels[t]).join(", ")} with seed ${args.seed}` +
      (args.seconds !== undefined ? ` for about ${args.seconds} s` : "") +
      ` (a case over ${args.caseLimitMs} ms is a finding)\n`,
  );
  const beat = new SharedArrayBuffer(16);
  const heart = new Int32Array(beat);
  const tsx = import.meta.resolve("tsx/esm/api");
  const self = import.meta.url;
  const worker = new Worker(
    `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); })`,
    { eval: true, workerData: { args, beat } },
  );
  const all: TargetStats[] = [];
  const findings: Finding[] = [];
  let finished = false;
  const ok = await new Promise<boolean>((resolve) => {
    // Ends the run early with a finding for the case in progress (rebuilt from its seed).
    const stop = (why: string, ms: number) => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      const target = targetNames[heart[0]];
      const seed = heart[2] >>> 0;
      const tmp = mkdtempSync(join(tmpdir(), "gptc-fuzz-"));
      let input = "(could not be rebuilt)";
      let base = "?";
      try {
        const c = createTargets(tmp, [target])[0].make(seed);
        input = showInput(c.input);
        base = c.base;
      } catch {
        // keep the placeholders
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      findings.push({ target, seed, base, why, ms, input });
      resolve(false);
    };
    let last = -1;
    let since = performance.now();
    const timer = setInterval(() => {
      const n = Atomics.load(heart, 3);
      if (n !== last) {
        last = n;
        since = performance.now();
        return;
      }
      if (performance.now() - since < args.hangSeconds * 1000) return;
      // The same case for too long: report it and stop the worker.
      stop(`no result after ${args.hangSeconds} s: the case hangs`, args.hangSeconds * 1000);
      void worker.terminate();
    }, 500);
    worker.on(
      "message",
      (m: {
        kind: string;
        stats?: TargetStats;
        words?: [string, string];
        findings?: Finding[];
      }) => {
        if (m.kind === "target") {
          all.push(m.stats!);
          findings.push(...m.findings!);
          process.stdout.write(formatStats(m.stats!, m.words!) + "\n");
          for (const f of m.findings!.slice(0, 20)) process.stdout.write(formatFinding(f) + "\n");
          if (m.findings!.length > 20)
            process.stdout.write(`... and ${m.findings!.length - 20} more findings\n`);
        } else if (m.kind === "done") {
          finished = true;
          clearInterval(timer);
          resolve(true);
        }
      },
    );
    worker.on("error", (e) => stop(`the worker died: ${errorText(e)}`, 0));
    // A case that calls process.exit() ends the worker without an error: a finding too.
    worker.on("exit", (code) =>
      stop(`the worker exited (code ${code}) in the middle of a case`, 0),
    );
  });
  if (!ok) for (const f of findings.slice(-1)) process.stdout.write(formatFinding(f) + "\n");
  const total = all.reduce((s, x) => s + x.cases, 0);
  const diag = all.reduce((s, x) => s + x.diagnostics, 0);
  const res = all.reduce((s, x) => s + x.results, 0);
  process.stdout.write(
    `total: ${total.toLocaleString("en-US")} cases, ${diag.toLocaleString("en-US")} diagnostics, ${res.toLocaleString("en-US")} results, ` +
      `${findings.length} finding${findings.length === 1 ? "" : "s"}${ok ? "" : " (stopped early)"}\n`,
  );
  return findings.length > 0 || !ok ? 1 : 0;
}

if (!isMainThread && (workerData as { args?: unknown } | undefined)?.args) workerMain();
else if (isMainThread && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  void main().then((code) => {
    process.exitCode = code;
  });
