// What every op declares, once: its shape rule, its float64 reference semantics,
// its gradient rule, and (for elementwise ops) the ALU operations kernels compute.
import type { Span } from "../../dsl/source.js";
import type { Dim, Shape } from "../dims.js";
import type { ScalarExpr } from "./scalar.js";

export type DType = "f32" | "i32" | "bool";

export interface TypeInfo {
  dtype: DType;
  shape: Shape;
}

export type AttrValue = number | string | boolean | number[] | Dim | Dim[];
export type Attrs = Readonly<Record<string, AttrValue>>;

export interface Node {
  id: number;
  op: string;
  inputs: number[];
  attrs: Attrs;
  type: TypeInfo;
  span?: Span;
}

/** A concrete tensor of the reference interpreter: float64, row-major. */
export interface Tensor {
  shape: number[];
  data: Float64Array;
}

/** An op's shape rule failed: the message names both shapes; lowering adds the source span. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ShapeError";
  }
}

/** What gradient rules build with: ops appended to the graph being differentiated. */
export interface Builder {
  op(name: string, inputs: number[], attrs?: Attrs): number;
  type(id: number): TypeInfo;
  scalar(value: number): number;
}

/** How fusion and codegen treat an op. */
export type OpKind =
  | "source" // no tensor inputs: input, weight, const, arange, causal_mask, dim
  | "elementwise" // out[i] = f(in0[i'], in1[i'], ...) with broadcasting
  | "reduce" // over some axes
  | "matmul"
  | "movement" // reshape, permute, expand, slice, pad, concat: index remapping only
  | "index"; // gather, take, scatter_add, put: data-dependent addressing

export interface EvalContext {
  /** Values of the symbolic dims (B, T, ...). */
  bindings: Readonly<Record<string, number>>;
}

/**
 * A strided view of a row-major buffer: element (i0, i1, ...) of a tensor sits
 * at `offset + i0 * strides[0] + i1 * strides[1] + ...` (stride 0 broadcasts).
 */
export interface View {
  offset: number;
  strides: number[];
}

export interface OpDef {
  name: string;
  kind: OpKind;
  /** Number of tensor inputs; "many" for concat. */
  arity: number | "many";
  /** Computes the output type from input types, or throws ShapeError. */
  type(inputs: TypeInfo[], attrs: Attrs): TypeInfo;
  /** Float64 reference semantics. */
  eval(inputs: Tensor[], attrs: Attrs, out: number[], ctx: EvalContext): Tensor;
  /** Gradient contributions per input (undefined: none). Missing rule: not differentiable. */
  grad?(b: Builder, node: Node, g: number): (number | undefined)[];
  /** Elementwise ops: the float64 scalar function, and the ALU operations kernels compute it with. */
  scalar?: (...xs: number[]) => number;
  alu?: ScalarExpr;
  /**
   * Expensive enough (a transcendental) that fusion stores a value several
   * kernels read instead of recomputing it in each (softmax's exp, read by
   * its sum and by its gradient).
   */
  costly?: boolean;
  /**
   * Movement ops: the output as a strided view of the input's view (concrete
   * shapes), or undefined where no strides express it (pad, concat, a reshape
   * that merges axes a transpose separated). Lets a kernel read an operand in
   * place instead of through per-element index arithmetic.
   */
  view?(input: View, attrs: Attrs, inShape: number[], outShape: number[]): View | undefined;
  /**
   * Mode-dependent ops (dropout): what the op is in evaluation graphs
   * (validation, generation), built from its node; training graphs keep the op.
   */
  inEval?(b: Builder, node: Node): number;
  /**
   * Kernels read the op's value from a buffer the runtime fills (dropout
   * masks: codegen/host-random.ts), not computed inline: fusion counts it
   * among a kernel's inputs.
   */
  hostFilled?: boolean;
}
