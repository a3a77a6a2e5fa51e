// Static checks that need no shapes: unknown names and functions, argument
// counts, duplicate declarations, misplaced statements. They run over every
// function (called or not) and report all problems at once; shapes are checked
// afterwards, when the model is lowered to the IR.
import type * as A from "./ast.js";
import { builtinByName, constants, initializerNames } from "./builtins.js";
import { didYouMean, type DiagnosticBag } from "./diagnostics.js";
import type { Program } from "./load.js";
import type { Span } from "./source.js";

interface Signature {
  params: { name: string; optional: boolean }[];
}

class Checker {
  constructor(
    private readonly program: Program,
    private readonly diags: DiagnosticBag,
  ) {}

  private signature(name: string): Signature | undefined {
    const fn = this.program.functions.get(name);
    if (fn)
      return {
        params: fn.params.map((p) => ({ name: p.name, optional: p.default !== undefined })),
      };
    const b = builtinByName.get(name);
    if (b) return { params: b.params.map((p) => ({ name: p.name, optional: !!p.optional })) };
    return undefined;
  }

  private callableNames(): string[] {
    return [...this.program.functions.keys(), ...builtinByName.keys()];
  }

  checkProgram(): void {
    for (const fn of this.program.functions.values()) this.checkFn(fn);
    const model = this.program.model;
    if (!model) {
      this.diags.error(
        `${this.program.root.file} defines no model`,
        undefined,
        "add `model name { ... }`",
      );
      return;
    }
    this.checkModel(model);
    const params = new Set(paramNames(model));
    for (const v of this.program.derivedValues)
      if (!params.has(v.name))
        this.diags.error(
          `'${v.name}' is not a parameter of model '${model.name}'`,
          v.span,
          didYouMean(v.name, params),
        );
    for (const preset of this.program.presets.values())
      for (const v of preset.values)
        if (!params.has(v.name))
          this.diags.error(
            `preset '${preset.name}' sets '${v.name}', which is not a parameter of model '${model.name}'`,
            v.span,
            didYouMean(v.name, params),
          );
  }

  private checkFn(fn: A.FnDef): void {
    const scope = new Set<string>();
    const seen = new Map<string, Span>();
    for (const p of fn.params) {
      if (seen.has(p.name)) this.diags.error(`parameter '${p.name}' is declared twice`, p.span);
      seen.set(p.name, p.span);
      if (p.default) this.expr(p.default, scope);
      scope.add(p.name);
      for (const d of p.type?.dims ?? []) if (d.kind === "name") scope.add(d.name);
    }
    this.block(fn.body, scope, "fn", new Map());
    if (!returns(fn.body))
      this.diags.error(
        `function '${fn.name}' never returns a value`,
        fn.nameSpan,
        "end it with `return ...`",
      );
  }

  private checkModel(model: A.ModelDef): void {
    this.block(model.body, new Set(), "model", new Map());
    const outputs = model.body.filter((s) => s.kind === "output");
    if (outputs.length === 0)
      this.diags.error(
        `model '${model.name}' has no output`,
        model.nameSpan,
        "add `output name = ...`",
      );
  }

  private block(
    stmts: A.Stmt[],
    scope: Set<string>,
    where: "fn" | "model",
    weights: Map<string, Span>,
  ): void {
    for (const s of stmts) this.stmt(s, scope, where, weights);
  }

  private misplaced(s: A.Stmt, what: string, where: "fn" | "model"): void {
    this.diags.error(
      `${what} belongs in a ${where === "fn" ? "model" : "function"}, not in a ${where === "fn" ? "function" : "model"}`,
      s.span,
    );
  }

  private stmt(
    s: A.Stmt,
    scope: Set<string>,
    where: "fn" | "model",
    weights: Map<string, Span>,
  ): void {
    switch (s.kind) {
      case "assign":
        this.expr(s.value, scope);
        for (const t of s.targets) scope.add(t.name);
        return;
      case "weight": {
        for (const d of s.type.dims) if (d.kind !== "ellipsis") this.expr(d, scope);
        if (s.init) this.init(s.init, scope);
        const prev = weights.get(s.name);
        if (prev)
          this.diags.add({
            severity: "error",
            message: `weight '${s.name}' is declared twice in the same scope`,
            span: s.nameSpan,
            notes: [{ message: "first declared here", span: prev }],
          });
        weights.set(s.name, s.nameSpan);
        scope.add(s.name);
        return;
      }
      case "param":
        if (where === "fn") return this.misplaced(s, "a param declaration", where);
        this.expr(s.value, scope);
        if (scope.has(s.name)) this.diags.error(`'${s.name}' is already defined`, s.nameSpan);
        scope.add(s.name);
        return;
      case "input":
        if (where === "fn") return this.misplaced(s, "an input declaration", where);
        // Names in an input's dims that are not defined yet become symbolic dims.
        for (const d of s.type.dims) {
          if (d.kind === "name") scope.add(d.name);
          else if (d.kind !== "ellipsis") this.expr(d, scope);
        }
        scope.add(s.name);
        return;
      case "output":
        if (where === "fn") return this.misplaced(s, "an output declaration", where);
        this.expr(s.value, scope);
        for (const d of s.type?.dims ?? []) if (d.kind !== "ellipsis") this.expr(d, scope);
        scope.add(s.name);
        return;
      case "loss":
        if (where === "fn") return this.misplaced(s, "the loss", where);
        this.expr(s.value, scope);
        return;
      case "return":
        if (where === "model") return this.misplaced(s, "return", where);
        this.expr(s.value, scope);
        return;
      case "repeat":
        this.expr(s.count, scope);
        if (s.index) scope.add(s.index);
        // Each iteration is its own scope (h.0, h.1, ...), so weight names restart.
        this.block(s.body, scope, where, new Map());
        return;
      case "if":
        this.expr(s.cond, scope);
        this.block(s.then, scope, where, weights);
        if (s.else) this.block(s.else, scope, where, weights);
        return;
    }
  }

  private init(e: A.Expr, scope: Set<string>): void {
    if (e.kind === "name" && initializerNames.includes(e.name)) return;
    if (e.kind === "call" && e.callee === "normal") return this.expr(e, scope);
    this.diags.error("a weight's initializer must be normal(std), zeros or ones", e.span);
  }

  private expr(e: A.Expr, scope: Set<string>): void {
    switch (e.kind) {
      case "number":
      case "string":
      case "bool":
        return;
      case "name":
        if (scope.has(e.name) || e.name in constants) return;
        if (this.program.functions.has(e.name) || builtinByName.has(e.name)) {
          this.diags.error(`'${e.name}' is a function: call it with (...)`, e.span);
          return;
        }
        if (initializerNames.includes(e.name)) {
          this.diags.error(
            `'${e.name}' is an initializer: use it as \`weight w: [...] = ${e.name}\``,
            e.span,
          );
          return;
        }
        this.diags.error(
          `unknown name '${e.name}'`,
          e.span,
          didYouMean(e.name, [...scope, ...Object.keys(constants)]),
        );
        return;
      case "member":
        // `a.b` where `a` is not a variable names a weight of scope `a`: checked when lowering.
        if (e.object.kind === "name" && !scope.has(e.object.name)) return;
        return this.expr(e.object, scope);
      case "index":
        this.expr(e.object, scope);
        return this.expr(e.index, scope);
      case "unary":
        return this.expr(e.operand, scope);
      case "binary":
        this.expr(e.left, scope);
        return this.expr(e.right, scope);
      case "list":
        for (const item of e.items) this.expr(item, scope);
        return;
      case "call":
        for (const a of e.args) this.expr(a.value, scope);
        return this.call(e);
    }
  }

  private call(e: A.CallExpr): void {
    const sig = this.signature(e.callee);
    if (!sig) {
      const hint = didYouMean(e.callee, this.callableNames());
      this.diags.error(`unknown function '${e.callee}'`, e.calleeSpan, hint);
      return;
    }
    const shown = `${e.callee}(${sig.params.map((p) => (p.optional ? `${p.name}?` : p.name)).join(", ")})`;
    const given = new Set<string>();
    let positional = 0;
    for (const a of e.args) {
      if (a.name === undefined) {
        if (given.size > positional) {
          this.diags.error("a positional argument cannot follow a named one", a.span);
          return;
        }
        const p = sig.params[positional];
        if (!p) {
          this.diags.error(
            `too many arguments: ${shown} takes at most ${sig.params.length}`,
            a.span,
          );
          return;
        }
        given.add(p.name);
        positional++;
      } else {
        if (!sig.params.some((p) => p.name === a.name)) {
          this.diags.error(
            `${e.callee} has no parameter '${a.name}'`,
            a.span,
            didYouMean(
              a.name,
              sig.params.map((p) => p.name),
            ) ?? `it takes ${shown}`,
          );
          continue;
        }
        if (given.has(a.name)) this.diags.error(`argument '${a.name}' is given twice`, a.span);
        given.add(a.name);
      }
    }
    const missing = sig.params
      .filter((p) => !p.optional && !given.has(p.name))
      .map((p) => `'${p.name}'`);
    if (missing.length)
      this.diags.error(
        `missing argument${missing.length > 1 ? "s" : ""} ${missing.join(", ")} to ${shown}`,
        e.span,
      );
    if (e.scope && builtinByName.has(e.callee) && !this.program.functions.has(e.callee))
      this.diags.error(
        `'${e.callee}' is a builtin and has no weights, so it takes no 'as' scope`,
        e.scopeSpan,
      );
  }
}

function returns(stmts: A.Stmt[]): boolean {
  return stmts.some(
    (s) =>
      s.kind === "return" ||
      (s.kind === "if" && s.else !== undefined && returns(s.then) && returns(s.else)),
  );
}

export function paramNames(model: A.ModelDef): string[] {
  return model.body.filter((s): s is A.ParamDecl => s.kind === "param").map((s) => s.name);
}

export function checkProgram(program: Program, diags: DiagnosticBag): void {
  new Checker(program, diags).checkProgram();
}
