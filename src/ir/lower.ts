// Lowering: evaluates a checked program into an IR graph. Hyperparameters are
// resolved (defaults < preset < config.json < --set), functions are inlined,
// `repeat` is unrolled, and weights get their checkpoint names from the scope
// path (h.0.attn.c_attn.weight). Shapes are checked as each op is added; an error
// points at the source text that built the op.
import type * as A from "../dsl/ast.js";
import { builtinByName, constants } from "../dsl/builtins.js";
import { paramNames } from "../dsl/check.js";
import { DiagnosticError, didYouMean, type Diagnostic } from "../dsl/diagnostics.js";
import type { Program } from "../dsl/load.js";
import type { Span } from "../dsl/source.js";
import {
  dimAdd,
  dimConst,
  dimDiv,
  dimEq,
  dimMul,
  dimSub,
  dimSym,
  dimToString,
  dimValue,
  shapeSize,
  shapeToString,
  type Dim,
} from "./dims.js";
import { Graph } from "./graph.js";
import { transposeLast } from "./ops/matmul.js";
import { rngKeyInput, rngKeyLength } from "./ops/random.js";
import { ShapeError, type AttrValue, type DType } from "./ops/types.js";

/**
 * A decode graph's KV caches are inputs and outputs named `cache.<scope>`
 * (the output is the input's updated cache); runtimes and exporters find
 * them by this name.
 */
export const isCacheName = (name: string): boolean => name.startsWith("cache.");

export type Value =
  | { kind: "num"; value: number }
  | { kind: "dim"; dim: Dim } // a symbolic integer such as T or B*T
  | { kind: "bool"; value: boolean }
  | { kind: "str"; value: string }
  | { kind: "tensor"; id: number }
  | { kind: "list"; items: Value[] };

export interface LowerOptions {
  /** `--set k=v`: values as written on the command line. */
  set?: Record<string, string>;
  /** A Hugging Face config.json, already parsed. */
  config?: Record<string, unknown>;
  preset?: string;
  /** Nesting limit for function calls (guards against runaway recursion). */
  maxDepth?: number;
  /**
   * Lower for incremental decoding: `cache(k)` reads earlier keys/values from
   * an input cache of C slots (symbolic dim C) and outputs the updated cache;
   * `positions(T)` and `causal_mask` start at the input `cache_len`.
   */
  decode?: boolean;
}

/** A spec parameter (`param d = 768`) and the value a model was compiled with. */
export interface ParamValue {
  /** The parameter's name in the spec. */
  name: string;
  /** Its value (a finite number, or true/false). */
  value: number | boolean;
  /**
   * Where the value came from, highest priority first: "--set" (an override),
   * "config" (config.json, through `from "key"`), "preset", "derived" (a
   * `model x = base { ... }` chain), or "default" (the declaration).
   */
  source: "default" | "derived" | "preset" | "config" | "--set";
}

/** Each config.json key the spec maps, with its parameter's value (e.g. "n_positions" -> 1024). */
export function configValues(l: Lowered): Map<string, number | boolean> {
  const out = new Map<string, number | boolean>();
  for (const s of l.model.body)
    if (s.kind === "param" && s.configKey !== undefined) {
      const p = l.params.find((q) => q.name === s.name);
      if (p) out.set(s.configKey, p.value);
    }
  return out;
}

/** A model lowered to the tensor IR, before the middle end's passes. */
export interface Lowered {
  /** The whole graph: every output, the loss included (named after the model compiled). */
  graph: Graph;
  /** The model definition lowered: the one with the body (the base of a derived model). */
  model: A.ModelDef;
  /** Every parameter with its value, in declaration order. */
  params: ParamValue[];
  /** Node id of the loss, when the model declares one. */
  loss?: number;
  /**
   * Decode lowering only: why this graph cannot decode one token at a time
   * (an attention whose keys are not cached sees only the new token), with
   * where. Generation then recomputes the prefix per token instead.
   */
  noDecode?: { message: string; span?: Span };
}

class LowerError extends Error {
  /** Where the failing code was reached from: call sites, innermost first. */
  readonly notes: { message: string; span?: Span }[] = [];

  constructor(
    message: string,
    readonly span?: Span,
    readonly hint?: string,
  ) {
    super(message);
  }
}

class ReturnSignal {
  constructor(readonly value: Value) {}
}

interface Frame {
  vars: Map<string, Value>;
  scope: string[];
  fn?: string;
}

const num = (value: number): Value => ({ kind: "num", value });

function describe(v: Value, g: Graph): string {
  switch (v.kind) {
    case "num":
      return `the number ${v.value}`;
    case "dim":
      return `the size ${dimToString(v.dim)}`;
    case "bool":
      return `${v.value}`;
    case "str":
      return `the string ${JSON.stringify(v.value)}`;
    case "tensor": {
      const t = g.type(v.id);
      return `a ${t.dtype} tensor ${shapeToString(t.shape)}`;
    }
    case "list":
      return `a list of ${v.items.length}`;
  }
}

const binaryOps: Record<string, string> = {
  "+": "add",
  "-": "sub",
  "*": "mul",
  "/": "div",
  "**": "pow",
  "<": "lt",
  "<=": "le",
  ">": "gt",
  ">=": "ge",
  "==": "eq",
  "!=": "ne",
};

const unaryMath: Record<string, (x: number) => number> = {
  exp: Math.exp,
  log: Math.log,
  tanh: Math.tanh,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  relu: (x) => Math.max(x, 0),
  sin: Math.sin,
  cos: Math.cos,
  abs: Math.abs,
};

class Lowerer {
  readonly graph: Graph;
  private readonly weightKeys = new Map<string, { id: number; span: Span; site?: Span }>();
  private readonly callStack: string[] = [];
  /** Where each active call was made, innermost last (for messages). */
  private readonly callSites: Span[] = [];
  private loss?: number;
  private readonly maxDepth: number;
  private cacheLenNode?: number;
  private rngKeyNode?: number;
  /** Random ops made so far: each one's stream number in the key. */
  private streams = 0;
  private readonly cacheCount = new Map<string, number>();
  private noDecode?: { message: string; span?: Span };

  constructor(
    private readonly program: Program,
    private readonly model: A.ModelDef,
    private readonly opts: LowerOptions,
  ) {
    this.graph = new Graph(program.rootModel?.name ?? model.name);
    this.maxDepth = opts.maxDepth ?? 64;
  }

  // ---- entry -------------------------------------------------------------------

  lower(): Lowered {
    const params = this.resolveParams();
    const frame: Frame = { vars: new Map(), scope: [] };
    for (const p of params)
      frame.vars.set(
        p.name,
        typeof p.value === "boolean" ? { kind: "bool", value: p.value } : num(p.value),
      );
    for (const s of this.model.body) {
      if (s.kind === "param") continue;
      this.stmt(s, frame);
    }
    return {
      graph: this.graph,
      model: this.model,
      params,
      loss: this.loss,
      ...(this.noDecode ? { noDecode: this.noDecode } : {}),
    };
  }

  /** Parameter values: defaults < preset < config.json < --set, each checked. */
  private resolveParams(): ParamValue[] {
    const decls = this.model.body.filter((s): s is A.ParamDecl => s.kind === "param");
    const names = paramNames(this.model);
    const errors: Diagnostic[] = [];
    // No prototype: a parameter named `toString` must not find Object.prototype.toString.
    const set: Record<string, string> = Object.assign(Object.create(null), this.opts.set);
    for (const key of Object.keys(set))
      if (!names.includes(key))
        errors.push({
          severity: "error",
          message: `--set ${key}=${set[key]}: model '${this.model.name}' has no parameter '${key}'`,
          hint: didYouMean(key, names) ?? `its parameters are: ${names.join(", ")}`,
        });
    let preset: A.PresetDef | undefined;
    if (this.opts.preset !== undefined) {
      preset = this.program.presets.get(this.opts.preset);
      if (!preset)
        errors.push({
          severity: "error",
          message: `no preset '${this.opts.preset}' in ${this.program.root.file}`,
          hint:
            didYouMean(this.opts.preset, this.program.presets.keys()) ??
            (this.program.presets.size
              ? `presets: ${[...this.program.presets.keys()].join(", ")}`
              : undefined),
        });
    }
    if (errors.length) throw new DiagnosticError(errors);

    const frame: Frame = { vars: new Map(), scope: [] };
    const out: ParamValue[] = [];
    for (const d of decls) {
      let value: Value;
      let source: ParamValue["source"] = "default";
      const fromPreset = preset?.values.find((v) => v.name === d.name);
      const fromDerived = this.program.derivedValues.filter((v) => v.name === d.name).pop();
      const fromConfig =
        // Own keys only: `from "toString"` must not find Object.prototype.toString.
        d.configKey !== undefined &&
        this.opts.config &&
        Object.hasOwn(this.opts.config, d.configKey)
          ? this.opts.config[d.configKey]
          : undefined;
      if (set[d.name] !== undefined) {
        value = parseSetValue(d.name, set[d.name]);
        source = "--set";
      } else if (fromConfig !== undefined && fromConfig !== null) {
        if (typeof fromConfig !== "number" && typeof fromConfig !== "boolean")
          throw new LowerError(
            `config.json: '${d.configKey}' is ${JSON.stringify(fromConfig).slice(0, 40)}, but parameter '${d.name}' needs a number`,
            d.span,
          );
        value =
          typeof fromConfig === "number" ? num(fromConfig) : { kind: "bool", value: fromConfig };
        source = "config";
      } else if (fromPreset) {
        value = this.expr(fromPreset.value, frame);
        source = "preset";
      } else if (fromDerived) {
        value = this.expr(fromDerived.value, frame);
        source = "derived";
      } else value = this.expr(d.value, frame);
      if (value.kind === "num" && !Number.isFinite(value.value))
        throw new LowerError(
          `parameter '${d.name}' must be a finite number, got ${value.value}`,
          d.span,
        );
      if (value.kind !== "num" && value.kind !== "bool")
        throw new LowerError(
          `parameter '${d.name}' must be a number or true/false, got ${describe(value, this.graph)}`,
          d.value.span,
        );
      frame.vars.set(d.name, value);
      out.push({ name: d.name, value: value.value, source });
    }
    return out;
  }

  // ---- statements ------------------------------------------------------------------

  private block(stmts: A.Stmt[], frame: Frame): void {
    for (const s of stmts) this.stmt(s, frame);
  }

  private stmt(s: A.Stmt, frame: Frame): void {
    switch (s.kind) {
      case "assign": {
        const v = this.expr(s.value, frame);
        if (s.targets.length === 1) {
          frame.vars.set(s.targets[0].name, v);
          return;
        }
        if (v.kind !== "list" || v.items.length !== s.targets.length)
          throw new LowerError(
            `cannot unpack ${describe(v, this.graph)} into ${s.targets.length} names`,
            s.span,
          );
        s.targets.forEach((t, i) => frame.vars.set(t.name, v.items[i]));
        return;
      }
      case "weight":
        frame.vars.set(s.name, this.weight(s, frame));
        return;
      case "param":
        return; // resolved up front
      case "input": {
        const { dtype, shape } = this.inputType(s.type, frame);
        const id = this.graph.op("input", [], { name: s.name, dtype, shape }, s.nameSpan);
        frame.vars.set(s.name, { kind: "tensor", id });
        return;
      }
      case "output": {
        const v = this.tensor(this.expr(s.value, frame), s.value.span, "an output");
        if (s.type) this.matchType(s.type, this.graph.type(v), frame, s.value.span, true);
        this.graph.output(s.name, v);
        frame.vars.set(s.name, { kind: "tensor", id: v });
        return;
      }
      case "loss": {
        const v = this.tensor(this.expr(s.value, frame), s.value.span, "the loss");
        const t = this.graph.type(v);
        if (t.shape.length !== 0)
          throw new LowerError(
            `the loss must be a scalar, but it has shape ${shapeToString(t.shape)}`,
            s.value.span,
            "reduce it, e.g. with mean(...)",
          );
        if (this.loss !== undefined)
          throw new LowerError("the model declares a loss twice", s.span);
        this.loss = v;
        this.graph.output("loss", v);
        return;
      }
      case "repeat": {
        const count = this.expr(s.count, frame);
        if (count.kind !== "num" || !Number.isInteger(count.value) || count.value < 0)
          throw new LowerError(
            `repeat needs a whole number of times, got ${describe(count, this.graph)}`,
            s.count.span,
          );
        if (count.value > 10_000)
          throw new LowerError(
            `repeat ${count.value} times is more than gptc unrolls (10000)`,
            s.count.span,
          );
        const outer = frame.scope;
        for (let i = 0; i < count.value; i++) {
          frame.scope = [...outer, ...s.scope, String(i)];
          if (s.index) frame.vars.set(s.index, num(i));
          this.block(s.body, frame);
        }
        frame.scope = outer;
        return;
      }
      case "if": {
        const c = this.expr(s.cond, frame);
        if (c.kind !== "bool" && c.kind !== "num")
          throw new LowerError(
            `'if' needs a condition known at compile time, got ${describe(c, this.graph)}`,
            s.cond.span,
          );
        if (c.value) this.block(s.then, frame);
        else if (s.else) this.block(s.else, frame);
        return;
      }
      case "return":
        throw new ReturnSignal(this.expr(s.value, frame));
    }
  }

  private weight(s: A.WeightDecl, frame: Frame): Value {
    const key = [...frame.scope, s.name].join(".");
    const shape = s.type.dims.map((d) => {
      if (d.kind === "ellipsis")
        throw new LowerError("a weight's shape cannot contain '...'", d.span);
      const dim = this.dim(this.expr(d, frame), d.span);
      const v = dimValue(dim);
      if (v === undefined)
        throw new LowerError(
          `a weight's shape must be fixed, but this dimension is ${dimToString(dim)}`,
          d.span,
        );
      if (v <= 0) throw new LowerError(`a weight dimension must be positive, got ${v}`, d.span);
      return dim;
    });
    const prev = this.weightKeys.get(key);
    if (prev) {
      const err = new LowerError(
        `two weights are named '${key}'`,
        this.callSites[this.callSites.length - 1] ?? s.nameSpan,
        "call the function with a distinct scope: f(...) as name",
      );
      // Inside a function both declarations are the same line: the calls are what differ.
      if (prev.site) err.notes.push({ message: "the first comes from this call", span: prev.site });
      else err.notes.push({ message: "the first is declared here", span: prev.span });
      throw err;
    }
    let init = "normal";
    let std = 0.02;
    if (s.init) {
      if (s.init.kind === "name") init = s.init.name;
      else if (s.init.kind === "call" && s.init.callee === "normal") {
        const arg = s.init.args[0];
        const v = arg ? this.expr(arg.value, frame) : undefined;
        if (!v || v.kind !== "num" || !(v.value >= 0))
          throw new LowerError("normal(std) needs a non-negative number", s.init.span);
        std = v.value;
      }
    }
    const attrs: Record<string, AttrValue> = { name: key, shape, init };
    if (init === "normal") attrs.std = std;
    const id = this.graph.op("weight", [], attrs, s.nameSpan);
    this.weightKeys.set(key, {
      id,
      span: s.nameSpan,
      site: this.callSites[this.callSites.length - 1],
    });
    return { kind: "tensor", id };
  }

  private inputType(t: A.TypeExpr, frame: Frame): { dtype: DType; shape: Dim[] } {
    const shape = t.dims.map((d) => {
      if (d.kind === "ellipsis")
        throw new LowerError("an input's shape cannot contain '...'", d.span);
      if (d.kind === "name" && !frame.vars.has(d.name)) {
        const sym: Value = { kind: "dim", dim: dimSym(d.name) };
        frame.vars.set(d.name, sym);
        return dimSym(d.name);
      }
      return this.dim(this.expr(d, frame), d.span);
    });
    return { dtype: dtypeOf(t.dtype ?? "float"), shape };
  }

  /** Checks a tensor type against a pattern, binding pattern names not yet in `frame`. */
  private matchType(
    t: A.TypeExpr,
    actual: { dtype: DType; shape: readonly Dim[] },
    frame: Frame,
    span: Span,
    bindOnlyKnown = false,
  ): void {
    const want = `${t.dtype ?? ""}[${t.dims.map((d) => (d.kind === "ellipsis" ? "..." : exprText(d))).join(", ")}]`;
    const got = `${actual.dtype} tensor ${shapeToString(actual.shape)}`;
    if (t.dtype && dtypeOf(t.dtype) !== actual.dtype)
      throw new LowerError(`expected ${want}, got a ${got}`, span);
    const ell = t.dims.findIndex((d) => d.kind === "ellipsis");
    const fixed = t.dims.filter((d) => d.kind !== "ellipsis").length;
    if (ell < 0 ? actual.shape.length !== fixed : actual.shape.length < fixed)
      throw new LowerError(`expected ${want}, got a ${got}`, span, `the ranks differ`);
    const pairs: [A.Expr, Dim][] = [];
    t.dims.forEach((d, i) => {
      if (d.kind === "ellipsis") return;
      const j = ell >= 0 && i > ell ? actual.shape.length - (t.dims.length - i) : i;
      pairs.push([d, actual.shape[j]]);
    });
    for (const [d, dim] of pairs) {
      if (d.kind === "name" && !frame.vars.has(d.name) && !bindOnlyKnown) {
        frame.vars.set(
          d.name,
          dimValue(dim) !== undefined ? num(dimValue(dim)!) : { kind: "dim", dim },
        );
        continue;
      }
      if (d.kind === "name" && !frame.vars.has(d.name)) continue;
      const expected = this.dim(this.expr(d, frame), d.span);
      if (!dimEq(expected, dim))
        throw new LowerError(
          `expected ${want}, got a ${got}`,
          span,
          `${exprText(d)} is ${dimToString(expected)} here`,
        );
    }
  }

  // ---- expressions -----------------------------------------------------------------

  private expr(e: A.Expr, frame: Frame): Value {
    switch (e.kind) {
      case "number":
        return num(e.value);
      case "string":
        return { kind: "str", value: e.value };
      case "bool":
        return { kind: "bool", value: e.value };
      case "name": {
        const v = frame.vars.get(e.name);
        if (v) return v;
        if (e.name in constants) return num(constants[e.name]);
        throw new LowerError(
          `unknown name '${e.name}'`,
          e.span,
          didYouMean(e.name, frame.vars.keys()),
        );
      }
      case "list":
        return { kind: "list", items: e.items.map((i) => this.expr(i, frame)) };
      case "member":
        return this.member(e, frame);
      case "index": {
        const table = this.tensor(this.expr(e.object, frame), e.object.span, "indexing");
        const ids = this.tensor(this.expr(e.index, frame), e.index.span, "an index");
        return this.op("gather", [table, ids], {}, e.span);
      }
      case "unary": {
        const v = this.expr(e.operand, frame);
        if (v.kind === "num") return num(-v.value);
        if (v.kind === "dim") return { kind: "dim", dim: dimSub(dimConst(0), v.dim) };
        return this.op("neg", [this.tensor(v, e.operand.span, "'-'")], {}, e.span);
      }
      case "binary":
        return this.binary(e, frame);
      case "call":
        return this.call(e, frame);
    }
  }

  /** `x.T`, or `scope.weight`: a weight declared earlier under a scope. */
  private member(e: A.MemberExpr, frame: Frame): Value {
    const path: string[] = [];
    let root: A.Expr = e;
    while (root.kind === "member") {
      path.unshift(root.name);
      root = root.object;
    }
    if (root.kind === "name" && !frame.vars.has(root.name)) {
      path.unshift(root.name);
      // The longest prefix naming a weight; the rest must be `.T`.
      for (let n = path.length; n > 0; n--) {
        const rest = path.slice(n);
        if (rest.some((r) => r !== "T")) continue;
        const key = [...frame.scope, ...path.slice(0, n)].join(".");
        const w = this.weightKeys.get(key) ?? this.weightKeys.get(path.slice(0, n).join("."));
        if (!w) continue;
        let id = w.id;
        for (const _ of rest) id = this.withSpan(e.span, () => transposeLast(this.graph, id));
        return { kind: "tensor", id };
      }
      const wanted = [...frame.scope, ...path.filter((p) => p !== "T")].join(".");
      throw new LowerError(
        `no weight '${path.join(".")}' here (looked for '${wanted}')`,
        e.span,
        didYouMean(wanted, this.weightKeys.keys()) ??
          (root.name in constants
            ? undefined
            : `'${root.name}' is not a variable or a scope with weights declared before this line`),
      );
    }
    if (e.name !== "T")
      throw new LowerError(`a tensor has no member '${e.name}'; did you mean .T?`, e.span);
    const x = this.tensor(this.expr(e.object, frame), e.object.span, "'.T'");
    if (this.graph.type(x).shape.length < 2)
      throw new LowerError(
        `.T needs a tensor of rank 2 or more, got ${describe({ kind: "tensor", id: x }, this.graph)}`,
        e.span,
      );
    return { kind: "tensor", id: this.withSpan(e.span, () => transposeLast(this.graph, x)) };
  }

  private binary(e: A.BinaryExpr, frame: Frame): Value {
    const l = this.expr(e.left, frame);
    const r = this.expr(e.right, frame);
    if (e.op === "@") {
      const a = this.tensor(l, e.left.span, "'@'");
      const b = this.tensor(r, e.right.span, "'@'");
      return this.op("matmul", [a, b], {}, e.opSpan);
    }
    if (l.kind !== "tensor" && r.kind !== "tensor") return this.scalarBinary(e, l, r);
    // x ** n for a small whole n is n-1 products: exact, and cheap on every backend.
    if (
      e.op === "**" &&
      r.kind === "num" &&
      Number.isInteger(r.value) &&
      r.value >= 1 &&
      r.value <= 4
    ) {
      const x = this.tensor(l, e.left.span, "'**'");
      let acc = x;
      for (let i = 1; i < r.value; i++)
        acc = this.tensor(this.op("mul", [acc, x], {}, e.opSpan), e.opSpan, "'**'");
      return { kind: "tensor", id: acc };
    }
    const a = this.tensor(l, e.left.span, `'${e.op}'`);
    const b = this.tensor(r, e.right.span, `'${e.op}'`);
    return this.op(binaryOps[e.op], [a, b], {}, e.opSpan);
  }

  private scalarBinary(e: A.BinaryExpr, l: Value, r: Value): Value {
    const scalar = (v: Value, span: Span): number | Dim => {
      if (v.kind === "num") return v.value;
      if (v.kind === "dim") return v.dim;
      if (v.kind === "bool") return v.value ? 1 : 0;
      throw new LowerError(`'${e.op}' cannot take ${describe(v, this.graph)}`, span);
    };
    const a = scalar(l, e.left.span);
    const b = scalar(r, e.right.span);
    if (typeof a === "number" && typeof b === "number") {
      const v = numericBinary(e.op, a, b);
      return typeof v === "boolean" ? { kind: "bool", value: v } : num(v);
    }
    // Symbolic sizes: integer polynomial arithmetic only.
    const da = typeof a === "number" ? this.dim(num(a), e.left.span) : a;
    const db = typeof b === "number" ? this.dim(num(b), e.right.span) : b;
    let out: Dim | undefined;
    switch (e.op) {
      case "+":
        out = dimAdd(da, db);
        break;
      case "-":
        out = dimSub(da, db);
        break;
      case "*":
        out = dimMul(da, db);
        break;
      case "/":
        out = dimDiv(da, db);
        if (!out)
          throw new LowerError(
            `${dimToString(da)} / ${dimToString(db)} is not a whole size`,
            e.opSpan,
          );
        break;
      case "==":
        return { kind: "bool", value: dimEq(da, db) };
      case "!=":
        return { kind: "bool", value: !dimEq(da, db) };
      default:
        throw new LowerError(
          `'${e.op}' is not defined on symbolic sizes (${dimToString(da)}, ${dimToString(db)})`,
          e.opSpan,
        );
    }
    const v = dimValue(out);
    return v !== undefined ? num(v) : { kind: "dim", dim: out };
  }

  // ---- calls -------------------------------------------------------------------------

  private call(e: A.CallExpr, frame: Frame): Value {
    const fn = this.program.functions.get(e.callee);
    if (fn) return this.callUser(fn, e, frame);
    return this.callBuiltin(e, frame);
  }

  private callUser(fn: A.FnDef, e: A.CallExpr, frame: Frame): Value {
    if (this.callStack.includes(fn.name))
      throw new LowerError(
        `function '${fn.name}' calls itself (${[...this.callStack.slice(this.callStack.indexOf(fn.name)), fn.name].join(" -> ")}); recursion is not supported`,
        e.calleeSpan,
        "use `repeat n as name { ... }` to stack layers",
      );
    if (this.callStack.length >= this.maxDepth)
      throw new LowerError(`calls nest deeper than ${this.maxDepth} levels`, e.calleeSpan);
    const callee: Frame = {
      vars: new Map(),
      scope: e.scope ? [...frame.scope, ...e.scope] : frame.scope,
      fn: fn.name,
    };
    const byName = new Map<string, A.Arg>();
    const positional: A.Arg[] = [];
    for (const a of e.args) a.name === undefined ? positional.push(a) : byName.set(a.name, a);
    if (positional.length > fn.params.length)
      throw new LowerError(
        `${fn.name} takes at most ${fn.params.length} arguments, got ${positional.length}`,
        e.span,
      );
    fn.params.forEach((p, i) => {
      const arg = positional[i] ?? byName.get(p.name);
      let v: Value;
      if (arg) v = this.expr(arg.value, frame);
      else if (p.default) v = this.expr(p.default, callee);
      else throw new LowerError(`missing argument '${p.name}' to ${fn.name}`, e.span);
      if (p.type) {
        if (v.kind !== "tensor")
          throw new LowerError(
            `argument '${p.name}' of ${fn.name} must be a tensor, got ${describe(v, this.graph)}`,
            arg?.span ?? e.span,
          );
        this.matchType(p.type, this.graph.type(v.id), callee, arg?.span ?? e.span);
      }
      callee.vars.set(p.name, v);
    });
    for (const name of byName.keys())
      if (!fn.params.some((p) => p.name === name))
        throw new LowerError(`${fn.name} has no parameter '${name}'`, byName.get(name)!.span);
    this.callStack.push(fn.name);
    this.callSites.push(e.span);
    try {
      this.block(fn.body, callee);
    } catch (s) {
      if (s instanceof ReturnSignal) return s.value;
      if (s instanceof LowerError && s.notes.length < 6)
        s.notes.push({ message: `in '${fn.name}', called here`, span: e.calleeSpan });
      throw s;
    } finally {
      this.callStack.pop();
      this.callSites.pop();
    }
    throw new LowerError(`function '${fn.name}' ended without returning a value`, fn.nameSpan);
  }

  private callBuiltin(e: A.CallExpr, frame: Frame): Value {
    const args = new Map<string, { v: Value; span: Span }>();
    const b = builtinByName.get(e.callee);
    if (!b) throw new LowerError(`unknown function '${e.callee}'`, e.calleeSpan);
    e.args.forEach((a, i) => {
      const name = a.name ?? b.params[i]?.name;
      if (name === undefined) throw new LowerError(`too many arguments to ${e.callee}`, a.span);
      args.set(name, { v: this.expr(a.value, frame), span: a.span });
    });
    const get = (name: string) => {
      const a = args.get(name);
      if (!a) throw new LowerError(`missing argument '${name}' to ${e.callee}`, e.span);
      return a;
    };
    const tensorArg = (name: string) => {
      const a = get(name);
      return this.tensor(a.v, a.span, `${e.callee}`);
    };
    const intArg = (name: string, fallback?: number): number => {
      const a = args.get(name);
      if (!a) {
        if (fallback === undefined)
          throw new LowerError(`missing argument '${name}' to ${e.callee}`, e.span);
        return fallback;
      }
      if (a.v.kind !== "num" || !Number.isInteger(a.v.value))
        throw new LowerError(
          `'${name}' of ${e.callee} must be a whole number, got ${describe(a.v, this.graph)}`,
          a.span,
        );
      return a.v.value;
    };
    const axisArg = (name: string, rank: number, fallback?: number): number => {
      const axis = intArg(name, fallback);
      if (axis < -rank || axis >= rank)
        throw new LowerError(
          `axis ${axis} is out of range for a tensor of rank ${rank}`,
          args.get(name)?.span ?? e.span,
        );
      return axis < 0 ? axis + rank : axis;
    };
    const rank = (id: number) => this.graph.type(id).shape.length;
    const span = e.span;

    if (e.callee in unaryMath) {
      const a = get("x");
      if (a.v.kind === "num") return num(unaryMath[e.callee](a.v.value));
      return this.op(e.callee, [this.tensor(a.v, a.span, e.callee)], {}, span);
    }
    switch (e.callee) {
      case "float":
        return this.op("cast", [tensorArg("x")], {}, span);
      case "detach":
        return this.op("detach", [tensorArg("x")], {}, span);
      case "maximum":
      case "minimum":
        return this.op(e.callee, [tensorArg("a"), tensorArg("b")], {}, span);
      case "sum":
      case "mean":
      case "max": {
        const x = tensorArg("x");
        const r = rank(x);
        const axisV = args.get("axis");
        let axes: number[];
        if (!axisV) axes = [...Array(r).keys()];
        else if (axisV.v.kind === "list")
          axes = axisV.v.items.map((it) => {
            if (it.kind !== "num" || !Number.isInteger(it.value) || it.value < -r || it.value >= r)
              throw new LowerError(`bad axis in ${e.callee}`, axisV.span);
            return it.value < 0 ? it.value + r : it.value;
          });
        else axes = [axisArg("axis", r)];
        const kd = args.get("keepdim");
        if (kd && kd.v.kind !== "bool")
          throw new LowerError("keepdim must be true or false", kd.span);
        return this.op(
          e.callee,
          [x],
          { axes, keepdim: kd?.v.kind === "bool" ? kd.v.value : false },
          span,
        );
      }
      case "reshape": {
        const x = tensorArg("x");
        const s = get("shape");
        if (s.v.kind !== "list")
          throw new LowerError("reshape needs a list of sizes, e.g. [B, T, heads, hd]", s.span);
        const dims: (Dim | undefined)[] = s.v.items.map((it) =>
          it.kind === "num" && it.value === -1 ? undefined : this.dim(it, s.span),
        );
        const unknown = dims.filter((d) => d === undefined).length;
        if (unknown > 1) throw new LowerError("reshape: at most one size can be -1", s.span);
        if (unknown === 1) {
          const known = shapeSize(dims.filter((d): d is Dim => d !== undefined));
          const rest = dimDiv(shapeSize(this.graph.type(x).shape), known);
          if (!rest)
            throw new LowerError(
              `reshape: cannot infer the -1 size of ${shapeToString(this.graph.type(x).shape)}`,
              s.span,
            );
          dims[dims.indexOf(undefined)] = rest;
        }
        return this.op("reshape", [x], { shape: dims as Dim[] }, span);
      }
      case "permute": {
        const x = tensorArg("x");
        const a = get("axes");
        if (a.v.kind !== "list" || a.v.items.some((i) => i.kind !== "num"))
          throw new LowerError("permute needs a list of axes, e.g. [0, 2, 1, 3]", a.span);
        const r = rank(x);
        const perm = a.v.items.map((i) => ((i as { value: number }).value + r) % r);
        return this.op("permute", [x], { perm }, span);
      }
      case "transpose": {
        const x = tensorArg("x");
        const r = rank(x);
        if (r < 2) throw new LowerError("transpose needs a tensor of rank 2 or more", span);
        const a = axisArg("a", r, -2);
        const b2 = axisArg("b", r, -1);
        const perm = [...Array(r).keys()];
        [perm[a], perm[b2]] = [perm[b2], perm[a]];
        return this.op("permute", [x], { perm }, span);
      }
      case "split": {
        const x = tensorArg("x");
        const parts = intArg("parts");
        const axis = axisArg("axis", rank(x), -1);
        const len = dimValue(this.graph.type(x).shape[axis]);
        if (len === undefined || parts <= 0 || len % parts !== 0)
          throw new LowerError(
            `split: cannot cut axis ${axis} of ${shapeToString(this.graph.type(x).shape)} into ${parts} equal parts`,
            span,
          );
        const step = len / parts;
        return {
          kind: "list",
          items: Array.from({ length: parts }, (_, i) =>
            this.op("slice", [x], { axis, start: i * step, end: (i + 1) * step }, span),
          ),
        };
      }
      case "concat": {
        const xs = get("xs");
        if (xs.v.kind !== "list" || xs.v.items.length === 0)
          throw new LowerError("concat needs a list of tensors", xs.span);
        const ids = xs.v.items.map((it) => this.tensor(it, xs.span, "concat"));
        return this.op("concat", ids, { axis: axisArg("axis", rank(ids[0]), -1) }, span);
      }
      case "arange":
        return this.op("arange", [], { n: this.dim(get("n").v, get("n").span) }, span);
      case "positions": {
        const ids = this.op("arange", [], { n: this.dim(get("n").v, get("n").span) }, span);
        if (!this.opts.decode) return ids;
        return this.op("add", [this.tensor(ids, span, "positions"), this.cacheLen(span)], {}, span);
      }
      case "cache": {
        const x = tensorArg("x");
        if (!this.opts.decode) return { kind: "tensor", id: x };
        const axis = axisArg("axis", rank(x), -2);
        const scope = frame.scope.join(".");
        const n = this.cacheCount.get(scope) ?? 0;
        this.cacheCount.set(scope, n + 1);
        const name = ["cache", ...frame.scope, `cache${n}`].join(".");
        const shape = [...this.graph.type(x).shape];
        shape[axis] = dimSym("C");
        const past = this.graph.op("input", [], { name, dtype: "f32", shape }, span);
        const out = this.op("cache_write", [past, x, this.cacheLen(span)], { axis }, span);
        this.graph.output(name, this.tensor(out, span, "cache"));
        return out;
      }
      case "causal_mask": {
        const attrs = {
          q: this.dim(get("q").v, get("q").span),
          k: this.dim(get("k").v, get("k").span),
        };
        if (this.opts.decode) {
          // A decode step's queries are the new tokens (T of them); keys that
          // went through cache() span the cache (C). Keys as many as the
          // queries were not cached: this attention would see only the new
          // tokens, so the graph cannot decode incrementally.
          if (dimEq(attrs.q, attrs.k))
            this.noDecode ??= {
              message: "an attention's keys and values are not cached (wrap them in cache())",
              span,
            };
          return this.op("causal_mask_at", [this.cacheLen(span)], attrs, span);
        }
        return this.op("causal_mask", [], attrs, span);
      }
      case "where": {
        const c = get("cond");
        if (c.v.kind === "bool") return c.v.value ? get("a").v : get("b").v;
        return this.op("where", [tensorArg("cond"), tensorArg("a"), tensorArg("b")], {}, span);
      }
      case "take":
        return this.op("take", [tensorArg("x"), tensorArg("ids")], {}, span);
      case "dim": {
        const x = tensorArg("x");
        const d = this.graph.type(x).shape[axisArg("axis", rank(x))];
        const v = dimValue(d);
        return v !== undefined ? num(v) : { kind: "dim", dim: d };
      }
      case "dropout_mask": {
        const x = tensorArg("x");
        const pa = get("p");
        if (pa.v.kind !== "num" || !(pa.v.value >= 0 && pa.v.value < 1))
          throw new LowerError(
            `p of dropout_mask must be a number in [0, 1), got ${describe(pa.v, this.graph)}`,
            pa.span,
          );
        // p = 0 drops nothing: no op, no key, the graph of a model without dropout.
        if (pa.v.value === 0) return num(1);
        const attrs = { shape: this.graph.type(x).shape, p: pa.v.value, stream: this.streams++ };
        return this.op("dropout_mask", [this.rngKey(span)], attrs, span);
      }
      case "normal":
        throw new LowerError(
          "normal(std) is an initializer: use it as `weight w: [...] = normal(0.02)`",
          span,
        );
    }
    throw new LowerError(`builtin '${e.callee}' is not implemented by the IR`, e.calleeSpan);
  }

  // ---- helpers ---------------------------------------------------------------------

  /** The training step's random key (ops/random.ts), an input made on first use. */
  private rngKey(span: Span): number {
    this.rngKeyNode ??= this.graph.op(
      "input",
      [],
      { name: rngKeyInput, dtype: "i32", shape: [dimConst(rngKeyLength)] },
      span,
    );
    return this.rngKeyNode;
  }

  /** The decode graph's input holding how many cache slots are filled. */
  private cacheLen(span: Span): number {
    this.cacheLenNode ??= this.graph.op(
      "input",
      [],
      { name: "cache_len", dtype: "i32", shape: [] },
      span,
    );
    return this.cacheLenNode;
  }

  private withSpan<T>(span: Span, f: () => T): T {
    const prev = this.graph.defaultSpan;
    this.graph.defaultSpan = span;
    try {
      return f();
    } catch (err) {
      if (err instanceof ShapeError) throw new LowerError(err.message, span);
      throw err;
    } finally {
      this.graph.defaultSpan = prev;
    }
  }

  private op(name: string, inputs: number[], attrs: Record<string, unknown>, span: Span): Value {
    return this.withSpan(span, () => ({
      kind: "tensor" as const,
      id: this.graph.op(name, inputs, attrs as never, span),
    }));
  }

  /** A value as a tensor node: numbers and sizes become scalar constants. */
  private tensor(v: Value, span: Span, what: string): number {
    switch (v.kind) {
      case "tensor":
        return v.id;
      case "num":
        return this.graph.op("const", [], { value: v.value }, span);
      case "bool":
        return this.graph.op("const", [], { value: v.value ? 1 : 0 }, span);
      case "dim":
        return this.graph.op("dim", [], { dim: v.dim }, span);
      default:
        throw new LowerError(`${what} needs a tensor, got ${describe(v, this.graph)}`, span);
    }
  }

  /** A value as a size: a whole number or a symbolic size. */
  private dim(v: Value, span: Span): Dim {
    if (v.kind === "dim") return v.dim;
    if (v.kind === "num") {
      if (!Number.isInteger(v.value))
        throw new LowerError(`a size must be a whole number, got ${v.value}`, span);
      if (v.value > 2 ** 31)
        throw new LowerError(`size ${v.value} is too large (more than 2^31)`, span);
      return dimConst(v.value);
    }
    throw new LowerError(`expected a size, got ${describe(v, this.graph)}`, span);
  }
}

function numericBinary(op: A.BinaryOp, a: number, b: number): number | boolean {
  switch (op) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
    case "/":
      return a / b;
    case "**":
      return a ** b;
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    case "==":
      return a === b;
    case "!=":
      return a !== b;
    case "@":
      throw new Error("unreachable");
  }
}

function dtypeOf(t: A.DType): DType {
  return t === "float" ? "f32" : t === "int" ? "i32" : "bool";
}

function parseSetValue(name: string, text: string): Value {
  if (text === "true" || text === "false") return { kind: "bool", value: text === "true" };
  const v = Number(text);
  if (text.trim() === "" || !Number.isFinite(v))
    throw new DiagnosticError([
      {
        severity: "error",
        message: `--set ${name}=${text}: '${text}' is not a number`,
        hint: `write e.g. --set ${name}=2`,
      },
    ]);
  return num(v);
}

function exprText(e: A.Expr): string {
  switch (e.kind) {
    case "number":
      return e.text;
    case "name":
      return e.name;
    case "binary":
      return `${exprText(e.left)} ${e.op} ${exprText(e.right)}`;
    default:
      return "…";
  }
}

/** Lowers the program's model. Throws DiagnosticError on any problem. */
export function lowerProgram(program: Program, opts: LowerOptions = {}): Lowered {
  if (!program.model)
    throw new DiagnosticError([
      { severity: "error", message: `${program.root.file} defines no model` },
    ]);
  try {
    return new Lowerer(program, program.model, opts).lower();
  } catch (err) {
    if (err instanceof LowerError)
      throw new DiagnosticError([
        {
          severity: "error",
          message: err.message,
          span: err.span,
          hint: err.hint,
          notes: err.notes,
        },
      ]);
    if (err instanceof ShapeError)
      throw new DiagnosticError([{ severity: "error", message: err.message }]);
    if (err instanceof RangeError && /call stack/i.test(err.message))
      throw new DiagnosticError([
        {
          severity: "error",
          message: "the model nests too deeply to compile (expression or calls too deep)",
        },
      ]);
    throw err;
  }
}
