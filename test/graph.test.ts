// `gptc graph`: diagrams of a model (blocks from the AST, ops of the forward IR,
// fused kernels) as Mermaid and Graphviz dot, and the escaping of their labels.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { registerGraph } from "../src/cli/graph.js";
import { UsageError } from "../src/cli/errors.js";
import { frontend } from "../src/dsl/frontend.js";
import type { Program } from "../src/dsl/load.js";
import {
  blocksDiagram,
  escapeDot,
  escapeMermaid,
  kernelsDiagram,
  opsDiagram,
  renderDiagram,
  type Diagram,
  type DiagramFormat,
} from "../src/ir/diagram.js";
import { lowerProgram, type Lowered, type LowerOptions } from "../src/ir/lower.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { REPO, tempDir, writeModels } from "./helpers/dsl.js";

// ---- loading -------------------------------------------------------------------

function load(path: string, opts: LowerOptions = {}): { program: Program; lowered: Lowered } {
  const fe = frontend(path);
  if (!fe.program) throw new Error(fe.diagnostics.items.map((d) => d.message).join("\n"));
  return { program: fe.program, lowered: lowerProgram(fe.program, opts) };
}

const spec = (name: string) => join(REPO, "specs", `${name}.model`);

function blocks(path: string, opts: LowerOptions = {}): Diagram {
  const { program, lowered } = load(path, opts);
  return blocksDiagram({
    model: program.model!,
    functions: program.functions,
    params: lowered.params,
  });
}

function allLevels(path: string): Record<"blocks" | "ops" | "kernels", Diagram> {
  const { program, lowered } = load(path);
  const { forwardOpt } = compileGraphs(lowered);
  return {
    blocks: blocksDiagram({
      model: program.model!,
      functions: program.functions,
      params: lowered.params,
    }),
    ops: opsDiagram(forwardOpt),
    kernels: kernelsDiagram(fuse(forwardOpt)),
  };
}

// ---- decoding what the printers wrote ---------------------------------------------------

/** What a Mermaid renderer shows for an escaped label. */
function unMermaid(s: string): string {
  return s
    .replace(/<br>/g, "\n")
    .replace(/#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)));
}

/** What Graphviz shows for an escaped label. */
function unDot(s: string): string {
  return s.replace(/\\(.)|&amp;|&#(\d+);/g, (m, c: string | undefined, n: string | undefined) =>
    c !== undefined
      ? c === "n"
        ? "\n"
        : c
      : n !== undefined
        ? String.fromCodePoint(Number(n))
        : "&",
  );
}

interface Parsed {
  nodes: Map<string, { label: string; cluster?: string }>;
  edges: { from: string; to: string; label?: string; dashed: boolean }[];
  clusters: Map<string, { label: string; parent?: string }>;
}

const mermaidNode =
  /^n\d+(?:\(\[|\[\(|\(\(|\[\/|\{\{|\[|\()"([^"]*)"(?:\]\)|\)\]|\)\)|\/\]|\}\}|\]|\))$/;

/** Parses our Mermaid subset strictly: every line must be one of the forms we print. */
function parseMermaid(text: string): Parsed {
  const lines = text.split("\n");
  expect(lines[0]).toBe("flowchart TD");
  expect(lines.at(-1)).toBe("");
  const p: Parsed = { nodes: new Map(), edges: [], clusters: new Map() };
  const stack: string[] = [];
  for (const raw of lines.slice(1, -1)) {
    const line = raw.trim();
    let m: RegExpMatchArray | null;
    if (/^%% [^\n]*$/.test(line)) continue;
    if ((m = line.match(/^subgraph (c\d+)\["([^"]*)"\]$/))) {
      p.clusters.set(m[1], { label: unMermaid(m[2]), parent: stack.at(-1) });
      stack.push(m[1]);
    } else if (line === "end") {
      expect(stack.pop()).toBeDefined();
    } else if ((m = line.match(mermaidNode))) {
      const id = line.match(/^n\d+/)![0];
      expect(p.nodes.has(id)).toBe(false);
      p.nodes.set(id, { label: unMermaid(m[1]), cluster: stack.at(-1) });
    } else if ((m = line.match(/^(n\d+) (-->|-\.->)(?:\|"([^"]*)"\|)? (n\d+)$/))) {
      p.edges.push({
        from: m[1],
        to: m[4],
        label: m[3] === undefined ? undefined : unMermaid(m[3]),
        dashed: m[2] === "-.->",
      });
    } else throw new Error(`unexpected mermaid line: ${JSON.stringify(raw)}`);
  }
  expect(stack).toEqual([]);
  for (const e of p.edges) {
    expect(p.nodes.has(e.from), `edge from undeclared ${e.from}`).toBe(true);
    expect(p.nodes.has(e.to), `edge to undeclared ${e.to}`).toBe(true);
  }
  return p;
}

/** Quoted DOT strings: `"` ends one only when not escaped; no raw line break inside. */
const dotString = /"((?:[^"\\\n\r\u2028\u2029]|\\.)*)"/;

/** Parses our DOT subset: braces balance, every edge's ends are declared nodes. */
function parseDot(text: string): Parsed {
  // Braces balance outside quoted strings.
  const bare = text.replace(new RegExp(dotString.source, "g"), '""');
  expect(bare.replace(/""/g, "")).not.toContain('"');
  let depth = 0;
  for (const ch of bare) {
    if (ch === "{") depth++;
    if (ch === "}") depth--;
    expect(depth).toBeGreaterThanOrEqual(0);
  }
  expect(depth).toBe(0);
  const lines = text.split("\n");
  expect(lines[0]).toBe("digraph gptc {");
  const p: Parsed = { nodes: new Map(), edges: [], clusters: new Map() };
  const stack: string[] = [];
  const attr = (s: string, name: string) => {
    const m = s.match(new RegExp(`${name}=${dotString.source}`));
    return m ? unDot(m[1]) : undefined;
  };
  for (const raw of lines.slice(1, -2)) {
    const line = raw.trim();
    let m: RegExpMatchArray | null;
    if (/^(graph|node|edge) \[.*\];$/.test(line)) continue;
    if ((m = line.match(/^subgraph cluster_(c\d+) \{$/))) {
      p.clusters.set(m[1], { label: "", parent: stack.at(-1) });
      stack.push(m[1]);
    } else if ((m = line.match(new RegExp(`^label=${dotString.source};$`)))) {
      p.clusters.get(stack.at(-1)!)!.label = unDot(m[1]);
    } else if (/^style=".*";$/.test(line)) {
      continue;
    } else if (line === "}") {
      expect(stack.pop()).toBeDefined();
    } else if ((m = line.match(/^(n\d+) -> (n\d+)(?: \[(.*)\])?;$/))) {
      p.edges.push({
        from: m[1],
        to: m[2],
        label: m[3] ? attr(m[3], "label") : undefined,
        dashed: !!m[3]?.includes("style=dashed"),
      });
    } else if ((m = line.match(/^(n\d+) \[(.*)\];$/))) {
      expect(p.nodes.has(m[1])).toBe(false);
      p.nodes.set(m[1], { label: attr(m[2], "label")!, cluster: stack.at(-1) });
    } else throw new Error(`unexpected dot line: ${JSON.stringify(raw)}`);
  }
  expect(lines.at(-1)).toBe("");
  expect(lines.at(-2)).toBe("}");
  expect(stack).toEqual([]);
  for (const e of p.edges) {
    expect(p.nodes.has(e.from), `edge from undeclared ${e.from}`).toBe(true);
    expect(p.nodes.has(e.to), `edge to undeclared ${e.to}`).toBe(true);
  }
  return p;
}

function parse(text: string, format: DiagramFormat): Parsed {
  return format === "dot" ? parseDot(text) : parseMermaid(text);
}

/** The printed diagram says what the diagram holds: same ids, labels, clusters and edges. */
function expectFaithful(d: Diagram, format: DiagramFormat): Parsed {
  const p = parse(renderDiagram(d, format), format);
  expect([...p.nodes.keys()]).toEqual(expect.arrayContaining(d.nodes.map((n) => n.id)));
  expect(p.nodes.size).toBe(d.nodes.length);
  for (const n of d.nodes)
    expect(p.nodes.get(n.id)).toEqual({ label: n.label, cluster: n.cluster });
  for (const c of d.clusters)
    expect(p.clusters.get(c.id)).toEqual({ label: c.label, parent: c.parent });
  expect(p.edges.map((e) => [e.from, e.to, e.label, e.dashed])).toEqual(
    d.edges.map((e) => [e.from, e.to, e.label, !!e.dashed]),
  );
  return p;
}

// ---- walking a diagram ----------------------------------------------------------------

const firstLine = (label: string) => label.split("\n")[0];

/** Follows solid edges from the node labelled chain[0] through nodes labelled chain[1], ... */
function followChain(d: Diagram, chain: string[]): string[] {
  const byId = new Map(d.nodes.map((n) => [n.id, n]));
  const starts = d.nodes.filter((n) => firstLine(n.label) === chain[0]);
  expect(starts, `a node labelled ${chain[0]}`).toHaveLength(1);
  const path = [starts[0].id];
  for (const want of chain.slice(1)) {
    const from = path.at(-1)!;
    const next = d.edges.filter(
      (e) => e.from === from && !e.dashed && firstLine(byId.get(e.to)!.label) === want,
    );
    expect(next.length, `an edge ${byId.get(from)!.label} -> ${want}`).toBe(1);
    path.push(next[0].to);
  }
  return path;
}

function labelled(d: Diagram, label: string) {
  return d.nodes.filter((n) => firstLine(n.label) === label);
}

/** A solid-edge path exists from `a` to `b`. */
function reaches(d: Diagram, a: string, b: string): boolean {
  const seen = new Set([a]);
  const todo = [a];
  while (todo.length) {
    const x = todo.pop()!;
    if (x === b) return true;
    for (const e of d.edges)
      if (e.from === x && !e.dashed && !seen.has(e.to)) {
        seen.add(e.to);
        todo.push(e.to);
      }
  }
  return false;
}

// ---- blocks -----------------------------------------------------------------------

describe("blocks level", () => {
  it("draws gpt2-small as its paper figure: embeddings, one repeated block, head, loss", () => {
    const d = blocks(spec("gpt2-small"));
    const path = followChain(d, [
      "tokens",
      "embedding (wte)",
      "+",
      "dropout",
      "layernorm (ln_1)",
      "causal_self_attention (attn)",
      "+",
      "layernorm (ln_2)",
      "mlp (mlp)",
      "+",
      "layernorm (ln_f)",
      "@ wte.weight.T",
      "logits",
      "cross_entropy",
      "loss",
    ]);
    expect(reaches(d, path[0], labelled(d, "logits")[0].id)).toBe(true);
    // Positions enter through their own embedding into the same add.
    const [wpe] = labelled(d, "embedding (wpe)");
    const posSource = d.edges
      .filter((e) => e.to === wpe.id)
      .map((e) => d.nodes.find((n) => n.id === e.from)!);
    expect(posSource.map((n) => [n.shape, n.label])).toEqual([
      ["op", expect.stringMatching(/^(arange|positions)\(T\)$/)],
    ]);
    followChain(d, [posSource[0].label, "embedding (wpe)", "+", "dropout", "layernorm (ln_1)"]);
    followChain(d, ["targets", "cross_entropy"]);
    // The repeat is drawn once, as one cluster holding the whole block.
    expect(d.clusters).toHaveLength(1);
    const [loop] = d.clusters;
    expect(loop.label).toBe("repeat 12× (h.i)");
    const inLoop = d.nodes.filter((n) => n.cluster === loop.id).map((n) => n.label);
    expect(inLoop).toEqual([
      "layernorm (ln_1)",
      "causal_self_attention (attn)",
      "+",
      "layernorm (ln_2)",
      "mlp (mlp)",
      "+",
    ]);
    for (const name of ["layernorm (ln_1)", "mlp (mlp)", "embedding (wte)", "layernorm (ln_f)"])
      expect(labelled(d, name)).toHaveLength(1);
    // Function bodies are not entered.
    expect(d.nodes.filter((n) => /^(linear|attention|gelu|softmax|split)\b/.test(n.label))).toEqual(
      [],
    );
    // x flows into the loop, round it (dashed, back) and out of it.
    const last = path[9];
    expect(d.edges).toContainEqual({
      from: last,
      to: path[4],
      label: "x (next)",
      dashed: true,
      back: true,
    });
    expect(d.edges).toContainEqual({ from: last, to: path[10] });
    // The LM head reads the token embedding's weight: a dashed "tied" edge.
    expect(d.edges).toContainEqual({
      from: path[1],
      to: path[11],
      label: "tied weight",
      dashed: true,
    });
  });

  it("repeat counts follow --set and presets", () => {
    expect(blocks(spec("gpt2-small"), { set: { layers: "3" } }).clusters[0].label).toBe(
      "repeat 3× (h.i)",
    );
    expect(blocks(spec("gpt2-small"), { preset: "medium" }).clusters[0].label).toBe(
      "repeat 24× (h.i)",
    );
    // A derived model draws its base's body with its own sizes.
    expect(blocks(spec("gpt2-tiny")).clusters[0].label).toBe("repeat 2× (h.i)");
  });

  it("draws the seed transformer: scaled embedding plus positions, post-norm layers", () => {
    const d = blocks(spec("seed-transformer"));
    followChain(d, [
      "tokens",
      "embedding (embed)",
      "* sqrt(d)",
      "+",
      "self_attention (attn)",
      "dropout",
      "+",
      "layernorm (norm1)",
      "feed_forward (ffn)",
      "+",
      "layernorm (norm2)",
      "linear (output)",
      "logits",
      "cross_entropy",
      "loss",
    ]);
    followChain(d, ["sinusoidal_positions", "+", "self_attention (attn)"]);
    expect(d.clusters.map((c) => c.label)).toEqual(["repeat 2× (layers.i)"]);
  });

  it("draws llama-style with its own block names", () => {
    const d = blocks(spec("llama-style"));
    followChain(d, [
      "tokens",
      "embedding (embed_tokens)",
      "rmsnorm (input_layernorm)",
      "grouped_query_attention (self_attn)",
      "+",
      "rmsnorm (post_attention_layernorm)",
      "swiglu (mlp)",
      "+",
      "rmsnorm (norm)",
      "linear (lm_head)",
      "logits",
    ]);
    expect(d.clusters.map((c) => c.label)).toEqual(["repeat 8× (layers.i)"]);
  });

  it("draws branches on the loop index, model-level weights and builtins", () => {
    const { root } = writeModels({
      "m.model": `
import "std/nn.model"
model m {
  param n = 3
  input x: [B, 4]
  weight w: [4, 4] = normal(0.02)
  h = x @ w
  repeat i in n as blk {
    if i == 0 {
      h = relu(h)
    } else {
      h = h + linear(h, 4) as lin
    }
  }
  if n > 100 {
    h = -h
  }
  output y = h
}
`,
    });
    const d = blocks(root);
    expect(d.clusters.map((c) => c.label)).toEqual([
      "repeat 3× (blk.i)",
      "if i == 0",
      "else (not i == 0)",
    ]);
    const [loop, thenC, elseC] = d.clusters;
    expect(thenC.parent).toBe(loop.id);
    expect(elseC.parent).toBe(loop.id);
    followChain(d, ["x", "@", "relu", "y"]);
    followChain(d, ["w", "@", "linear (lin)", "+", "y"]);
    // `n > 100` is false for n = 3: that branch is not drawn.
    expect(labelled(d, "-")).toHaveLength(0);
    for (const f of ["mermaid", "dot"] as const) expectFaithful(d, f);
  });
});

// ---- every level, both formats ---------------------------------------------------------------

describe.each(["seed-transformer", "llama-style"])("%s at every level", (name) => {
  const levels = allLevels(spec(name));
  it.each(["mermaid", "dot"] as const)("prints well-formed %s", (format) => {
    for (const [level, d] of Object.entries(levels)) {
      const p = expectFaithful(d, format);
      expect(p.nodes.size, level).toBeGreaterThan(5);
      expect(p.edges.length, level).toBeGreaterThan(5);
      const text = renderDiagram(d, format);
      expect(text.startsWith(format === "dot" ? "digraph" : "flowchart")).toBe(true);
    }
  });

  it("ops: one node per non-constant op, weights and inputs shaped apart, outputs marked", () => {
    const { lowered } = load(spec(name));
    const g = compileGraphs(lowered).forwardOpt;
    const d = levels.ops;
    const ops = g.nodes.filter((n) => n.op !== "const");
    expect(d.nodes.length).toBe(ops.length + g.outputs.length);
    expect(d.nodes.filter((n) => n.shape === "weight").length).toBe(g.nodesOf("weight").length);
    expect(d.nodes.filter((n) => n.shape === "input").length).toBe(g.nodesOf("input").length);
    expect(d.nodes.filter((n) => n.shape === "output").map((n) => n.label)).toEqual([
      "output logits",
    ]);
    expect(d.nodes[0].label).toBe("%0 input tokens\ni32[B, T]");
    expect(d.nodes.some((n) => /^%\d+ matmul\nf32\[/.test(n.label))).toBe(true);
  });

  it("kernels: one node per kernel, fed by the kernels and weights it reads", () => {
    const { lowered } = load(spec(name));
    const s = fuse(compileGraphs(lowered).forwardOpt);
    const d = levels.kernels;
    const kernels = d.nodes.filter((n) => n.shape === "kernel");
    expect(kernels.map((n) => firstLine(n.label))).toEqual(s.kernels.map((k) => k.name));
    // A kernel reading buffers has an edge from each; the last one feeds the output.
    kernels.forEach((k, i) =>
      expect(d.edges.filter((e) => e.to === k.id).length).toBe(new Set(s.kernels[i].inputs).size),
    );
    const out = labelled(d, "output logits")[0];
    expect(d.edges).toContainEqual({ from: kernels.at(-1)!.id, to: out.id });
    expect(reaches(d, labelled(d, "tokens")[0].id, out.id)).toBe(true);
  });
});

// ---- escaping ------------------------------------------------------------------------

const hostile = [
  'say "hi"',
  "back\\slash \\N \\G \\l \\n",
  "`tick` ``md``",
  "${x} $ {}",
  "line\u2028sep\u2029para\u0085nel",
  "<script>alert('x')</script>",
  "a|b <c> {d}",
  "#quot; #35; &amp; &lt; &#60;",
  "%%{init: {'theme':'dark'}}%%",
  "style n0 fill:#f00;",
  "classDef x fill:#fff;",
  'end"] --> n0["x',
  "tab\tnul\u0000bell\u0007 bom\ufeff rtl\u202e",
  "ünïcödé × ≤ 文字 😀",
  "lone \ud800 surrogate",
  "crlf\r\nnext\rcr\nlf",
];

/** What either format should show: every line break a newline; a lone surrogate U+FFFD. */
const shown = (s: string) =>
  [...s.replace(/\r\n|[\r\u0085\u2028\u2029]/g, "\n")]
    .map((ch) => (ch.length === 1 && ch >= "\ud800" && ch <= "\udfff" ? "\ufffd" : ch))
    .join("");

describe("escaping", () => {
  it.each(hostile)("mermaid: %j", (s) => {
    const e = escapeMermaid(s);
    expect(unMermaid(e)).toBe(shown(s));
    const bare = e.replace(/<br>/g, "").replace(/#\d+;/g, "");
    expect(bare).not.toMatch(
      /["`$\\{}|<>#&;:\n\r\t\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff\u202e]/,
    );
  });

  it.each(hostile)("dot: %j", (s) => {
    const e = escapeDot(s);
    expect(unDot(e)).toBe(shown(s));
    // Inside "...": no quote or backslash that is not escaped, no raw line break or control.
    const bare = e.replace(/\\[\\"{}|<>n]/g, "").replace(/&amp;|&#\d+;/g, "");
    expect(bare).not.toMatch(/["\\{}|<>&\n\r\t\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff\u202e]/);
    expect(`"${e}"`).toMatch(new RegExp(`^${dotString.source}$`));
  });

  it("keeps ordinary labels readable", () => {
    expect(escapeMermaid("causal_self_attention (attn)")).toBe("causal_self_attention (attn)");
    expect(escapeMermaid("repeat 12× (h.i)\n@ wte.weight.T")).toBe(
      "repeat 12× (h.i)<br>@ wte.weight.T",
    );
    expect(escapeDot("%3 matmul\nf32[B, T, 768]")).toBe("%3 matmul\\nf32[B, T, 768]");
  });

  it("prints hostile labels in a diagram faithfully, with generated ids only", () => {
    const d: Diagram = {
      title: hostile.join(" "),
      nodes: hostile.map((label, i) => ({
        id: `n${i}`,
        label,
        shape: (["input", "weight", "block", "op", "output", "loss", "kernel"] as const)[i % 7],
        cluster: i % 3 === 0 ? "c1" : undefined,
      })),
      edges: hostile
        .slice(1)
        .map((label, i) => ({ from: `n${i}`, to: `n${i + 1}`, label, dashed: i % 2 === 0 })),
      clusters: [
        { id: "c0", label: hostile[0] },
        { id: "c1", label: hostile[5], parent: "c0" },
      ],
    };
    const want = { ...d, nodes: d.nodes.map((n) => ({ ...n, label: shown(n.label) })) };
    want.edges = d.edges.map((e) => ({ ...e, label: shown(e.label!) }));
    want.clusters = d.clusters.map((c) => ({ ...c, label: shown(c.label) }));
    for (const format of ["mermaid", "dot"] as const) {
      const p = parse(renderDiagram(d, format), format);
      for (const n of want.nodes) expect(p.nodes.get(n.id)?.label).toBe(n.label);
      expect(p.edges.map((e) => e.label)).toEqual(want.edges.map((e) => e.label));
      expect(p.clusters.get("c1")).toEqual({ label: shown(hostile[5]), parent: "c0" });
    }
  });

  it("a spec whose names are diagram keywords and generated-looking ids stays well-formed", () => {
    const { root } = writeModels({
      "odd.model": `
import "std/nn.model"
fn end(x: [..., C]) {
  weight __proto__: [C, C] = normal(0.02)
  return x @ __proto__
}
fn n0(x) {
  return relu(x)
}
model digraph {
  param subgraph = 8
  param n1 = 2
  input node: int[B, T]
  edge = embedding(node, 16, subgraph) as constructor
  repeat n1 as cluster_c0 {
    edge = edge + end(layernorm(edge) as style) as n0
    edge = n0(edge) as toString
  }
  output flowchart = linear(edge, 16) as click.__proto__
}
`,
    });
    const levels = allLevels(root);
    followChain(levels.blocks, [
      "node",
      "embedding (constructor)",
      "layernorm (style)",
      "end (n0)",
      "+",
      "n0 (toString)",
      "linear (click.__proto__)",
      "flowchart",
    ]);
    expect(levels.blocks.clusters.map((c) => c.label)).toEqual(["repeat 2× (cluster_c0.i)"]);
    expect(
      levels.ops.nodes.some((n) => n.label.startsWith("%15 weight cluster_c0.0.n0.__proto__")),
    ).toBe(true);
    for (const d of Object.values(levels)) {
      d.nodes.forEach((n, i) => expect(n.id).toBe(`n${i}`));
      d.clusters.forEach((c, i) => expect(c.id).toBe(`c${i}`));
      for (const format of ["mermaid", "dot"] as const) expectFaithful(d, format);
    }
  });
});

// ---- the command ---------------------------------------------------------------------------

describe("gptc graph", () => {
  afterEach(() => vi.restoreAllMocks());

  async function run(args: string[]): Promise<string> {
    let out = "";
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      out += String(chunk);
      return true;
    });
    const program = new Command().exitOverride();
    registerGraph(program);
    await program.parseAsync(["node", "gptc", ...args]);
    return out;
  }

  it("writes the chosen level and format to -o", async () => {
    const file = join(tempDir(), "seed.dot");
    const msg = await run([
      "graph",
      spec("seed-transformer"),
      "--level",
      "kernels",
      "--format",
      "dot",
      "--set",
      "layers=1",
      "-o",
      file,
    ]);
    expect(msg).toMatch(/^wrote .*seed\.dot: \d+ nodes, \d+ edges \(kernels, dot\)\n$/);
    const p = parseDot(readFileSync(file, "utf8"));
    expect(
      [...p.nodes.values()].some((n) => n.label.startsWith("layers.0.attn.q_proj.weight")),
    ).toBe(true);
    expect([...p.nodes.values()].some((n) => n.label.startsWith("layers.1."))).toBe(false);
  });

  it("prints mermaid blocks by default and rejects unknown formats and levels", async () => {
    const text = await run(["graph", spec("seed-transformer")]);
    expect(parseMermaid(text).clusters.size).toBe(1);
    await expect(run(["graph", spec("seed-transformer"), "--format", "svg"])).rejects.toThrow(
      UsageError,
    );
    await expect(run(["graph", spec("seed-transformer"), "--level", "layers"])).rejects.toThrow(
      /--level layers: expected one of blocks, ops, kernels/,
    );
  });

  it("runs from the command line: gpt2-small as dot", () => {
    const r = spawnSync(
      process.execPath,
      ["bin/gptc.js", "graph", "specs/gpt2-small.model", "--format", "dot"],
      {
        cwd: REPO,
        encoding: "utf8",
      },
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const p = parseDot(r.stdout);
    expect([...p.clusters.values()].map((c) => c.label)).toEqual(["repeat 12× (h.i)"]);
    expect(
      [...p.nodes.values()].filter((n) => n.label === "causal_self_attention (attn)"),
    ).toHaveLength(1);
  });
});
