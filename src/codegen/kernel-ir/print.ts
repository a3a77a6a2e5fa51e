// The kernel IR as text (`gptc compile --emit kernels`, test/golden): one line
// per value, loops indented, every let typed. f32 constants are written with a
// point (2.0), i32 constants without (2).
import type { Expr, KernelIR, Stmt } from "./types.js";

/** ALU ops written as infix operators in the text form (and, but for `//`, in JavaScript). */
export const infix: Partial<Record<string, string>> = {
  add: "+",
  sub: "-",
  mul: "*",
  div: "/",
  floordiv: "//",
  rem: "%",
  lt: "<",
  le: "<=",
  gt: ">",
  ge: ">=",
  eq: "==",
  ne: "!=",
  and: "&&",
};

export function constText(ty: string, v: number): string {
  if (Number.isNaN(v)) return "nan";
  const s = String(v);
  return ty === "f32" && !/[.eE]/.test(s) ? `${s}.0` : s;
}

export function exprText(e: Expr, bufferName: (k: number) => string = (k) => `in${k}`): string {
  const p = (x: Expr) => exprText(x, bufferName);
  switch (e.k) {
    case "const":
      return constText(e.ty, e.value);
    case "var":
      return e.name;
    case "load":
      return `${bufferName(e.buf)}[${e.coords.map(p).join(", ")}]`;
    case "select":
      return `select(${p(e.cond)}, ${p(e.then)}, ${p(e.else)})`;
    case "alu": {
      const sym = infix[e.op];
      if (sym) return `(${p(e.args[0])} ${sym} ${p(e.args[1])})`;
      if (e.op === "neg") return `-${p(e.args[0])}`;
      return `${e.op}(${e.args.map(p).join(", ")})`;
    }
  }
}

function stmtLines(s: Stmt, name: (k: number) => string, out: string[], pad: string): void {
  if (s.k === "let") {
    out.push(`${pad}${s.name}: ${s.value.ty} = ${exprText(s.value, name)}`);
    return;
  }
  out.push(`${pad}${s.acc}: f32 = ${s.op} {`);
  let p = pad;
  s.loops.forEach((l, i) => {
    p += "  ";
    const until = i === s.loops.length - 1 && s.until ? ` until ${exprText(s.until, name)}` : "";
    out.push(`${p}for ${l.v} < ${l.extent}${until} {`);
    for (const b of l.body) stmtLines(b, name, out, p + "  ");
  });
  out.push(`${p}  yield ${exprText(s.term, name)}`);
  for (let i = s.loops.length; i > 0; i--) {
    out.push(`${p}}`);
    p = p.slice(2);
  }
  out.push(`${pad}}`);
}

/** The kernel as text; `describe` names the node a buffer holds (default: %id). */
export function printKernel(
  ir: KernelIR,
  describe: (id: number) => string = (id) => `%${id}`,
): string {
  const name = (k: number) => ir.buffers[k].name;
  const g = ir.grid;
  const grid = g.kind === "rows" ? `rows ${g.rows} x cols ${g.cols} (y, x)` : `flat ${g.size} (i)`;
  const out = [
    `kernel ${ir.name} over ${grid} -> ${describe(ir.output)} f32[${ir.outShape.join(", ")}]`,
  ];
  for (const b of ir.buffers) {
    const what = b.kind === "input" ? describe(b.node) : `${b.kind} of ${describe(b.node)}`;
    out.push(`  ${b.name}: f32[${b.shape.join(", ")}] = ${what}`);
  }
  for (const s of ir.body) stmtLines(s, name, out, "  ");
  out.push(`  return ${exprText(ir.result, name)}`);
  return out.join("\n") + "\n";
}
