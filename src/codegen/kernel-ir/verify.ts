// Checks a kernel IR is well formed before any target prints it: every name
// defined once and read only where it is in scope, operand types as each ALU
// operation takes them, one coordinate per axis of a read, constant extents,
// an f32 result. Tests run it on every kernel they build.
import { exprText } from "./print.js";
import { bufferSize, threadVars, type Expr, type KernelIR, type Stmt, type Ty } from "./types.js";

export class KernelIRError extends Error {}

/** Operand types per ALU operation: "num" is i32 or f32, the same for all operands and the result. */
const signature: Record<
  string,
  { args: number; takes: "num" | "f32" | "i32" | "bool"; gives?: Ty }
> = {
  neg: { args: 1, takes: "num" },
  exp: { args: 1, takes: "f32" },
  log: { args: 1, takes: "f32" },
  tanh: { args: 1, takes: "f32" },
  sqrt: { args: 1, takes: "f32" },
  abs: { args: 1, takes: "f32" },
  sin: { args: 1, takes: "f32" },
  cos: { args: 1, takes: "f32" },
  add: { args: 2, takes: "num" },
  sub: { args: 2, takes: "num" },
  mul: { args: 2, takes: "num" },
  div: { args: 2, takes: "f32" },
  pow: { args: 2, takes: "f32" },
  min: { args: 2, takes: "num" },
  max: { args: 2, takes: "num" },
  lt: { args: 2, takes: "num", gives: "bool" },
  le: { args: 2, takes: "num", gives: "bool" },
  gt: { args: 2, takes: "num", gives: "bool" },
  ge: { args: 2, takes: "num", gives: "bool" },
  eq: { args: 2, takes: "num", gives: "bool" },
  ne: { args: 2, takes: "num", gives: "bool" },
  and: { args: 2, takes: "bool", gives: "bool" },
  floordiv: { args: 2, takes: "i32" },
  rem: { args: 2, takes: "i32" },
  f32: { args: 1, takes: "i32", gives: "f32" },
  i32: { args: 1, takes: "f32", gives: "i32" },
};

export function verifyKernel(ir: KernelIR): void {
  const fail = (msg: string): never => {
    throw new KernelIRError(`kernel ${ir.name}: ${msg}`);
  };
  const defined = new Set<string>();
  const define = (name: string, scope: Map<string, Ty>, ty: Ty) => {
    if (defined.has(name)) fail(`'${name}' defined twice`);
    defined.add(name);
    scope.set(name, ty);
  };
  const expr = (e: Expr, scope: Map<string, Ty>): void => {
    const where = () => exprText(e);
    switch (e.k) {
      case "const":
        if (e.ty === "bool") fail(`a bool constant: ${where()}`);
        if (e.ty === "i32" && !(Number.isInteger(e.value) && Math.abs(e.value) < 2 ** 31))
          fail(`i32 constant ${e.value} out of range`);
        if (e.ty === "f32" && !Number.isFinite(e.value) && !Number.isNaN(e.value))
          fail(`an infinite constant (targets write ±3.4e38)`);
        return;
      case "var": {
        const ty = scope.get(e.name);
        if (ty === undefined) fail(`'${e.name}' read where it is not defined`);
        if (ty !== e.ty) fail(`'${e.name}' read as ${e.ty}, defined ${ty}`);
        return;
      }
      case "load": {
        const b = ir.buffers[e.buf];
        if (!b) fail(`read of buffer ${e.buf}, which does not exist`);
        if (e.coords.length !== b.shape.length)
          fail(`${where()}: ${e.coords.length} coordinates for ${b.shape.length} axes`);
        for (const c of e.coords) {
          expr(c, scope);
          if (c.ty !== "i32") fail(`${where()}: a ${c.ty} coordinate`);
        }
        return;
      }
      case "select":
        [e.cond, e.then, e.else].forEach((c) => expr(c, scope));
        if (e.cond.ty !== "bool") fail(`${where()}: a ${e.cond.ty} condition`);
        if (e.then.ty !== e.ty || e.else.ty !== e.ty || e.ty === "bool")
          fail(`${where()}: arms ${e.then.ty} and ${e.else.ty} for a ${e.ty} select`);
        return;
      case "alu": {
        const sig = signature[e.op];
        if (!sig) fail(`unknown operation ${e.op}`);
        if (e.args.length !== sig.args) fail(`${where()}: ${e.args.length} operands`);
        e.args.forEach((c) => expr(c, scope));
        const t = e.args[0].ty;
        if (sig.takes === "num" && t === "bool") fail(`${where()}: bool operands`);
        if (sig.takes !== "num" && t !== sig.takes) fail(`${where()}: ${t} operands`);
        if (e.args.some((c) => c.ty !== t)) fail(`${where()}: operands of two types`);
        if (e.ty !== (sig.gives ?? t)) fail(`${where()}: typed ${e.ty}`);
        if (
          (e.op === "floordiv" || e.op === "rem") &&
          !(e.args[1].k === "const" && e.args[1].value > 0)
        )
          fail(`${where()}: divisor is not a positive constant`);
        return;
      }
    }
  };
  const stmts = (list: Stmt[], scope: Map<string, Ty>): void => {
    for (const s of list) {
      if (s.k === "let") {
        expr(s.value, scope);
        if (s.value.ty === "bool") fail(`'${s.name}' binds a bool`);
        define(s.name, scope, s.value.ty);
        continue;
      }
      if (s.loops.length === 0) fail(`${s.acc}: a reduction without loops`);
      const inner = new Map(scope);
      s.loops.forEach((l, i) => {
        if (!Number.isInteger(l.extent) || l.extent < 0) fail(`${l.v}: extent ${l.extent}`);
        define(l.v, inner, "i32");
        if (i === s.loops.length - 1 && s.until) {
          expr(s.until, inner);
          if (s.until.ty !== "i32") fail(`${s.acc}: a ${s.until.ty} bound`);
        }
        stmts(l.body, inner);
      });
      expr(s.term, inner);
      if (s.term.ty !== "f32") fail(`${s.acc}: a ${s.term.ty} term`);
      define(s.acc, scope, "f32");
    }
  };
  const top = new Map<string, Ty>();
  for (const v of threadVars(ir.grid)) define(v, top, "i32");
  ir.buffers.forEach((b, k) => {
    if (b.name !== `in${k}`) fail(`buffer ${k} named ${b.name}`);
    if (bufferSize(b) < 1) fail(`buffer ${b.name} is empty`);
  });
  stmts(ir.body, top);
  expr(ir.result, top);
  if (ir.result.ty !== "f32") fail(`a ${ir.result.ty} result`);
}
