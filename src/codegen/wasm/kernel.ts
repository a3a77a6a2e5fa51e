// A kernel IR as a WebAssembly function, for the webasm backend (gpu.js's
// webasm backend spent 10-20 ns per element: each lane-varying load a
// four-lane gather, Math.exp/tanh calls into JavaScript).
//
// Four float32 SIMD lanes run along the output's last axis (a rows grid's x,
// or a flat grid's i), with a scalar loop for the rest of the row; statements
// that do not depend on the column run once per row. A flat kernel of row
// reductions that read along their loop (a softmax's max and sum over the
// vocabulary) runs its lanes along the reduction instead (see
// vectorReduction). Values that vary along the lanes are float32 lanes; reads
// whose index steps by one along them are one vector load, other varying reads
// four scalar loads. Scalar values are float64 (buffers hold float32: loads
// widen, stores narrow), i32 values i32. Every read is clamped into its buffer,
// so a bad id cannot read outside it. The export is `run(out, from, to, arg0,
// arg1, ...)`: byte addresses, and the range of output rows (rows grid) or
// elements (flat grid) to compute, so two threads can split it.
import { definedBy, dependents, letValues, loadStride } from "../kernel-ir/analysis.js";
import { BIG, freeVars } from "../kernel-ir/expr.js";
import { bufferSize, type Expr, type KernelIR, type Stmt } from "../kernel-ir/types.js";
import {
  ConstantPool,
  Fn,
  moduleBytes,
  type FnImport,
  type I32,
  type Local,
  type OpName,
  type SimdName,
  splatF32,
} from "./bytes.js";
import { mathHelpers, vexpInline, vtanhInline, type HelperName } from "./math.js";

/** k where `e` is the constant 2^k (k < 31), else undefined. */
function log2Of(e: Expr): number | undefined {
  if (e.k !== "const" || !Number.isInteger(e.value) || e.value < 1 || e.value > 2 ** 30)
    return undefined;
  const k = Math.log2(e.value);
  return Number.isInteger(k) ? k : undefined;
}

/** A reduction's `until` differs per lane: the kernel is compiled without the column lanes. */
class LaneDivergence extends Error {}

type Ty = "i32" | "f64" | "bool" | "vi32" | "vf32" | "vbool";
const isVec = (t: Ty) => t[0] === "v";
const scalarOf = { f32: "f64", i32: "i32", bool: "bool" } as const;
const vectorOf = { f32: "vf32", i32: "vi32", bool: "vbool" } as const;

/** Math computed in the module (math.ts) or by one instruction; sin, cos and pow are imported. */
const helperOps = new Set(["exp", "log", "tanh"]);
const nativeOps: Partial<Record<string, [OpName, SimdName]>> = {
  sqrt: ["f64.sqrt", "f32x4.sqrt"],
  abs: ["f64.abs", "f32x4.abs"],
};
const importedOps = ["cos", "pow", "sin"];

export interface WasmKernelModule {
  bytes: Uint8Array<ArrayBuffer>;
  /** Math functions the module imports from `env` (call them `Math_<name>`). */
  imports: string[];
}

/** The module for one kernel; its arguments are the kernel's buffers, in order. */
export function wasmKernel(
  ir: KernelIR,
  memory: { initial: number; maximum: number; shared: boolean },
): WasmKernelModule {
  const used = new Set<string>();
  const walk = (e: Expr) => {
    if (e.k === "alu") used.add(e.op);
    if (e.k === "alu" || e.k === "load") (e.k === "alu" ? e.args : e.coords).forEach(walk);
    if (e.k === "select") [e.cond, e.then, e.else].forEach(walk);
  };
  const stmts = (list: Stmt[]) =>
    list.forEach((s) => {
      if (s.k === "let") return walk(s.value);
      s.loops.forEach((l) => stmts(l.body));
      walk(s.term);
      if (s.until) walk(s.until);
    });
  stmts(ir.body);
  walk(ir.result);
  const imports = importedOps.filter((m) => used.has(m));
  const imported: FnImport[] = imports.map((m) => ({
    name: `Math_${m}`,
    params: m === "pow" ? ["f64", "f64"] : ["f64"],
    results: ["f64"],
  }));
  const helpers = mathHelpers(imported.length + 1);
  let c: Compiler;
  try {
    c = new Compiler(ir, imports, helpers.index, true);
  } catch (e) {
    if (!(e instanceof LaneDivergence)) throw e;
    c = new Compiler(ir, imports, helpers.index, false);
  }
  return { bytes: moduleBytes([c.fn, ...helpers.fns], memory, imported, c.pool), imports };
}

interface Var {
  local: Local;
  ty: Ty;
}

/** idx = k v + sum of scale * term, every term a scalar (lane-invariant) i32. */
interface Affine {
  k: number;
  terms: { e: Expr; scale: number }[];
}

/** What four SIMD lanes run along: the output's column, or a reduction's loop variable. */
interface Lane {
  v: string;
  local: Local;
  /** Names declared in this vector loop with a vector type. */
  vvars: Map<string, Var>;
  types: WeakMap<Expr, Ty>;
  /** Names whose value depends on the lane variable (it included). */
  varying: Set<string>;
}

class Compiler {
  readonly fn: Fn;
  /** The vector constants (exp's polynomial, ...), as the module's globals. */
  readonly pool = new ConstantPool();
  /** The vector loop being emitted (none: scalar code). */
  private lane?: Lane;
  private readonly vars = new Map<string, Var>();
  private readonly args: { addr: Local; size: number; shape: number[] }[];
  private readonly scalarTypes = new WeakMap<Expr, Ty>();
  private readonly lets: Map<string, Expr>;
  /** Lanes along the output's column. */
  private readonly columns: Lane;
  private readonly out: Local;
  private readonly x: Local;
  private readonly y: Local;
  private readonly idx: Local;
  private readonly scratch: Local[] = [];
  private readonly dscratch: Local[] = [];
  private readonly vscratch: Local[] = [];

  constructor(
    private readonly ir: KernelIR,
    private readonly imports: string[],
    private readonly helper: (name: HelperName) => number,
    vector: boolean,
  ) {
    const f = (this.fn = new Fn("run", [
      "i32",
      "i32",
      "i32",
      ...ir.buffers.map(() => "i32" as const),
    ]));
    f.pool = this.pool;
    const [outBase, from, to, ...addrs] = f.params;
    this.args = ir.buffers.map((b, k) => ({ addr: addrs[k], size: bufferSize(b), shape: b.shape }));
    this.lets = letValues(ir);
    this.out = f.local("i32");
    this.x = f.local("i32");
    this.y = f.local("i32");
    this.idx = f.local("i32");
    const rows = ir.grid.kind === "rows";
    const column = rows ? "x" : "i";
    const varying = dependents(ir.body, [column]);
    this.columns = { v: column, local: this.x, vvars: new Map(), types: new WeakMap(), varying };
    const stmts = ir.body;
    // Statements that do not depend on the column run once per row.
    const hoisted = stmts.map((s) => rows && definedBy(s).every((n) => !varying.has(n)));
    // A flat kernel of row reductions reading contiguously along their loop:
    // the lanes run along the loop (see vectorReduction), not along the output.
    if (!rows && stmts.some((s) => this.contiguous(s))) vector = false;
    const inner = stmts.filter((_, k) => !hoisted[k]);

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
            this.expr(ir.result, "vf32");
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
          this.expr(ir.result, "f64");
          f.ins("f32.demote_f64").f32Store();
          f.inc(this.out, 4).inc(this.x, 1);
        },
      );
    };
    if (ir.grid.kind === "rows") {
      // Rows [from, to), each the full last axis.
      const cols = ir.grid.cols;
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

  /** A reduction with a read whose index steps by one along its (outermost) loop. */
  private contiguous(s: Stmt): boolean {
    if (s.k !== "reduce") return false;
    const v = s.loops[0].v;
    const found = (e: Expr): boolean =>
      (e.k === "load" && loadStride(this.ir, e, v, this.lets) === 1) ||
      (e.k === "alu" && e.args.some(found)) ||
      (e.k === "load" && e.coords.some(found)) ||
      (e.k === "select" && [e.cond, e.then, e.else].some(found));
    const inStmts = (list: Stmt[]): boolean =>
      list.some((t) =>
        t.k === "let" ? found(t.value) : t.loops.some((l) => inStmts(l.body)) || found(t.term),
      );
    return s.loops.some((l) => inStmts(l.body)) || found(s.term);
  }

  private tmp(): Local {
    return this.scratch.pop() ?? this.fn.local("i32");
  }
  private dtmp(): Local {
    return this.dscratch.pop() ?? this.fn.local("f64");
  }
  private vtmp(): Local {
    return this.vscratch.pop() ?? this.fn.local("v128");
  }

  private lookup(name: string): Var {
    const v = this.lane?.vvars.get(name) ?? this.vars.get(name);
    if (!v) throw new Error(`internal: '${name}' read before it is computed`);
    return v;
  }

  private declare(name: string, ty: Ty): Var {
    const map = isVec(ty) ? this.lane!.vvars : this.vars;
    let v = map.get(name);
    if (!v) {
      v = { local: this.fn.local(isVec(ty) ? "v128" : ty === "f64" ? "f64" : "i32"), ty };
      map.set(name, v);
    } else if (v.ty !== ty) throw new Error(`internal: '${name}' declared as ${v.ty} and ${ty}`);
    return v;
  }

  private statement(s: Stmt): void {
    if (s.k === "let") {
      const v = this.declare(s.name, this.typeOf(s.value));
      this.expr(s.value, v.ty);
      this.fn.set(v.local);
      return;
    }
    const f = this.fn;
    const acc = this.declare(s.acc, this.lane?.varying.has(s.acc) ? "vf32" : "f64");
    const init = s.op === "max" ? -BIG : 0;
    if (acc.ty === "f64") f.f64(init);
    else f.v128Const(splatF32(init));
    f.set(acc.local);
    this.loops(s, 0, acc);
  }

  /** Loop `i` of a reduction and the loops inside it; the innermost folds the term. */
  private loops(s: Stmt & { k: "reduce" }, i: number, acc: Var): void {
    const f = this.fn;
    const loop = s.loops[i];
    const innermost = i === s.loops.length - 1;
    const r = this.declare(loop.v, "i32").local;
    f.i32(0).set(r);
    if (
      innermost &&
      !this.lane &&
      !s.until &&
      loop.extent >= 8 &&
      loop.body.every((b) => b.k === "let")
    )
      this.vectorReduction(s, r, acc);
    // block { loop { if !(r < n) break; [if r >= until break]; body; r += 1; continue } }
    // (after a vector reduction: its last n mod 4 iterations)
    f.block(() => {
      f.op(0x03, 0x40);
      f.get(r).i32(loop.extent).ins("i32.lt_s").ins("i32.eqz").brIf(1);
      if (innermost && s.until) {
        if (isVec(this.typeOf(s.until))) throw new LaneDivergence();
        f.get(r);
        this.expr(s.until, "i32");
        f.ins("i32.ge_s").brIf(1);
      }
      loop.body.forEach((b) => this.statement(b));
      if (innermost) this.fold(s.op, acc, s.term);
      else this.loops(s, i + 1, acc);
      f.inc(r, 1).br(0);
      f.op(0x0b);
    });
  }

  /** acc = acc + term, or max(acc, term). */
  private fold(op: "sum" | "max", acc: Var, term: Expr): void {
    const f = this.fn;
    f.get(acc.local);
    this.expr(term, acc.ty);
    if (acc.ty === "f64") f.ins(op === "sum" ? "f64.add" : "f64.max");
    else f.v(op === "sum" ? "f32x4.add" : "f32x4.max");
    f.set(acc.local);
  }

  /**
   * The first n - n mod 4 iterations of a reduction's innermost loop, four at
   * a time: a sum in two float64x2 accumulators (float32 lanes widened: 50257
   * terms keep float64 accuracy), a max in one float32x4; lanes folded into
   * the accumulator at the end. Leaves `r` at the first iteration still to run.
   */
  private vectorReduction(s: Stmt & { k: "reduce" }, r: Local, accVar: Var): void {
    const f = this.fn;
    const loop = s.loops[s.loops.length - 1];
    const varying = dependents(loop.body, [loop.v]);
    const lane: Lane = { v: loop.v, local: r, vvars: new Map(), types: new WeakMap(), varying };
    const sum = s.op === "sum";
    const lo = this.vtmp();
    const hi = this.vtmp();
    // A max folds with pmax (one maxps; f32x4.max's NaN and -0 rules cost seven
    // instructions on the chain every iteration waits for), NaN lanes kept
    // aside in `hi` (a lane mask) and put back at the end.
    if (sum) f.f64(0).v("f64x2.splat").tee(lo).set(hi);
    else f.v128Const(splatF32(-Infinity)).set(lo).v128Const(new Int32Array(4)).set(hi);
    const n4 = loop.extent - (loop.extent % 4);
    f.while(
      (f) => f.get(r).i32(n4).ins("i32.lt_s"),
      (f) => {
        this.lane = lane;
        loop.body.forEach((b) => this.statement(b));
        const t = this.vtmp();
        this.expr(s.term, "vf32");
        if (sum) {
          // lo += widen(lanes 0, 1); hi += widen(lanes 2, 3)
          f.tee(t).v("f64x2.promote_low_f32x4").get(lo).v("f64x2.add").set(lo);
          f.get(t).get(t).shuffle([8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]);
          f.v("f64x2.promote_low_f32x4").get(hi).v("f64x2.add").set(hi);
        } else {
          f.tee(t).get(lo).v("f32x4.pmax").set(lo);
          f.get(t).get(t).v("f32x4.ne").get(hi).v("v128.or").set(hi);
        }
        this.vscratch.push(t);
        this.lane = undefined;
        f.inc(r, 4);
      },
    );
    const acc = accVar.local;
    if (sum) {
      f.get(lo).get(hi).v("f64x2.add").tee(lo).lane("f64x2.extract", 0);
      f.get(lo).lane("f64x2.extract", 1);
      f.ins("f64.add").get(acc).ins("f64.add").set(acc);
    } else {
      f.v128Const(splatF32(NaN)).get(lo).get(hi).v("v128.bitselect").set(lo);
      f.get(acc);
      for (let k = 0; k < 4; k++)
        f.get(lo).lane("f32x4.extract", k).ins("f64.promote_f32").ins("f64.max");
      f.set(acc);
    }
    this.vscratch.push(lo, hi);
  }

  // ---- types -------------------------------------------------------------

  /** Whether `e` differs across the lanes of the vector loop being emitted. */
  private varies(e: Expr): boolean {
    const lane = this.lane;
    if (!lane) return false;
    for (const n of freeVars(e)) if (lane.varying.has(n)) return true;
    return false;
  }

  private typeOf(e: Expr): Ty {
    const cache = this.lane?.types ?? this.scalarTypes;
    let t = cache.get(e);
    if (!t) {
      t = this.varies(e) ? vectorOf[e.ty] : scalarOf[e.ty];
      cache.set(e, t);
    }
    return t;
  }

  // ---- code --------------------------------------------------------------

  /** Emits `e` and converts it to `want`. */
  private expr(e: Expr, want: Ty): void {
    const have = this.typeOf(e);
    this.emit(e, have);
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
      else f.v128Const(splatF32(1)).v("v128.and"); // a lane mask of all ones -> 1.0
    } else if (want === "vi32") {
      if (have === "vf32") f.v("i32x4.trunc_sat_f32x4_s");
      else f.v("i32x4.neg"); // -1 -> 1
    } else if (have === "vf32") f.v128Const(splatF32(0)).v("f32x4.ne");
    else f.v128Const(new Int32Array(4)).v("i32x4.ne");
  }

  private emit(e: Expr, ty: Ty): void {
    const f = this.fn;
    switch (e.k) {
      case "const":
        if (ty === "f64") f.f64(e.value);
        else f.i32(e.value);
        return;
      case "var":
        if (this.lane && e.name === this.lane.v) this.iota();
        else if (e.name === "x" || e.name === "i") f.get(this.x);
        else if (e.name === "y") f.get(this.y);
        else f.get(this.lookup(e.name).local);
        return;
      case "load":
        return this.load(e, ty);
      case "select":
        // Both arms are evaluated (reads on the arm not taken are clamped into
        // their buffers), then one kept: no branch per element.
        this.expr(e.then, ty);
        this.expr(e.else, ty);
        if (isVec(ty)) {
          this.expr(e.cond, "vbool");
          f.v("v128.bitselect");
        } else {
          this.expr(e.cond, "bool");
          f.ins("select");
        }
        return;
      case "alu":
        return this.alu(e, ty);
    }
  }

  private alu(e: Expr & { k: "alu" }, ty: Ty): void {
    const f = this.fn;
    const vec = isVec(ty);
    const [l, r] = e.args;
    const operand = (x: Expr) => (vec ? vectorOf : scalarOf)[x.ty];
    switch (e.op) {
      case "f32":
      case "i32":
        return this.expr(l, ty);
      case "and":
        this.expr(l, ty);
        this.expr(r, ty);
        if (vec) f.v("v128.and");
        else f.ins("i32.and");
        return;
      case "lt":
      case "le":
      case "gt":
      case "ge":
      case "eq":
      case "ne": {
        const t = operand(l);
        this.expr(l, t);
        this.expr(r, t);
        const ints = l.ty === "i32";
        const s = e.op === "lt" || e.op === "le" || e.op === "gt" || e.op === "ge" ? "_s" : "";
        if (vec) f.v((ints ? `i32x4.${e.op}${s}` : `f32x4.${e.op}`) as SimdName);
        else f.ins((ints ? `i32.${e.op}${s}` : `f64.${e.op}`) as OpName);
        return;
      }
      case "rem": {
        const k = vec ? log2Of(r) : undefined;
        if (k !== undefined) return this.vremPow2(l, k);
        if (vec) return this.laneWise([l, r], "i32", (f) => f.ins("i32.rem_s"));
        this.expr(l, "i32");
        this.expr(r, "i32");
        f.ins("i32.rem_s");
        return;
      }
      case "floordiv": {
        const k = vec ? log2Of(r) : undefined;
        if (k !== undefined) {
          // floor(a / 2^k) is the arithmetic shift, for negative a too.
          this.expr(l, "vi32");
          f.i32(k).v("i32x4.shr_s");
          return;
        }
        if (vec) return this.laneWise([l, r], "i32", (f) => this.floorDiv(f));
        this.expr(l, "i32");
        this.expr(r, "i32");
        this.floorDiv(f);
        return;
      }
      case "neg":
        if (ty === "i32") f.i32(0);
        this.expr(l, ty);
        if (ty === "f64") f.ins("f64.neg");
        else if (ty === "vf32") f.v("f32x4.neg");
        else if (ty === "vi32") f.v("i32x4.neg");
        else f.ins("i32.sub");
        return;
      case "add":
      case "sub":
      case "mul":
      case "div": {
        this.expr(l, ty);
        this.expr(r, ty);
        const shape = { i32: "i32", f64: "f64", vi32: "i32x4", vf32: "f32x4" }[ty as "i32"];
        if (vec) f.v(`${shape}.${e.op}` as SimdName);
        else f.ins(`${shape}.${e.op}` as OpName);
        return;
      }
      case "min":
      case "max":
        this.expr(l, ty);
        this.expr(r, ty);
        if (ty === "f64") f.ins(`f64.${e.op}`);
        else if (ty === "vf32") f.v(`f32x4.${e.op}`);
        else if (ty === "vi32") f.v(`i32x4.${e.op}_s`);
        else {
          const p = this.tmp();
          const q = this.tmp();
          f.set(q).tee(p).get(q).get(p).get(q);
          f.ins(e.op === "min" ? "i32.lt_s" : "i32.gt_s").ins("select");
          this.scratch.push(p, q);
        }
        return;
    }
    // Math on f32 values.
    if (vec) {
      const native = nativeOps[e.op];
      if (native || e.op === "exp" || e.op === "tanh") {
        this.expr(l, "vf32");
        if (native) return void f.v(native[1]);
        const x = f.local("v128");
        f.set(x);
        (e.op === "exp" ? vexpInline : vtanhInline)(f, x);
        return;
      }
      // log, pow, sin, cos: the scalar function on each lane.
      return this.laneWise(e.args, "f64", (f) => this.scalarMath(f, e.op));
    }
    for (const a of e.args) this.expr(a, "f64");
    this.scalarMath(f, e.op);
  }

  /** A math operation on float64 operands already on the stack. */
  private scalarMath(f: Fn, op: string): void {
    const native = nativeOps[op];
    if (native) f.ins(native[0]);
    else if (helperOps.has(op)) f.call(this.helper(op as HelperName));
    else {
      const k = this.imports.indexOf(op);
      if (k < 0) throw new Error(`internal: no WebAssembly for ${op}`);
      f.call(k);
    }
  }

  /**
   * A vector computed one lane at a time by a scalar operation on the lanes of
   * `args` (each converted to `lane` form: i32, or f64 from float32 lanes).
   */
  private laneWise(args: Expr[], lane: "i32" | "f64", op: (f: Fn) => void): void {
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

  /**
   * Four lanes of a rem_s 2^k (the sign of a, as i32.rem_s):
   * a - trunc(a / 2^k) 2^k, the truncating quotient a shift of a biased by
   * 2^k - 1 where a is negative.
   */
  private vremPow2(l: Expr, k: number): void {
    const f = this.fn;
    const a = this.vtmp();
    this.expr(l, "vi32");
    f.tee(a);
    if (k === 0) f.get(a);
    else {
      f.get(a)
        .get(a)
        .i32(31)
        .v("i32x4.shr_s")
        .i32(32 - k)
        .v("i32x4.shr_u")
        .v("i32x4.add");
      f.i32(k).v("i32x4.shr_s").i32(k).v("i32x4.shl");
    }
    f.v("i32x4.sub");
    this.vscratch.push(a);
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

  // ---- reads -------------------------------------------------------------

  /** A buffer element (f64), or four (vf32): one vector load when the index steps by one along the lanes. */
  private load(e: Expr & { k: "load" }, ty: Ty): void {
    const f = this.fn;
    const arg = this.args[e.buf];
    if (ty !== "vf32") {
      this.index(e, "i32");
      this.read(arg);
      f.ins("f64.promote_f32");
      return;
    }
    const lin = arg.size >= 4 ? this.affineIndex(e) : undefined;
    if (lin?.k === 1) {
      f.i32(0);
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
            this.read(arg);
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
    this.index(e, "vi32");
    f.set(v);
    for (let k = 0; k < 4; k++) {
      f.get(v).lane("i32x4.extract", k);
      this.read(arg);
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

  /** Pushes a load's flat index (i32, or four i32 lanes). */
  private index(e: Expr & { k: "load" }, ty: "i32" | "vi32"): void {
    const f = this.fn;
    const shape = this.args[e.buf].shape;
    let stride = 1;
    let first = true;
    for (let a = shape.length - 1; a >= 0; a--) {
      const c = e.coords[a];
      if (shape[a] !== 1 && !(c.k === "const" && c.value === 0)) {
        this.expr(c, ty);
        if (stride !== 1) {
          if (ty === "i32") f.i32(stride).ins("i32.mul");
          else f.i32(stride).v("i32x4.splat").v("i32x4.mul");
        }
        if (!first) {
          if (ty === "i32") f.ins("i32.add");
          else f.v("i32x4.add");
        }
        first = false;
      }
      stride *= shape[a];
    }
    if (first) {
      if (ty === "i32") f.i32(0);
      else f.v128Const(new Int32Array(4));
    }
  }

  /** f32.load of element i (on the stack) of a buffer, i clamped into it (unsigned: a negative index is huge). */
  private read(arg: { addr: Local; size: number }): void {
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

  /** A load's flat index as k v + lane-invariant terms, if it is one. */
  private affineIndex(e: Expr & { k: "load" }): Affine | undefined {
    const shape = this.args[e.buf].shape;
    const result: Affine = { k: 0, terms: [] };
    let stride = 1;
    for (let a = shape.length - 1; a >= 0; a--) {
      if (shape[a] !== 1) {
        const c = this.affine(e.coords[a]);
        if (!c) return undefined;
        result.k += c.k * stride;
        for (const t of c.terms) result.terms.push({ e: t.e, scale: t.scale * stride });
      }
      stride *= shape[a];
    }
    return result;
  }

  /** An i32 expression as k v + lane-invariant terms (lets looked through), if it is one. */
  private affine(e: Expr): Affine | undefined {
    if (!this.varies(e)) return e.ty === "i32" ? { k: 0, terms: [{ e, scale: 1 }] } : undefined;
    const lane = this.lane!;
    if (e.k === "var") {
      if (e.name === lane.v) return { k: 1, terms: [] };
      const value = this.lets.get(e.name);
      return value ? this.affine(value) : undefined;
    }
    if (e.k === "alu" && e.ty === "i32" && (e.op === "add" || e.op === "sub")) {
      const a = this.affine(e.args[0]);
      const b = this.affine(e.args[1]);
      if (!a || !b) return undefined;
      const s = e.op === "add" ? 1 : -1;
      return {
        k: a.k + s * b.k,
        terms: [...a.terms, ...b.terms.map((x) => ({ e: x.e, scale: s * x.scale }))],
      };
    }
    if (e.k === "alu" && e.ty === "i32" && e.op === "mul") {
      const [v, c] = e.args[1].k === "const" ? [e.args[0], e.args[1]] : [e.args[1], e.args[0]];
      if (c.k !== "const") return undefined;
      const a = this.affine(v);
      return (
        a && { k: a.k * c.value, terms: a.terms.map((x) => ({ e: x.e, scale: x.scale * c.value })) }
      );
    }
    return undefined;
  }
}
