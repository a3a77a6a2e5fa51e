// One test per class of diagnostic: the message, the exact line:col of its span,
// and for a few the rendered `file:line:col: error: ...` block with its caret.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { formatDiagnostics, type Diagnostic } from "../src/dsl/diagnostics.js";
import { SourceSet } from "../src/dsl/source.js";
import { compile, compileText, parse, where, writeModels } from "./helpers/dsl.js";

/** The only diagnostic of a result, checked to be alone. */
function only(ds: Diagnostic[]): Diagnostic {
  expect(where(ds)).toHaveLength(1);
  return ds[0];
}

function at(d: Diagnostic): string {
  return d.span ? `${d.span.line}:${d.span.col}` : "-";
}

describe("lexical and syntax errors", () => {
  it("a bad character: message, position and rendering", () => {
    const text = "model m {\n  input x: [B, 4]\n  y = x $ 3\n  output o = y\n}\n";
    const { diags } = parse(text, "bad.model");
    const d = diags[0];
    expect(d.message).toBe('unexpected character "$"');
    expect(at(d)).toBe("3:9");
    expect(d.span).toMatchObject({
      file: "bad.model",
      start: text.indexOf("$"),
      end: text.indexOf("$") + 1,
    });
    const sources = new SourceSet();
    sources.add("bad.model", text);
    expect(formatDiagnostics([d], sources)).toBe(
      ['bad.model:3:9: error: unexpected character "$"', " 3 |   y = x $ 3", "   |         ^"].join(
        "\n",
      ),
    );
  });

  it("a run of bad characters is one diagnostic", () => {
    const { diags } = parse("fn f() { return 1 }\n#$%\n");
    expect(where(diags)).toEqual(['2:1 unexpected character "#"']);
  });

  it("a missing ')' is reported where the parser gave up", () => {
    const text = "fn f(x) {\n  return g(x\n}\n";
    const { diags } = parse(text, "paren.model");
    const d = only(diags);
    expect(d.message).toBe("expected ')' but found '}'");
    expect(at(d)).toBe("3:1");
    const sources = new SourceSet();
    sources.add("paren.model", text);
    expect(formatDiagnostics([d], sources)).toBe(
      ["paren.model:3:1: error: expected ')' but found '}'", " 3 | }", "   | ^"].join("\n"),
    );
  });

  it("a syntax error at the end of the file points just past the last character", () => {
    const { diags } = parse("model m {\n  output o = f(x");
    expect(where(diags)).toEqual(["2:17 expected ')' but found the end of the file"]);
  });

  it("several syntax errors in one file are reported together, in order", () => {
    const text = [
      "fn f(x) {",
      "  a = (x + )",
      "  b = x *",
      "  return a",
      "}",
      "fn g(y) { return y + }",
      "model m { output o = f(1 }",
    ].join("\n");
    const { diags } = parse(text);
    expect(where(diags)).toEqual([
      "2:12 expected an expression but found ')' (one of '-', a number, a string, 'true', 'false', a name, '(', '[')",
      "4:3 expected an expression but found 'return' (one of '-', a number, a string, 'true', 'false', a name, '(', '[')",
      "6:22 expected an expression but found '}' (one of '-', a number, a string, 'true', 'false', a name, '(', '[')",
      "7:26 expected ')' but found '}'",
    ]);
  });

  it("lexical and syntax errors of one file come together", () => {
    const text = "model m {\n  x = (a + b\n  y = x $ 3\n}\nfn f(x y) { return x }\n";
    const { diags } = parse(text);
    expect(where(diags)).toContain('3:9 unexpected character "$"');
    expect(where(diags)).toContain("5:8 expected ')' but found 'y'");
    expect(diags.length).toBeGreaterThanOrEqual(3);
  });

  it("something that cannot start a top-level item", () => {
    expect(where(parse("x = 1\nmodel m { }").diags)).toEqual([
      "1:1 unexpected 'x': expected 'import', 'fn', 'model' or 'preset'",
    ]);
    expect(where(parse("model m { }\n}").diags)).toEqual([
      "2:1 unexpected '}': expected 'import', 'fn', 'model' or 'preset'",
    ]);
  });
});

describe("static checks", () => {
  it("unknown name, with a 'did you mean' hint, rendered", () => {
    const r = compileText(
      "model m {\n  param depth = 2\n  input x: [B, 8]\n  output o = x * dpth\n}\n",
    );
    expect(r.stage).toBe("frontend");
    const d = only(r.diagnostics);
    expect(d.message).toBe("unknown name 'dpth'");
    expect(d.hint).toBe("did you mean 'depth'?");
    expect(at(d)).toBe("4:18");
    const file = d.span!.file;
    expect(formatDiagnostics(r.diagnostics, r.sources)).toBe(
      [
        `${file}:4:18: error: unknown name 'dpth'`,
        " 4 |   output o = x * dpth",
        "   |                  ^^^^",
        "  hint: did you mean 'depth'?",
      ].join("\n"),
    );
  });

  it("unknown function, with a hint: layernrm -> layernorm", () => {
    const r = compileText(
      'import "std/nn.model"\nmodel m {\n  input x: [B, 8]\n  output o = layernrm(x)\n}\n',
    );
    const d = only(r.diagnostics);
    expect(d.message).toBe("unknown function 'layernrm'");
    expect(d.hint).toBe("did you mean 'layernorm'?");
    expect(at(d)).toBe("4:14");
    expect(d.span!.end - d.span!.start).toBe("layernrm".length);
  });

  it("a name that is not even close gets no hint", () => {
    const d = only(
      compileText("model m {\n  input x: [B, 8]\n  output o = x * zzzzzz\n}\n").diagnostics,
    );
    expect(d.message).toBe("unknown name 'zzzzzz'");
    expect(d.hint).toBeUndefined();
  });

  it("wrong argument counts: too many, missing, unknown named argument", () => {
    const r = compileText(
      [
        'import "std/nn.model"',
        "model m {",
        "  input x: [B, 8]",
        "  y = layernorm(x, 1e-5, 3)",
        "  z = linear(x)",
        "  w = linear(x, 4, bias = false)",
        "  v = exp(x, 2)",
        "  output o = y + z + w + v",
        "}",
      ].join("\n"),
    );
    expect(r.stage).toBe("frontend");
    expect(where(r.diagnostics)).toEqual([
      "4:26 too many arguments: layernorm(x, eps?) takes at most 2",
      "5:7 missing argument 'n_out' to linear(x, n_out, std?, use_bias?)",
      "6:20 linear has no parameter 'bias'",
      "7:14 too many arguments: exp(x) takes at most 1",
    ]);
    expect(r.diagnostics[2].hint).toBe("it takes linear(x, n_out, std?, use_bias?)");
  });

  it("a named argument with a close name gets a hint; a positional one after a named one is an error", () => {
    const r = compileText(
      'import "std/nn.model"\nmodel m {\n  input x: [B, 8]\n  y = layernorm(x, ep = 1)\n  z = layernorm(eps = 1, x)\n  output o = y + z\n}\n',
    );
    expect(where(r.diagnostics)).toEqual([
      "4:20 layernorm has no parameter 'ep'",
      "5:26 a positional argument cannot follow a named one",
    ]);
    expect(r.diagnostics[0].hint).toBe("did you mean 'eps'?");
  });

  it("duplicate weight name in one function, with a note at the first", () => {
    const r = compileText(
      "fn f(x) {\n  weight w: [4] = zeros\n  weight w: [4] = ones\n  return x\n}\nmodel m {\n  input x: [B, 4]\n  output o = f(x)\n}\n",
    );
    const d = only(r.diagnostics);
    expect(d.message).toBe("weight 'w' is declared twice in the same scope");
    expect(at(d)).toBe("3:10");
    expect(d.notes).toHaveLength(1);
    expect(d.notes![0].message).toBe("first declared here");
    expect(d.notes![0].span).toMatchObject({ line: 2, col: 10 });
    const file = d.span!.file;
    expect(formatDiagnostics(r.diagnostics, r.sources)).toBe(
      [
        `${file}:3:10: error: weight 'w' is declared twice in the same scope`,
        " 3 |   weight w: [4] = ones",
        "   |          ^",
        `${file}:2:10: note: first declared here`,
        " 2 |   weight w: [4] = zeros",
        "   |          ^",
      ].join("\n"),
    );
  });

  it("three unknown names in three places: three diagnostics from one run", () => {
    const r = compileText(
      "fn f(x) {\n  return x + alpha\n}\nfn g(x) {\n  return beta * x\n}\nmodel m {\n  input x: [B, 4]\n  output o = f(g(x)) + gamma\n}\n",
    );
    expect(r.stage).toBe("frontend");
    expect(where(r.diagnostics)).toEqual([
      "2:14 unknown name 'alpha'",
      "5:10 unknown name 'beta'",
      "9:24 unknown name 'gamma'",
    ]);
  });

  it("a function used as a value, an initializer used as a value", () => {
    const r = compileText(
      'import "std/nn.model"\nmodel m {\n  input x: [B, 4]\n  y = x * gelu\n  output o = y + zeros\n}\n',
    );
    expect(where(r.diagnostics)).toEqual([
      "4:11 'gelu' is a function: call it with (...)",
      "5:18 'zeros' is an initializer: use it as `weight w: [...] = zeros`",
    ]);
  });

  it("a bad initializer", () => {
    const r = compileText(
      "model m {\n  input x: [B, 4]\n  weight w: [4] = 3\n  output o = x * w\n}\n",
    );
    expect(where(r.diagnostics)).toEqual([
      "3:19 a weight's initializer must be normal(std), zeros or ones",
    ]);
  });

  it("statements in the wrong place", () => {
    const r = compileText(
      "fn f(x) {\n  param p = 1\n  input y: [4]\n  output o = x\n  loss = x\n  return x\n}\nmodel m {\n  input x: [B, 4]\n  return x\n  output o = f(x)\n}\n",
    );
    expect(where(r.diagnostics)).toEqual([
      "2:3 a param declaration belongs in a model, not in a function",
      "3:3 an input declaration belongs in a model, not in a function",
      "4:3 an output declaration belongs in a model, not in a function",
      "5:3 the loss belongs in a model, not in a function",
      "10:3 return belongs in a function, not in a model",
    ]);
  });

  it("a function that never returns; a model with no output", () => {
    const r = compileText("fn f(x) {\n  y = x\n}\nmodel m {\n  input x: [B, 4]\n}\n");
    expect(where(r.diagnostics)).toEqual([
      "1:4 function 'f' never returns a value",
      "4:7 model 'm' has no output",
    ]);
  });

  it("a model-less file", () => {
    const r = compileText("fn f(x) {\n  return x\n}\n");
    const d = only(r.diagnostics);
    expect(d.message).toMatch(/main\.model defines no model$/);
    expect(d.span).toBeUndefined();
    expect(d.hint).toBe("add `model name { ... }`");
  });

  it("two models in one file", () => {
    const r = compileText(
      "model a {\n  input x: [4]\n  output o = x\n}\nmodel b {\n  input x: [4]\n  output o = x\n}\n",
    );
    const d = only(r.diagnostics);
    expect(d.message).toBe("a file holds one model; 'b' is a second one");
    expect(at(d)).toBe("5:7");
    expect(d.notes![0].span).toMatchObject({ line: 1, col: 7 });
  });

  it("derived model: unknown base (with hint) and unknown parameter (with hint)", () => {
    const base = "model gpt2 {\n  param d = 4\n  input x: [d]\n  output o = x\n}\n";
    let r = compileText(
      'import "base.model"\nmodel tiny = gpt { d = 2 }\n',
      {},
      { "base.model": base },
    );
    expect(where(r.diagnostics)).toEqual(["2:14 unknown model 'gpt'"]);
    expect(r.diagnostics[0].hint).toBe("did you mean 'gpt2'?");
    r = compileText(
      'import "base.model"\nmodel tiny = gpt2 { dd = 2 }\n',
      {},
      { "base.model": base },
    );
    expect(where(r.diagnostics)).toEqual(["2:21 'dd' is not a parameter of model 'gpt2'"]);
    expect(r.diagnostics[0].hint).toBe("did you mean 'd'?");
  });

  it("a preset that sets an unknown parameter", () => {
    const r = compileText(
      "model m {\n  param layers = 2\n  input x: [4]\n  output o = x\n}\npreset big { layer = 4 }\n",
    );
    expect(where(r.diagnostics)).toEqual([
      "6:14 preset 'big' sets 'layer', which is not a parameter of model 'm'",
    ]);
    expect(r.diagnostics[0].hint).toBe("did you mean 'layers'?");
  });
});

describe("imports", () => {
  it("a cyclic import is reported at the import that closes the cycle", () => {
    const { root } = writeModels({
      "a.model": 'import "b.model"\nmodel m {\n  input x: [B, 4]\n  output o = x\n}\n',
      "b.model": 'import "a.model"\nfn g(x) {\n  return x\n}\n',
    });
    const r = compile(root);
    const d = only(r.diagnostics);
    expect(d.message).toMatch(/^import cycle: .*a\.model -> .*b\.model -> .*a\.model$/);
    expect(d.span!.file).toMatch(/b\.model$/);
    expect(at(d)).toBe("1:1");
    expect(d.hint).toBe("a file cannot import itself, directly or through others");
    expect(formatDiagnostics(r.diagnostics, r.sources)).toContain(
      ' 1 | import "a.model"\n   | ^^^^^^^^^^^^^^^^',
    );
  });

  it("a file that imports itself", () => {
    const r = compileText('import "main.model"\nmodel m {\n  input x: [4]\n  output o = x\n}\n');
    expect(only(r.diagnostics).message).toMatch(/^import cycle: .*main\.model -> .*main\.model$/);
  });

  it("a missing import file is reported at the import", () => {
    const { dir, root } = writeModels({
      "a.model": '\nimport "nope.model"\nmodel m {\n  input x: [B, 4]\n  output o = x\n}\n',
    });
    const d = only(compile(root).diagnostics);
    expect(d.message).toBe(`cannot read '${join(dir, "nope.model")}': no such file`);
    expect(at(d)).toBe("2:1");
  });

  it("a missing standard-library file", () => {
    const d = only(
      compileText('import "std/nope.model"\nmodel m {\n  input x: [4]\n  output o = x\n}\n')
        .diagnostics,
    );
    expect(d.message).toMatch(/^cannot read '.*specs[/\\]std[/\\]nope\.model': no such file$/);
  });

  it("a missing root file", () => {
    const { dir } = writeModels({ "x.model": "" });
    const d = only(compile(join(dir, "missing.model")).diagnostics);
    expect(d.message).toBe(`cannot read '${join(dir, "missing.model")}': no such file`);
    expect(d.span).toBeUndefined();
  });

  it("a function defined twice across files", () => {
    const r = compileText(
      'import "lib.model"\nfn f(x) {\n  return x\n}\nmodel m {\n  input x: [4]\n  output o = f(x)\n}\n',
      {},
      { "lib.model": "fn f(x) {\n  return x\n}\n" },
    );
    const d = only(r.diagnostics);
    expect(d.message).toBe("function 'f' is defined twice");
    expect(d.span!.file).toMatch(/main\.model$/);
    expect(at(d)).toBe("2:4");
    expect(d.notes![0].span!.file).toMatch(/lib\.model$/);
  });
});

describe("lowering: shapes and values", () => {
  it("shape mismatch at '@': the error is at the '@' and names both shapes", () => {
    const r = compileText(
      "model m {\n  input x: [B, T, 768]\n  weight w: [512, 768]\n  output y = x @ w\n}\n",
    );
    expect(r.stage).toBe("lower");
    const d = only(r.diagnostics);
    expect(d.message).toContain("[B, T, 768]");
    expect(d.message).toContain("[512, 768]");
    expect(d.message).toBe("'@' inner dimensions differ: [B, T, 768] @ [512, 768]");
    expect(at(d)).toBe("4:16");
    expect(d.span!.end - d.span!.start).toBe(1);
    const file = d.span!.file;
    expect(formatDiagnostics(r.diagnostics, r.sources)).toBe(
      [
        `${file}:4:16: error: '@' inner dimensions differ: [B, T, 768] @ [512, 768]`,
        " 4 |   output y = x @ w",
        "   |                ^",
      ].join("\n"),
    );
  });

  it("a shape error inside a library function points into the library, with the call site as a note", () => {
    const r = compileText(
      'import "std/nn.model"\nmodel m {\n  input x: [B, 8]\n  output o = x @ linear(x, 4)\n}\n',
    );
    const d = only(r.diagnostics);
    expect(d.message).toBe("'@' inner dimensions differ: [B, 8] @ [B, 4]");
    expect(at(d)).toBe("4:16");
    const r2 = compileText(
      'import "std/nn.model"\nmodel m {\n  input x: [B, T, 8]\n  output o = causal_self_attention(x, 3) as attn\n}\n',
    );
    // 8 channels do not split into 3 heads: found in split_heads, two calls deep.
    const d2 = only(r2.diagnostics);
    expect(d2.message).toBe("a size must be a whole number, got 2.6666666666666665");
    expect(d2.span!.file).toMatch(/specs[/\\]std[/\\]nn\.model$/);
    expect(r2.sources.get(d2.span!.file)!.split("\n")[d2.span!.line - 1]).toContain("C / heads");
    expect(d2.notes!.map((n) => n.message)).toEqual([
      "in 'split_heads', called here",
      "in 'causal_self_attention', called here",
    ]);
    expect(d2.notes![1].span).toMatchObject({ line: 4, col: 14 });
    // A rank mismatch against a typed parameter points at the argument.
    const r3 = compileText(
      'import "std/nn.model"\nmodel m {\n  input x: [B, 8]\n  output o = causal_self_attention(x, 2) as attn\n}\n',
    );
    expect(where(r3.diagnostics)).toEqual(["4:36 expected [B, T, C], got a f32 tensor [B, 8]"]);
    expect(r3.diagnostics[0].hint).toBe("the ranks differ");
  });

  it("broadcasting mismatch", () => {
    const r = compileText("model m {\n  input x: [B, 3]\n  weight w: [4]\n  output y = x + w\n}\n");
    const d = only(r.diagnostics);
    expect(d.message).toBe("add: shapes [B, 3] and [4] cannot be broadcast together");
    expect(at(d)).toBe("4:16");
  });

  it("a type annotation that does not match", () => {
    const r = compileText("model m {\n  input x: [B, 3]\n  output y: [B, 4] = x * 2\n}\n");
    const d = only(r.diagnostics);
    expect(d.message).toBe("expected [B, 4], got a f32 tensor [B, 3]");
    expect(at(d)).toBe("3:22");
  });

  it("duplicate weight key through two calls in the same scope", () => {
    const r = compileText(
      "fn f(x) {\n  weight w: [4] = zeros\n  return x * w\n}\nmodel m {\n  input x: [B, 4]\n  y = f(x) as a\n  z = f(y) as a\n  output o = z\n}\n",
    );
    expect(r.stage).toBe("lower");
    const d = only(r.diagnostics);
    expect(d.message).toBe("two weights are named 'a.w'");
    // The two calls are what differ, so the error and its note point at them.
    expect(at(d)).toBe("8:7");
    expect(d.hint).toBe("call the function with a distinct scope: f(...) as name");
    expect(d.notes!.map((n) => `${n.span!.line}:${n.span!.col} ${n.message}`)).toEqual([
      "7:7 the first comes from this call",
      "8:7 in 'f', called here",
    ]);
  });

  it("the same without any scope", () => {
    const r = compileText(
      "fn f(x) {\n  weight w: [4] = zeros\n  return x * w\n}\nmodel m {\n  input x: [B, 4]\n  output o = f(f(x))\n}\n",
    );
    expect(only(r.diagnostics).message).toBe("two weights are named 'w'");
  });

  it("a function that calls itself is a diagnostic, not a stack overflow", () => {
    const r = compileText(
      "fn f(x) {\n  return f(x)\n}\nmodel m {\n  input x: [B, 4]\n  output o = f(x)\n}\n",
    );
    expect(r.stage).toBe("lower");
    const d = only(r.diagnostics);
    expect(d.message).toBe("function 'f' calls itself (f -> f); recursion is not supported");
    expect(at(d)).toBe("2:10");
    expect(d.hint).toBe("use `repeat n as name { ... }` to stack layers");
  });

  it("mutual recursion names the whole cycle", () => {
    const r = compileText(
      "fn f(x) {\n  return g(x)\n}\nfn g(x) {\n  return f(x)\n}\nmodel m {\n  input x: [B, 4]\n  output o = f(x)\n}\n",
    );
    const d = only(r.diagnostics);
    expect(d.message).toBe("function 'f' calls itself (f -> g -> f); recursion is not supported");
    expect(at(d)).toBe("5:10");
  });

  it("a loss that is not a scalar", () => {
    const r = compileText("model m {\n  input x: [B, 4]\n  output o = x\n  loss = x * 2\n}\n");
    const d = only(r.diagnostics);
    expect(d.message).toBe("the loss must be a scalar, but it has shape [B, 4]");
    expect(at(d)).toBe("4:10");
    expect(d.hint).toBe("reduce it, e.g. with mean(...)");
  });

  it("a weight dimension that is not fixed, not whole, or not positive", () => {
    const base = (dim: string) =>
      `model m {\n  input x: [B, 4]\n  weight w: [${dim}]\n  output o = x\n}\n`;
    expect(where(compileText(base("B")).diagnostics)).toEqual([
      "3:14 a weight's shape must be fixed, but this dimension is B",
    ]);
    expect(where(compileText(base("2.5")).diagnostics)).toEqual([
      "3:14 a size must be a whole number, got 2.5",
    ]);
    expect(where(compileText(base("0")).diagnostics)).toEqual([
      "3:14 a weight dimension must be positive, got 0",
    ]);
    expect(where(compileText(base("1e12")).diagnostics)).toEqual([
      "3:14 size 1000000000000 is too large (more than 2^31)",
    ]);
  });

  it("names inherited from Object.prototype are not constants or parameters", () => {
    // `toString` used to pass as a constant (`name in constants`).
    const r = compileText("model m {\n  input x: [B, 4]\n  output o = x * toString\n}\n");
    expect(where(r.diagnostics)).toEqual(["3:18 unknown name 'toString'"]);
    // A parameter named like an Object.prototype member, with and without --set.
    const text =
      "model m {\n  param constructor = 3\n  input x: [B, 4]\n  output o = x * constructor\n}\n";
    expect(compileText(text).stage).toBe("ok");
    expect(compileText(text, { set: { constructor: "5" } }).lowered!.params[0]).toMatchObject({
      value: 5,
      source: "--set",
    });
    // A config key named like an Object.prototype member is absent, not a function.
    const r2 = compileText(
      'model m {\n  param d = 4 from "toString"\n  input x: [B, d]\n  output o = x\n}\n',
      {
        config: { n_embd: 8 },
      },
    );
    expect(r2.stage).toBe("ok");
    expect(r2.lowered!.params[0]).toMatchObject({ name: "d", value: 4, source: "default" });
  });
});

describe("lowering options", () => {
  const text =
    "model m {\n  param layers = 2\n  input x: [B, 4]\n  output o = x * layers\n}\npreset big { layers = 4 }\n";

  it("a bad --set value", () => {
    const r = compileText(text, { set: { layers: "abc" } });
    expect(r.stage).toBe("lower");
    const d = only(r.diagnostics);
    expect(d.message).toBe("--set layers=abc: 'abc' is not a number");
    expect(d.hint).toBe("write e.g. --set layers=2");
    expect(d.span).toBeUndefined();
    expect(formatDiagnostics(r.diagnostics, r.sources)).toBe(
      "error: --set layers=abc: 'abc' is not a number\n  hint: write e.g. --set layers=2",
    );
  });

  it("an empty --set value", () => {
    expect(only(compileText(text, { set: { layers: "" } }).diagnostics).message).toBe(
      "--set layers=: '' is not a number",
    );
  });

  it("an unknown --set name, with a hint", () => {
    const d = only(compileText(text, { set: { layer: "3" } }).diagnostics);
    expect(d.message).toBe("--set layer=3: model 'm' has no parameter 'layer'");
    expect(d.hint).toBe("did you mean 'layers'?");
  });

  it("an unknown --set name far from any parameter lists the parameters", () => {
    const d = only(compileText(text, { set: { zzzzzzzz: "3" } }).diagnostics);
    expect(d.hint).toBe("its parameters are: layers");
  });

  it("an unknown preset, with a hint", () => {
    const d = only(compileText(text, { preset: "bug" }).diagnostics);
    expect(d.message).toMatch(/^no preset 'bug' in .*main\.model$/);
    expect(d.hint).toBe("did you mean 'big'?");
  });

  it("a config value of the wrong type points at the parameter", () => {
    const r = compileText(
      'model m {\n  param layers = 2 from "n_layer"\n  input x: [B, 4]\n  output o = x\n}\n',
      {
        config: { n_layer: "twelve" },
      },
    );
    const d = only(r.diagnostics);
    expect(d.message).toBe(
      `config.json: 'n_layer' is "twelve", but parameter 'layers' needs a number`,
    );
    expect(at(d)).toBe("2:3");
  });

  it("a parameter that is not finite", () => {
    const d = only(
      compileText("model m {\n  param d = 1e309\n  input x: [4]\n  output o = x\n}\n").diagnostics,
    );
    expect(d.message).toBe("parameter 'd' must be a finite number, got Infinity");
  });
});
