// The grammar of the model language, as code (chevrotain). Each rule builds its
// AST node directly. Error recovery is on, so one run reports several syntax errors.
import {
  EmbeddedActionsParser,
  EOF,
  tokenMatcher,
  type IParserErrorMessageProvider,
  type IRecognitionException,
  type IRuleConfig,
  type IToken,
  type TokenType,
} from "chevrotain";
import type * as A from "./ast.js";
import { DiagnosticBag } from "./diagnostics.js";
import * as T from "./lexer.js";
import type { Span } from "./source.js";

function describe(tok: IToken): string {
  if (tok.tokenType === EOF) return "the end of the file";
  return `'${tok.image}'`;
}

function label(t: TokenType): string {
  return t.LABEL ?? t.name;
}

/** Plain-language syntax errors: "expected ')' but found 'x'". */
const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage({ expected, actual }) {
    // Recovery at the top level expects EOF when no item can start: say what can.
    if (expected === EOF)
      return `unexpected ${describe(actual)}: expected 'import', 'fn', 'model' or 'preset'`;
    return `expected ${label(expected)} but found ${describe(actual)}`;
  },
  buildNotAllInputParsedMessage({ firstRedundant }) {
    return `unexpected ${describe(firstRedundant)}: expected 'import', 'fn', 'model' or 'preset'`;
  },
  buildNoViableAltMessage({ expectedPathsPerAlt, actual, ruleName }) {
    const starts = new Set<string>();
    for (const alt of expectedPathsPerAlt)
      for (const path of alt) if (path[0]) starts.add(label(path[0]));
    const what = ruleWords[ruleName] ?? ruleName;
    const list = [...starts].slice(0, 8).join(", ");
    return `expected ${what} but found ${describe(actual[0])}${list ? ` (one of ${list})` : ""}`;
  },
  buildEarlyExitMessage({ actual, ruleName }) {
    return `expected ${ruleWords[ruleName] ?? ruleName} but found ${describe(actual[0])}`;
  },
};

const ruleWords: Record<string, string> = {
  topLevel: "'import', 'fn', 'model' or 'preset'",
  statement: "a statement",
  primary: "an expression",
  expr: "an expression",
  comparison: "an expression",
  additive: "an expression",
  multiplicative: "an expression",
  unary: "an expression",
  power: "an expression",
  postfix: "an expression",
  arg: "an argument",
  typeExpr: "a type such as [B, T] or int[B, T]",
  dim: "a dimension",
};

class ModelParser extends EmbeddedActionsParser {
  file = "<input>";

  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, errorMessageProvider: messages });
    this.performSelfAnalysis();
  }

  private span(first: IToken, last: IToken = first): Span {
    return {
      file: this.file,
      line: first.startLine ?? 0,
      col: first.startColumn ?? 0,
      start: first.startOffset,
      end: (last.endOffset ?? last.startOffset) + 1,
    };
  }

  // Error recovery can skip a rule after a syntax error; chevrotain then returns
  // `recoveryValueFunc(e)`, which is undefined by default and would crash the actions
  // of the enclosing rules. Every rule returns a harmless stand-in instead (the AST of
  // a file with syntax errors is never compiled); declarations and statements return
  // undefined and are dropped by the rule that collects them.
  protected override RULE<F extends (...args: any[]) => any>(
    name: string,
    implementation: F,
    config?: IRuleConfig<ReturnType<F>>,
  ) {
    return super.RULE(name, implementation, {
      recoveryValueFunc: (e: IRecognitionException) => this.standIn(name, e) as ReturnType<F>,
      ...config,
    });
  }

  private standIn(rule: string, e: IRecognitionException): unknown {
    const tok = e.token ?? this.LA(1);
    const span = this.span(tok);
    const expr: A.Expr = { kind: "name", name: "<error>", span };
    switch (rule) {
      case "block":
        return { stmts: [], close: tok };
      case "paramValues":
        return { values: [], close: tok };
      case "scopeName":
        return { names: [], span };
      case "typeExpr":
        return { dims: [], span };
      case "list":
        return { kind: "list", items: [], span };
      case "arg":
        return { value: expr, span };
      case "dim":
      case "expr":
      case "comparison":
      case "additive":
      case "multiplicative":
      case "unary":
      case "power":
      case "postfix":
      case "primary":
      case "callOrName":
        return expr;
      default:
        return undefined;
    }
  }

  /** The next token to parse (where a stack overflow struck). */
  currentToken(): IToken {
    return this.LA(1);
  }

  // Defensive: during chevrotain's grammar recording, sub-rules return placeholders.
  private join(a: Span | undefined, b: Span | undefined): Span {
    if (a && b) return { ...a, end: b.end };
    return (a ?? b)!;
  }

  // ---- top level ---------------------------------------------------------------

  public module = this.RULE("module", (): A.TopLevel[] => {
    const items: A.TopLevel[] = [];
    this.MANY(() => {
      const item = this.SUBRULE(this.topLevel);
      this.ACTION(() => item && items.push(item));
    });
    return items;
  });

  private topLevel = this.RULE("topLevel", (): A.TopLevel => {
    return this.OR([
      { ALT: () => this.SUBRULE(this.importDecl) },
      { ALT: () => this.SUBRULE(this.fnDef) },
      { ALT: () => this.SUBRULE(this.modelDef) },
      { ALT: () => this.SUBRULE(this.presetDef) },
    ]);
  });

  private importDecl = this.RULE("importDecl", (): A.ImportDecl => {
    const kw = this.CONSUME(T.Import);
    const str = this.CONSUME(T.StringLiteral);
    return { kind: "import", path: unquote(str.image), span: this.span(kw, str) };
  });

  private fnDef = this.RULE("fnDef", (): A.FnDef => {
    const kw = this.CONSUME(T.Fn);
    const name = this.CONSUME(T.Identifier);
    this.CONSUME(T.LParen);
    const params: A.FnParam[] = [];
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () => {
        const p = this.SUBRULE(this.fnParam);
        this.ACTION(() => p && params.push(p));
      },
    });
    this.CONSUME(T.RParen);
    const { stmts, close } = this.SUBRULE(this.block);
    return {
      kind: "fn",
      name: name.image,
      nameSpan: this.span(name),
      params,
      body: stmts,
      span: this.span(kw, close),
    };
  });

  private fnParam = this.RULE("fnParam", (): A.FnParam => {
    const name = this.CONSUME(T.Identifier);
    let type: A.TypeExpr | undefined;
    let def: A.Expr | undefined;
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      type = this.SUBRULE(this.typeExpr);
    });
    this.OPTION2(() => {
      this.CONSUME(T.Equals);
      def = this.SUBRULE(this.expr);
    });
    const span = this.span(name);
    return {
      name: name.image,
      type,
      default: def,
      span: def ? this.join(span, def.span) : type ? this.join(span, type.span) : span,
    };
  });

  private modelDef = this.RULE("modelDef", (): A.ModelDef => {
    const kw = this.CONSUME(T.Model);
    const name = this.CONSUME(T.Identifier);
    return this.OR([
      {
        ALT: () => {
          const { stmts, close } = this.SUBRULE(this.block);
          return {
            kind: "model" as const,
            name: name.image,
            nameSpan: this.span(name),
            body: stmts,
            span: this.span(kw, close),
          };
        },
      },
      {
        ALT: () => {
          this.CONSUME(T.Equals);
          const base = this.CONSUME2(T.Identifier);
          const { values, close } = this.SUBRULE(this.paramValues);
          return {
            kind: "model" as const,
            name: name.image,
            nameSpan: this.span(name),
            body: [],
            derived: { base: base.image, baseSpan: this.span(base), values },
            span: this.span(kw, close),
          };
        },
      },
    ]);
  });

  /** `{ d = 1024, layers = 24 }` */
  private paramValues = this.RULE(
    "paramValues",
    (): { values: A.ParamValueAst[]; close: IToken } => {
      this.CONSUME(T.LBrace);
      const values: A.ParamValueAst[] = [];
      this.MANY_SEP({
        SEP: T.Comma,
        DEF: () => {
          const key = this.CONSUME(T.Identifier);
          this.CONSUME(T.Equals);
          const value = this.SUBRULE(this.expr);
          this.ACTION(() =>
            values.push({ name: key.image, value, span: this.join(this.span(key), value.span) }),
          );
        },
      });
      const close = this.CONSUME(T.RBrace);
      return { values, close };
    },
  );

  private presetDef = this.RULE("presetDef", (): A.PresetDef => {
    const kw = this.CONSUME(T.Preset);
    const name = this.CONSUME(T.Identifier);
    const { values, close } = this.SUBRULE(this.paramValues);
    return {
      kind: "preset",
      name: name.image,
      nameSpan: this.span(name),
      values,
      span: this.span(kw, close),
    };
  });

  // ---- statements ----------------------------------------------------------------

  private block = this.RULE("block", (): { stmts: A.Stmt[]; close: IToken } => {
    this.CONSUME(T.LBrace);
    const stmts: A.Stmt[] = [];
    this.MANY(() => {
      const s = this.SUBRULE(this.statement);
      this.ACTION(() => s && stmts.push(s));
    });
    const close = this.CONSUME(T.RBrace);
    return { stmts, close };
  });

  /** Soft keywords start a declaration only when followed by what that declaration needs. */
  private nextIs(...types: TokenType[]): boolean {
    return types.every((t, i) => tokenMatcher(this.LA(i + 1), t));
  }

  private statement = this.RULE("statement", (): A.Stmt => {
    return this.OR([
      {
        GATE: () => this.nextIs(T.Weight, T.Identifier, T.Colon),
        ALT: () => this.SUBRULE(this.weightDecl),
      },
      {
        GATE: () => this.nextIs(T.Param, T.Identifier, T.Equals),
        ALT: () => this.SUBRULE(this.paramDecl),
      },
      {
        GATE: () => this.nextIs(T.Input, T.Identifier, T.Colon),
        ALT: () => this.SUBRULE(this.inputDecl),
      },
      {
        GATE: () =>
          this.nextIs(T.Output, T.Identifier) &&
          !this.nextIs(T.Output, T.Equals) &&
          !this.nextIs(T.Output, T.Comma),
        ALT: () => this.SUBRULE(this.outputDecl),
      },
      { GATE: () => this.nextIs(T.Loss, T.Equals), ALT: () => this.SUBRULE(this.lossStmt) },
      { ALT: () => this.SUBRULE(this.repeatStmt) },
      { ALT: () => this.SUBRULE(this.ifStmt) },
      { ALT: () => this.SUBRULE(this.returnStmt) },
      { ALT: () => this.SUBRULE(this.assignStmt) },
    ]);
  });

  private weightDecl = this.RULE("weightDecl", (): A.WeightDecl => {
    const kw = this.CONSUME(T.Weight);
    const name = this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    const type = this.SUBRULE(this.typeExpr);
    let init: A.Expr | undefined;
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      init = this.SUBRULE(this.expr);
    });
    return {
      kind: "weight",
      name: name.image,
      nameSpan: this.span(name),
      type,
      init,
      span: this.join(this.span(kw), init ? init.span : type.span),
    };
  });

  private paramDecl = this.RULE("paramDecl", (): A.ParamDecl => {
    const kw = this.CONSUME(T.Param);
    const name = this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    const value = this.SUBRULE(this.expr);
    let configKey: string | undefined;
    let last: Span = value.span;
    this.OPTION(() => {
      this.CONSUME(T.From);
      const key = this.CONSUME(T.StringLiteral);
      configKey = unquote(key.image);
      last = this.span(key);
    });
    return {
      kind: "param",
      name: name.image,
      nameSpan: this.span(name),
      value,
      configKey,
      span: this.join(this.span(kw), last),
    };
  });

  private inputDecl = this.RULE("inputDecl", (): A.InputDecl => {
    const kw = this.CONSUME(T.Input);
    const name = this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    const type = this.SUBRULE(this.typeExpr);
    return {
      kind: "input",
      name: name.image,
      nameSpan: this.span(name),
      type,
      span: this.join(this.span(kw), type.span),
    };
  });

  private outputDecl = this.RULE("outputDecl", (): A.OutputDecl => {
    const kw = this.CONSUME(T.Output);
    const name = this.CONSUME(T.Identifier);
    let type: A.TypeExpr | undefined;
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      type = this.SUBRULE(this.typeExpr);
    });
    this.CONSUME(T.Equals);
    const value = this.SUBRULE(this.expr);
    return {
      kind: "output",
      name: name.image,
      nameSpan: this.span(name),
      type,
      value,
      span: this.join(this.span(kw), value.span),
    };
  });

  private lossStmt = this.RULE("lossStmt", (): A.LossStmt => {
    const kw = this.CONSUME(T.Loss);
    this.CONSUME(T.Equals);
    const value = this.SUBRULE(this.expr);
    return { kind: "loss", value, span: this.join(this.span(kw), value.span) };
  });

  private repeatStmt = this.RULE("repeatStmt", (): A.RepeatStmt => {
    const kw = this.CONSUME(T.Repeat);
    let index: string | undefined;
    this.OPTION({
      GATE: () => tokenMatcher(this.LA(2), T.In),
      DEF: () => {
        index = this.CONSUME(T.Identifier).image;
        this.CONSUME(T.In);
      },
    });
    const count = this.SUBRULE(this.expr);
    this.CONSUME(T.As);
    const scope = this.SUBRULE(this.scopeName);
    const { stmts, close } = this.SUBRULE(this.block);
    return {
      kind: "repeat",
      index,
      count,
      scope: scope.names,
      scopeSpan: scope.span,
      body: stmts,
      span: this.span(kw, close),
    };
  });

  private ifStmt = this.RULE("ifStmt", (): A.IfStmt => {
    const kw = this.CONSUME(T.If);
    const cond = this.SUBRULE(this.expr);
    const then = this.SUBRULE(this.block);
    let elseBody: A.Stmt[] | undefined;
    let close = then.close;
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR([
        {
          ALT: () => {
            const nested = this.SUBRULE(this.ifStmt);
            this.ACTION(() => {
              elseBody = nested ? [nested] : [];
              close = this.LA(0);
            });
          },
        },
        {
          ALT: () => {
            const b = this.SUBRULE2(this.block);
            this.ACTION(() => {
              elseBody = b.stmts;
              close = b.close;
            });
          },
        },
      ]);
    });
    return { kind: "if", cond, then: then.stmts, else: elseBody, span: this.span(kw, close) };
  });

  private returnStmt = this.RULE("returnStmt", (): A.ReturnStmt => {
    const kw = this.CONSUME(T.Return);
    const value = this.SUBRULE(this.expr);
    return { kind: "return", value, span: this.join(this.span(kw), value.span) };
  });

  private assignStmt = this.RULE("assignStmt", (): A.AssignStmt => {
    const targets: A.AssignStmt["targets"] = [];
    this.AT_LEAST_ONE_SEP({
      SEP: T.Comma,
      DEF: () => {
        const t = this.CONSUME(T.Identifier);
        this.ACTION(() => targets.push({ name: t.image, span: this.span(t) }));
      },
    });
    this.CONSUME(T.Equals);
    const value = this.SUBRULE(this.expr);
    const first = targets[0]?.span ?? value.span;
    return { kind: "assign", targets, value, span: this.join(first, value.span) };
  });

  private scopeName = this.RULE("scopeName", (): { names: string[]; span: Span } => {
    const first = this.CONSUME(T.Identifier);
    const names = [first.image];
    let last = first;
    this.MANY(() => {
      this.CONSUME(T.Dot);
      last = this.CONSUME2(T.Identifier);
      this.ACTION(() => names.push(last.image));
    });
    return { names, span: this.span(first, last) };
  });

  // ---- types ---------------------------------------------------------------------

  private typeExpr = this.RULE("typeExpr", (): A.TypeExpr => {
    let dtype: A.DType | undefined;
    let first: IToken | undefined;
    this.OPTION(() => {
      first = this.OR([
        { ALT: () => this.CONSUME(T.FloatType) },
        { ALT: () => this.CONSUME(T.IntType) },
        { ALT: () => this.CONSUME(T.BoolType) },
      ]);
      dtype = first.image as A.DType;
    });
    const open = this.CONSUME(T.LBracket);
    const dims: A.DimPattern[] = [];
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () => {
        const d = this.SUBRULE(this.dim);
        this.ACTION(() => dims.push(d));
      },
    });
    const close = this.CONSUME(T.RBracket);
    return { dtype, dims, span: this.span(first ?? open, close) };
  });

  private dim = this.RULE("dim", (): A.DimPattern => {
    return this.OR([
      {
        ALT: () => {
          const tok = this.CONSUME(T.Ellipsis);
          return { kind: "ellipsis" as const, span: this.span(tok) };
        },
      },
      { ALT: () => this.SUBRULE(this.expr) },
    ]);
  });

  // ---- expressions ---------------------------------------------------------------

  private expr = this.RULE("expr", (): A.Expr => this.SUBRULE(this.comparison));

  private binary(left: A.Expr, opTok: IToken, right: A.Expr): A.BinaryExpr {
    return {
      kind: "binary",
      op: opTok.image as A.BinaryOp,
      left,
      right,
      opSpan: this.span(opTok),
      span: this.join(left.span, right.span),
    };
  }

  private comparison = this.RULE("comparison", (): A.Expr => {
    let left = this.SUBRULE(this.additive);
    this.OPTION(() => {
      const op = this.OR([
        { ALT: () => this.CONSUME(T.Less) },
        { ALT: () => this.CONSUME(T.LessEq) },
        { ALT: () => this.CONSUME(T.Greater) },
        { ALT: () => this.CONSUME(T.GreaterEq) },
        { ALT: () => this.CONSUME(T.EqEq) },
        { ALT: () => this.CONSUME(T.NotEq) },
      ]);
      const right = this.SUBRULE2(this.additive);
      left = this.binary(left, op, right);
    });
    return left;
  });

  private additive = this.RULE("additive", (): A.Expr => {
    let left = this.SUBRULE(this.multiplicative);
    this.MANY(() => {
      const op = this.OR([
        { ALT: () => this.CONSUME(T.Plus) },
        { ALT: () => this.CONSUME(T.Minus) },
      ]);
      const right = this.SUBRULE2(this.multiplicative);
      left = this.binary(left, op, right);
    });
    return left;
  });

  private multiplicative = this.RULE("multiplicative", (): A.Expr => {
    let left = this.SUBRULE(this.unary);
    this.MANY(() => {
      const op = this.OR([
        { ALT: () => this.CONSUME(T.Star) },
        { ALT: () => this.CONSUME(T.Slash) },
        { ALT: () => this.CONSUME(T.At) },
      ]);
      const right = this.SUBRULE2(this.unary);
      left = this.binary(left, op, right);
    });
    return left;
  });

  private unary = this.RULE("unary", (): A.Expr => {
    return this.OR([
      {
        ALT: () => {
          const op = this.CONSUME(T.Minus);
          const operand = this.SUBRULE(this.unary);
          return {
            kind: "unary" as const,
            op: "-" as const,
            operand,
            span: this.join(this.span(op), operand.span),
          };
        },
      },
      { ALT: () => this.SUBRULE(this.power) },
    ]);
  });

  /** `a ** b` binds tighter than unary minus on its left and is right-associative. */
  private power = this.RULE("power", (): A.Expr => {
    let base = this.SUBRULE(this.postfix);
    this.OPTION(() => {
      const op = this.CONSUME(T.StarStar);
      const exponent = this.SUBRULE(this.unary);
      base = this.binary(base, op, exponent);
    });
    return base;
  });

  private postfix = this.RULE("postfix", (): A.Expr => {
    let e = this.SUBRULE(this.primary);
    this.MANY(() => {
      this.OR([
        {
          ALT: () => {
            this.CONSUME(T.Dot);
            const name = this.CONSUME(T.Identifier);
            e = {
              kind: "member",
              object: e,
              name: name.image,
              span: this.join(e.span, this.span(name)),
            };
          },
        },
        {
          ALT: () => {
            this.CONSUME(T.LBracket);
            const index = this.SUBRULE(this.expr);
            const close = this.CONSUME(T.RBracket);
            e = { kind: "index", object: e, index, span: this.join(e.span, this.span(close)) };
          },
        },
      ]);
    });
    return e;
  });

  private primary = this.RULE("primary", (): A.Expr => {
    return this.OR([
      {
        ALT: () => {
          const tok = this.CONSUME(T.NumberLiteral);
          return {
            kind: "number" as const,
            value: Number(tok.image),
            text: tok.image,
            span: this.span(tok),
          };
        },
      },
      {
        ALT: () => {
          const tok = this.CONSUME(T.StringLiteral);
          return { kind: "string" as const, value: unquote(tok.image), span: this.span(tok) };
        },
      },
      {
        ALT: () => {
          const tok = this.CONSUME(T.True);
          return { kind: "bool" as const, value: true, span: this.span(tok) };
        },
      },
      {
        ALT: () => {
          const tok = this.CONSUME(T.False);
          return { kind: "bool" as const, value: false, span: this.span(tok) };
        },
      },
      { ALT: () => this.SUBRULE(this.callOrName) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          const inner = this.SUBRULE(this.expr);
          this.CONSUME(T.RParen);
          return inner;
        },
      },
      { ALT: () => this.SUBRULE(this.list) },
    ]);
  });

  private callOrName = this.RULE("callOrName", (): A.Expr => {
    const name = this.CONSUME(T.Identifier);
    const nameSpan = this.span(name);
    let result: A.Expr = { kind: "name", name: name.image, span: nameSpan };
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      const args: A.Arg[] = [];
      this.MANY_SEP({
        SEP: T.Comma,
        DEF: () => {
          const a = this.SUBRULE(this.arg);
          this.ACTION(() => args.push(a));
        },
      });
      const close = this.CONSUME(T.RParen);
      const call: A.CallExpr = {
        kind: "call",
        callee: name.image,
        calleeSpan: nameSpan,
        args,
        span: this.span(name, close),
      };
      this.OPTION2(() => {
        this.CONSUME(T.As);
        const scope = this.SUBRULE(this.scopeName);
        call.scope = scope.names;
        call.scopeSpan = scope.span;
        call.span = this.join(call.span, scope.span);
      });
      result = call;
    });
    return result;
  });

  private arg = this.RULE("arg", (): A.Arg => {
    let name: IToken | undefined;
    this.OPTION({
      GATE: () => tokenMatcher(this.LA(2), T.Equals),
      DEF: () => {
        name = this.CONSUME(T.Identifier);
        this.CONSUME(T.Equals);
      },
    });
    const value = this.SUBRULE(this.expr);
    return {
      name: name?.image,
      value,
      span: name ? this.join(this.span(name), value.span) : value.span,
    };
  });

  private list = this.RULE("list", (): A.ListExpr => {
    const open = this.CONSUME(T.LBracket);
    const items: A.Expr[] = [];
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () => {
        const e = this.SUBRULE(this.expr);
        this.ACTION(() => items.push(e));
      },
    });
    const close = this.CONSUME(T.RBracket);
    return { kind: "list", items, span: this.span(open, close) };
  });
}

/** Decodes a string literal's escapes (\" \\ \n \t; anything else stands for itself). */
function unquote(image: string): string {
  const body = image.slice(1, -1);
  return body.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c === "t" ? "\t" : c));
}

// One parser instance: chevrotain's self-analysis is costly, and the parser is reset per input.
let shared: ModelParser | undefined;

/** Lexes and parses one file. Syntax errors go into `diags`; the AST is usable only without them. */
export function parseModule(text: string, file: string, diags: DiagnosticBag): A.ModuleAst {
  const lexed = T.modelLexer.tokenize(text);
  for (const e of lexed.errors) {
    const bad = text.slice(e.offset, e.offset + Math.max(1, e.length));
    diags.error(`unexpected character ${JSON.stringify(bad.slice(0, 1))}`, {
      file,
      line: e.line ?? 0,
      col: e.column ?? 0,
      start: e.offset,
      end: e.offset + 1,
    });
  }
  shared ??= new ModelParser();
  const parser = shared;
  parser.file = file;
  parser.input = lexed.tokens;
  let items: A.TopLevel[] = [];
  try {
    items = parser.module();
  } catch (err) {
    // The parser recurses once per nesting level: 5,000 nested parentheses (or a
    // much smaller unclosed nest, whose recovery recurses further) overflow the stack.
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      diags.error(
        "the file nests too deeply to be parsed (thousands of nested parentheses, brackets, calls or operators)",
        tokenSpan(parser.currentToken(), text, file),
        "split the expression into several assignments",
      );
      return { file, items: [], comments: [] };
    }
    // Error recovery can hand a rule an incomplete sub-result; the syntax errors
    // already recorded say what is wrong, so report those instead of crashing.
    if (parser.errors.length === 0) throw err;
    items = [];
  }
  const reported = new Set<number>();
  for (const e of parser.errors) {
    const tok = e.token;
    // Recovery can report the same spot twice; once is enough.
    if (reported.has(tok.startOffset)) continue;
    reported.add(tok.startOffset);
    diags.error(e.message, tokenSpan(tok, text, file));
  }
  const comments: A.Comment[] = (lexed.groups.comments ?? []).map((tok) => ({
    text: tok.image,
    span: tokenSpan(tok, text, file),
  }));
  return { file, items: items ?? [], comments };
}

/** Where a token is; the end of the file for EOF (or a token recovery invented). */
function tokenSpan(tok: IToken, text: string, file: string): Span {
  if (tok.tokenType === EOF || Number.isNaN(tok.startOffset)) return endOfFile(text, file);
  return {
    file,
    line: tok.startLine ?? 0,
    col: tok.startColumn ?? 0,
    start: tok.startOffset,
    end: (tok.endOffset ?? tok.startOffset) + 1,
  };
}

function endOfFile(text: string, file: string): Span {
  const lines = text.split("\n");
  const last = lines[lines.length - 1];
  return {
    file,
    line: lines.length,
    col: last.length + 1,
    start: text.length,
    end: text.length,
  };
}
