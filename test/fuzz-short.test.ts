// A short run of scripts/fuzz.ts inside npm test: a few hundred seeded cases per target
// through the same functions `npm run fuzz` uses. Every case must end in a result or a
// diagnostic; a finding fails the test with its seed, the replay command and the input.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  caseSeed,
  createTargets,
  formatFinding,
  formatStats,
  randomSpec,
  runTarget,
  showInput,
  targetNames,
  type TargetName,
} from "../scripts/fuzz.js";
import { occurrencesOutsideLiterals, rng } from "./helpers/hardening.js";

const tmp = mkdtempSync(join(tmpdir(), "gptc-fuzz-short-"));
process.env.GPTC_CACHE_DIR = join(tmp, "cache");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Cases per target: the front end is the slowest per case. */
const CASES: Record<TargetName, number> = {
  frontend: 500,
  ir: 400,
  safetensors: 600,
  config: 400,
};
// A seed of its own (not the default run's), so the two runs cover different cases. The
// per-case limit is looser than the script's 2 s: the test shares two cores with others.
const SEED = 20240917;
const CASE_LIMIT_MS = 5000;

describe.each(targetNames)("fuzz %s", (name) => {
  it(`${CASES[name]} cases end in a result or a diagnostic`, () => {
    const [target] = createTargets(tmp, [name]);
    const { stats, findings } = runTarget(target, {
      seed: SEED,
      cases: CASES[name],
      caseLimitMs: CASE_LIMIT_MS,
    });
    console.log(formatStats(stats, target.words));
    expect(findings.map(formatFinding)).toEqual([]);
    expect(stats.cases).toBe(CASES[name]);
    // Both outcomes are exercised, or the fuzzer tests little.
    expect(stats.results).toBeGreaterThan(CASES[name] / 50);
    expect(stats.diagnostics).toBeGreaterThan(CASES[name] / 5);
  });
});

describe("the fuzzer itself", () => {
  it("is reproducible: a case's seed rebuilds the same input", () => {
    for (const name of targetNames) {
      const [a] = createTargets(tmp, [name]);
      const s = caseSeed(7, name, 12);
      expect(showInput(a.make(s).input)).toBe(showInput(a.make(s).input));
    }
    expect(caseSeed(1, "ir", 0)).not.toBe(caseSeed(1, "ir", 1));
    expect(caseSeed(1, "ir", 0)).not.toBe(caseSeed(2, "ir", 0));
    expect(caseSeed(1, "ir", 0)).not.toBe(caseSeed(1, "config", 0));
    expect(randomSpec(rng(3))).toBe(randomSpec(rng(3)));
  });

  it("reports a crash, a broken invariant and a slow case as findings", () => {
    const boom = { name: "config" as const, words: ["ok", "errors"] as [string, string] };
    const seen = (run: () => "result" | "diagnostic", limit = 1000) =>
      runTarget(
        { ...boom, make: (seed) => ({ seed, base: "test", input: "x\u001b" }), run },
        { seed: 1, cases: 3, caseLimitMs: limit },
      );
    const crash = seen(() => {
      throw new TypeError("Cannot read properties of undefined");
    });
    expect(crash.stats.crashes).toBe(3);
    expect(formatFinding(crash.findings[0])).toMatch(
      /^FINDING in config\.json: seed \d+ .*\n {2}replay: npm run fuzz -- --target config --replay \d+\n {2}uncaught TypeError: Cannot read/,
    );
    // Inputs are shown with control characters escaped.
    expect(formatFinding(crash.findings[0])).toContain('"x\\u001b"');
    const slow = seen(() => {
      const until = performance.now() + 5;
      while (performance.now() < until);
      return "result";
    }, 1);
    expect(slow.stats.slow).toBe(3);
    expect(slow.findings[0].why).toMatch(/took \d+ ms \(limit 1 ms\)/);
  });

  it("the literal check of the hostile tests sees code outside string literals", () => {
    const code = `// a comment: evil\nconst a = "evil"; const b = \`\${evil}\`; evil();\n`;
    expect(occurrencesOutsideLiterals(code, "evil")).toHaveLength(2);
    expect(occurrencesOutsideLiterals(`const a = "evil";`, "evil")).toEqual([]);
  });
});
