// gptc's IR as a readable PyTorch module (model.py): one Python line per op of
// the model's graph with the loss, grouped under comments that quote the spec
// line each group comes from. Parameters live in nested modules named as the
// checkpoint keys (h.0.attn.c_attn.weight), so `state_dict()` has gptc's keys
// (for GPT-2, Hugging Face's) and a gptc model.safetensors loads as is.
import { dimValue, type Dim } from "../../ir/dims.js";
import type { Graph, Node } from "../../ir/graph.js";
import type { DType } from "../../ir/ops/types.js";
import type { Span } from "../../dsl/source.js";
import { rngKeyInput } from "../../ir/ops/random.js";
import { checkMapped, dimSources, ExportError } from "../common.js";
import { modelHelpers } from "./helpers-py.js";

const keywords = new Set(
  (
    "False None True and as assert async await break class continue def del elif else except finally for from " +
    "global if import in is lambda nonlocal not or pass raise return try while with yield match case"
  ).split(" "),
);
/** Names of model.py's own that an input may not take. */
const reserved = new Set(["self", "torch", "math", "nn", "F", "out"]);

/** A Python string literal (JSON's escapes are Python's). */
export const pyStr = (s: string) => JSON.stringify(s);

/** A float as Python: `0.5`, `3.0`, `-math.inf`. */
export function pyFloat(v: number): string {
  if (Number.isNaN(v)) return "math.nan";
  if (!Number.isFinite(v)) return v > 0 ? "math.inf" : "-math.inf";
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/** A weight as the spec declares it (what gptc's WeightSpec holds). */
export interface WeightDecl {
  key: string;
  shape: number[];
  init: string;
  std: number;
}

/** Text for a one-line Python comment: control characters (newlines) dropped. */
export const pyComment = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, " ");

/** Quotes one line of the spec for a comment: control characters dropped. */
export type Quote = (span: Span) => string | undefined;

interface Emitter {
  graph: Graph;
  v(id: number): string;
  /** Operand as a tensor: constants become 0-d tensors on the model's device. */
  tensor(id: number): string;
  /** Operand as `dtype`, cast only where the IR's type differs. */
  as(id: number, dtype: DType): string;
  dim(d: Dim): string;
  shape(s: readonly Dim[]): string;
}

const torchDtype: Record<DType, string> = {
  f32: "torch.float32",
  i32: "torch.int64",
  bool: "torch.bool",
};

type Line = (n: Node, e: Emitter) => string;

const fn =
  (name: string): Line =>
  (n, e) =>
    `${name}(${e.as(n.inputs[0], "f32")})`;

/** Infix arithmetic: booleans count as integers, as in the IR. */
const infix =
  (op: string): Line =>
  (n, e) => {
    const [a, b] = n.inputs.map((i) =>
      e.graph.type(i).dtype === "bool" ? e.as(i, "i32") : e.v(i),
    );
    return `${a} ${op} ${b}`;
  };

const tuple = (xs: (string | number)[]) => (xs.length === 1 ? `(${xs[0]},)` : `(${xs.join(", ")})`);
const axes = (n: Node) => n.attrs.axes as number[];
const keepdim = (n: Node) => (n.attrs.keepdim ? "True" : "False");

const lines: Record<string, Line> = {
  dim: (n, e) => `torch.tensor(float(${e.dim(n.attrs.dim as Dim)}), device=_dev)`,
  arange: (n, e) => `torch.arange(${e.dim(n.attrs.n as Dim)}, device=_dev)`,
  causal_mask: (n, e) => {
    const q = e.dim(n.attrs.q as Dim);
    const k = e.dim(n.attrs.k as Dim);
    return `_causal_mask(${q}, ${k}, ${k} - ${q}, _dev)`;
  },
  neg: (n, e) => `-${e.as(n.inputs[0], "f32")}`,
  exp: fn("torch.exp"),
  log: fn("torch.log"),
  tanh: fn("torch.tanh"),
  sqrt: fn("torch.sqrt"),
  rsqrt: fn("torch.rsqrt"),
  relu: fn("torch.relu"),
  sin: fn("torch.sin"),
  cos: fn("torch.cos"),
  abs: fn("torch.abs"),
  cast: (n, e) => `${e.v(n.inputs[0])}.float()`,
  detach: (n, e) => `${e.v(n.inputs[0])}.detach()`,
  add: infix("+"),
  sub: infix("-"),
  mul: infix("*"),
  div: infix("/"),
  pow: (n, e) => `torch.pow(${e.tensor(n.inputs[0])}, ${e.v(n.inputs[1])})`,
  maximum: (n, e) =>
    `torch.maximum(${e.as(n.inputs[0], n.type.dtype)}, ${e.as(n.inputs[1], n.type.dtype)})`,
  minimum: (n, e) =>
    `torch.minimum(${e.as(n.inputs[0], n.type.dtype)}, ${e.as(n.inputs[1], n.type.dtype)})`,
  lt: infix("<"),
  le: infix("<="),
  gt: infix(">"),
  ge: infix(">="),
  eq: infix("=="),
  ne: infix("!="),
  where: (n, e) => {
    const [c, x, y] = n.inputs;
    const cond = e.graph.type(c).dtype === "bool" ? e.v(c) : `${e.tensor(c)} != 0`;
    return `torch.where(${cond}, ${e.as(x, n.type.dtype)}, ${e.as(y, n.type.dtype)})`;
  },
  sum: (n, e) =>
    axes(n).length === 0
      ? e.as(n.inputs[0], "f32")
      : `torch.sum(${e.as(n.inputs[0], "f32")}, dim=${tuple(axes(n))}, keepdim=${keepdim(n)})`,
  mean: (n, e) =>
    axes(n).length === 0
      ? e.as(n.inputs[0], "f32")
      : `torch.mean(${e.as(n.inputs[0], "f32")}, dim=${tuple(axes(n))}, keepdim=${keepdim(n)})`,
  max: (n, e) =>
    axes(n).length === 0
      ? e.v(n.inputs[0])
      : `torch.amax(${e.v(n.inputs[0])}, dim=${tuple(axes(n))}, keepdim=${keepdim(n)})`,
  matmul: (n, e) => `${e.as(n.inputs[0], "f32")} @ ${e.as(n.inputs[1], "f32")}`,
  reshape: (n, e) => `${e.v(n.inputs[0])}.reshape(${e.shape(n.attrs.shape as Dim[])})`,
  permute: (n, e) => `${e.v(n.inputs[0])}.permute(${(n.attrs.perm as number[]).join(", ")})`,
  expand: (n, e) => `${e.tensor(n.inputs[0])}.expand(${e.shape(n.attrs.shape as Dim[])})`,
  slice: (n, e) => {
    const { axis, start, end } = n.attrs as { axis: number; start: number; end: number };
    return `${e.v(n.inputs[0])}.narrow(${axis}, ${start}, ${end - start})`;
  },
  pad: (n, e) => {
    const { axis, before, after } = n.attrs as { axis: number; before: number; after: number };
    return `_pad(${e.v(n.inputs[0])}, ${axis}, ${before}, ${after})`;
  },
  concat: (n, e) =>
    `torch.cat([${n.inputs.map((i) => e.as(i, n.type.dtype)).join(", ")}], dim=${n.attrs.axis as number})`,
  gather: (n, e) => `${e.v(n.inputs[0])}[${e.v(n.inputs[1])}]`,
  // gptc keys its masks by Philox (ir/ops/random.ts); PyTorch draws its own, with
  // the same distribution: 0 with probability p, else 1 / (1 - p); 1 in eval().
  dropout_mask: (n, e) =>
    `_dropout_mask(self.training, [${e.shape(n.attrs.shape as Dim[])}], ${pyFloat(n.attrs.p as number)}, _dev)`,
  take: (n, e) =>
    `torch.gather(${e.v(n.inputs[0])}, -1, ${e.v(n.inputs[1])}.unsqueeze(-1)).squeeze(-1)`,
};

/** The IR ops the PyTorch exporter maps (inputs, weights and constants are named, not computed). */
export const pytorchOps: ReadonlySet<string> = new Set([
  ...Object.keys(lines),
  "input",
  "weight",
  "const",
]);

/** Input names must be Python identifiers that do not shadow model.py's own names. */
function checkInputName(name: string): void {
  if (
    !/^[A-Za-z][A-Za-z0-9_]*$/.test(name) ||
    keywords.has(name) ||
    reserved.has(name) ||
    /^t\d+$/.test(name)
  )
    throw new ExportError(
      `input '${name}' cannot be a Python argument name in the PyTorch export: rename it (letters, digits and _, not a Python keyword)`,
    );
}

/** Ids of the nodes that depend on `root` (an input), `root` included. */
function dependents(graph: Graph, root: number): Set<number> {
  const out = new Set([root]);
  for (const n of graph.nodes) if (n.inputs.some((i) => out.has(i))) out.add(n.id);
  return out;
}

export interface ModuleSource {
  /** The spec, as its comment names it. */
  spec: string;
  /** The model's name. */
  name: string;
  weights: WeightDecl[];
  /** The graph with the loss (or the forward graph of a model without one). */
  graph: Graph;
  quote: Quote;
}

/** The text of model.py. */
export function pytorchModule(src: ModuleSource): string {
  const { graph } = src;
  checkMapped(graph, pytorchOps, "PyTorch");
  const sources = dimSources(graph);
  // The dropout key is gptc's: model.py's masks come from torch's generator.
  const inputs = graph.nodesOf("input").filter((n) => n.attrs.name !== rngKeyInput);
  inputs.forEach((n) => checkInputName(n.attrs.name as string));
  const logits = graph.outputs.filter((o) => o.name !== "loss");
  const loss = graph.outputs.find((o) => o.name === "loss");
  // The loss's own input (targets) is optional: forward() without it returns logits only.
  const lossOnly = new Set<number>();
  for (const n of inputs)
    if (loss && !logits.some((o) => dependents(graph, n.id).has(o.id)))
      for (const id of dependents(graph, n.id)) lossOnly.add(id);

  const symVar = (s: string) =>
    /^[A-Z][A-Za-z0-9]*$/.test(s) && !keywords.has(s) ? s : `_dim_${s}`;
  const dim = (d: Dim): string => {
    const v = dimValue(d);
    if (v !== undefined) return String(v);
    return [...d]
      .map(([k, c]) => {
        const syms = k ? k.split("*").map(symVar) : [];
        return k === "" ? String(c) : [...(c === 1 ? [] : [String(c)]), ...syms].join(" * ");
      })
      .join(" + ")
      .replace(/\+ -/g, "- ");
  };
  const consts = new Map(graph.nodesOf("const").map((n) => [n.id, n.attrs.value as number]));
  const e: Emitter = {
    graph,
    v: (id) => (consts.has(id) ? pyFloat(consts.get(id)!) : (inputName.get(id) ?? `t${id}`)),
    tensor: (id) =>
      consts.has(id) ? `torch.tensor(${pyFloat(consts.get(id)!)}, device=_dev)` : e.v(id),
    as: (id, dtype) => {
      const t = graph.type(id).dtype;
      if (consts.has(id))
        return dtype === "f32" ? e.tensor(id) : `${e.tensor(id)}.to(${torchDtype[dtype]})`;
      if (t === dtype) return e.v(id);
      return dtype === "f32" ? `${e.v(id)}.float()` : `${e.v(id)}.to(${torchDtype[dtype]})`;
    },
    dim,
    shape: (s) => s.map(dim).join(", "),
  };
  const inputName = new Map(inputs.map((n) => [n.id, n.attrs.name as string]));

  const body: string[] = [];
  const emit = (ids: Iterable<number>) => {
    let last = "";
    for (const id of ids) {
      const n = graph.node(id);
      if (n.op === "input" || n.op === "const") continue;
      const where = n.span ? `${n.span.file}:${n.span.line}` : "";
      if (where !== last && n.span) {
        const text = src.quote(n.span);
        body.push(pyComment(`        # ${where}${text ? `: ${text}` : ""}`));
        last = where;
      }
      const rhs = n.op === "weight" ? `_w(${pyStr(n.attrs.name as string)})` : lines[n.op](n, e);
      body.push(`        t${id} = ${rhs}`);
    }
  };
  const order = graph.nodes.map((n) => n.id);
  emit(order.filter((id) => !lossOnly.has(id)));
  const ret = (o: { id: number }) => e.tensor(o.id);
  const outs = `{${logits.map((o) => `${pyStr(o.name)}: ${ret(o)}`).join(", ")}}`;
  const optional = inputs.filter((n) => lossOnly.has(n.id)).map((n) => n.attrs.name as string);
  if (loss) {
    body.push(`        if ${optional.map((s) => `${s} is None`).join(" or ") || "False"}:`);
    body.push(`            return ${outs}`);
    emit(order.filter((id) => lossOnly.has(id)));
    body.push(
      `        return {${[...logits, loss].map((o) => `${pyStr(o.name)}: ${ret(o)}`).join(", ")}}`,
    );
  } else body.push(`        return ${outs}`);

  const args = inputs.map((n) => {
    const name = n.attrs.name as string;
    return optional.includes(name) ? `${name}=None` : name;
  });
  const binds = [...sources.values()].map(
    (s) => `        ${symVar(s.symbol)} = ${s.input}.shape[${s.axis}]`,
  );
  const weightRows = src.weights.map(
    (w) => `    (${pyStr(w.key)}, ${tuple(w.shape)}, ${pyStr(w.init)}, ${pyFloat(w.std)}),`,
  );
  return `# model.py: ${src.name}, generated by gptc from ${pyComment(src.spec)}. Regenerate it rather than edit it.
#
# Each line of forward() is one op of gptc's IR (functions inlined, \`repeat\`
# unrolled); the comments quote the spec line the ops below them come from.
# Parameter keys are gptc's checkpoint keys, so model.state_dict() loads and
# saves gptc's model.safetensors as it is. Runs on torch >= 1.13.
import math

import torch
from torch import nn

${modelHelpers}

# key, shape, initializer (normal, zeros, ones), standard deviation
WEIGHTS = [
${weightRows.join("\n")}
]

# The model's inputs, in order; the last ones may be None (forward returns no loss).
INPUTS = [${inputs.map((n) => pyStr(n.attrs.name as string)).join(", ")}]


class Model(nn.Module):
    """${src.name}, generated by gptc."""

    def __init__(self):
        super().__init__()
        for key, shape, _init, _std in WEIGHTS:
            _Scope.add_parameter(self, key, nn.Parameter(torch.empty(shape)))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """Initializes every weight as the spec declares it."""
        for key, _shape, init, std in WEIGHTS:
            p = self.get_parameter(key)
            if init == "normal":
                p.normal_(0.0, std)
            elif init == "ones":
                p.fill_(1.0)
            else:
                p.zero_()

    def forward(self, ${args.join(", ")}):
        """${inputs.map((n) => `${n.attrs.name as string}: ${n.type.dtype === "f32" ? "float" : "int64"} tensor`).join("; ")}. Returns a dict of outputs${loss ? " (with the loss when targets are given)" : ""}."""
        _w = self.get_parameter
        _dev = ${inputs.length ? `${inputName.get(inputs[0].id)}.device` : "None"}
${binds.join("\n")}
${body.join("\n")}
`;
}
