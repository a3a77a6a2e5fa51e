// Seeded token-level mutation fuzzing of every shipped spec through the whole
// pipeline (parse -> check -> lower, diagnostics rendered). Every case must end in
// a lowered graph or in diagnostics; any other exception is a bug in gptc, and the
// failure names the seed and the mutated text so it can be replayed.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatDiagnostics } from "../src/dsl/diagnostics.js";
import { modelLexer } from "../src/dsl/lexer.js";
import { compile, SPEC_DIR, tempDir, type PipelineResult } from "./helpers/dsl.js";
import { FUZZ_NUMBERS as NUMBERS, FUZZ_OPERATORS as OPERATORS } from "./helpers/hardening.js";

/** mulberry32: a small, fast, seedable PRNG (uniform in [0, 1)). */
function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SPECS: { name: string; text: string }[] = [
  ...readdirSync(SPEC_DIR)
    .filter((f) => f.endsWith(".model"))
    .sort()
    .map((f) => ({ name: f, text: readFileSync(join(SPEC_DIR, f), "utf8") })),
  { name: "std/nn.model", text: readFileSync(join(SPEC_DIR, "std", "nn.model"), "utf8") },
];

const tokensOf = (text: string) => modelLexer.tokenize(text).tokens;

/** Strings no spec contains: quotes, template syntax, odd whitespace, huge and tiny numbers, deep nests. */
const HOSTILE = [
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
  "x".repeat(2000),
  "_" + "a9".repeat(500),
  "1e308",
  "1e309",
  "1e-400",
  "9".repeat(400),
  "2147483649",
  "0.0000001",
  "0",
  "-1",
  "(".repeat(60),
  ")".repeat(60),
  "[".repeat(60),
  "-".repeat(60),
  "/*",
  "*/",
  "//",
  '"\\"',
  '"\\u2028"',
  "__proto__",
  "constructor",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "NaN",
  "Infinity",
  "undefined",
  "null",
  "inf",
  "pi",
  "...",
  "h.0.attn",
  "**",
  "@",
  "==",
];

/** Every token image of every spec, plus the hostile strings (twice, to weight them up). */
const POOL = [
  ...new Set(SPECS.flatMap((s) => tokensOf(s.text).map((t) => t.image))),
  ...HOSTILE,
  ...HOSTILE,
];

interface Case {
  seed: number;
  spec: string;
  text: string;
}

/**
 * Half the cases: 1 to 3 token mutations (delete, duplicate, swap, replace or insert
 * from the pool), which mostly test the parser's error recovery. The other half:
 * 1 or 2 same-kind replacements (a name by a name, a number by a number, an operator
 * by an operator), which mostly parse and so test the checker and lowering.
 */
function mutate(spec: { name: string; text: string }, seed: number): Case {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const lexed = tokensOf(spec.text);
  const toks = lexed.map((t) => t.image);
  const kinds = lexed.map((t) => t.tokenType.name);
  const names = [
    ...new Set(lexed.filter((t) => t.tokenType.name === "Identifier").map((t) => t.image)),
  ];
  const semantic = rnd() < 0.5;
  const n = semantic ? 1 + Math.floor(rnd() * 2) : 1 + Math.floor(rnd() * rnd() * 3);
  for (let m = 0; m < n && toks.length > 0; m++) {
    const i = Math.floor(rnd() * toks.length);
    switch (semantic ? 5 : Math.floor(rnd() * 5)) {
      case 0:
        toks.splice(i, 1);
        kinds.splice(i, 1);
        break;
      case 1:
        toks.splice(i, 0, toks[i]);
        kinds.splice(i, 0, kinds[i]);
        break;
      case 2: {
        const j = Math.floor(rnd() * toks.length);
        [toks[i], toks[j]] = [toks[j], toks[i]];
        [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
        break;
      }
      case 3:
        toks[i] = pick(POOL);
        kinds[i] = "?";
        break;
      case 4:
        toks.splice(i, 0, pick(POOL));
        kinds.splice(i, 0, "?");
        break;
      default: {
        const j = kinds.findIndex(
          (k, idx) =>
            idx >= i &&
            (k === "Identifier" || k === "NumberLiteral" || OPERATORS.includes(toks[idx])),
        );
        if (j < 0) break;
        toks[j] =
          kinds[j] === "Identifier"
            ? pick(names)
            : kinds[j] === "NumberLiteral"
              ? pick(NUMBERS)
              : pick(OPERATORS);
      }
    }
  }
  return { seed, spec: spec.name, text: toks.join(" ") };
}

const dir = tempDir("gptc-fuzz-");
// gpt2-tiny imports gpt2-small by a relative path.
writeFileSync(
  join(dir, "gpt2-small.model"),
  readFileSync(join(SPEC_DIR, "gpt2-small.model"), "utf8"),
);
// A mutated standard library is imported by an intact gpt2-small.
const stdRoot = join(dir, "uses-std.model");
writeFileSync(
  stdRoot,
  readFileSync(join(SPEC_DIR, "gpt2-small.model"), "utf8").replace(
    'import "std/nn.model"',
    'import "nn.model"',
  ),
);
// Parameters read from a config.json keep lowering cheap (one layer) wherever the spec allows it.
const CONFIG = { n_layer: 1, num_hidden_layers: 1 };

/** Runs one case: the stage it ended in, or `why` it failed. */
function run(c: Case): { stage?: PipelineResult["stage"]; why?: string } {
  let root: string;
  if (c.spec === "std/nn.model") {
    writeFileSync(join(dir, "nn.model"), c.text);
    root = stdRoot;
  } else {
    root = join(dir, "case.model");
    writeFileSync(root, c.text);
  }
  try {
    const r = compile(root, { config: CONFIG });
    if (r.stage === "ok") {
      if (!r.lowered || r.lowered.graph.outputs.length === 0)
        return { why: "lowered to a graph without outputs" };
    } else {
      if (r.diagnostics.length === 0) return { why: `stage ${r.stage} failed without diagnostics` };
      const text = formatDiagnostics(r.diagnostics, r.sources);
      if (!text.includes("error: ")) return { why: "diagnostics did not render" };
    }
    return { stage: r.stage };
  } catch (e) {
    return { why: `${(e as Error)?.stack ?? String(e)}`.split("\n").slice(0, 8).join("\n") };
  }
}

function report(c: Case, why: string): string {
  const shown =
    c.text.length > 4000 ? `${c.text.slice(0, 4000)}... (${c.text.length} chars)` : c.text;
  return `seed ${c.seed} (${c.spec}): ${why}\n--- mutated text ---\n${shown}`;
}

const CASES_PER_SPEC = Math.ceil(3000 / SPECS.length);

describe("token-level mutation fuzzing", () => {
  it("the pool has every spec's tokens and the hostile strings", () => {
    expect(SPECS.map((s) => s.name)).toContain("std/nn.model");
    expect(SPECS.length).toBeGreaterThanOrEqual(5);
    expect(POOL).toContain("causal_self_attention");
    expect(POOL).toContain("\u2028");
  });

  SPECS.forEach((spec, k) => {
    it(`${spec.name}: ${CASES_PER_SPEC} mutants end in a graph or in diagnostics`, () => {
      const stages: Record<string, number> = { frontend: 0, lower: 0, ok: 0 };
      for (let i = 0; i < CASES_PER_SPEC; i++) {
        const c = mutate(spec, 1_000_003 * (k + 1) + i);
        const { stage, why } = run(c);
        if (why !== undefined) expect.fail(report(c, why));
        stages[stage!]++;
      }
      // The mix must reach past the parser, or the fuzzer tests little but syntax errors.
      expect(stages.lower + stages.ok, JSON.stringify(stages)).toBeGreaterThan(CASES_PER_SPEC / 50);
    });
  });
});

describe("deep and long inputs end in diagnostics or a graph, never a crash", () => {
  const model = (expr: string) => `model m {\n  input x: [B, 4]\n  output o = ${expr}\n}\n`;
  const cases: [string, string][] = [
    ["5,000 nested parentheses", model(`${"(".repeat(5000)}x${")".repeat(5000)}`)],
    ["5,000 unclosed parentheses", model(`${"(".repeat(5000)}x`)],
    ["2,000 nested unary minus", model(`${"-".repeat(2000)}x`)],
    ["1,000 nested unary minus", model(`${"-".repeat(1000)}x`)],
    ["3,000 nested lists", model(`${"[".repeat(3000)}x${"]".repeat(3000)}`)],
    ["2,000 nested calls", model(`${"exp(".repeat(2000)}x${")".repeat(2000)}`)],
    ["3,000 chained '**'", model(`x${" ** 1".repeat(3000)}`)],
    ["a 100k-character line of '+'", model(`x${" + x".repeat(25_000)}`)],
    ["a 100k-character line of numbers", model(`x * (1${"+1".repeat(50_000)})`)],
    ["a 100k-character name", model("a".repeat(100_000))],
    ["a 100k-character string", model(`"${"s".repeat(100_000)}"`)],
    ["a 100k-character comment", `// ${"c".repeat(100_000)}\n${model("x")}`],
  ];
  for (const [name, text] of cases) {
    it(name, () => {
      const c: Case = { seed: -1, spec: name, text };
      const { why } = run(c);
      if (why !== undefined) expect.fail(report(c, why));
    });
  }

  it("5,000 nested parentheses: 'the file nests too deeply', at a position", () => {
    const root = join(dir, "deep.model");
    writeFileSync(root, model(`${"(".repeat(5000)}x${")".repeat(5000)}`));
    const r = compile(root);
    expect(r.stage).toBe("frontend");
    expect(r.diagnostics).toHaveLength(1);
    expect(r.diagnostics[0].message).toMatch(/^the file nests too deeply/);
    expect(r.diagnostics[0].span).toMatchObject({ line: 3 });
  });

  it("a 100k-character sum is too deep for the checker: a diagnostic, not a RangeError", () => {
    const root = join(dir, "long.model");
    writeFileSync(root, model(`x${" + x".repeat(25_000)}`));
    const r = compile(root);
    expect(r.stage).toBe("frontend");
    expect(r.diagnostics.map((d) => d.message)).toEqual([
      expect.stringMatching(/nests too deeply/),
    ]);
  });

  it("1,000 nested unary minus compiles", () => {
    const root = join(dir, "neg.model");
    writeFileSync(root, model(`${"-".repeat(1000)}x`));
    expect(compile(root).stage).toBe("ok");
  });
});
