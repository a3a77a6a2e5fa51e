// Hostile names never reach generated code as code, and nothing a user wrote runs.
// Specs whose names are legal but awkward for a compiler written in JavaScript
// (`constructor`, `__proto__`, `toString`, 5,000-character names, names that look like the
// generated ones: in0, t1, acc0, r0, i, Math, this), config keys, config.json files and
// safetensors files full of quotes, backticks, `${...}`, line separators and escapes: each
// compiles (or fails with a clear error), its kernels are the same code as a neutral twin's,
// the kernels.js module holds the hostile text only inside string literals, a forward pass on
// the cpu backend leaves a global canary unset, and the diagrams stay well-formed.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Command } from "commander";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { compileModel, renderArtifact, type Compilation } from "../src/api/artifacts.js";
import { UsageError } from "../src/cli/errors.js";
import { registerGraph } from "../src/cli/graph.js";
import { readConfig } from "../src/api/config.js";
import { buildKernel } from "../src/codegen/kernel-ir/build.js";
import { printJs } from "../src/codegen/kernel-js.js";
import { DiagnosticError } from "../src/dsl/diagnostics.js";
import { frontend } from "../src/dsl/frontend.js";
import type { Program } from "../src/dsl/load.js";
import {
  blocksDiagram,
  kernelsDiagram,
  opsDiagram,
  renderDiagram,
  type Diagram,
} from "../src/ir/diagram.js";
import { lowerProgram, type Lowered, type LowerOptions } from "../src/ir/lower.js";
import { fuse, type Schedule } from "../src/ir/passes/fuse.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { createBackend, type Backend } from "../src/runtime/backend.js";
import {
  parseSafetensors,
  SafetensorsError,
  serializeSafetensors,
} from "../src/runtime/safetensors.js";
import { Session } from "../src/runtime/session.js";
import {
  initWeights,
  loadWeightsFile,
  WeightError,
  weightSpecs,
  type Weights,
} from "../src/runtime/weights.js";
import {
  CANARY,
  HOSTILE_NAMES,
  HOSTILE_STRINGS,
  INJECTIONS,
  occurrencesOutsideLiterals,
  shapeOfJs,
} from "./helpers/hardening.js";
import { REPO, tempDir } from "./helpers/dsl.js";

const dir = tempDir("gptc-hostile-");
process.env.GPTC_CACHE_DIR = join(dir, "cache");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const canary = () => (globalThis as Record<string, unknown>)[CANARY];
afterEach(() => {
  // Any injected code that ran would have set it (or exited the process).
  expect(canary()).toBeUndefined();
});

/** A model that uses `H` as a function, argument, weight, model, scope, variable, repeat index and dim name. */
function hostileSpec(H: string): string {
  return `import "std/nn.model"

fn ${H}(${H}_in: [..., C], ${H}_k = 1) {
  weight ${H}: [C, C] = normal(0.02)
  return ${H}_in @ ${H} * ${H}_k
}

model ${H} {
  param ${H}_d = 8 from "n_embd"
  param vocab = 11
  input tokens: int[B, ${H}_T]
  ${H}_x = embedding(tokens, vocab, ${H}_d) as ${H}
  repeat ${H}_i in 2 as ${H} {
    ${H}_x = ${H}_x + ${H}(layernorm(${H}_x) as ${H}) as ${H}.${H}
  }
  output logits = linear(${H}_x, vocab) as ${H}_out
  input targets: int[B, ${H}_T]
  loss = cross_entropy(logits, targets)
}
`;
}

/** The same model with an ordinary name. */
const TWIN = "zq";

interface Built {
  program: Program;
  lowered: Lowered;
  c: Compilation;
  /** Every kernel's gpu.js source, forward then training. */
  sources: string[];
}

function load(
  path: string,
  text: string,
  opts: LowerOptions = {},
): { program: Program; lowered: Lowered } {
  const fe = frontend(path, text);
  if (!fe.program) throw new DiagnosticError(fe.diagnostics.items);
  return { program: fe.program, lowered: lowerProgram(fe.program, opts) };
}

function build(text: string, opts: LowerOptions = {}): Built {
  const { program, lowered } = load(join(dir, "hostile.model"), text, opts);
  const c = compileModel(lowered, { batch: 2, seq: 4 });
  const b = c.plan.bindings;
  const of = (s: Schedule) =>
    s.kernels.map((k) => printJs(buildKernel(s.graph, k, b, "flat")).source);
  return {
    program,
    lowered,
    c,
    sources: [...of(c.forwardSchedule), ...(c.trainingSchedule ? of(c.trainingSchedule) : [])],
  };
}

/** Names that occur in generated code on their own (in0, t1, i, Math, this, ...). */
const inGeneratedCode = (code: string, name: string) =>
  new RegExp(`(?<![\\w$])${name.replace(/\$/g, "\\$")}(?![\\w$])`).test(code);

let backend: Backend;
let twin: Built;
let twinJs: string;
beforeAll(async () => {
  backend = await createBackend("cpu");
  twin = build(hostileSpec(TWIN));
  twinJs = await renderArtifact("kernels-js", twin.c, twin.program);
});

/** Runs the forward graph on the cpu backend; returns the logits. */
async function forward(l: Lowered, weights: Weights, dims: Record<string, number>) {
  const session = new Session(compileGraphs(l), backend);
  try {
    const T = Object.entries(dims).find(([k]) => k !== "B")![1];
    const tokens = Float32Array.from({ length: dims.B * T }, (_, i) => (i * 7) % 11);
    const out = await session.forward(weights, { tokens }, dims);
    return out.logits;
  } finally {
    session.destroy();
  }
}

describe("hostile identifiers", () => {
  it("the list holds the awkward names, all legal identifiers", () => {
    for (const n of [
      "constructor",
      "__proto__",
      "toString",
      "in0",
      "t1",
      "acc0",
      "r0",
      "i",
      "Math",
      "this",
    ])
      expect(HOSTILE_NAMES).toContain(n);
    expect(HOSTILE_NAMES.some((n) => n.length === 5000)).toBe(true);
    // The twin's kernels really use the generated-looking names.
    const code = twin.sources.join("\n");
    for (const n of ["in0", "t1", "acc0", "i", "Math", "this"])
      expect(inGeneratedCode(code, n), n).toBe(true);
  });

  it.each(
    HOSTILE_NAMES.map((n) => [n.length > 40 ? `${n.slice(0, 8)}... (${n.length} chars)` : n, n]),
  )("%s: compiles to the same kernels as a neutral name", (_label, H) => {
    const b = build(hostileSpec(H));
    // The name is everywhere in the graph: scopes, weights, the model and a dim.
    const weights = b.lowered.graph.nodesOf("weight").map((n) => n.attrs.name as string);
    expect(weights).toContain(`${H}.0.${H}.${H}.${H}`);
    expect(b.lowered.graph.symbols()).toContain(`${H}_T`);
    // Identifiers are generated: the kernels are character for character the twin's.
    expect(b.sources).toEqual(twin.sources);
    if (!inGeneratedCode(twin.sources.join("\n"), H))
      for (const s of b.sources) expect(s.includes(H), s).toBe(false);
  });
});

// Where the full pipeline runs: kernels.js, the module imported, a forward pass, diagrams.
const FULL = [
  "constructor",
  "__proto__",
  "toString",
  "in0",
  "t1",
  "acc0",
  "r0",
  "i",
  "Math",
  "this",
  "function",
  "a".repeat(5000),
];

describe.each(FULL.map((n) => [n.length > 40 ? `${n.slice(0, 8)}... (${n.length} chars)` : n, n]))(
  "%s through kernels.js, a forward pass and the diagrams",
  (_label, H) => {
    let b: Built;
    let js: string;
    beforeAll(async () => {
      b = build(hostileSpec(H));
      js = await renderArtifact("kernels-js", b.c, b.program);
    });

    it("kernels.js: the same program as the twin's but for string literals; the name only inside them", async () => {
      expect(shapeOfJs(js, () => "")).toBe(shapeOfJs(twinJs, () => ""));
      // Outside literals the name occurs only where the twin's code has it too (in0,
      // Math, this, function: words of the generated code itself), as often.
      const bad = occurrencesOutsideLiterals(js, H);
      expect(bad.length).toBe(occurrencesOutsideLiterals(twinJs, H).length);
      // The name is there, as data: the buffers a kernel reads.
      expect(js).toContain(JSON.stringify(`weight ${H}.0.${H}.${H}.${H}`));
      // Importing the module runs nothing but its definitions.
      const file = join(dir, `kernels-${H.length}-${H.slice(0, 12)}.mjs`);
      writeFileSync(file, js);
      const mod = (await import(pathToFileURL(file).href)) as {
        forward: { name: string; reads: string[]; kernel: unknown }[];
        training: unknown[];
      };
      expect(mod.forward.length).toBe(b.c.forwardSchedule.kernels.length);
      expect(mod.training.length).toBe(b.c.trainingSchedule!.kernels.length);
      for (const k of mod.forward) expect(typeof k.kernel).toBe("function");
      expect(mod.forward.flatMap((k) => k.reads)).toContain(`weight ${H}.weight`);
    });

    it("a forward pass on the cpu backend gives the twin's logits", async () => {
      const w = initWeights(weightSpecs(b.lowered.graph), 7);
      const tw = initWeights(weightSpecs(twin.lowered.graph), 7);
      const logits = await forward(b.lowered, w, { B: 1, [`${H}_T`]: 4 });
      const expected = await forward(twin.lowered, tw, { B: 1, [`${TWIN}_T`]: 4 });
      expect(logits.every(Number.isFinite)).toBe(true);
      expect(Array.from(logits)).toEqual(Array.from(expected));
    });

    it("the diagrams print the name in escaped labels, with generated ids only", () => {
      const { forwardOpt } = compileGraphs(b.lowered);
      const diagrams: Diagram[] = [
        blocksDiagram({
          model: b.program.model!,
          functions: b.program.functions,
          params: b.lowered.params,
        }),
        opsDiagram(forwardOpt),
        kernelsDiagram(fuse(forwardOpt)),
      ];
      for (const d of diagrams) {
        expect(d.nodes.map((n) => n.id)).toEqual(d.nodes.map((_, i) => `n${i}`));
        expect(d.clusters.map((c) => c.id)).toEqual(d.clusters.map((_, i) => `c${i}`));
        expectWellFormedMermaid(renderDiagram(d, "mermaid"));
        expectWellFormedDot(renderDiagram(d, "dot"));
      }
      expect(diagrams[0].nodes.some((n) => n.label.includes(`(${H})`))).toBe(true);
    });
  },
);

// ---- diagrams: every line one of the printers' forms ---------------------------------------

/** What escapeMermaid leaves: a small ASCII set, `#code;`, `<br>`, printable non-ASCII. */
const mermaidText = String.raw`(?:[A-Za-z0-9 _.,=+\-*/()[\]%@!?'^~]|#\d+;|<br>|[^\x00-\x7f])*`;
const mermaidLines = [
  /^flowchart TD$/,
  new RegExp(`^ {2}%% ${mermaidText}$`),
  new RegExp(
    `^ +n\\d+(?:\\(\\[|\\[\\(|\\[|\\(\\(|\\[/|\\{\\{|\\()"${mermaidText}"(?:\\]\\)|\\)\\]|\\]|\\)\\)|/\\]|\\}\\}|\\))$`,
  ),
  new RegExp(`^ +subgraph c\\d+\\["${mermaidText}"\\]$`),
  /^ +end$/,
  new RegExp(`^ {2}n\\d+ (?:-->|-\\.->)(?:\\|"${mermaidText}"\\|)? n\\d+$`),
];

function expectWellFormedMermaid(text: string): void {
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.slice(0, -1).split("\n"))
    expect(
      mermaidLines.some((re) => re.test(line)),
      JSON.stringify(line.slice(0, 200)),
    ).toBe(true);
}

/** A Graphviz string: no raw quote, backslash only as an escape, no line break of any kind. */
const dotString = String.raw`"(?:[^"\\\n\r\u2028\u2029]|\\.)*"`;
const dotLines = [
  /^digraph gptc \{$/,
  new RegExp(`^ {2}graph \\[rankdir=TB, fontname="Helvetica", labelloc=t, label=${dotString}\\];$`),
  /^ {2}(?:node|edge) \[fontname="Helvetica", fontsize=\d+\];$/,
  new RegExp(`^ +n\\d+ \\[label=${dotString}, [a-z]+=[^;]*\\];$`),
  /^ +subgraph cluster_c\d+ \{$/,
  new RegExp(`^ +label=${dotString};$`),
  /^ +style="rounded,dashed";$/,
  /^ *\}$/,
  new RegExp(
    `^ {2}n\\d+ -> n\\d+(?: \\[(?:label=${dotString}|style=dashed|constraint=false)(?:, (?:label=${dotString}|style=dashed|constraint=false))*\\])?;$`,
  ),
];

function expectWellFormedDot(text: string): void {
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.slice(0, -1).split("\n"))
    expect(
      dotLines.some((re) => re.test(line)),
      JSON.stringify(line.slice(0, 200)),
    ).toBe(true);
}

describe("gptc graph on a hostile spec", () => {
  afterEach(() => vi.restoreAllMocks());

  it("prints well-formed Mermaid and dot at every level", async () => {
    const H = "__proto__";
    const spec = join(dir, "graph-hostile.model");
    writeFileSync(spec, hostileSpec(H));
    for (const format of ["mermaid", "dot"] as const)
      for (const level of ["blocks", "ops", "kernels"]) {
        let out = "";
        vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
          out += String(chunk);
          return true;
        });
        const program = new Command().exitOverride();
        registerGraph(program);
        await program.parseAsync([
          "node",
          "gptc",
          "graph",
          spec,
          "--format",
          format,
          "--level",
          level,
        ]);
        vi.restoreAllMocks();
        if (format === "mermaid") expectWellFormedMermaid(out);
        else expectWellFormedDot(out);
        expect(out).toContain(H);
      }
  });
});

// ---- strings: config keys, config.json, safetensors ------------------------------------------

/** A string literal of the model language (it decodes \" \\ \n \t; raw line breaks are refused). */
const dslString = (s: string) =>
  `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n").replace(/\t/g, "\\t")}"`;

/** Keys the model language can spell: no CR, U+2028 or U+2029 (a string literal cannot hold them raw). */
const KEYS = HOSTILE_STRINGS.filter((s) => !/[\r\u2028\u2029]/.test(s));

/** A small model whose parameters are read from hostile config keys. */
function keyedSpec(keys: string[]): string {
  const params = keys.map((k, i) => `  param p${i} = ${i === 0 ? 8 : 1} from ${dslString(k)}`);
  return `import "std/nn.model"

model keyed {
${params.join("\n")}
  param vocab = 11 from "vocab_size"
  input tokens: int[B, T]
  x = embedding(tokens, vocab, p0) as wte
  output logits = linear(layernorm(x) as ln, vocab) as head
  input targets: int[B, T]
  loss = cross_entropy(logits, targets)
}
`;
}

describe('hostile strings in `param ... from "..."` and config.json', () => {
  it("the keys are read back exactly, and a config.json with them sets the parameters", () => {
    const text = keyedSpec(KEYS);
    const { program } = load(join(dir, "keyed.model"), text);
    const keys = program.model!.body.flatMap((s) =>
      s.kind === "param" && s.configKey !== undefined ? [s.configKey] : [],
    );
    expect(keys).toEqual([...KEYS, "vocab_size"]);
    // `\u0041` in a string is not an escape of the language: backslash-u stands for `u`.
    expect(keys).toContain("\\u0041");

    const config: Record<string, unknown> = Object.create(null);
    KEYS.forEach((k, i) => (config[k] = i === 0 ? 16 : i + 1));
    const file = join(dir, "hostile-config.json");
    writeFileSync(file, JSON.stringify(config));
    const read = readConfig(file);
    expect(Object.keys(read)).toEqual(KEYS);
    const l = lowerProgram(program, { config: read });
    expect(l.params.find((p) => p.name === "p0")).toEqual({
      name: "p0",
      value: 16,
      source: "config",
    });
    KEYS.forEach((_, i) => expect(l.params.find((p) => p.name === `p${i}`)?.source).toBe("config"));
  });

  it("raw line separators in a string literal are a diagnostic, not a crash", () => {
    for (const s of ["\u2028", "\u2029", "\r"]) {
      const fe = frontend(join(dir, "raw.model"), keyedSpec([`a${s}b`]));
      expect(fe.program).toBeUndefined();
      expect(fe.diagnostics.items.length).toBeGreaterThan(0);
    }
  });

  it("the keys never reach the kernels; kernels.js imports and a forward pass runs with the canary unset", async () => {
    const config = Object.fromEntries(KEYS.map((k, i) => [k, i === 0 ? 8 : 1]));
    const b = build(keyedSpec(KEYS), { config });
    const js = await renderArtifact("kernels-js", b.c, b.program);
    for (const k of KEYS.filter((k) => k.length > 3)) {
      expect(occurrencesOutsideLiterals(js, k)).toEqual([]);
      for (const s of b.sources) expect(s.includes(k)).toBe(false);
    }
    // The other artifacts carry them as JSON data, and read back exactly.
    const ast = JSON.parse(await renderArtifact("ast", b.c, b.program)) as unknown;
    const found: string[] = [];
    JSON.stringify(ast, (key, v: unknown) => {
      if (key === "configKey" && typeof v === "string") found.push(v);
      return v;
    });
    expect(found).toEqual([...KEYS, "vocab_size"]);
    JSON.parse(await renderArtifact("summary", b.c, b.program));
    const file = join(dir, "keyed-kernels.mjs");
    writeFileSync(file, js);
    await import(pathToFileURL(file).href);
    const logits = await forward(b.lowered, initWeights(weightSpecs(b.lowered.graph), 3), {
      B: 1,
      T: 4,
    });
    expect(logits.every(Number.isFinite)).toBe(true);
  });

  it("config.json with hostile keys and values: a clear error or the values, never a prototype", () => {
    const { program } = load(
      join(dir, "keyed.model"),
      keyedSpec(["n_embd", "constructor", "__proto__"]),
    );
    const write = (text: string) => {
      const file = join(dir, "config.json");
      writeFileSync(file, text);
      return readConfig(file);
    };
    // __proto__ is an own key of the parsed object; Object.prototype stays untouched.
    const c1 = write(
      `{"__proto__": {"n_embd": 999}, "constructor": 2, "toString": "x", ${JSON.stringify(INJECTIONS[4])}: 1}`,
    );
    expect(Object.hasOwn(c1, "__proto__")).toBe(true);
    expect(({} as Record<string, unknown>).n_embd).toBeUndefined();
    expect(() => lowerProgram(program, { config: c1 })).toThrow(
      /'__proto__' is \{"n_embd":999\}, but parameter 'p2' needs a number/,
    );
    const c2 = write(`{"n_embd": 16, "constructor": 3, "__proto__": 1}`);
    const l = lowerProgram(program, { config: c2 });
    expect(l.params.map((p) => [p.name, p.value, p.source])).toEqual([
      ["p0", 16, "config"],
      ["p1", 3, "config"],
      ["p2", 1, "config"],
      ["vocab", 11, "default"],
    ]);
    // Without the keys, nothing is inherited from Object.prototype.
    expect(lowerProgram(program, { config: write("{}") }).params.map((p) => p.source)).toEqual([
      "default",
      "default",
      "default",
      "default",
    ]);
    for (const v of INJECTIONS) {
      const err = (() => {
        try {
          lowerProgram(program, { config: write(JSON.stringify({ n_embd: v })) });
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(DiagnosticError);
      expect((err as Error).message).toMatch(
        /^config\.json: 'n_embd' is ".*, but parameter 'p0' needs a number$/s,
      );
    }
    for (const bad of ["[]", "null", '"x"', "{", '{"a":1,}'])
      expect(() => write(bad)).toThrow(UsageError);
  });
});

describe("safetensors files with hostile keys and metadata", () => {
  const b = () => build(hostileSpec(TWIN));

  function fileWith(
    weights: Weights,
    shapes: Map<string, number[]>,
    extra: string[],
    meta: Record<string, string>,
  ) {
    const tensors = new Map([...weights].map(([k, w]) => [k, { shape: shapes.get(k)!, data: w }]));
    for (const k of extra) tensors.set(k, { shape: [1], data: Float32Array.of(1) });
    return serializeSafetensors(tensors, meta);
  }

  const hostileMeta = (): Record<string, string> => {
    const meta: Record<string, string> = Object.create(null);
    HOSTILE_STRINGS.forEach((s, i) => {
      meta[s] = HOSTILE_STRINGS[(i + 1) % HOSTILE_STRINGS.length];
    });
    meta.format = "pt";
    return meta;
  };
  // Names a safetensors file can hold: well-formed strings, not "__metadata__".
  const KEYS = HOSTILE_STRINGS;

  it("metadata round-trips as data; the weights load and run with the canary unset", async () => {
    const m = b();
    const specs = weightSpecs(m.lowered.graph);
    const shapes = new Map(specs.map((s) => [s.key, s.shape]));
    const weights = initWeights(specs, 11);
    const meta = hostileMeta();
    const bytes = fileWith(weights, shapes, [], meta);
    const back = parseSafetensors(bytes, "hostile");
    expect({ ...back.metadata }).toEqual({ ...meta });
    // A file name with quotes, `$(...)`, backticks and a line break: only ever a path.
    const sub = join(dir, 'we"ird $(touch x) `y` ${z}\nname');
    mkdirSync(sub, { recursive: true });
    const path = join(sub, "model.safetensors");
    writeFileSync(path, bytes);
    const loaded = loadWeightsFile(sub, specs);
    const logits = await forward(m.lowered, loaded, { B: 1, [`${TWIN}_T`]: 4 });
    expect(Array.from(logits)).toEqual(
      Array.from(await forward(m.lowered, weights, { B: 1, [`${TWIN}_T`]: 4 })),
    );
  });

  it("extra tensors with hostile names: one clear error, each name on its own line, escaped", () => {
    const m = b();
    const specs = weightSpecs(m.lowered.graph);
    const shapes = new Map(specs.map((s) => [s.key, s.shape]));
    const path = join(dir, "extra.safetensors");
    writeFileSync(path, fileWith(initWeights(specs, 1), shapes, KEYS, hostileMeta()));
    let err: unknown;
    try {
      loadWeightsFile(path, specs);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WeightError);
    const message = (err as Error).message;
    const lines = message.split("\n");
    // A first line, then one line per problem (12 shown, then "... and N more"): no name added a line.
    expect(lines[0]).toBe(`${path} does not fit the model (${KEYS.length} problems):`);
    expect(lines.length).toBe(1 + 13);
    for (const line of lines.slice(1, 13))
      expect(line).toMatch(/^ {2}extra {4}.*: \[1\] is not a weight of this model$/);
    expect(lines[13]).toBe(`  ... and ${KEYS.length - 12} more`);
    // Nothing that moves the cursor, recolours the terminal or breaks a line.
    expect(message).not.toMatch(
      /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\ufeff]/,
    );
    // Long names are cut.
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(300);
  });

  it("the reader's own errors quote names safely too", () => {
    for (const name of HOSTILE_STRINGS) {
      const header = JSON.stringify({ [name]: { dtype: "Q7", shape: [1], data_offsets: [0, 4] } });
      const padded = header + " ".repeat((8 - (Buffer.byteLength(header) % 8)) % 8);
      const bytes = Buffer.alloc(8 + Buffer.byteLength(padded) + 4);
      bytes.writeBigUInt64LE(BigInt(Buffer.byteLength(padded)), 0);
      bytes.write(padded, 8);
      let message = "";
      try {
        parseSafetensors(bytes, "f.safetensors");
      } catch (e) {
        expect(e).toBeInstanceOf(SafetensorsError);
        message = (e as Error).message;
      }
      expect(message).toMatch(/^f\.safetensors: tensor '.*' has unknown dtype 'Q7'$/s);
      expect(message).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\ufeff]/);
      expect(message.length).toBeLessThan(300);
    }
  });

  it("nothing was written by an injected shell command", () => {
    expect(() => readFileSync(join(dir, "x"))).toThrow();
    expect(() => readFileSync(`/tmp/gptc-pwned-${process.pid}`)).toThrow();
  });
});

describe("dims and config keys named like Object.prototype members", () => {
  const dimSpec = (D: string) => `import "std/nn.model"
model m {
  input tokens: int[B, ${D}]
  x = embedding(tokens, 11, 8) as emb
  output logits = linear(layernorm(x) as ln, 11) as head
  input targets: int[B, ${D}]
  loss = cross_entropy(logits, targets)
}
`;

  it.each(["__proto__", "constructor", "toString"])(
    "a dim named %s is bound like any other (compile, forward) and never inherited",
    async (D) => {
      const b = build(dimSpec(D));
      expect(Object.keys(b.c.plan.bindings).sort()).toEqual(["B", D].sort());
      const dims: Record<string, number> = { B: 1 };
      Object.defineProperty(dims, D, { value: 4, enumerable: true });
      const logits = await forward(b.lowered, initWeights(weightSpecs(b.lowered.graph), 5), dims);
      expect(logits.length).toBe(4 * 11);
      expect(logits.every(Number.isFinite)).toBe(true);
      const session = new Session(compileGraphs(b.lowered), backend);
      try {
        await expect(
          session.forward(
            initWeights(weightSpecs(b.lowered.graph), 5),
            { tokens: new Float32Array(4) },
            { B: 1 },
          ),
        ).rejects.toThrow(`no size given for dimension ${D}`);
      } finally {
        session.destroy();
      }
    },
  );

  it("gptc train writes every config key to config.json, __proto__ included", () => {
    const run = join(dir, "proto-run");
    const spec = join(dir, "proto.model");
    const data = join(dir, "proto.txt");
    writeFileSync(data, "the cat sat on the mat. ".repeat(20));
    writeFileSync(
      spec,
      `import "std/nn.model"
model pj {
  param vocab = 64 from "vocab_size"
  param d = 16 from "__proto__"
  param c = 8 from "constructor"
  param e = 2 from ${dslString(INJECTIONS[4])}
  input tokens: int[B, T]
  x = embedding(tokens, vocab, d) as wte
  output logits = linear(layernorm(x) as ln, vocab) as head
  input targets: int[B, T]
  loss = cross_entropy(logits, targets)
}
`,
    );
    const r = spawnSync(
      process.execPath,
      [
        join(REPO, "bin", "gptc.js"),
        "train",
        spec,
        ...["--tokenizer", "char", "--data", data, "--steps", "1", "--batch", "1", "--seq", "4"],
        ...["--eval-every", "0", "--samples", "0", "--backend", "cpu", "--out", run],
      ],
      { cwd: REPO, encoding: "utf8", env: { ...process.env, GPTC_CACHE_DIR: join(dir, "cache") } },
    );
    expect(r.status, r.stderr).toBe(0);
    const text = readFileSync(join(run, "config.json"), "utf8");
    const config = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(config)).toEqual(["vocab_size", "__proto__", "constructor", INJECTIONS[4]]);
    expect(config.__proto__).toBe(16);
    expect(config.constructor).toBe(8);
  });
});
