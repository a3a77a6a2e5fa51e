// The typed AST of a .model file. The parser builds it; the formatter prints it;
// the IR lowering evaluates it. Every node has the span of the text it came from.
import type { Span } from "./source.js";

// ---- expressions -----------------------------------------------------------

export type Expr =
  | NumberLit
  | StringLit
  | BoolLit
  | NameRef
  | MemberExpr
  | IndexExpr
  | CallExpr
  | UnaryExpr
  | BinaryExpr
  | ListExpr;

export interface NumberLit {
  kind: "number";
  value: number;
  /** The text as written, so the formatter keeps `1e-5` as `1e-5`. */
  text: string;
  span: Span;
}

export interface StringLit {
  kind: "string";
  value: string;
  span: Span;
}

export interface BoolLit {
  kind: "bool";
  value: boolean;
  span: Span;
}

export interface NameRef {
  kind: "name";
  name: string;
  span: Span;
}

/** `a.b`: a weight of a named scope (`wte.weight`) or `.T` (transpose the last two axes). */
export interface MemberExpr {
  kind: "member";
  object: Expr;
  name: string;
  span: Span;
}

/** `table[ids]`: rows of `table` picked by integer ids (an embedding lookup). */
export interface IndexExpr {
  kind: "index";
  object: Expr;
  index: Expr;
  span: Span;
}

export interface Arg {
  /** Set for a named argument `eps = 1e-5`. */
  name?: string;
  value: Expr;
  span: Span;
}

/** `f(x, y, k = v) as scope`: a builtin or a user function, optionally in a named scope. */
export interface CallExpr {
  kind: "call";
  callee: string;
  calleeSpan: Span;
  args: Arg[];
  /** `as h` puts the callee's weights under the scope `h` (dotted names allowed). */
  scope?: string[];
  scopeSpan?: Span;
  span: Span;
}

export type UnaryOp = "-";
export interface UnaryExpr {
  kind: "unary";
  op: UnaryOp;
  operand: Expr;
  span: Span;
}

export type BinaryOp = "+" | "-" | "*" | "/" | "@" | "**" | "<" | "<=" | ">" | ">=" | "==" | "!=";
export interface BinaryExpr {
  kind: "binary";
  op: BinaryOp;
  left: Expr;
  right: Expr;
  /** The span of the operator itself: shape errors point here. */
  opSpan: Span;
  span: Span;
}

/** `[a, b, c]`: a shape or a list of tensors. */
export interface ListExpr {
  kind: "list";
  items: Expr[];
  span: Span;
}

// ---- types -----------------------------------------------------------------

export type DType = "float" | "int" | "bool";

/** A dimension in a type: an expression, or `...` for any number of leading axes. */
export type DimPattern = { kind: "ellipsis"; span: Span } | Expr;

/** `int[B, T]`, `[..., C]`, `float[vocab, d]`. */
export interface TypeExpr {
  dtype?: DType;
  dims: DimPattern[];
  span: Span;
}

// ---- statements ------------------------------------------------------------

export type Stmt =
  | AssignStmt
  | WeightDecl
  | ParamDecl
  | InputDecl
  | OutputDecl
  | LossStmt
  | RepeatStmt
  | IfStmt
  | ReturnStmt;

/** `x = expr` or `q, k, v = split(...)`. Names may be rebound (`x = x + y`). */
export interface AssignStmt {
  kind: "assign";
  targets: { name: string; span: Span }[];
  value: Expr;
  span: Span;
}

/** `weight w: [n_in, n_out] = normal(0.02)`: a trained tensor named after its scope path. */
export interface WeightDecl {
  kind: "weight";
  name: string;
  nameSpan: Span;
  type: TypeExpr;
  init?: Expr;
  span: Span;
}

/** `param d = 768 from "n_embd"`: a hyperparameter, overridable by --set and config.json. */
export interface ParamDecl {
  kind: "param";
  name: string;
  nameSpan: Span;
  value: Expr;
  /** The Hugging Face config.json key this parameter is read from. */
  configKey?: string;
  span: Span;
}

/** `input tokens: int[B, T]`: names in the dims that are not parameters become symbolic. */
export interface InputDecl {
  kind: "input";
  name: string;
  nameSpan: Span;
  type: TypeExpr;
  span: Span;
}

/** `output logits = expr` (an optional type is checked against the value). */
export interface OutputDecl {
  kind: "output";
  name: string;
  nameSpan: Span;
  type?: TypeExpr;
  value: Expr;
  span: Span;
}

/** `loss = expr`: the scalar a training graph differentiates. */
export interface LossStmt {
  kind: "loss";
  value: Expr;
  span: Span;
}

/** `repeat i in layers as h { ... }`: unrolled; iteration i's weights live under `h.i`. */
export interface RepeatStmt {
  kind: "repeat";
  index?: string;
  count: Expr;
  scope: string[];
  scopeSpan: Span;
  body: Stmt[];
  span: Span;
}

/** `if cond { ... } else { ... }`: decided at compile time from hyperparameters. */
export interface IfStmt {
  kind: "if";
  cond: Expr;
  then: Stmt[];
  else?: Stmt[];
  span: Span;
}

export interface ReturnStmt {
  kind: "return";
  value: Expr;
  span: Span;
}

// ---- top level ---------------------------------------------------------------

export interface FnParam {
  name: string;
  type?: TypeExpr;
  default?: Expr;
  span: Span;
}

export interface FnDef {
  kind: "fn";
  name: string;
  nameSpan: Span;
  params: FnParam[];
  body: Stmt[];
  span: Span;
}

export interface ModelDef {
  kind: "model";
  name: string;
  nameSpan: Span;
  body: Stmt[];
  /** `model tiny = gpt2 { d = 32, layers = 2 }`: another model with some parameters changed. */
  derived?: { base: string; baseSpan: Span; values: ParamValueAst[] };
  span: Span;
}

/** `name = expr` in a preset or a derived model. */
export interface ParamValueAst {
  name: string;
  value: Expr;
  span: Span;
}

/** `preset medium { d = 1024, layers = 24 }`: a named set of parameter values. */
export interface PresetDef {
  kind: "preset";
  name: string;
  nameSpan: Span;
  values: ParamValueAst[];
  span: Span;
}

export interface ImportDecl {
  kind: "import";
  path: string;
  span: Span;
}

export type TopLevel = ImportDecl | FnDef | ModelDef | PresetDef;

/** Comments are kept aside (not in the tree) so the formatter can put them back. */
export interface Comment {
  text: string;
  span: Span;
}

export interface ModuleAst {
  file: string;
  items: TopLevel[];
  comments: Comment[];
}
