// Facts about a kernel IR that targets decide by: which names vary with a
// given variable (what SIMD lanes must carry and what can be hoisted out of
// them), and how a buffer index moves along a variable (whether four lanes
// read four adjacent floats).
import { strides as stridesOf } from "../../ir/ops/tensor.js";
import { children, freeVars } from "./expr.js";
import type { Expr, KernelIR, Stmt } from "./types.js";

/** Every let's value, by name (names are unique in a kernel). */
export function letValues(ir: KernelIR): Map<string, Expr> {
  const m = new Map<string, Expr>();
  const walk = (list: Stmt[]) => {
    for (const s of list)
      if (s.k === "let") m.set(s.name, s.value);
      else s.loops.forEach((l) => walk(l.body));
  };
  walk(ir.body);
  return m;
}

const reads = (e: Expr, names: Set<string>) => [...freeVars(e)].some((n) => names.has(n));

/**
 * The names whose value depends on `seeds` (returned with them): lets reading
 * one, and accumulators whose terms do. A reduction's own loop variables are
 * not seeds: they vary within it, not with the seeds.
 */
export function dependents(stmts: Stmt[], seeds: Iterable<string>): Set<string> {
  const dep = new Set(seeds);
  const walk = (list: Stmt[]) => {
    for (const s of list) {
      if (s.k === "let") {
        if (reads(s.value, dep)) dep.add(s.name);
        continue;
      }
      s.loops.forEach((l) => walk(l.body));
      if (reads(s.term, dep) || (s.until && reads(s.until, dep))) dep.add(s.acc);
    }
  };
  walk(stmts);
  return dep;
}

/** Names a statement defines: a let's name, or an accumulator and every let in its loops. */
export function definedBy(s: Stmt, out: string[] = []): string[] {
  if (s.k === "let") out.push(s.name);
  else {
    out.push(s.acc);
    s.loops.forEach((l) => l.body.forEach((b) => definedBy(b, out)));
  }
  return out;
}

/**
 * The coefficient of `v` in the i32 expression `e` when `e` is linear in it
 * (lets looked through), 0 when `e` does not depend on it, else NaN.
 */
export function coefficient(e: Expr, v: string, lets: Map<string, Expr>): number {
  if (e.k === "var") {
    if (e.name === v) return 1;
    const value = lets.get(e.name);
    return value ? coefficient(value, v, lets) : 0;
  }
  if (e.k === "const") return 0;
  if (e.k === "alu" && (e.op === "add" || e.op === "sub" || e.op === "mul") && e.ty === "i32") {
    const [a, b] = e.args.map((x) => coefficient(x, v, lets));
    if (e.op === "add") return a + b;
    if (e.op === "sub") return a - b;
    if (a === 0 && b === 0) return 0;
    if (e.args[1].k === "const" && b === 0) return a * e.args[1].value;
    if (e.args[0].k === "const" && a === 0) return b * e.args[0].value;
    return NaN;
  }
  return children(e).some((c) => coefficient(c, v, lets) !== 0) ? NaN : 0;
}

/** How far a load's flat index moves per step of `v` (NaN: not linearly). */
export function loadStride(
  ir: KernelIR,
  e: Expr & { k: "load" },
  v: string,
  lets: Map<string, Expr>,
): number {
  const shape = ir.buffers[e.buf].shape;
  const st = stridesOf(shape);
  return e.coords.reduce(
    (acc, c, i) => (shape[i] === 1 ? acc : acc + coefficient(c, v, lets) * st[i]),
    0,
  );
}
