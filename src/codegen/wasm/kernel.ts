// A fused kernel as a WebAssembly function, for the webasm backend. The kernel
// is the one kernel-source.ts generates for gpu.js (one place says what a
// kernel computes); this compiles that small JavaScript subset (const/let,
// for loops with constant bounds, `if (..) { break; }`, arithmetic,
// comparisons, ?:, Math.*, buffer reads, one `return`) to wasm instead of
// handing it to gpu.js, whose webasm backend spends 10-20 ns per element (each
// lane-varying load a four-lane gather, Math.exp/tanh calls into JavaScript).
//
// The output's last axis (thread.x) runs four elements at a time in SIMD
// (f32x4, as gpu.js's float32), with a scalar loop for the rest of the row;
// statements that do not depend on the column run once per row. Values that
// vary along x are float32 lanes; reads whose index steps by one along x are
// one vector load, other varying reads four scalar loads. Scalar values are
// float64 (buffers hold float32: loads widen, stores narrow), index arithmetic
// i32 where both operands are integers. Every read is clamped into its buffer,
// so a bad id cannot read outside it. The export is `run(out, from, to, arg0,
// arg1, ...)`: byte addresses, and the range of output rows (2-D) or elements
// (1-D) to compute, so two threads can split it. A kernel the vector loop
// cannot take (a break that differs per lane) runs scalar; anything outside the
// subset throws Unsupported and the kernel stays on gpu.js. Integer arithmetic
// is i32, as index arithmetic over buffers of at most 2^30 floats needs;
// integer division and remainder only by positive literals (the strides the
// generator writes), others in float64.
import { parse } from "acorn";
import type {
  CallExpression,
  Expression,
  FunctionExpression,
  MemberExpression,
  Node as JsNode,
  Statement,
} from "acorn";
import type { KernelSource } from "../kernel-source.js";
import {
  contiguousLoop,
  dependents,
  isMath,
  isThreadX,
  mathCalls,
  mentionsThreadX,
  names,
  integerLiteral,
  nonzeroLiteral,
} from "./kernel-analysis.js";
import {
  ConstantPool,
  Fn,
  moduleBytes,
  type FnImport,
  type I32,
  type Local,
  type OpName,
  type SimdName,
} from "./bytes.js";
import { mathHelpers, vexpInline, vtanhInline, type HelperName } from "./math.js";

export class Unsupported extends Error {}

type Ty = "i32" | "f64" | "bool" | "vi32" | "vf32" | "vbool";
const isVec = (t: Ty) => t[0] === "v";
const intish = (t: Ty) => t !== "f64" && t !== "vf32";
const splatF = (v: number) => Float32Array.of(v, v, v, v);

interface Arg {
  addr: Local;
  size: number;
  /** Row length of a buffer read as `inK[row][col]`. */
  cols?: number;
}

/** Math functions computed in the module (math.ts); any other Math.f is imported from JavaScript. */
const native: Partial<Record<string, OpName>> = {
  floor: "f64.floor",
  ceil: "f64.ceil",
  trunc: "f64.trunc",
  sqrt: "f64.sqrt",
  abs: "f64.abs",
};
const helperNames = new Set<string>(["exp", "log", "tanh"]);

export interface WasmKernelModule {
  bytes: Uint8Array<ArrayBuffer>;
  /** Math functions the module imports from `env` (call them `Math_<name>`). */
  imports: string[];
}

/**
 * The module for one kernel. `argSizes`: element counts of the kernel's
 * arguments in source order (inputs, then extras), then one per constant
 * (`this.constants.name`, in `Object.keys` order), passed after them.
 */
export function wasmKernel(
  source: KernelSource,
  argSizes: number[],
  memory: { initial: number; maximum: number; shared: boolean },
): WasmKernelModule {
  const fnNode = (
    parse(`(${source.source})`, { ecmaVersion: 2020 }) as unknown as {
      body: { expression: FunctionExpression }[];
    }
  ).body[0].expression;
  const imports = [...new Set(mathCalls(fnNode).filter((m) => !native[m] && !helperNames.has(m)))]
    .filter((m) => !["min", "max"].includes(m))
    .sort();
  const imported: FnImport[] = imports.map((m) => ({
    name: `Math_${m}`,
    params: m === "pow" || m === "atan2" ? ["f64", "f64"] : ["f64"],
    results: ["f64"],
  }));
  const helpers = mathHelpers(imported.length + 1);
  let c: Compiler;
  try {
    c = new Compiler(source, fnNode, argSizes, imports, helpers.index, true);
  } catch (e) {
    if (!(e instanceof Unsupported)) throw e;
    c = new Compiler(source, fnNode, argSizes, imports, helpers.index, false);
  }
  return { bytes: moduleBytes([c.fn, ...helpers.fns], memory, imported, c.pool), imports };
}

interface Var {
  local: Local;
  ty: Ty;
  /** A const's initializer (vector mode), for recognizing reads that step by one along x. */
  init?: Expression;
}

/** A loop folding one term per iteration into an accumulator (see Compiler.reduction). */
interface Reduction {
  acc: string;
  op: "sum" | "max";
  term: Expression;
  /** The loop body's consts, computed per iteration. */
  decls: Statement[];
  /** Iterations: r runs 0 .. n - 1. */
  n: number;
  r: string;
}

/** idx = k x + sum of scale * term, every term a scalar (row-invariant) integer. */
interface Affine {
  k: number;
  terms: { e: Expression; scale: number }[];
}

/**
 * What four SIMD lanes run along: the output's column (this.thread.x), or the
 * variable of a reduction loop (`name`), whose scalar value is the first lane's.
 */
interface Lane {
  name?: string;
  local: Local;
  /** Names declared in this vector loop with a vector type. */
  vvars: Map<string, Var>;
  types: WeakMap<object, Ty>;
  /** Names whose value depends on the lane variable. */
  varying: Set<string>;
}

class Compiler {
  readonly fn: Fn;
  /** The vector constants (exp's polynomial, ...), as the module's globals. */
  readonly pool = new ConstantPool();
  /** The vector loop being emitted (none: scalar code). */
  private lane?: Lane;
  private readonly vars = new Map<string, Var>();
  private readonly args = new Map<string, Arg>();
  private readonly consts = new Map<string, Arg>();
  /** Open control constructs, innermost last; "for" marks a loop's outer block (break target). */
  private readonly ctl: ("for" | "loop" | "if" | "block")[] = [];
  private readonly scalarTypes = new WeakMap<object, Ty>();
  /** Lanes along the output's column. */
  private readonly columns: Lane;
  private readonly out: Local;
  private readonly x: Local;
  private readonly y: Local;
  private readonly idx: Local;
  private readonly scratch: Local[] = [];
  private readonly vscratch: Local[] = [];

  constructor(
    source: KernelSource,
    fnNode: FunctionExpression,
    argSizes: number[],
    private readonly imports: string[],
    private readonly helper: (name: HelperName) => number,
    vector: boolean,
  ) {
    const params = fnNode.params.map((p) => {
      if (p.type !== "Identifier") throw new Unsupported("kernel parameter pattern");
      return p.name;
    });
    const constNames = Object.keys(source.constants);
    if (argSizes.length !== params.length + constNames.length)
      throw new Error(
        `internal: ${argSizes.length} argument sizes for ${params.length + constNames.length} arguments`,
      );
    const f = (this.fn = new Fn("run", [
      "i32",
      "i32",
      "i32",
      ...argSizes.map(() => "i32" as const),
    ]));
    f.pool = this.pool;
    const [outBase, from, to, ...addrs] = f.params;
    params.forEach((p, k) =>
      this.args.set(p, { addr: addrs[k], size: argSizes[k], cols: source.inputDims[k]?.[0] }),
    );
    constNames.forEach((name, k) =>
      this.consts.set(name, {
        addr: addrs[params.length + k],
        size: argSizes[params.length + k],
      }),
    );
    this.out = f.local("i32");
    this.x = f.local("i32");
    this.columns = {
      local: this.x,
      vvars: new Map(),
      types: new WeakMap(),
      varying: new Set(),
    };
    this.y = f.local("i32");
    this.idx = f.local("i32");

    const body = fnNode.body.body as Statement[];
    const last = body[body.length - 1];
    if (last?.type !== "ReturnStatement" || !last.argument)
      throw new Unsupported("kernel must end in return");
    const result = last.argument;
    const stmts = body.slice(0, -1);
    for (const s of stmts) this.checkNoReturn(s);
    const hoisted = this.rowInvariant(stmts);
    // A 1-D kernel of row reductions (a softmax's max and sum over the
    // vocabulary) reads each row contiguously along its loop: the lanes run
    // along the loop (see vectorReduction), not along the output.
    if (source.dims.length === 1 && stmts.some((s) => contiguousLoop(s, stmts))) vector = false;
    const inner = stmts.filter((_, k) => !hoisted[k] || source.dims.length !== 2);

    // The element loops from the current x: four lanes while a whole vector
    // fits below `end`, then one at a time.
    const elements = (end: I32) => {
      if (vector)
        f.while(
          (f) => f.get(this.x).i32(4).ins("i32.add").val(end).ins("i32.le_s"),
          (f) => {
            this.lane = this.columns;
            inner.forEach((s) => this.statement(s));
            f.get(this.out);
            this.expr(result, "vf32");
            f.v128Store(0);
            this.lane = undefined;
            f.inc(this.out, 16).inc(this.x, 4);
          },
        );
      f.while(
        (f) => f.get(this.x).val(end).ins("i32.lt_s"),
        (f) => {
          inner.forEach((s) => this.statement(s));
          f.get(this.out);
          this.expr(result, "f64");
          f.ins("f32.demote_f64").f32Store();
          f.inc(this.out, 4).inc(this.x, 1);
        },
      );
    };
    if (source.dims.length === 2) {
      // Rows [from, to), each the full last axis: statements that do not depend
      // on the column (row coordinates, a row's reduction) run once per row.
      const cols = source.dims[0];
      f.for(this.y, from, to, 1, (f) => {
        f.get(outBase)
          .get(this.y)
          .i32(cols * 4)
          .ins("i32.mul")
          .ins("i32.add")
          .set(this.out);
        stmts.forEach((s, k) => hoisted[k] && this.statement(s));
        f.i32(0).set(this.x);
        elements(cols);
      });
    } else {
      f.get(outBase).get(from).i32(2).i32Shl().ins("i32.add").set(this.out);
      f.get(from).set(this.x);
      elements(to);
    }
  }

  private checkNoReturn(s: unknown): void {
    let found = false;
    (function walk(n: unknown) {
      if (!n || typeof n !== "object") return;
      const node = n as Record<string, unknown>;
      if (node.type === "ReturnStatement") found = true;
      for (const v of Object.values(node))
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === "object") walk(v);
    })(s);
    if (found) throw new Unsupported("return inside the kernel body");
  }

  /**
   * Which top-level statements do not depend on the column (this.thread.x);
   * the names that do become the column lanes' varying set.
   */
  private rowInvariant(stmts: Statement[]): boolean[] {
    const dep = dependents(stmts, new Set(), mentionsThreadX);
    dep.forEach((n) => this.columns.varying.add(n));
    return stmts.map((s) => {
      const used = new Set<string>();
      const set = new Set<string>();
      names(s, used, set);
      return !mentionsThreadX(s) && ![...used, ...set].some((n) => dep.has(n));
    });
  }

  private tmp(): Local {
    return this.scratch.pop() ?? this.fn.local("i32");
  }
  private readonly dscratch: Local[] = [];
  private dtmp(): Local {
    return this.dscratch.pop() ?? this.fn.local("f64");
  }
  private vtmp(): Local {
    return this.vscratch.pop() ?? this.fn.local("v128");
  }

  private lookup(name: string): Var | undefined {
    return this.lane?.vvars.get(name) ?? this.vars.get(name);
  }

  private declare(name: string, ty: Ty, init?: Expression): Var {
    const map = isVec(ty) ? this.lane!.vvars : this.vars;
    let v = map.get(name);
    if (!v) {
      const type = isVec(ty) ? "v128" : ty === "f64" ? "f64" : "i32";
      v = { local: this.fn.local(type), ty };
      map.set(name, v);
    } else if (v.ty !== ty) throw new Unsupported(`'${name}' declared twice with two types`);
    v.init = init;
    return v;
  }

  private statement(s: Statement): void {
    const f = this.fn;
    switch (s.type) {
      case "VariableDeclaration":
        for (const d of s.declarations) {
          if (d.id.type !== "Identifier" || !d.init) throw new Unsupported("declaration form");
          // An accumulator (let) takes float assignments later.
          const ty =
            s.kind === "let"
              ? this.lane?.varying.has(d.id.name)
                ? "vf32"
                : "f64"
              : this.typeOf(d.init);
          const v = this.declare(d.id.name, ty, d.init);
          this.expr(d.init, v.ty);
          f.set(v.local);
        }
        return;
      case "ExpressionStatement": {
        const e = s.expression;
        if (e.type !== "AssignmentExpression" || e.operator !== "=" || e.left.type !== "Identifier")
          throw new Unsupported(`statement ${e.type}`);
        const v = this.lookup(e.left.name);
        if (!v) throw new Unsupported(`assignment to undeclared '${e.left.name}'`);
        this.expr(e.right, v.ty);
        f.set(v.local);
        return;
      }
      case "BlockStatement":
        s.body.forEach((t) => this.statement(t));
        return;
      case "ForStatement":
        return this.forLoop(s);
      case "IfStatement":
        this.condition(s.test);
        this.ctl.push("if");
        f.ifElse(
          () => this.statement(s.consequent),
          s.alternate ? () => this.statement(s.alternate!) : undefined,
        );
        this.ctl.pop();
        return;
      case "BreakStatement": {
        if (s.label) throw new Unsupported("labelled break");
        const k = this.ctl.lastIndexOf("for");
        if (k < 0) throw new Unsupported("break outside a loop");
        f.br(this.ctl.length - 1 - k);
        return;
      }
    }
    throw new Unsupported(`statement ${s.type}`);
  }

  /** A branch condition: one value for all lanes. */
  private condition(e: Expression): void {
    if (isVec(this.typeOf(e))) throw new Unsupported("a branch that differs per lane");
    this.expr(e, "bool");
  }

  /** `for (let r = a; r < b; r++)` with integer bounds. */
  private forLoop(s: Statement & { type: "ForStatement" }): void {
    const f = this.fn;
    const init = s.init;
    if (
      init?.type !== "VariableDeclaration" ||
      init.declarations.length !== 1 ||
      init.declarations[0].id.type !== "Identifier" ||
      !init.declarations[0].init ||
      !s.test ||
      !s.update
    )
      throw new Unsupported("for loop form");
    const name = init.declarations[0].id.name;
    if (this.typeOf(init.declarations[0].init) !== "i32") throw new Unsupported("loop bound type");
    const v = this.declare(name, "i32");
    const up = s.update;
    const step =
      up.type === "UpdateExpression" && up.operator === "++"
        ? 1
        : up.type === "AssignmentExpression" &&
            up.operator === "+=" &&
            up.right.type === "Literal" &&
            Number.isInteger(up.right.value)
          ? (up.right.value as number)
          : undefined;
    if (step === undefined) throw new Unsupported("for loop update");
    this.expr(init.declarations[0].init, "i32");
    f.set(v.local);
    const red = this.lane ? undefined : this.reduction(s, name);
    if (red) this.vectorReduction(red, v.local);
    // block { loop { if !(test) break; body; r += step; continue } }
    // (after a vector reduction: its last N mod 4 iterations)
    f.block(() => {
      this.ctl.push("for");
      f.op(0x03, 0x40);
      this.ctl.push("loop");
      this.condition(s.test!);
      f.ins("i32.eqz").brIf(1);
      this.statement(s.body);
      f.inc(v.local, step).br(0);
      f.op(0x0b);
      this.ctl.pop();
      this.ctl.pop();
    });
  }

  /**
   * A loop `for (let r = 0; r < N; r++) { const ...; acc = acc + v }` (or
   * `acc = Math.max(acc, v)`): a reduction whose iterations can run four
   * lanes at a time. Undefined for any other loop.
   */
  private reduction(s: Statement & { type: "ForStatement" }, r: string): Reduction | undefined {
    const d = (s.init as { declarations: { init: Expression }[] }).declarations[0].init;
    const test = s.test as Expression;
    if (d.type !== "Literal" || d.value !== 0) return undefined;
    if (
      test.type !== "BinaryExpression" ||
      test.operator !== "<" ||
      test.left.type !== "Identifier" ||
      test.left.name !== r ||
      test.right.type !== "Literal" ||
      typeof test.right.value !== "number" ||
      test.right.value < 8
    )
      return undefined;
    if (s.update?.type !== "UpdateExpression") return undefined;
    const body = s.body.type === "BlockStatement" ? s.body.body : [s.body];
    const last = body[body.length - 1];
    const decls = body.slice(0, -1);
    if (!decls.every((t) => t.type === "VariableDeclaration" && t.kind === "const"))
      return undefined;
    if (last?.type !== "ExpressionStatement") return undefined;
    const e = last.expression;
    if (e.type !== "AssignmentExpression" || e.operator !== "=" || e.left.type !== "Identifier")
      return undefined;
    const acc = e.left.name;
    if (this.vars.get(acc)?.ty !== "f64") return undefined;
    const rhs = e.right;
    const isAcc = (n: JsNode) =>
      n.type === "Identifier" && (n as unknown as { name: string }).name === acc;
    let op: "sum" | "max";
    let term: Expression;
    if (rhs.type === "BinaryExpression" && rhs.operator === "+" && isAcc(rhs.left)) {
      op = "sum";
      term = rhs.right;
    } else if (
      rhs.type === "CallExpression" &&
      isMath(rhs.callee) &&
      ((rhs.callee as MemberExpression).property as { name: string }).name === "max" &&
      rhs.arguments.length === 2 &&
      isAcc(rhs.arguments[0])
    ) {
      op = "max";
      term = rhs.arguments[1] as Expression;
    } else return undefined;
    // The term and the consts must not read the accumulator.
    const used = new Set<string>();
    names([...decls, term], used, new Set());
    if (used.has(acc)) return undefined;
    return { acc, op, term, decls, n: test.right.value, r };
  }

  /**
   * The first N - N mod 4 iterations of a reduction, four at a time: a sum in
   * two float64x2 accumulators (float32 lanes widened: 50257 terms keep
   * float64 accuracy), a max in one float32x4; lanes folded into the
   * accumulator at the end. Leaves `r` at the first iteration still to run.
   */
  private vectorReduction(red: Reduction, r: Local): void {
    const f = this.fn;
    const varying = dependents(red.decls, new Set([red.r]));
    const lane: Lane = { name: red.r, local: r, vvars: new Map(), types: new WeakMap(), varying };
    const sum = red.op === "sum";
    const lo = this.vtmp();
    const hi = this.vtmp();
    if (sum) {
      f.f64(0).v("f64x2.splat").tee(lo).set(hi);
    } else f.v128Const(splatF(-Infinity)).set(lo);
    const n4 = red.n - (red.n % 4);
    f.while(
      (f) => f.get(r).i32(n4).ins("i32.lt_s"),
      (f) => {
        this.lane = lane;
        red.decls.forEach((d) => this.statement(d));
        const t = this.vtmp();
        this.expr(red.term, "vf32");
        if (sum) {
          // lo += widen(lanes 0, 1); hi += widen(lanes 2, 3)
          f.tee(t).v("f64x2.promote_low_f32x4").get(lo).v("f64x2.add").set(lo);
          f.get(t).get(t).shuffle([8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]);
          f.v("f64x2.promote_low_f32x4").get(hi).v("f64x2.add").set(hi);
        } else f.get(lo).v("f32x4.max").set(lo);
        this.vscratch.push(t);
        this.lane = undefined;
        f.inc(r, 4);
      },
    );
    const acc = this.vars.get(red.acc)!.local;
    if (sum) {
      f.get(lo).get(hi).v("f64x2.add").tee(lo).lane("f64x2.extract", 0);
      f.get(lo).lane("f64x2.extract", 1);
      f.ins("f64.add").get(acc).ins("f64.add").set(acc);
    } else {
      f.get(acc);
      for (let k = 0; k < 4; k++)
        f.get(lo).lane("f32x4.extract", k).ins("f64.promote_f32").ins("f64.max");
      f.set(acc);
    }
    this.vscratch.push(lo, hi);
  }

  // ---- types -------------------------------------------------------------

  private typeOf(e: Expression | JsNode): Ty {
    const cache = this.lane?.types ?? this.scalarTypes;
    const known = cache.get(e);
    if (known) return known;
    const t = this.infer(e as Expression);
    cache.set(e, t);
    return t;
  }

  private infer(e: Expression): Ty {
    switch (e.type) {
      case "Literal": {
        if (typeof e.value !== "number") throw new Unsupported("non-numeric literal");
        const raw = e.raw ?? "";
        return /[.eE]/.test(raw) || !Number.isInteger(e.value) || Math.abs(e.value) >= 2 ** 31
          ? "f64"
          : "i32";
      }
      case "Identifier": {
        if (e.name === "NaN" || e.name === "Infinity") return "f64";
        if (this.lane && e.name === this.lane.name) return "vi32";
        const v = this.lookup(e.name);
        if (!v) throw new Unsupported(`unknown name '${e.name}'`);
        return v.ty;
      }
      case "MemberExpression": {
        const axis = this.threadAxis(e);
        if (axis) return axis === "x" && this.lane === this.columns ? "vi32" : "i32";
        const idx: JsNode[] = [e.property];
        if (e.object.type === "MemberExpression" && e.object.computed) idx.push(e.object.property);
        return idx.some((i) => isVec(this.typeOf(i))) ? "vf32" : "f64";
      }
      case "BinaryExpression": {
        const a = this.typeOf(e.left);
        const b = this.typeOf(e.right);
        const v = isVec(a) || isVec(b);
        if (["<", "<=", ">", ">=", "==", "!=", "===", "!=="].includes(e.operator))
          return v ? "vbool" : "bool";
        const ints = intish(a) && intish(b);
        // Integer % only by a positive literal (wasm's i32.rem_s traps on 0;
        // JavaScript gives NaN, as the float path does).
        const intRem = e.operator !== "%" || nonzeroLiteral(e.right);
        // Integer * only by an integer literal (a stride: index arithmetic);
        // a product of two values (float(arange(n))^2) would wrap at 2^31.
        const intMul = e.operator !== "*" || integerLiteral(e.left) || integerLiteral(e.right);
        if (["+", "-", "*", "%"].includes(e.operator))
          return ints && intRem && intMul ? (v ? "vi32" : "i32") : v ? "vf32" : "f64";
        if (e.operator === "/") return v ? "vf32" : "f64";
        throw new Unsupported(`operator ${e.operator}`);
      }
      case "LogicalExpression":
        return isVec(this.typeOf(e.left)) || isVec(this.typeOf(e.right)) ? "vbool" : "bool";
      case "UnaryExpression": {
        const a = this.typeOf(e.argument);
        if (e.operator === "!") return isVec(a) ? "vbool" : "bool";
        if (e.operator === "-" || e.operator === "+")
          return intish(a) ? (isVec(a) ? "vi32" : "i32") : isVec(a) ? "vf32" : "f64";
        throw new Unsupported(`operator ${e.operator}`);
      }
      case "ConditionalExpression": {
        const a = this.typeOf(e.consequent);
        const b = this.typeOf(e.alternate);
        const v = isVec(a) || isVec(b) || isVec(this.typeOf(e.test));
        const bools = (a === "bool" || a === "vbool") && (b === "bool" || b === "vbool");
        if (bools) return v ? "vbool" : "bool";
        return intish(a) && intish(b) ? (v ? "vi32" : "i32") : v ? "vf32" : "f64";
      }
      case "CallExpression": {
        const m = this.mathName(e);
        const args = e.arguments as Expression[];
        const v = args.some((a) => isVec(this.typeOf(a)));
        const int = v ? "vi32" : "i32";
        if (m === "floor" && this.intDivision(args[0])) return int;
        if ((m === "floor" || m === "ceil" || m === "trunc") && intish(this.typeOf(args[0])))
          return int;
        if ((m === "min" || m === "max") && args.every((a) => intish(this.typeOf(a)))) return int;
        return v ? "vf32" : "f64";
      }
    }
    throw new Unsupported(`expression ${e.type}`);
  }

  /** `a / b` with integer operands (under Math.floor: floor division). */
  /** `a / b` with an integer a and a positive integer literal b (under Math.floor: floor division). */
  private intDivision(e: Expression | JsNode): e is Expression & { type: "BinaryExpression" } {
    return (
      e.type === "BinaryExpression" &&
      (e as { operator: string }).operator === "/" &&
      intish(this.typeOf((e as { left: Expression }).left)) &&
      nonzeroLiteral((e as { right: Expression }).right)
    );
  }

  private mathName(e: CallExpression): string {
    if (!isMath(e.callee)) throw new Unsupported("call of something other than Math.*");
    return ((e.callee as MemberExpression).property as { name: string }).name;
  }

  /** "x" or "y" for `this.thread.x` / `this.thread.y`. */
  private threadAxis(e: JsNode): "x" | "y" | undefined {
    const m = e as MemberExpression;
    if (m.type !== "MemberExpression" || m.computed) return undefined;
    const o = m.object as MemberExpression;
    if (
      o.type === "MemberExpression" &&
      !o.computed &&
      o.object.type === "ThisExpression" &&
      (o.property as { name: string }).name === "thread"
    ) {
      const axis = (m.property as { name: string }).name;
      if (axis === "x" || axis === "y") return axis;
      throw new Unsupported(`this.thread.${axis}`);
    }
    return undefined;
  }

  // ---- code --------------------------------------------------------------

  /** Emits `e` and converts it to `want`. */
  private expr(e: Expression | JsNode, want: Ty): void {
    const have = this.typeOf(e);
    this.emit(e as Expression, have);
    this.convert(have, want);
  }

  private convert(have: Ty, want: Ty): void {
    const f = this.fn;
    if (have === want) return;
    if (!isVec(want)) {
      if (isVec(have)) throw new Error(`internal: a ${have} value where a scalar is needed`);
      if (want === "f64") f.ins("f64.convert_i32_s");
      else if (want === "i32") {
        if (have === "f64") f.i32TruncSatF64();
      } else if (have === "f64") f.f64(0).ins("f64.ne");
      else f.i32(0).ins("i32.ne");
      return;
    }
    if (!isVec(have)) {
      // One value for every lane.
      if (want === "vf32") {
        this.convert(have, "f64");
        // f64x2.splat, demote both, broadcast lane 0: f32.demote_f64 (cvtsd2ss)
        // merges into its destination register, a false dependency that
        // chained every iteration of the vector loop (2x slower softmax).
        const t = this.vtmp();
        f.v("f64x2.splat").v("f32x4.demote_f64x2_zero").tee(t).get(t);
        f.shuffle([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
        this.vscratch.push(t);
      } else if (want === "vi32") {
        this.convert(have, "i32");
        f.v("i32x4.splat");
      } else {
        this.convert(have, "bool");
        f.i32(-1).ins("i32.mul").v("i32x4.splat");
      }
      return;
    }
    if (want === "vf32") {
      if (have === "vi32") f.v("f32x4.convert_i32x4_s");
      else f.v128Const(splatF(1)).v("v128.and"); // a lane mask of all ones -> 1.0
    } else if (want === "vi32") {
      if (have === "vf32") f.v("i32x4.trunc_sat_f32x4_s");
      else f.v("i32x4.neg"); // -1 -> 1
    } else if (have === "vf32") f.v128Const(splatF(0)).v("f32x4.ne");
    else f.v128Const(new Int32Array(4)).v("i32x4.ne");
  }

  private emit(e: Expression, ty: Ty): void {
    const f = this.fn;
    switch (e.type) {
      case "Literal":
        if (ty === "f64") f.f64(e.value as number);
        else f.i32(e.value as number);
        return;
      case "Identifier": {
        if (e.name === "NaN") f.f64(NaN);
        else if (e.name === "Infinity") f.f64(Infinity);
        else if (this.lane && e.name === this.lane.name) this.iota();
        else f.get(this.lookup(e.name)!.local);
        return;
      }
      case "MemberExpression":
        return this.member(e, ty);
      case "BinaryExpression":
        return this.binary(e.operator, e.left as Expression, e.right, ty);
      case "LogicalExpression": {
        const t = isVec(ty) ? "vbool" : "bool";
        this.expr(e.left, t);
        this.expr(e.right, t);
        const op = e.operator === "&&" ? "and" : e.operator === "||" ? "or" : undefined;
        if (!op) throw new Unsupported(`operator ${e.operator}`);
        if (isVec(ty)) f.v(`v128.${op}`);
        else f.ins(`i32.${op}`);
        return;
      }
      case "UnaryExpression":
        if (e.operator === "!") {
          this.expr(e.argument, ty);
          if (isVec(ty)) f.v("v128.not");
          else f.ins("i32.eqz");
        } else if (e.operator === "+") this.expr(e.argument, ty);
        else if (ty === "f64") {
          this.expr(e.argument, "f64");
          f.ins("f64.neg");
        } else if (ty === "vf32") {
          this.expr(e.argument, "vf32");
          f.v("f32x4.neg");
        } else if (ty === "vi32") {
          this.expr(e.argument, "vi32");
          f.v("i32x4.neg");
        } else {
          f.i32(0);
          this.expr(e.argument, "i32");
          f.ins("i32.sub");
        }
        return;
      case "ConditionalExpression":
        // Both arms are evaluated (the generator clamps reads on the arm not
        // taken), then one kept: no branch per element.
        this.expr(e.consequent, ty);
        this.expr(e.alternate, ty);
        if (isVec(ty)) {
          this.expr(e.test, "vbool");
          f.v("v128.bitselect");
        } else {
          this.expr(e.test, "bool");
          f.ins("select");
        }
        return;
      case "CallExpression":
        return this.call(e, ty);
    }
    throw new Unsupported(`expression ${e.type}`);
  }

  private binary(op: string, l: Expression, r: Expression, ty: Ty): void {
    const f = this.fn;
    const cmp: Record<string, [OpName, OpName, SimdName, SimdName]> = {
      "<": ["i32.lt_s", "f64.lt", "i32x4.lt_s", "f32x4.lt"],
      "<=": ["i32.le_s", "f64.le", "i32x4.le_s", "f32x4.le"],
      ">": ["i32.gt_s", "f64.gt", "i32x4.gt_s", "f32x4.gt"],
      ">=": ["i32.ge_s", "f64.ge", "i32x4.ge_s", "f32x4.ge"],
      "==": ["i32.eq", "f64.eq", "i32x4.eq", "f32x4.eq"],
      "===": ["i32.eq", "f64.eq", "i32x4.eq", "f32x4.eq"],
      "!=": ["i32.ne", "f64.ne", "i32x4.ne", "f32x4.ne"],
      "!==": ["i32.ne", "f64.ne", "i32x4.ne", "f32x4.ne"],
    };
    if (cmp[op]) {
      const ints = intish(this.typeOf(l)) && intish(this.typeOf(r));
      const v = ty === "vbool";
      const t: Ty = ints ? (v ? "vi32" : "i32") : v ? "vf32" : "f64";
      this.expr(l, t);
      this.expr(r, t);
      if (v) f.v(cmp[op][ints ? 2 : 3]);
      else f.ins(cmp[op][ints ? 0 : 1]);
      return;
    }
    const ops: Record<string, [OpName?, OpName?, SimdName?, SimdName?]> = {
      "+": ["i32.add", "f64.add", "i32x4.add", "f32x4.add"],
      "-": ["i32.sub", "f64.sub", "i32x4.sub", "f32x4.sub"],
      "*": ["i32.mul", "f64.mul", "i32x4.mul", "f32x4.mul"],
      "/": [undefined, "f64.div", undefined, "f32x4.div"],
      "%": ["i32.rem_s"],
    };
    const row = ops[op];
    if (!row) throw new Unsupported(`operator ${op}`);
    if (ty === "vi32" && op === "%") {
      // No SIMD remainder: lane by lane.
      return this.laneWise([l, r], "i32", (f) => f.ins("i32.rem_s"));
    }
    if (op === "%" && (ty === "f64" || ty === "vf32")) {
      // JavaScript's % on floats: a - trunc(a / b) * b (the sign of a).
      const v = ty === "vf32";
      const a = v ? this.vtmp() : this.dtmp();
      const b = v ? this.vtmp() : this.dtmp();
      this.expr(l, ty);
      f.set(a);
      this.expr(r, ty);
      f.set(b);
      f.get(a).get(a).get(b);
      if (v) f.v("f32x4.div").v("f32x4.trunc").get(b).v("f32x4.mul").v("f32x4.sub");
      else f.ins("f64.div").ins("f64.trunc").get(b).ins("f64.mul").ins("f64.sub");
      (v ? this.vscratch : this.dscratch).push(a, b);
      return;
    }
    const k = { i32: 0, f64: 1, vi32: 2, vf32: 3 }[ty as "i32"];
    const name = row[k];
    if (k === undefined || !name) throw new Unsupported(`operator ${op} on ${ty}`);
    this.expr(l, ty);
    this.expr(r, ty);
    if (k >= 2) f.v(name as SimdName);
    else f.ins(name as OpName);
  }

  /**
   * A vector computed one lane at a time by a scalar operation on the lanes of
   * `args` (each converted to `lane` form: i32, or f64 from float32 lanes).
   */
  private laneWise(args: Expression[], lane: "i32" | "f64", op: (f: Fn) => void): void {
    const f = this.fn;
    const held = args.map((a) => {
      const t = this.vtmp();
      this.expr(a, lane === "i32" ? "vi32" : "vf32");
      f.set(t);
      return t;
    });
    const acc = this.vtmp();
    for (let k = 0; k < 4; k++) {
      for (const t of held) {
        f.get(t);
        if (lane === "i32") f.lane("i32x4.extract", k);
        else f.lane("f32x4.extract", k).ins("f64.promote_f32");
      }
      op(f);
      if (lane === "f64") f.ins("f32.demote_f64");
      this.intoLane(acc, k, lane === "i32" ? "i32x4" : "f32x4");
    }
    f.get(acc);
    this.vscratch.push(acc, ...held);
  }

  /** Pops a scalar into lane k of `acc` (lane 0 starts it: a splat). */
  private intoLane(acc: Local, k: number, shape: "i32x4" | "f32x4"): void {
    const f = this.fn;
    if (k === 0) {
      f.v(`${shape}.splat`).set(acc);
      return;
    }
    const t = shape === "i32x4" ? this.idx : this.ftmp();
    f.set(t).get(acc).get(t).lane(`${shape}.replace`, k).set(acc);
  }

  private f32Scratch?: Local;
  private ftmp(): Local {
    this.f32Scratch ??= this.fn.local("f32");
    return this.f32Scratch;
  }

  private call(e: CallExpression, ty: Ty): void {
    const f = this.fn;
    const m = this.mathName(e);
    const args = e.arguments as Expression[];
    if (m === "floor" && intish(ty) && this.intDivision(args[0])) {
      const d = args[0] as Expression & { type: "BinaryExpression" };
      if (ty === "vi32")
        return this.laneWise([d.left as Expression, d.right], "i32", (f) => this.floorDiv(f));
      this.expr(d.left, "i32");
      this.expr(d.right, "i32");
      this.floorDiv(f);
      return;
    }
    if ((m === "floor" || m === "ceil" || m === "trunc") && intish(ty)) {
      this.expr(args[0], ty);
      return;
    }
    if (m === "min" || m === "max") {
      if (args.length === 0) throw new Unsupported(`Math.${m}()`);
      this.expr(args[0], ty);
      for (const a of args.slice(1)) {
        this.expr(a, ty);
        if (ty === "f64") f.ins(m === "min" ? "f64.min" : "f64.max");
        else if (ty === "vf32") f.v(m === "min" ? "f32x4.min" : "f32x4.max");
        else if (ty === "vi32") f.v(m === "min" ? "i32x4.min_s" : "i32x4.max_s");
        else {
          const p = this.tmp();
          const q = this.tmp();
          f.set(q).tee(p).get(q).get(p).get(q);
          f.ins(m === "min" ? "i32.lt_s" : "i32.gt_s").ins("select");
          this.scratch.push(p, q);
        }
      }
      return;
    }
    if (ty === "vf32") {
      const simd: Partial<Record<string, SimdName>> = {
        floor: "f32x4.floor",
        ceil: "f32x4.ceil",
        trunc: "f32x4.trunc",
        sqrt: "f32x4.sqrt",
        abs: "f32x4.abs",
      };
      if (args.length === 1 && (simd[m] || m === "exp" || m === "tanh")) {
        this.expr(args[0], "vf32");
        if (simd[m]) return void f.v(simd[m]!);
        const x = f.local("v128");
        f.set(x);
        (m === "exp" ? vexpInline : vtanhInline)(f, x);
        return;
      }
      // log, pow, ...: the scalar function on each lane.
      return this.laneWise(args, "f64", (f) => this.scalarMath(f, m, args.length));
    }
    for (const a of args) this.expr(a, "f64");
    this.scalarMath(f, m, args.length);
  }

  /** Math.m on float64 operands already on the stack. */
  private scalarMath(f: Fn, m: string, arity: number): void {
    const op = native[m];
    if (op) {
      if (arity !== 1) throw new Unsupported(`Math.${m} arity`);
      f.ins(op);
    } else if (helperNames.has(m)) f.call(this.helper(m as HelperName));
    else {
      const k = this.imports.indexOf(m);
      if (k < 0) throw new Unsupported(`Math.${m}`);
      f.call(k);
    }
  }

  /**
   * floor(a / b) for i32 a, b (b != 0) on the stack: div_s truncates toward
   * zero, so step down when the remainder is nonzero with the sign opposite b's.
   */
  private floorDiv(f: Fn): void {
    const a = this.tmp();
    const b = this.tmp();
    const r = this.tmp();
    f.set(b).set(a);
    f.get(a).get(b).ins("i32.div_s");
    f.get(a).get(b).ins("i32.rem_s").tee(r).i32(0).ins("i32.ne");
    f.get(r).get(b).ins("i32.xor").i32(0).ins("i32.lt_s").ins("i32.and").ins("i32.sub");
    this.scratch.push(a, b, r);
  }

  /** A buffer read `inK[i]`, `inK[row][col]`, `this.constants.c[i]`, or a thread index. */
  private member(e: MemberExpression, ty: Ty): void {
    const f = this.fn;
    const axis = this.threadAxis(e);
    if (axis) {
      if (ty === "vi32") this.iota();
      else f.get(axis === "x" ? this.x : this.y);
      return;
    }
    if (!e.computed) throw new Unsupported("property read");
    const o = e.object;
    let arg: Arg | undefined;
    // The flat index as [row, cols] (a 2-D read) or [index].
    let row: Expression | undefined;
    if (o.type === "Identifier") {
      arg = this.args.get(o.name);
      if (!arg) throw new Unsupported(`read of '${o.name}'`);
    } else if (o.type === "MemberExpression" && o.computed && o.object.type === "Identifier") {
      arg = this.args.get(o.object.name);
      if (!arg?.cols) throw new Unsupported("2-D read of a 1-D buffer");
      row = o.property as Expression;
    } else if (
      o.type === "MemberExpression" &&
      !o.computed &&
      o.object.type === "MemberExpression" &&
      o.object.object.type === "ThisExpression" &&
      (o.object.property as { name: string }).name === "constants"
    ) {
      arg = this.consts.get((o.property as { name: string }).name);
      if (!arg) throw new Unsupported("unknown constant");
    } else throw new Unsupported("read form");
    const col = e.property as Expression;
    if (ty !== "vf32") {
      this.index(row, col, arg, "i32");
      this.load(arg);
      f.ins("f64.promote_f32");
      return;
    }
    // Four lanes: one vector load when the index steps by one along x.
    const lin = (!row || !isVec(this.typeOf(row))) && arg.size >= 4 ? this.affine(col) : undefined;
    if (lin?.k === 1) {
      if (row) {
        this.expr(row, "i32");
        f.i32(arg.cols!).ins("i32.mul");
      } else f.i32(0);
      for (const t of lin.terms) {
        this.expr(t.e, "i32");
        if (t.scale !== 1) f.i32(t.scale).ins("i32.mul");
        f.ins("i32.add");
      }
      f.get(this.lane!.local).ins("i32.add");
      // One load when all four elements are inside the buffer (always, for
      // generated kernels); else each lane clamped on its own.
      const i = this.tmp();
      f.tee(i)
        .i32(arg.size - 4)
        .ins("i32.le_u");
      f.ifElse(
        (f) => f.get(i).i32(2).i32Shl().get(arg.addr).ins("i32.add").v128Load(0),
        (f) => {
          const acc = this.vtmp();
          for (let k = 0; k < 4; k++) {
            f.get(i).i32(k).ins("i32.add");
            this.load(arg);
            this.intoLane(acc, k, "f32x4");
          }
          f.get(acc);
          this.vscratch.push(acc);
        },
        "v128",
      );
      this.scratch.push(i);
      return;
    }
    // A gather: four scalar loads.
    const v = this.vtmp();
    const acc = this.vtmp();
    this.index(row, col, arg, "vi32");
    f.set(v);
    for (let k = 0; k < 4; k++) {
      f.get(v).lane("i32x4.extract", k);
      this.load(arg);
      this.intoLane(acc, k, "f32x4");
    }
    f.get(acc);
    this.vscratch.push(v, acc);
  }

  /** The lane variable's four values: its scalar, +0 .. +3. */
  private iota(): void {
    this.fn
      .get(this.lane!.local)
      .v("i32x4.splat")
      .v128Const(Int32Array.of(0, 1, 2, 3));
    this.fn.v("i32x4.add");
  }

  /** Pushes the flat index (i32 or four i32 lanes) of a read. */
  private index(row: Expression | undefined, col: Expression, arg: Arg, ty: "i32" | "vi32"): void {
    const f = this.fn;
    if (row) {
      this.expr(row, ty);
      if (ty === "i32") f.i32(arg.cols!).ins("i32.mul");
      else f.i32(arg.cols!).v("i32x4.splat").v("i32x4.mul");
    }
    this.expr(col, ty);
    if (row && ty === "i32") f.ins("i32.add");
    else if (row) f.v("i32x4.add");
  }

  /** f32.load of element i (on the stack) of `arg`, i clamped into the buffer (unsigned: a negative index is huge). */
  private load(arg: Arg): void {
    const i = this.idx;
    this.fn
      .tee(i)
      .i32(Math.max(0, arg.size - 1))
      .get(i)
      .i32(arg.size)
      .ins("i32.lt_u")
      .ins("select")
      .i32(2)
      .i32Shl()
      .get(arg.addr)
      .ins("i32.add")
      .f32Load();
  }

  /** `e` as k x + sum of row-invariant integer terms, if it is one (looking through consts). */
  private affine(e: Expression): Affine | undefined {
    const t = this.typeOf(e);
    if (!isVec(t)) return t === "i32" ? { k: 0, terms: [{ e, scale: 1 }] } : undefined;
    const lane = this.lane!;
    if (lane === this.columns ? isThreadX(e) : e.type === "Identifier" && e.name === lane.name)
      return { k: 1, terms: [] };
    if (e.type === "Identifier") {
      const init = lane.vvars.get(e.name)?.init;
      return init ? this.affine(init) : undefined;
    }
    if (e.type === "BinaryExpression" && (e.operator === "+" || e.operator === "-")) {
      const a = this.affine(e.left as Expression);
      const b = this.affine(e.right);
      if (!a || !b) return undefined;
      const s = e.operator === "+" ? 1 : -1;
      return {
        k: a.k + s * b.k,
        terms: [...a.terms, ...b.terms.map((x) => ({ e: x.e, scale: s * x.scale }))],
      };
    }
    if (e.type === "BinaryExpression" && e.operator === "*") {
      const [v, c] =
        e.right.type === "Literal" ? [e.left as Expression, e.right] : [e.right, e.left];
      if (c.type !== "Literal" || typeof c.value !== "number" || !Number.isInteger(c.value))
        return undefined;
      const a = this.affine(v);
      const k = c.value;
      return a && { k: a.k * k, terms: a.terms.map((x) => ({ e: x.e, scale: x.scale * k })) };
    }
    return undefined;
  }
}
