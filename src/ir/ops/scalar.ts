// What an elementwise op computes per element, as a tiny expression over its
// operands: named ALU operations, not target text. Kernel codegen builds its
// typed kernel IR from these and each printer (gpu.js JavaScript, WebAssembly)
// maps the names to its own instructions.

/** ALU operations of elementwise ops. Comparisons give a boolean; `select` picks by one. */
export type ScalarOp =
  | "neg"
  | "exp"
  | "log"
  | "tanh"
  | "sqrt"
  | "abs"
  | "sin"
  | "cos"
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "min"
  | "max"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "eq"
  | "ne"
  | "select";

export type ScalarExpr =
  | { arg: number }
  /** A constant; `int` marks an integer (a comparison's 1 and 0), else a float. */
  | { value: number; int?: boolean }
  | { op: ScalarOp; args: ScalarExpr[] };

/** Operand k of the op. */
export const arg = (k: number): ScalarExpr => ({ arg: k });
export const num = (value: number): ScalarExpr => ({ value });
export const int = (value: number): ScalarExpr => ({ value, int: true });
export const alu = (op: ScalarOp, ...args: ScalarExpr[]): ScalarExpr => ({ op, args });

/** A comparison as a number: 1 where it holds, else 0. */
export const truth = (op: ScalarOp): ScalarExpr =>
  alu("select", alu(op, arg(0), arg(1)), int(1), int(0));
