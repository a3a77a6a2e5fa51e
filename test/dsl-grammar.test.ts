// The grammar of the model language, construct by construct: each test parses a
// small text and asserts the shape of the AST (kinds, names, grouping, spans).
import { describe, expect, it } from "vitest";
import type * as A from "../src/dsl/ast.js";
import { parse, sx } from "./helpers/dsl.js";

/** Parses and fails on any diagnostic. */
function ok(text: string): A.ModuleAst {
  const { ast, diags } = parse(text);
  expect(diags.map((d) => d.message)).toEqual([]);
  return ast;
}

/** The messages of a text that must not parse. */
function errors(text: string): string[] {
  const { diags } = parse(text);
  expect(diags.length).toBeGreaterThan(0);
  return diags.map((d) => d.message);
}

/** The statements of `fn f() { ... }`. */
function fnBody(body: string): A.Stmt[] {
  const item = ok(`fn f() {\n${body}\n}`).items[0];
  expect(item.kind).toBe("fn");
  return (item as A.FnDef).body;
}

/** The statements of `model m { ... }`. */
function modelBody(body: string): A.Stmt[] {
  const item = ok(`model m {\n${body}\n}`).items[0];
  expect(item.kind).toBe("model");
  return (item as A.ModelDef).body;
}

/** The expression `text`, parsed as `return text`, rendered with sx. */
function e(text: string): string {
  const [s] = fnBody(`return ${text}`);
  expect(s.kind).toBe("return");
  return sx((s as A.ReturnStmt).value);
}

function exprOf(text: string): A.Expr {
  return (fnBody(`return ${text}`)[0] as A.ReturnStmt).value;
}

describe("operators: precedence and associativity", () => {
  it("'-' and '+' are left-associative", () => {
    expect(e("a - b - c")).toBe("(- (- a b) c)");
    expect(e("a + b - c + d")).toBe("(+ (- (+ a b) c) d)");
  });

  it("'*', '/' and '@' share one level and are left-associative", () => {
    expect(e("a / b / c")).toBe("(/ (/ a b) c)");
    expect(e("a * b @ c")).toBe("(@ (* a b) c)");
    expect(e("a @ b * c")).toBe("(* (@ a b) c)");
  });

  it("'*' binds tighter than '+'", () => {
    expect(e("a + b * c")).toBe("(+ a (* b c))");
    expect(e("a * b + c")).toBe("(+ (* a b) c)");
    expect(e("(a + b) * c")).toBe("(* (+ a b) c)");
  });

  it("'**' is right-associative and binds tighter than '*'", () => {
    expect(e("2 ** 3 ** 2")).toBe("(** 2 (** 3 2))");
    expect(e("a ** b * c")).toBe("(* (** a b) c)");
  });

  it("unary minus: -x ** 2 is -(x ** 2); the exponent may be negative", () => {
    expect(e("-x ** 2")).toBe("(neg (** x 2))");
    expect(e("2 ** -1")).toBe("(** 2 (neg 1))");
    expect(e("-x ** -y")).toBe("(neg (** x (neg y)))");
    expect(e("a ** -b ** c")).toBe("(** a (neg (** b c)))");
    expect(e("--x")).toBe("(neg (neg x))");
    expect(e("a - -b")).toBe("(- a (neg b))");
    expect(e("-a @ b")).toBe("(@ (neg a) b)");
  });

  it("postfix .T and [i] bind tighter than unary minus and '@'", () => {
    expect(e("a @ b.T")).toBe("(@ a (. b T))");
    expect(e("-x.T")).toBe("(neg (. x T))");
    expect(e("-w[i]")).toBe("(neg ([] w i))");
    expect(e("x.T.T")).toBe("(. (. x T) T)");
    expect(e("f(x).T")).toBe("(. (call f x) T)");
    expect(e("f(x)[i]")).toBe("([] (call f x) i)");
    expect(e("w[ids].T")).toBe("(. ([] w ids) T)");
  });

  it("comparisons bind loosest and are not associative", () => {
    for (const op of ["<", "<=", ">", ">=", "==", "!="]) expect(e(`a ${op} b`)).toBe(`(${op} a b)`);
    expect(e("a + 1 < b * 2")).toBe("(< (+ a 1) (* b 2))");
    expect(e("a == b + 1")).toBe("(== a (+ b 1))");
    expect(e("true != false")).toBe("(!= true false)");
    // `a < b < c` is a syntax error, reported at the second '<'.
    const { diags } = parse("fn f() { return a < b < c }");
    expect(diags[0].message).toBe("expected '}' but found '<'");
    expect(diags[0].span).toMatchObject({ line: 1, col: 23 });
  });

  it("a binary node's opSpan is the operator; its span covers both operands", () => {
    const x = exprOf("a  @  bb") as A.BinaryExpr;
    expect(x.kind).toBe("binary");
    expect(x.opSpan).toMatchObject({ line: 2, col: 11, end: x.opSpan.start + 1 });
    expect(x.span).toMatchObject({ line: 2, col: 8 });
    expect(x.span.end - x.span.start).toBe("a  @  bb".length);
  });

  it("newlines are whitespace: an expression continues on the next line", () => {
    // Statements need no separator, so a leading '-' on the next line subtracts.
    const body = fnBody("x = a\n-b\nreturn x");
    expect(body.map((s) => s.kind)).toEqual(["assign", "return"]);
    expect(sx((body[0] as A.AssignStmt).value)).toBe("(- a b)");
    // Two statements on one line need no separator either.
    expect(fnBody("x = 1 y = 2 return x").map((s) => s.kind)).toEqual([
      "assign",
      "assign",
      "return",
    ]);
  });
});

describe("literals", () => {
  it("numbers keep their text and value", () => {
    const cases: [string, number][] = [
      ["1e-5", 1e-5],
      [".5", 0.5],
      ["3.", 3],
      ["1E+3", 1000],
      ["0.02", 0.02],
      ["007", 7],
      ["50257", 50257],
      ["1e308", 1e308],
      ["1e309", Infinity],
    ];
    for (const [text, value] of cases) {
      const n = exprOf(text);
      expect(n).toMatchObject({ kind: "number", text, value });
    }
  });

  it("a number cannot be followed by a member: `3.T` and `x.5` are errors", () => {
    expect(errors("fn f() { return 3.T }")[0]).toMatch(/found 'T'/);
    expect(errors("fn f() { return x.5 }")[0]).toBe("expected '}' but found '.5'");
  });

  it('strings decode \\" \\\\ \\n \\t; any other escaped character stands for itself', () => {
    const s = exprOf(String.raw`"a\"b\\c\n\t\q"`);
    expect(s).toMatchObject({ kind: "string", value: 'a"b\\c\n\tq' });
    expect(exprOf('""')).toMatchObject({ kind: "string", value: "" });
    expect(exprOf('"é ∑ 😀"')).toMatchObject({ kind: "string", value: "é ∑ 😀" });
  });

  it("a string cannot span lines", () => {
    const { diags } = parse('fn f() { x = "a\nb" return x }');
    expect(diags[0]).toMatchObject({
      message: 'unexpected character "\\""',
      span: { line: 1, col: 14 },
    });
  });

  it("true and false", () => {
    expect(exprOf("true")).toMatchObject({ kind: "bool", value: true });
    expect(exprOf("false")).toMatchObject({ kind: "bool", value: false });
  });

  it("lists: empty, nested, of expressions; no trailing comma", () => {
    expect(e("[a, b]")).toBe("[a b]");
    expect(e("[]")).toBe("[]");
    expect(e("[[1, 2], [B, T * 2]]")).toBe("[[1 2] [B (* T 2)]]");
    expect(errors("fn f() { return [a, b,] }")[0]).toMatch(
      /^expected an expression but found '\]'/,
    );
  });
});

describe("comments", () => {
  it("line and block comments are kept aside in `comments`, with spans", () => {
    const ast = ok(
      [
        "// head",
        "/* block",
        "   comment */ fn f(x) { return x /* inline */ } // tail",
        'import "a//b.model" // after',
      ].join("\n"),
    );
    expect(ast.items.map((i) => i.kind)).toEqual(["fn", "import"]);
    expect(ast.comments.map((c) => c.text)).toEqual([
      "// head",
      "/* block\n   comment */",
      "/* inline */",
      "// tail",
      "// after",
    ]);
    expect(ast.comments.map((c) => `${c.span.line}:${c.span.col}`)).toEqual([
      "1:1",
      "2:1",
      "3:34",
      "3:49",
      "4:21",
    ]);
    // `//` inside a string is not a comment.
    expect(ast.items[1]).toMatchObject({ kind: "import", path: "a//b.model" });
  });

  it("an unterminated block comment is not a comment: it lexes as '/' '*'", () => {
    const msgs = errors("fn f() { x = 1 /* no end\n y = 2 return x }");
    expect(msgs[0]).toMatch(/^expected an expression but found '\*'/);
  });
});

describe("top level", () => {
  it("import", () => {
    const [imp] = ok('import "std/nn.model"').items;
    expect(imp).toMatchObject({
      kind: "import",
      path: "std/nn.model",
      span: { line: 1, col: 1, start: 0, end: 21 },
    });
  });

  it("fn with typed parameters and defaults", () => {
    const [fn] = ok("fn g(x: [..., C], ids: int[B, T], y: [C] = 3, eps = 1e-5, z) { return x }")
      .items as A.FnDef[];
    expect(fn).toMatchObject({ kind: "fn", name: "g", nameSpan: { line: 1, col: 4 } });
    const [x, ids, y, eps, z] = fn.params;
    expect(x.name).toBe("x");
    expect(x.type!.dtype).toBeUndefined();
    expect(x.type!.dims.map((d) => (d.kind === "ellipsis" ? "..." : sx(d)))).toEqual(["...", "C"]);
    expect(x.default).toBeUndefined();
    expect(ids.type).toMatchObject({ dtype: "int" });
    expect(ids.type!.dims.map((d) => (d.kind === "ellipsis" ? "..." : sx(d)))).toEqual(["B", "T"]);
    expect(y.type!.dims).toHaveLength(1);
    expect(y.default).toMatchObject({ kind: "number", value: 3 });
    expect(eps).toMatchObject({
      name: "eps",
      default: { kind: "number", text: "1e-5", value: 1e-5 },
    });
    expect(eps.type).toBeUndefined();
    expect(z).toMatchObject({ name: "z" });
    expect(z.type).toBeUndefined();
    expect(z.default).toBeUndefined();
    expect(fn.body.map((s) => s.kind)).toEqual(["return"]);
  });

  it("fn with no parameters and an empty body", () => {
    const [fn] = ok("fn f() { }").items as A.FnDef[];
    expect(fn.params).toEqual([]);
    expect(fn.body).toEqual([]);
  });

  it("a type's dims are expressions", () => {
    const [fn] = ok("fn g(x: float[B, T * 2, C / heads, 4]) { return x }").items as A.FnDef[];
    const t = fn.params[0].type!;
    expect(t.dtype).toBe("float");
    expect(t.dims.map((d) => (d.kind === "ellipsis" ? "..." : sx(d)))).toEqual([
      "B",
      "(* T 2)",
      "(/ C heads)",
      "4",
    ]);
  });

  it("model", () => {
    const [m] = ok("model gpt2 {\n  param d = 8\n}").items as A.ModelDef[];
    expect(m).toMatchObject({ kind: "model", name: "gpt2", nameSpan: { line: 1, col: 7 } });
    expect(m.derived).toBeUndefined();
    expect(m.span).toMatchObject({ line: 1, col: 1, start: 0 });
    expect(m.span.end).toBe("model gpt2 {\n  param d = 8\n}".length);
  });

  it("preset", () => {
    const [p] = ok("preset medium { d = 1024, layers = 24, heads = 2 * 8 }").items as A.PresetDef[];
    expect(p).toMatchObject({ kind: "preset", name: "medium" });
    expect(p.values.map((v) => `${v.name}=${sx(v.value)}`)).toEqual([
      "d=1024",
      "layers=24",
      "heads=(* 2 8)",
    ]);
    expect(ok("preset empty { }").items[0]).toMatchObject({ kind: "preset", values: [] });
  });

  it("derived model: model tiny = gpt2 { d = 32 }", () => {
    const [m] = ok("model tiny = gpt2 { d = 32, layers = 2 }").items as A.ModelDef[];
    expect(m).toMatchObject({ kind: "model", name: "tiny", body: [] });
    expect(m.derived).toMatchObject({ base: "gpt2", baseSpan: { line: 1, col: 14 } });
    expect(m.derived!.values.map((v) => `${v.name}=${sx(v.value)}`)).toEqual(["d=32", "layers=2"]);
  });

  it("items come in source order and any order is allowed", () => {
    const ast = ok('preset p { }\nmodel m { }\nfn f() { return 1 }\nimport "x.model"');
    expect(ast.items.map((i) => i.kind)).toEqual(["preset", "model", "fn", "import"]);
  });

  it("anything else at the top level is an error", () => {
    expect(errors("x = 1")[0]).toBe("unexpected 'x': expected 'import', 'fn', 'model' or 'preset'");
  });
});

describe("statements", () => {
  it('param with and without `from "key"`', () => {
    const [a, b] = modelBody('param d = 768 from "n_embd"\nparam eps = 1e-5') as A.ParamDecl[];
    expect(a).toMatchObject({
      kind: "param",
      name: "d",
      configKey: "n_embd",
      value: { kind: "number", value: 768 },
    });
    expect(a.nameSpan).toMatchObject({ line: 2, col: 7 });
    expect(b).toMatchObject({ kind: "param", name: "eps", value: { text: "1e-5" } });
    expect(b.configKey).toBeUndefined();
  });

  it("input with a dtype", () => {
    const [a, b, c] = modelBody(
      "input tokens: int[B, T]\ninput x: float[B, 8]\ninput m: bool[T]",
    ) as A.InputDecl[];
    expect(a).toMatchObject({ kind: "input", name: "tokens", type: { dtype: "int" } });
    expect(a.type.dims.map((d) => (d.kind === "ellipsis" ? "..." : sx(d)))).toEqual(["B", "T"]);
    expect(b.type.dtype).toBe("float");
    expect(c.type.dtype).toBe("bool");
  });

  it("output with and without a type", () => {
    const [a, b] = modelBody(
      "output logits: [B, T, vocab] = x @ w\noutput y = x",
    ) as A.OutputDecl[];
    expect(a).toMatchObject({ kind: "output", name: "logits" });
    expect(a.type!.dims.map((d) => (d.kind === "ellipsis" ? "..." : sx(d)))).toEqual([
      "B",
      "T",
      "vocab",
    ]);
    expect(sx(a.value)).toBe("(@ x w)");
    expect(b).toMatchObject({ kind: "output", name: "y", value: { kind: "name", name: "x" } });
    expect(b.type).toBeUndefined();
  });

  it("loss", () => {
    const [l] = modelBody("loss = cross_entropy(logits, targets)") as A.LossStmt[];
    expect(l.kind).toBe("loss");
    expect(sx(l.value)).toBe("(call cross_entropy logits targets)");
  });

  it("weight with init normal(std), zeros, ones, or none", () => {
    const ws = fnBody(
      "weight w: [n_in, n_out] = normal(0.02)\nweight b: [n_out] = zeros\nweight g: [C] = ones\nweight h: float[4]\nreturn w",
    ) as A.WeightDecl[];
    expect(ws[0]).toMatchObject({ kind: "weight", name: "w", nameSpan: { line: 2, col: 8 } });
    expect(sx(ws[0].init!)).toBe("(call normal 0.02)");
    expect(ws[0].type.dims.map((d) => (d.kind === "ellipsis" ? "..." : sx(d)))).toEqual([
      "n_in",
      "n_out",
    ]);
    expect(ws[1].init).toMatchObject({ kind: "name", name: "zeros" });
    expect(ws[2].init).toMatchObject({ kind: "name", name: "ones" });
    expect(ws[3].init).toBeUndefined();
    expect(ws[3].type.dtype).toBe("float");
  });

  it("repeat with and without an index; the scope may be dotted", () => {
    const [a, b] = modelBody(
      "repeat i in layers as h { x = x + i }\nrepeat 2 * n as blocks.h { }",
    ) as A.RepeatStmt[];
    expect(a).toMatchObject({
      kind: "repeat",
      index: "i",
      scope: ["h"],
      count: { kind: "name", name: "layers" },
    });
    expect(a.body.map((s) => s.kind)).toEqual(["assign"]);
    expect(b.index).toBeUndefined();
    expect(b.scope).toEqual(["blocks", "h"]);
    expect(sx(b.count)).toBe("(* 2 n)");
    expect(b.scopeSpan).toMatchObject({ line: 3, col: 17 });
  });

  it("repeat: a call as the count swallows the `as` (parenthesize it)", () => {
    // `dim(x, 0) as h` reads as a call in scope h, so the repeat has no `as`.
    expect(errors("model m { repeat dim(x, 0) as h { } }")[0]).toBe("expected 'as' but found '{'");
    const [r] = modelBody("repeat (dim(x, 0)) as h { }") as A.RepeatStmt[];
    expect(sx(r.count)).toBe("(call dim x 0)");
  });

  it("if, else if, else", () => {
    const [s] = modelBody(
      "if a { x = 1 } else if b > 2 { x = 2 } else { x = 3\ny = 4 }",
    ) as A.IfStmt[];
    expect(s.kind).toBe("if");
    expect(sx(s.cond)).toBe("a");
    expect(s.then.map((t) => t.kind)).toEqual(["assign"]);
    expect(s.else).toHaveLength(1);
    const inner = s.else![0] as A.IfStmt;
    expect(inner.kind).toBe("if");
    expect(sx(inner.cond)).toBe("(> b 2)");
    expect(inner.else!.map((t) => (t as A.AssignStmt).targets[0].name)).toEqual(["x", "y"]);
    const [plain] = modelBody("if use_bias { }") as A.IfStmt[];
    expect(plain.else).toBeUndefined();
  });

  it("return", () => {
    const [r] = fnBody("return x + 1");
    expect(r.kind).toBe("return");
    expect(sx((r as A.ReturnStmt).value)).toBe("(+ x 1)");
  });

  it("assignment and tuple assignment", () => {
    const [a, b] = fnBody(
      "x = x + y\nq, k, v = split(x, 3, axis = -1)\nreturn q",
    ) as A.AssignStmt[];
    expect(a.targets.map((t) => t.name)).toEqual(["x"]);
    expect(b.targets.map((t) => t.name)).toEqual(["q", "k", "v"]);
    expect(b.targets.map((t) => `${t.span.line}:${t.span.col}`)).toEqual(["3:1", "3:4", "3:7"]);
    expect(sx(b.value)).toBe("(call split x 3 axis=(neg 1))");
  });

  it("a statement cannot start with an expression", () => {
    expect(errors("fn f() { 1 + 2 }")[0]).toBe("expected '}' but found '1'");
    expect(errors("fn f() { x = 1\n(y) = 2 }")[0]).toBe("expected '}' but found '('");
  });
});

describe("calls, members, indexing", () => {
  it("calls with positional and named arguments", () => {
    expect(e("f()")).toBe("(call f)");
    expect(e("f(x, k = 1, eps = 1e-5)")).toBe("(call f x k=1 eps=1e-5)");
    const c = exprOf("layernorm(x, eps = 2)") as A.CallExpr;
    expect(c.calleeSpan).toMatchObject({ line: 2, col: 8 });
    expect(c.args[1]).toMatchObject({ name: "eps", value: { kind: "number", value: 2 } });
    expect(c.args[0].name).toBeUndefined();
    // A positional argument after a named one parses (the static check rejects it).
    expect(e("f(k = 1, x)")).toBe("(call f k=1 x)");
    // Comparison inside an argument, not a named argument.
    expect(e("f(a == b)")).toBe("(call f (== a b))");
  });

  it("`as scope.path` attaches to the call", () => {
    const c = exprOf("linear(x, 3 * C) as attn.c_attn") as A.CallExpr;
    expect(c.scope).toEqual(["attn", "c_attn"]);
    expect(c.scopeSpan).toMatchObject({ line: 2, col: 28 });
    expect(e("f(x) as a + g(y) as b")).toBe("(+ (call f x as a) (call g y as b))");
    expect(e("x + f(x) as a.b.c")).toBe("(+ x (call f x as a.b.c))");
  });

  it("no trailing comma in arguments", () => {
    expect(errors("fn f() { return f(a,) }")[0]).toMatch(/^expected an expression but found '\)'/);
  });

  it("member: wte.weight, wte.weight.T", () => {
    const m = exprOf("wte.weight") as A.MemberExpr;
    expect(m).toMatchObject({
      kind: "member",
      name: "weight",
      object: { kind: "name", name: "wte" },
    });
    expect(e("x @ wte.weight.T")).toBe("(@ x (. (. wte weight) T))");
  });

  it("a checkpoint key with a number (h.0.attn) cannot be written as a member", () => {
    // `.0` lexes as the number .0, not as '.' and a name.
    expect(errors("model m { x = h.0.attn }")[0]).toBe("expected '}' but found '.0'");
  });

  it("index: w[ids]", () => {
    const i = exprOf("w[ids]") as A.IndexExpr;
    expect(i).toMatchObject({
      kind: "index",
      object: { kind: "name", name: "w" },
      index: { kind: "name", name: "ids" },
    });
    expect(e("w[ids + 1][j]")).toBe("([] ([] w (+ ids 1)) j)");
  });

  it("parentheses leave no node behind", () => {
    expect(e("(((a)))")).toBe("a");
    expect(exprOf("((a))")).toMatchObject({ kind: "name", name: "a" });
  });
});

describe("soft keywords and names", () => {
  it("weight named `weight` and `bias`, as the GPT-2 checkpoint needs", () => {
    const [w, b] = fnBody(
      "weight weight: [C] = ones\nweight bias: [C] = zeros\nreturn weight",
    ) as A.WeightDecl[];
    expect(w).toMatchObject({ kind: "weight", name: "weight" });
    expect(b).toMatchObject({ kind: "weight", name: "bias" });
  });

  it("soft keywords are plain variables when not followed by what their declaration needs", () => {
    const names = [
      "input",
      "output",
      "weight",
      "param",
      "model",
      "from",
      "float",
      "int",
      "bool",
      "preset",
    ];
    const body = modelBody(names.map((n, i) => `${n} = ${i}`).join("\n"));
    expect(body.map((s) => s.kind)).toEqual(names.map(() => "assign"));
    expect(body.map((s) => (s as A.AssignStmt).targets[0].name)).toEqual(names);
    // ... and can be read back.
    expect(e("input + output * weight")).toBe("(+ input (* output weight))");
    expect(e("float(x)")).toBe("(call float x)");
  });

  it("`output` followed by a name is an output declaration; `output = ...` an assignment", () => {
    expect(modelBody("output o = x")[0].kind).toBe("output");
    expect(modelBody("output = x")[0].kind).toBe("assign");
    expect(modelBody("output, y = f(x)")[0].kind).toBe("assign");
  });

  it("`loss = ...` is always the loss statement; `loss` can be assigned only in a tuple", () => {
    expect(modelBody("loss = x")[0].kind).toBe("loss");
    expect(fnBody("loss = x\nreturn x")[0].kind).toBe("loss");
    const [t] = modelBody("loss, y = f(x)") as A.AssignStmt[];
    expect(t.kind).toBe("assign");
    expect(t.targets.map((x) => x.name)).toEqual(["loss", "y"]);
  });

  it("soft keywords name functions, models, presets, parameters and scopes", () => {
    const ast = ok(
      "fn model(input, weight) { return input }\nmodel model { x = model(1, 2) as output }\npreset preset { param = 1 }",
    );
    expect(ast.items.map((i) => `${i.kind}:${(i as A.FnDef).name}`)).toEqual([
      "fn:model",
      "model:model",
      "preset:preset",
    ]);
    const fn = ast.items[0] as A.FnDef;
    expect(fn.params.map((p) => p.name)).toEqual(["input", "weight"]);
    expect(sx(((ast.items[1] as A.ModelDef).body[0] as A.AssignStmt).value)).toBe(
      "(call model 1 2 as output)",
    );
  });

  it("hard keywords are never names", () => {
    for (const kw of [
      "in",
      "fn",
      "as",
      "if",
      "else",
      "return",
      "repeat",
      "import",
      "true",
      "false",
    ]) {
      const { diags } = parse(`fn f(${kw}) { return 1 }`);
      expect(diags[0].message, kw).toBe(`expected ')' but found '${kw}'`);
    }
  });

  it("a keyword prefix does not make a keyword: inputs, iff, returns, format are names", () => {
    const [fn] = ok("fn f(inputs, iff, returns, format, asx, fnx) { return inputs }")
      .items as A.FnDef[];
    expect(fn.params.map((p) => p.name)).toEqual([
      "inputs",
      "iff",
      "returns",
      "format",
      "asx",
      "fnx",
    ]);
  });
});
