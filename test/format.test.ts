import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ModuleAst } from "../src/dsl/ast.js";
import { DiagnosticBag } from "../src/dsl/diagnostics.js";
import { formatSource } from "../src/dsl/format.js";
import { modelLexer } from "../src/dsl/lexer.js";
import { parseModule } from "../src/dsl/parser.js";

const SPEC_DIR = join(import.meta.dirname, "..", "specs");

/** Every specs/**\/*.model file, found when the tests run. */
function specFiles(): string[] {
  return (readdirSync(SPEC_DIR, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".model"))
    .map((f) => join(SPEC_DIR, f))
    .sort();
}

// span, nameSpan, opSpan, calleeSpan, scopeSpan, and any `...Span` added later (baseSpan).
const isSpanKey = (k: string) => k === "span" || k.endsWith("Span");

/** A deep copy without positions: spans go, and numbers compare by value, not text. */
function stripSpans(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripSpans);
  if (value === null || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (isSpanKey(k)) continue;
    if (k === "text" && obj.kind === "number") continue;
    if (v === undefined) continue;
    out[k] = stripSpans(v);
  }
  return out;
}

function parse(text: string, file = "<test>"): ModuleAst {
  const diags = new DiagnosticBag();
  const ast = parseModule(text, file, diags);
  expect(diags.items.map((d) => d.message)).toEqual([]);
  return ast;
}

function fmt(text: string, file = "<test>"): string {
  const r = formatSource(text, file);
  expect(r.diagnostics.map((d) => d.message)).toEqual([]);
  expect(r.output).toBeDefined();
  return r.output!;
}

const commentTexts = (ast: ModuleAst) => ast.comments.map((c) => c.text).sort();

/** The three properties every input must have. */
function checkFormatting(text: string, file = "<test>"): string {
  const before = parse(text, file);
  const once = fmt(text, file);
  // (1) idempotent
  expect(fmt(once, file)).toBe(once);
  // (2) same meaning
  const after = parse(once, file);
  expect(stripSpans(after.items)).toEqual(stripSpans(before.items));
  // (3) no comment lost or duplicated
  expect(commentTexts(after)).toEqual(commentTexts(before));
  // layout basics
  expect(once.endsWith("\n")).toBe(true);
  expect(once.endsWith("\n\n")).toBe(false);
  expect(once).not.toMatch(/\n\n\n/);
  expect(once).not.toMatch(/\t/);
  return once;
}

describe("formatter on the specs", () => {
  const files = specFiles();
  it("finds the spec files", () => {
    expect(files.length).toBeGreaterThan(0);
  });
  for (const file of files) {
    it(`${file.slice(SPEC_DIR.length + 1)}: idempotent, same AST, same comments`, () => {
      checkFormatting(readFileSync(file, "utf8"), file);
    });
  }
});

describe("formatter on each construct", () => {
  const snippets: Record<string, string> = {
    import: `import "std/nn.model"\nimport "a \\"quoted\\" \\\\ path\\n\\t"`,
    fn: `fn f(x: [..., C], n, std = 0.02, m: int[B, T] = 3) { return x }`,
    emptyBlocks: `fn f() {} model m {} preset p {}`,
    weight: `fn f(x) { weight w: float[C, 4 * C] = normal(0.02) weight b: [C] }`,
    param: `model m { param d = 768 from "n_embd" param eps = 1e-5 param s = "a\\tb" }`,
    inputOutput: `model m { input t: int[B, T] output o = t output p: [B, T] = t * 2 }`,
    loss: `model m { loss = cross_entropy(logits, targets) }`,
    repeat: `model m { repeat layers as h { x = x + 1 } repeat i in 2 * n as a.b.c { x = x } }`,
    repeatCall: `model m { repeat (count(n)) as h { x = 1 } repeat (2 * f(n)) as h { } repeat f(n) as s as h {} }`,
    ifElse: `fn f(a) { if a > 1 { x = 1 } else if a < 0 { x = 2 } else { x = 3 } return x }`,
    elseBlockIf: `fn f(a) { if a { x = 1 } else { if b { x = 2 } } return x }`,
    multiAssign: `fn f(x) { q, k, v = split(x, 3, axis = -1) return q }`,
    calls: `fn f(x) { y = g(h(x) as a.b, k = [1, 2], z = true) as c return y }`,
    postfix: `fn f(x) { return wte.weight.T[ids][0] @ x.T }`,
    lists: `fn f(x) { return reshape(x, [B, T, [1, 2], []]) }`,
    bools: `fn f(x) { return g(true, false) }`,
    derived: `model tiny = gpt2 { vocab = 64, ctx = 32, d = 2 * 16 } model t2 = gpt2 {}
model t3 = gpt2 { d = 8, // small
  layers = 1 }`,
    presets: `preset medium { d = 1024, layers = 24, heads = 16 } preset e {} preset f { x = -1.5e3 }`,
    comments: `// head
fn f(x) { // after brace
  /* before */ y = x // trailing
  // between

  z = g(y, /* inside */ 2)
  if a { } // after if
  else /* else */ { }
  // end of block
} // after fn
preset p { a = 1, // one
  b = 2 /* two */ }
// end of file
`,
  };
  for (const [name, text] of Object.entries(snippets)) {
    it(name, () => {
      checkFormatting(text);
    });
  }
});

describe("parentheses", () => {
  // input → canonical form; each must also keep its meaning.
  const cases: [string, string][] = [
    ["a - (b - c)", "a - (b - c)"],
    ["(a - b) - c", "a - b - c"],
    ["(a + b) * c", "(a + b) * c"],
    ["a + (b * c)", "a + b * c"],
    ["a / (b * c)", "a / (b * c)"],
    ["(a / b) * c", "a / b * c"],
    ["-x ** 2", "-x ** 2"],
    ["-(x ** 2)", "-x ** 2"],
    ["(-x) ** 2", "(-x) ** 2"],
    ["2 ** 3 ** 2", "2 ** 3 ** 2"],
    ["2 ** (3 ** 2)", "2 ** 3 ** 2"],
    ["(2 ** 3) ** 2", "(2 ** 3) ** 2"],
    ["2 ** -x", "2 ** -x"],
    ["2 ** (-x)", "2 ** -x"],
    ["a * -b", "a * -b"],
    ["-(-x)", "- -x"],
    ["-(a + b)", "-(a + b)"],
    ["a @ b.T", "a @ b.T"],
    ["(a @ b).T", "(a @ b).T"],
    ["(a + b).T", "(a + b).T"],
    ["-(a)[i]", "-a[i]"],
    ["(-a)[i]", "(-a)[i]"],
    ["(a.b)[i]", "a.b[i]"],
    ["([a, b])[0]", "[a, b][0]"],
    ["((a))", "a"],
    ["(a < b) == c", "(a < b) == c"],
    ["a < (b + c)", "a < b + c"],
    ["(1).T", "(1).T"],
    ["(2.5).T", "2.5.T"],
    ["(1e5).T", "1e5.T"],
    ["(1)[0]", "1[0]"],
    ["(f(x) as s).T", "(f(x) as s).T"],
    ["(f(x) as s)[i]", "f(x) as s[i]"],
    ["f(x) as s + g(y) as t", "f(x) as s + g(y) as t"],
    ["(x - mu) / sqrt(var + eps) * w + b", "(x - mu) / sqrt(var + eps) * w + b"],
    ["f((a + b), k = (c))", "f(a + b, k = c)"],
    ["1e-5 + 0.50 + .5", "1e-5 + 0.50 + .5"],
  ];
  for (const [input, expected] of cases) {
    it(`${input} → ${expected}`, () => {
      const out = checkFormatting(`model m { y = ${input} }`);
      expect(out).toBe(`model m {\n  y = ${expected}\n}\n`);
    });
  }
});

describe("parentheses on random expressions", () => {
  // Fully parenthesized random expressions: formatting drops every redundant pair
  // and must keep the tree the same.
  let seed = 12345;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 16) % n;
  };
  const ops = ["+", "-", "*", "/", "@", "**", "<", "==", ">="];
  const gen = (depth: number): string => {
    const leaf = ["a", "b", "1", "2.5", "1e3", "f(a)", "[a, b]", "true"];
    if (depth === 0) return leaf[rand(leaf.length)];
    switch (rand(7)) {
      case 0:
        return `(-${gen(depth - 1)})`;
      case 1:
        return `(${gen(depth - 1)}).T`;
      case 2:
        return `(${gen(depth - 1)})[${gen(depth - 1)}]`;
      case 3:
        return `(g(${gen(depth - 1)}, k = ${gen(depth - 1)}) as s)`;
      default:
        return `(${gen(depth - 1)} ${ops[rand(ops.length)]} ${gen(depth - 1)})`;
    }
  };
  /** Offsets of each grouping `(` and its `)` (not a call's). */
  const groupingParens = (text: string): [number, number][] => {
    const stack: { at: number; grouping: boolean }[] = [];
    const pairs: [number, number][] = [];
    for (let i = 0; i < text.length; i++) {
      if (text[i] === "(") stack.push({ at: i, grouping: !/[A-Za-z0-9_]/.test(text[i - 1] ?? "") });
      if (text[i] === ")") {
        const open = stack.pop()!;
        if (open.grouping) pairs.push([open.at, i]);
      }
    }
    return pairs;
  };
  it("keeps the meaning of 300 expressions, with no redundant parentheses", () => {
    for (let i = 0; i < 300; i++) {
      const out = checkFormatting(`model m { repeat ${gen(3)} as h { y = ${gen(4)} } }`);
      const tree = stripSpans(parse(out).items);
      // Dropping any one pair either breaks the parse or changes the tree.
      for (const [open, close] of groupingParens(out)) {
        const text = out.slice(0, open) + out.slice(open + 1, close) + out.slice(close + 1);
        // Broken input gives diagnostics, never an exception.
        const diags = new DiagnosticBag();
        const ast = parseModule(text, "<test>", diags);
        if (!diags.hasErrors) expect(stripSpans(ast.items), text).not.toEqual(tree);
      }
    }
  });
});

/** Drops comments between random tokens of `text`, `rounds` times, and checks each result. */
function fuzzComments(text: string, file: string, rounds: number, seed: number): void {
  const tokens = modelLexer.tokenize(text).tokens;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 16) % n;
  };
  for (let round = 0; round < rounds; round++) {
    const at = new Map<number, string>();
    for (let k = 0; k < 12; k++) {
      const tok = tokens[rand(tokens.length)];
      const c = rand(3) === 0 ? ` // c${k}\n` : rand(2) ? ` /* c${k} */ ` : `\n/* c${k}\n */\n`;
      at.set(tok.startOffset, (at.get(tok.startOffset) ?? "") + c);
    }
    let out = "";
    for (let i = 0; i < text.length; i++) out += (at.get(i) ?? "") + text[i];
    checkFormatting(out, file);
  }
}

describe("comments anywhere", () => {
  // None may be lost, moved into a place that changes the code, or placed differently
  // by a second run.
  for (const file of specFiles()) {
    it(`${file.slice(SPEC_DIR.length + 1)} with comments between random tokens`, () => {
      fuzzComments(readFileSync(file, "utf8"), file, 20, 4242);
    });
  }
  it("every construct with comments between random tokens", () => {
    const text = `import "a.model"
fn f(x: [..., C], n = 2) {
  weight w: float[C, n] = normal(0.02)
  if n > 1 { y = (x + 1) * 2 } else if n < 0 { y = -x } else { y = x ** 2 }
  if n { } else { if x { y = 1 } }
  repeat i in (count(x)) as blocks.b { z = [a, b][i] }
  q, k = split(g(x) as s, 2, axis = -1)
  return q.T @ k
}
model m {
  param d = 8 from "n_embd"
  input t: int[B, T]
  output o: [B] = f(t)
  loss = mean(o)
}
model t = m { d = 4, e = 1 }
preset p { d = 16, e = 2 }
`;
    fuzzComments(text, "<test>", 100, 99);
  });
});

describe("canonical layout", () => {
  it("lays out a badly formatted file", () => {
    const messy = `import   "std/nn.model"   import "x\\"y"
// a function
fn  f( x:[ ...,C ] ,n=( 2 ) ){weight w:float[C,n]=normal( 0.02 )/* why */ y=((x@w)) // proj
if n>1{y=y+1}else if n<0 {y=-y}else{ // neg
y=(-y)**2}



repeat i in (count(x)) as blocks.b { z = (a+b)*c
// end of repeat
}  // after repeat
return (a-(b-c))+(a-b)-c }
model   m{ input t:int[B,T]


 output o : [B] = -(x**2) + f(t) as s
 loss=mean(o,axis=-1)
 a , b = split( o , 2 )   }
preset p{a=1,b=2.50,c=1e-5}preset q{ // c
a=1 /* x */, b=2 // y
}
model  t=m{a=1 ,b=(2)}  model u = m {}
// eof`;
    const expected = `import "std/nn.model"
import "x\\"y"

// a function
fn f(x: [..., C], n = 2) {
  weight w: float[C, n] = normal(0.02)  /* why */
  y = x @ w  // proj
  if n > 1 {
    y = y + 1
  } else if n < 0 {
    y = -y
  } else {  // neg
    y = (-y) ** 2
  }

  repeat i in (count(x)) as blocks.b {
    z = (a + b) * c
    // end of repeat
  }  // after repeat
  return a - (b - c) + (a - b) - c
}

model m {
  input t: int[B, T]

  output o: [B] = -x ** 2 + f(t) as s
  loss = mean(o, axis = -1)
  a, b = split(o, 2)
}

preset p { a = 1, b = 2.50, c = 1e-5 }
preset q {  // c
  a = 1,  /* x */
  b = 2  // y
}

model t = m { a = 1, b = 2 }
model u = m {}
// eof
`;
    expect(checkFormatting(messy)).toBe(expected);
  });

  it("puts every comment somewhere sensible", () => {
    const text = `/* header
   block */


// second


fn g(a, // first arg
  b /* second */) {
  if a { x = 1 } // a
  else // b
  { y = 2 }
  if a { x = 1 } /* c1 */ else /* c2 */ if /* c3 */ b // c4
  { y = 3 }
  if a {
  } else {
    // only comment
  }
  x = f(a, // in call
    b,
    // own line in call
    c)
  z = 1 /* multi
  line */
  w = 2


  // end of block


}
fn h() {}
fn k() { /* a */ /* b */ }`;
    const expected = `/* header
   block */

// second

// first arg
/* second */
fn g(a, b) {
  if a {
    x = 1
  } else {
    // a
    // b
    y = 2
  }
  if a {
    x = 1
  } else if b {
    /* c1 */
    /* c2 */
    /* c3 */
    // c4
    y = 3
  }
  if a {} else {
    // only comment
  }
  // in call
  // own line in call
  x = f(a, b, c)
  z = 1  /* multi
  line */
  w = 2

  // end of block
}

fn h() {}

fn k() {  /* a */  /* b */
}
`;
    expect(checkFormatting(text)).toBe(expected);
  });

  it("keeps an already canonical text as it is", () => {
    const text = `// GPT-ish.
import "std/nn.model"

model tiny {
  param d = 8 from "n_embd"

  input tokens: int[B, T]
  x = embedding(tokens, 16, d) as wte
  repeat 2 as h {
    x = x + mlp(layernorm(x) as ln, 4 * d) as mlp  // residual
  }
  output logits = x @ wte.weight.T
}

preset wide { d = 16 }
preset wider { d = 32 }
`;
    expect(checkFormatting(text)).toBe(text);
  });

  it("formats an empty file and a file of comments only", () => {
    expect(fmt("")).toBe("");
    expect(fmt("  \n\n")).toBe("");
    expect(checkFormatting("// a\n\n\n\n/* b */   // c")).toBe("// a\n\n/* b */\n// c\n");
  });
});

describe("syntax errors", () => {
  it("returns diagnostics and no output", () => {
    const r = formatSource("model m {\n  x = (1 + \n}\n", "bad.model");
    expect(r.output).toBeUndefined();
    expect(r.diagnostics.length).toBeGreaterThan(0);
    expect(r.diagnostics[0].severity).toBe("error");
    expect(r.diagnostics[0].span?.file).toBe("bad.model");
  });

  it("reports a bad character", () => {
    const r = formatSource("model m { x = 1 $ 2 }", "bad.model");
    expect(r.output).toBeUndefined();
    expect(r.diagnostics.some((d) => d.message.includes("unexpected character"))).toBe(true);
  });
});
