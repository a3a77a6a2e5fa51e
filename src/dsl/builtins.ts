// The primitive functions and constants of the language: their names and
// parameters. This is the language's surface; what each one computes is the
// IR's business (src/ir/lower.ts maps them to ops of the registry).

export interface BuiltinParam {
  name: string;
  optional?: boolean;
}

export interface Builtin {
  name: string;
  params: BuiltinParam[];
  doc: string;
}

const p = (name: string, optional = false): BuiltinParam => ({ name, optional });
const unaryMath = ["exp", "log", "tanh", "sqrt", "rsqrt", "relu", "sin", "cos", "abs"];

export const builtins: Builtin[] = [
  ...unaryMath.map((name) => ({ name, params: [p("x")], doc: `elementwise ${name}` })),
  { name: "float", params: [p("x")], doc: "converts ids or a mask to float" },
  { name: "detach", params: [p("x")], doc: "x, with no gradient flowing back through it" },
  { name: "maximum", params: [p("a"), p("b")], doc: "elementwise maximum" },
  { name: "minimum", params: [p("a"), p("b")], doc: "elementwise minimum" },
  {
    name: "sum",
    params: [p("x"), p("axis", true), p("keepdim", true)],
    doc: "sum over an axis (all axes when omitted)",
  },
  {
    name: "mean",
    params: [p("x"), p("axis", true), p("keepdim", true)],
    doc: "mean over an axis (all axes when omitted)",
  },
  {
    name: "max",
    params: [p("x"), p("axis", true), p("keepdim", true)],
    doc: "maximum over an axis (all axes when omitted)",
  },
  {
    name: "reshape",
    params: [p("x"), p("shape")],
    doc: "same elements, new shape (one dim may be -1)",
  },
  { name: "permute", params: [p("x"), p("axes")], doc: "reorders the axes" },
  {
    name: "transpose",
    params: [p("x"), p("a", true), p("b", true)],
    doc: "swaps two axes (the last two by default)",
  },
  {
    name: "split",
    params: [p("x"), p("parts"), p("axis", true)],
    doc: "equal parts along an axis",
  },
  {
    name: "concat",
    params: [p("xs"), p("axis", true)],
    doc: "joins a list of tensors along an axis",
  },
  { name: "arange", params: [p("n")], doc: "the ids 0, 1, ..., n-1" },
  {
    name: "positions",
    params: [p("n")],
    doc: "positions of the n current tokens: 0..n-1, or len..len+n-1 when decoding with a cache",
  },
  {
    name: "cache",
    params: [p("x"), p("axis", true)],
    doc: "keys or values of the current tokens, preceded by those of earlier decoding steps (identity without a cache)",
  },
  {
    name: "causal_mask",
    params: [p("q"), p("k")],
    doc: "[q, k] additive mask: 0 where a query may see a key, -inf elsewhere",
  },
  { name: "where", params: [p("cond"), p("a"), p("b")], doc: "a where cond holds, else b" },
  {
    name: "take",
    params: [p("x"), p("ids")],
    doc: "x[..., ids[...]]: one entry of the last axis per position",
  },
  { name: "dim", params: [p("x"), p("axis")], doc: "the size of an axis" },
  {
    name: "dropout_mask",
    params: [p("x"), p("p")],
    doc: "random mask shaped like x for dropout: 0 with probability p, else 1/(1-p) (Philox, keyed by seed, step, micro-batch, op and element); 1 in evaluation graphs",
  },
  // Initializers: only meaningful after `weight name: [...] =`.
  { name: "normal", params: [p("std")], doc: "initializer: normal distribution with mean 0" },
];

/** Initializers written as bare names: `weight b: [n] = zeros`. */
export const initializerNames = ["zeros", "ones"];

// No prototype: `toString` or `constructor` must not pass for constants (`name in constants`).
export const constants: Record<string, number> = Object.assign(Object.create(null), {
  pi: Math.PI,
  inf: Infinity,
});

export const builtinByName = new Map(builtins.map((b) => [b.name, b]));
