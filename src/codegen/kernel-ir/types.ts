// The kernel IR: one fused kernel as typed loops over named buffers, the form
// every target prints (gpu.js JavaScript, WebAssembly). Each thread of the
// kernel's grid computes one element of its output; reductions are loops with
// constant extents folding into an accumulator; buffer reads name their buffer
// and a coordinate per axis. Values are f32 (buffers hold float32), index
// arithmetic i32, conditions bool; conversions are explicit.
import type { ScalarOp } from "../../ir/ops/scalar.js";

export type Ty = "f32" | "i32" | "bool";

/**
 * ALU operations: the registry's (ScalarOp) and index arithmetic: `floordiv`
 * and `rem` (i32, by a positive constant), `and` (bool), `f32` (i32 to f32) and
 * `i32` (f32 to i32, truncating; ids read from a buffer).
 */
export type AluOp = ScalarOp | "floordiv" | "rem" | "and" | "f32" | "i32";

export type Expr =
  | { k: "const"; ty: Ty; value: number }
  /** A thread index, loop variable, let or accumulator. */
  | { k: "var"; ty: Ty; name: string }
  /** Element [coords] of buffer `buf` (an index into KernelIR.buffers), clamped into it. */
  | { k: "load"; ty: "f32"; buf: number; coords: Expr[] }
  | { k: "alu"; ty: Ty; op: AluOp; args: Expr[] }
  | { k: "select"; ty: Ty; cond: Expr; then: Expr; else: Expr };

/** A loop of a reduction: `v` runs 0 .. extent - 1; `body` runs first in each iteration. */
export interface Loop {
  v: string;
  extent: number;
  body: Stmt[];
}

export type Stmt =
  /** An immutable value. */
  | { k: "let"; name: string; value: Expr }
  /**
   * `acc` = the fold (sum from 0, or max from -3.4e38) of `term` over the loop
   * nest (loops[0] outermost). `until`: the innermost loop stops early once
   * its variable reaches this value (a row's count in scatter_add's tables).
   */
  | { k: "reduce"; acc: string; op: "sum" | "max"; loops: Loop[]; term: Expr; until?: Expr };

/** A buffer the kernel reads: a graph node's value, or an index table the host derives. */
export interface Buffer {
  name: string;
  shape: number[];
  /** The node it holds (an input of the kernel), or the ids an index table is built from. */
  node: number;
  kind: "input" | "order" | "offsets";
  /** Index tables: the rows of the scatter they serve (offsets has rows + 1 entries). */
  rows?: number;
}

/**
 * The threads: `flat` (one per output element, thread `i`), or `rows` (thread
 * `x` a column of the output's last axis, `y` a row of the others), which lets
 * a target run adjacent columns in SIMD lanes.
 */
export type Grid = { kind: "flat"; size: number } | { kind: "rows"; cols: number; rows: number };

export interface KernelIR {
  name: string;
  grid: Grid;
  buffers: Buffer[];
  /** The output node and its shape (the grid covers its elements, at least one). */
  output: number;
  outShape: number[];
  body: Stmt[];
  result: Expr;
}

export const threadVars = (grid: Grid): string[] => (grid.kind === "rows" ? ["x", "y"] : ["i"]);

export const bufferSize = (b: Buffer): number =>
  Math.max(
    1,
    b.shape.reduce((p, q) => p * q, 1),
  );

export const outputSize = (ir: KernelIR): number =>
  ir.grid.kind === "flat" ? ir.grid.size : ir.grid.cols * ir.grid.rows;
