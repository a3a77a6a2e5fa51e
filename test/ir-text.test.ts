// The textual IR: print(parse(print(g))) === print(g) for every shipped spec's
// graphs; malformed text is an IrParseError with a line number, never another
// exception — also for a seeded fuzz of mutated graph texts.
import { describe, expect, it } from "vitest";
import type { Graph } from "../src/ir/graph.js";
import { verify } from "../src/ir/passes/verify.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { IrParseError, parseGraph, printGraph } from "../src/ir/text.js";
import { lowerSource, lowerSpec, randInt, rng, specFiles } from "./helpers/ir.js";

describe.each(specFiles)("round trip of %s", (file) => {
  const c = compileGraphs(lowerSpec(file, { small: false }));
  const graphs: [string, Graph][] = [
    ["forward", c.forward],
    ["forwardOpt", c.forwardOpt],
    ["training", c.training!],
  ];
  for (const [name, g] of graphs)
    it(name, () => {
      const text = printGraph(g);
      const back = parseGraph(text);
      expect(printGraph(back)).toBe(text);
      expect(verify(back)).toEqual([]);
      expect(back.nodes.length).toBe(g.nodes.length);
      expect(back.outputs).toEqual(g.outputs);
      // spans come back too
      const withSpan = g.nodes.findIndex((n) => n.span && n.span.line > 0);
      expect(withSpan).toBeGreaterThanOrEqual(0);
      expect(back.nodes[withSpan].span?.line).toBe(g.nodes[withSpan].span!.line);
      expect(back.nodes[withSpan].span?.file).toBe(g.nodes[withSpan].span!.file);
      // and without spans
      const bare = printGraph(g, { spans: false });
      expect(bare).not.toMatch(/ # /);
      expect(printGraph(parseGraph(bare), { spans: false })).toBe(bare);
    });
});

// ---- parse errors --------------------------------------------------------------------------

function parseError(text: string): IrParseError {
  let err: unknown;
  try {
    parseGraph(text);
  } catch (e) {
    err = e;
  }
  expect(err, `expected an IrParseError for:\n${text}`).toBeInstanceOf(IrParseError);
  return err as IrParseError;
}

const graphOf = (...lines: string[]) =>
  ["graph g {", ...lines.map((l) => `  ${l}`), "}", ""].join("\n");
const x2 = `%0 = input "x" : f32[2]`;

const errorCases: [string, string, number, RegExp?][] = [
  ["garbage", "hello world\n", 1, /expected 'graph NAME \{'/],
  ["empty input", "", 1, /empty input/],
  ["a bad graph name", "graph 9g {\n}\n", 1],
  ["an unknown op", graphOf(x2, "%1 = frobnicate %0 : f32[2]"), 3, /unknown op 'frobnicate'/],
  ["an op name in capitals", graphOf(x2, "%1 = NEG %0 : f32[2]"), 3, /op name/],
  [
    "a wrong declared shape",
    graphOf(x2, "%1 = neg %0 : f32[3]"),
    3,
    /declared f32\[3\] but neg gives f32\[2\]/,
  ],
  ["a wrong declared dtype", graphOf(x2, "%1 = neg %0 : i32[2]"), 3, /declared i32\[2\]/],
  ["an unknown dtype", graphOf(`%0 = input "x" : f64[2]`), 2, /dtype/],
  ["an unclosed attribute list", graphOf(x2, "%1 = sum %0 {axes=[0, } : f32[]"), 3],
  ["an attribute without a value", graphOf(x2, "%1 = sum %0 {axes=, keepdim=false} : f32[]"), 3],
  ["a number where a size is needed", graphOf("%0 = arange {n=8} : i32[8]"), 2],
  ["numbers where sizes are needed", graphOf("%0 = causal_mask {k=4, q=4} : f32[4, 4]"), 2],
  ["a number where a shape is needed", graphOf(x2, "%1 = reshape %0 {shape=7} : f32[2]"), 3],
  ["numbers where a shape is needed", graphOf(x2, "%1 = expand %0 {shape=[2]} : f32[2]"), 3],
  [
    "a string where axes are needed",
    graphOf(x2, `%1 = sum %0 {axes="0", keepdim=false} : f32[]`),
    3,
  ],
  ["a missing attribute", graphOf(x2, "%1 = slice %0 : f32[2]"), 3, /axis/],
  [
    "a shape error",
    graphOf(x2, `%1 = input "y" : f32[3]`, "%2 = add %0, %1 : f32[2]"),
    4,
    /broadcast/,
  ],
  ["a wrong number of inputs", graphOf(x2, "%1 = add %0 : f32[2]"), 3, /takes 2 inputs/],
  ["a forward reference", graphOf(x2, "%1 = neg %1 : f32[2]"), 3, /does not exist/],
  ["a node out of order", graphOf(x2, "%2 = neg %0 : f32[2]"), 3, /expected node %1/],
  ["an output of an unknown node", graphOf(x2, `output "y" = %4`), 3, /unknown node %4/],
  ["text after an output", graphOf(x2, `output "y" = %0 extra`), 3, /unexpected text/],
  ["text after the type", graphOf(x2, "%1 = neg %0 : f32[2] extra"), 3, /unexpected text/],
  ["a bad dimension", graphOf(`%0 = input "x" : f32[2, B*]`), 2, /dimension/],
  ["a fractional dimension", graphOf(`%0 = input "x" : f32[2.5]`), 2],
  ["a bad string escape", graphOf(`%0 = input "x\\q" : f32[2]`), 2, /string/],
  ["an unterminated string", graphOf(`%0 = input "x : f32[2]`), 2],
  ["a missing '}'", `graph g {\n  ${x2}\n`, 3, /missing '\}'/],
  ["text after the end", graphOf(x2) + "graph h {\n", 4, /after the end/],
  ["a missing type", graphOf(x2, "%1 = neg %0"), 3, /expected ':'/],
];

describe("parse errors are IrParseErrors with a line number", () => {
  for (const [what, text, line, message] of errorCases)
    it(what, () => {
      const err = parseError(text);
      expect(err.line, err.message).toBe(line);
      expect(err.message).toMatch(new RegExp(`^line ${line}: `));
      if (message) expect(err.message).toMatch(message);
    });

  it("the valid neighbours of those cases parse", () => {
    const ok = [
      graphOf(x2, "%1 = neg %0 : f32[2]"),
      graphOf("%0 = arange {n=size(8)} : i32[8]"),
      graphOf("%0 = causal_mask {k=size(T+1), q=size(T)} : f32[T, T+1]"),
      graphOf(x2, "%1 = sum %0 {axes=[0], keepdim=false} : f32[]"),
      graphOf(x2, "%1 = reshape %0 {shape=<1, 2>} : f32[1, 2]"),
      graphOf(
        x2,
        "%1 = const {value=-inf} : f32[]",
        "%2 = const {value=nan} : f32[]",
        `output "y" = %0`,
      ),
      graphOf(`%0 = input "x\\"y" : f32[B*T, 2]  # a/b.model:3:4`),
    ];
    for (const text of ok) expect(printGraph(parseGraph(text))).toBe(text);
  });
});

// ---- fuzz ----------------------------------------------------------------------------------

const alphabet = ' %{}[]<>(),=:"#*+-._0123456789abcdefghijklmnopqrstuvwxyzBT\\';
const tokens = [
  "%0",
  "%999",
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
  '"',
  "output",
  "neg",
  "matmul",
  "reshape",
  "gather",
  "concat",
  "B*T",
  "keepdim=true",
  "axes=[0, 9]",
  "perm=[1, 0]",
  "n=8",
  "shape=[2]",
  "__proto__=1",
];

/** One random edit of the text: characters, tokens, or whole lines. */
function mutate(text: string, r: () => number): string {
  const lines = text.split("\n");
  const li = 1 + randInt(r, Math.max(1, lines.length - 3));
  const line = lines[li] ?? "";
  const pos = randInt(r, line.length + 1);
  const put = (s: string) => {
    lines[li] = s;
    return lines.join("\n");
  };
  switch (randInt(r, 9)) {
    case 0: // delete a character
      return put(line.slice(0, pos) + line.slice(pos + 1));
    case 1: // insert a character
      return put(line.slice(0, pos) + alphabet[randInt(r, alphabet.length)] + line.slice(pos));
    case 2: // replace a character
      return put(line.slice(0, pos) + alphabet[randInt(r, alphabet.length)] + line.slice(pos + 1));
    case 3: // insert a token
      return put(line.slice(0, pos) + tokens[randInt(r, tokens.length)] + line.slice(pos));
    case 4: {
      // replace a digit run (node ids, sizes, attribute values)
      const runs = [...line.matchAll(/\d+/g)];
      if (!runs.length) return put(line + tokens[randInt(r, tokens.length)]);
      const m = runs[randInt(r, runs.length)];
      const v = [0, 1, 2, 7, 31, 65535, 2 ** 31, 1e21][randInt(r, 8)];
      return put(line.slice(0, m.index) + String(v) + line.slice(m.index! + m[0].length));
    }
    case 5: {
      // replace a word (op names, dtypes, attribute names)
      const words = [...line.matchAll(/[a-z_]+/g)];
      if (!words.length) return put(line);
      const m = words[randInt(r, words.length)];
      const w = [
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
      ][randInt(r, 13)];
      return put(line.slice(0, m.index) + w + line.slice(m.index! + m[0].length));
    }
    case 6: // delete a line
      lines.splice(li, 1);
      return lines.join("\n");
    case 7: // duplicate a line
      lines.splice(li, 0, line);
      return lines.join("\n");
    default: {
      // swap two lines
      const lj = 1 + randInt(r, Math.max(1, lines.length - 3));
      [lines[li], lines[lj]] = [lines[lj], lines[li]];
      return lines.join("\n");
    }
  }
}

describe("fuzz", () => {
  it("2,000 mutated graph texts: a graph or an IrParseError, nothing else", () => {
    // A short training graph (56 lines) with most kinds of op and attribute.
    const l = lowerSource(
      `import "std/nn.model"

model fz {
  input tokens: int[B, T]
  x = embedding(tokens, 5, 4) as emb
  y = softmax(x @ x.T / 2 + causal_mask(T, T)) @ x
  a, b = split(y, 2, axis = -1)
  z = concat([b, a], axis = -1) + reshape(float(arange(T) < 2), [T, 1]) * 1
  output logits = reshape(permute(z, [1, 0, 2]), [T, B * 4])
  input targets: int[B, T]
  loss = cross_entropy(x, targets)
}
`,
      "fz.model",
    );
    const text0 = printGraph(compileGraphs(l).training!);
    const r = rng(2024);
    const failures: string[] = [];
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      let text = text0;
      const edits = 1 + randInt(r, 3);
      for (let k = 0; k < edits; k++) text = mutate(text, r);
      let g: Graph | undefined;
      try {
        g = parseGraph(text);
        accepted++;
      } catch (e) {
        if (e instanceof IrParseError) {
          rejected++;
          if (!(e.line >= 1 && e.line <= text.split("\n").length))
            failures.push(`#${i}: line ${e.line} is outside the text`);
        } else
          failures.push(
            `#${i}: ${(e as Error).stack?.split("\n").slice(0, 3).join(" | ")}\n${text}`,
          );
        continue;
      }
      // What parses prints stably.
      try {
        const printed = printGraph(g);
        if (printGraph(parseGraph(printed)) !== printed) failures.push(`#${i}: unstable print`);
      } catch (e) {
        failures.push(`#${i}: reprint: ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    expect(failures.slice(0, 10)).toEqual([]);
    // the fuzz exercises both sides
    expect(accepted).toBeGreaterThan(50);
    expect(rejected).toBeGreaterThan(1000);
  });
});
