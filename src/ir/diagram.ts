// Diagrams of a model at three levels, as Mermaid flowcharts or Graphviz dot:
//
//   blocks   the model body as a paper's figure draws it, from the AST: inputs,
//            each call of a user function at the model level ("layernorm (ln_1)"),
//            residual adds and other model-level ops as small nodes, outputs and
//            the loss; a `repeat` body is drawn once, as a cluster.
//   ops      one node per op of an IR graph (the optimized forward graph).
//   kernels  one node per fused kernel of a schedule.
//
// Every builder returns a Diagram (plain data); toMermaid and toDot print it.
// Node and cluster ids are generated (n0, n1, ..., c0, ...); user text (function
// names, scopes, weight keys) only ever appears inside escaped labels.
import type * as A from "../dsl/ast.js";
import { constants } from "../dsl/builtins.js";
import { formatExpr, formatType as formatTypeExpr } from "../dsl/format.js";
import type { Graph } from "./graph.js";
import type { ParamValue } from "./lower.js";
import type { Schedule } from "./passes/fuse.js";
import { formatType } from "./text.js";

// ---- the diagram model --------------------------------------------------------

/**
 * What a node stands for, which decides how it is drawn: a model input, a
 * weight, a block (a function call, or an op of the ops diagram), a small
 * model-level op (e.g. a residual add), an output, the loss, or a fused kernel.
 */
export type NodeShape = "input" | "weight" | "block" | "op" | "output" | "loss" | "kernel";

/** A box in a diagram. */
export interface DiagramNode {
  /** Generated: n0, n1, ... */
  id: string;
  /** Free text (may hold user names); lines separated by "\n". Escaped when printed. */
  label: string;
  /** What the node stands for; decides how it is drawn. */
  shape: NodeShape;
  /** The innermost cluster holding the node. */
  cluster?: string;
}

/** An arrow between two nodes. */
export interface DiagramEdge {
  /** Id of the node the value comes from. */
  from: string;
  /** Id of the node that takes it. */
  to: string;
  /** Text on the arrow (e.g. "tied weight"). */
  label?: string;
  /** Not data flow proper: a tied weight, or a loop-carried value going round again. */
  dashed?: boolean;
  /** Goes back up the drawing (loop-carried): dot leaves it out of the ranking. */
  back?: boolean;
}

/** A box around a group of nodes, e.g. the body of a `repeat`. */
export interface DiagramCluster {
  /** Generated: c0, c1, ... */
  id: string;
  /** Free text (may hold user names). Escaped when printed. */
  label: string;
  /** Id of the cluster it sits in; absent at the top level. */
  parent?: string;
}

/** A model drawn as plain data: what `toMermaid` and `toDot` print. */
export interface Diagram {
  /** e.g. "gpt2 (blocks)". */
  title: string;
  /** Every node, in order of creation (ids n0, n1, ...). */
  nodes: DiagramNode[];
  /** Every edge, without duplicates. */
  edges: DiagramEdge[];
  /** Every cluster; a node names its innermost one. */
  clusters: DiagramCluster[];
}

/** How a diagram is printed: a Mermaid flowchart or Graphviz dot. */
export type DiagramFormat = "mermaid" | "dot";
export const diagramFormats: readonly DiagramFormat[] = ["mermaid", "dot"];
/**
 * What a diagram shows: "blocks" (the model body as a paper draws it, from the
 * spec), "ops" (one node per op of the optimized forward graph) or "kernels"
 * (one node per fused kernel).
 */
export type DiagramLevel = "blocks" | "ops" | "kernels";
export const diagramLevels: readonly DiagramLevel[] = ["blocks", "ops", "kernels"];

/** Builds a diagram: generated ids, de-duplicated edges. */
class DiagramBuilder {
  readonly d: Diagram;
  private readonly edgeKeys = new Set<string>();

  constructor(title: string) {
    this.d = { title, nodes: [], edges: [], clusters: [] };
  }

  node(label: string, shape: NodeShape, cluster?: string): string {
    const id = `n${this.d.nodes.length}`;
    this.d.nodes.push(cluster === undefined ? { id, label, shape } : { id, label, shape, cluster });
    return id;
  }

  cluster(label: string, parent?: string): string {
    const id = `c${this.d.clusters.length}`;
    this.d.clusters.push(parent === undefined ? { id, label } : { id, label, parent });
    return id;
  }

  edge(
    from: string,
    to: string,
    opts: { label?: string; dashed?: boolean; back?: boolean } = {},
  ): void {
    if (from === to) return;
    const key = JSON.stringify([from, to, opts.label ?? "", !!opts.dashed, !!opts.back]);
    if (this.edgeKeys.has(key)) return;
    this.edgeKeys.add(key);
    const e: DiagramEdge = { from, to };
    if (opts.label !== undefined) e.label = opts.label;
    if (opts.dashed) e.dashed = true;
    if (opts.back) e.back = true;
    this.d.edges.push(e);
  }
}

// ---- escaping ------------------------------------------------------------------

/** Line breaks of any kind: CRLF, LF, CR, NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR. */
const lineBreak = /\r\n|[\n\r\u0085\u2028\u2029]/;

/** Characters kept as they are in a Mermaid label; everything else becomes `#code;`. */
const mermaidSafeAscii = /[A-Za-z0-9 _.,=+\-*/()[\]%@!?'^~]/;
/** Printable non-ASCII text (letters, marks, digits, symbols, punctuation) is kept. */
const printable = /[\p{L}\p{M}\p{N}\p{S}\p{P}]/u;

function isLoneSurrogate(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return ch.length === 1 && c >= 0xd800 && c <= 0xdfff;
}

/**
 * Text for a quoted Mermaid label (`n0["..."]`, `|"..."|`, `subgraph c0["..."]`).
 * Mermaid has no backslash escapes; it decodes entity codes `#34;` anywhere in the
 * text, so every character outside a small safe set (quotes, backticks, `#`, `&`,
 * `;`, `<>{}|$\`, control and format characters) is written as a decimal entity
 * code, and line breaks become `<br>`. `:` is encoded too: Mermaid's entity pass
 * rewrites lines that match `style...:...#...;` before parsing.
 */
export function escapeMermaid(text: string): string {
  return text
    .split(lineBreak)
    .map((line) => {
      let out = "";
      for (const ch of line) {
        if (isLoneSurrogate(ch)) out += "#65533;";
        else if (ch.length === 1 && ch.charCodeAt(0) < 0x80)
          out += mermaidSafeAscii.test(ch) ? ch : `#${ch.charCodeAt(0)};`;
        else out += printable.test(ch) ? ch : `#${ch.codePointAt(0)};`;
      }
      return out;
    })
    .join("<br>");
}

/**
 * Text for a double-quoted Graphviz string used as a label. Backslash and quote
 * are backslash-escaped; `{}|<>` too (they are record-label syntax, and `\x` is
 * plain `x` in any other label); `&` becomes `&amp;` (Graphviz decodes entities);
 * control and format characters become numeric entities; line breaks become `\n`.
 */
export function escapeDot(text: string): string {
  return text
    .split(lineBreak)
    .map((line) => {
      let out = "";
      for (const ch of line) {
        if (isLoneSurrogate(ch)) out += "&#65533;";
        else if (ch === "\\" || ch === '"' || "{}|<>".includes(ch)) out += `\\${ch}`;
        else if (ch === "&") out += "&amp;";
        else if (ch === " " || printable.test(ch)) out += ch;
        else out += `&#${ch.codePointAt(0)};`;
      }
      return out;
    })
    .join("\\n");
}

// ---- printers -------------------------------------------------------------------

/** Items of each cluster (and of the top level, key ""), in drawing order. */
function layout(d: Diagram): Map<string, ({ node: DiagramNode } | { cluster: DiagramCluster })[]> {
  const first = new Map<string, number>();
  const parentOf = new Map(d.clusters.map((c) => [c.id, c.parent]));
  d.nodes.forEach((n, i) => {
    for (let c = n.cluster; c !== undefined; c = parentOf.get(c))
      if (!first.has(c)) first.set(c, i);
  });
  const items = new Map<
    string,
    { order: number; item: { node: DiagramNode } | { cluster: DiagramCluster } }[]
  >();
  const push = (
    scope: string,
    order: number,
    item: { node: DiagramNode } | { cluster: DiagramCluster },
  ) => {
    if (!items.has(scope)) items.set(scope, []);
    items.get(scope)!.push({ order, item });
  };
  d.nodes.forEach((n, i) => push(n.cluster ?? "", i, { node: n }));
  d.clusters.forEach((c, i) =>
    push(c.parent ?? "", first.get(c.id) ?? d.nodes.length + i, { cluster: c }),
  );
  const out = new Map<string, ({ node: DiagramNode } | { cluster: DiagramCluster })[]>();
  for (const [scope, list] of items)
    out.set(
      scope,
      list.sort((a, b) => a.order - b.order).map((x) => x.item),
    );
  return out;
}

const mermaidShape: Record<NodeShape, [string, string]> = {
  input: ["([", "])"],
  weight: ["[(", ")]"],
  block: ["[", "]"],
  op: ["((", "))"],
  output: ["[/", "/]"],
  loss: ["{{", "}}"],
  kernel: ["(", ")"],
};

/** A Mermaid flowchart, top to bottom. */
export function toMermaid(d: Diagram): string {
  const lines = ["flowchart TD", `  %% ${escapeMermaid(d.title)}`];
  const items = layout(d);
  const emit = (scope: string, indent: string) => {
    for (const item of items.get(scope) ?? []) {
      if ("node" in item) {
        const [open, close] = mermaidShape[item.node.shape];
        lines.push(`${indent}${item.node.id}${open}"${escapeMermaid(item.node.label)}"${close}`);
      } else {
        lines.push(`${indent}subgraph ${item.cluster.id}["${escapeMermaid(item.cluster.label)}"]`);
        emit(item.cluster.id, indent + "  ");
        lines.push(`${indent}end`);
      }
    }
  };
  emit("", "  ");
  for (const e of d.edges) {
    const arrow = e.dashed ? "-.->" : "-->";
    const label = e.label !== undefined ? `|"${escapeMermaid(e.label)}"|` : "";
    lines.push(`  ${e.from} ${arrow}${label} ${e.to}`);
  }
  return lines.join("\n") + "\n";
}

const dotShape: Record<NodeShape, string> = {
  input: 'shape=ellipse, style=filled, fillcolor="#e8f0fe"',
  weight: 'shape=cylinder, style=filled, fillcolor="#f1f3f4"',
  block: 'shape=box, style="rounded,filled", fillcolor="#fff4e0"',
  op: "shape=circle, margin=0.02",
  output: 'shape=parallelogram, style=filled, fillcolor="#e6f4ea"',
  loss: 'shape=hexagon, style=filled, fillcolor="#fce8e6"',
  kernel: 'shape=box, style="rounded,filled", fillcolor="#fff4e0"',
};

/** A Graphviz digraph, top to bottom; clusters are `subgraph cluster_cN`. */
export function toDot(d: Diagram): string {
  const lines = [
    "digraph gptc {",
    `  graph [rankdir=TB, fontname="Helvetica", labelloc=t, label="${escapeDot(d.title)}"];`,
    '  node [fontname="Helvetica", fontsize=11];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ];
  const items = layout(d);
  const emit = (scope: string, indent: string) => {
    for (const item of items.get(scope) ?? []) {
      if ("node" in item) {
        const n = item.node;
        lines.push(`${indent}${n.id} [label="${escapeDot(n.label)}", ${dotShape[n.shape]}];`);
      } else {
        lines.push(`${indent}subgraph cluster_${item.cluster.id} {`);
        lines.push(`${indent}  label="${escapeDot(item.cluster.label)}";`);
        lines.push(`${indent}  style="rounded,dashed";`);
        emit(item.cluster.id, indent + "  ");
        lines.push(`${indent}}`);
      }
    }
  };
  emit("", "  ");
  for (const e of d.edges) {
    const attrs: string[] = [];
    if (e.label !== undefined) attrs.push(`label="${escapeDot(e.label)}"`);
    if (e.dashed) attrs.push("style=dashed");
    if (e.back) attrs.push("constraint=false");
    lines.push(`  ${e.from} -> ${e.to}${attrs.length ? ` [${attrs.join(", ")}]` : ""};`);
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

export function renderDiagram(d: Diagram, format: DiagramFormat): string {
  return format === "dot" ? toDot(d) : toMermaid(d);
}

// ---- blocks: the model body, from the AST ---------------------------------------------

/** A value flowing through the model body: the diagram nodes it comes from. */
interface Flow {
  srcs: string[];
  /** Variables read as they were when a loop began (their readers get a back edge). */
  reads: { loop: LoopFrame; name: string }[];
  /** A bare weight of a named scope (`wte.weight.T`): no node of its own yet. */
  weight?: string;
}

interface LoopFrame {
  entry: Map<string, string[]>;
  readers: Map<string, Set<string>>;
}

/** Builtins that compute a number from numbers; any other builtin called on no tensor makes one (arange, positions, causal_mask). */
const scalarBuiltins = new Set(["float", "detach", "maximum", "minimum", "dim"]);
const noFlow = (): Flow => ({ srcs: [], reads: [] });
const short = (text: string, max = 32) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

const scalarMath: Record<string, (x: number) => number> = Object.assign(Object.create(null), {
  exp: Math.exp,
  log: Math.log,
  tanh: Math.tanh,
  sqrt: Math.sqrt,
  rsqrt: (x: number) => 1 / Math.sqrt(x),
  sin: Math.sin,
  cos: Math.cos,
  abs: Math.abs,
  relu: (x: number) => Math.max(0, x),
});

export interface BlocksInput {
  /** The model whose body is drawn (for a derived model, the base it derives from). */
  model: A.ModelDef;
  /** User functions: calls of these are blocks; anything else is a builtin. */
  functions: ReadonlyMap<string, A.FnDef>;
  /** Resolved hyperparameters (for repeat counts and `if` conditions). */
  params?: readonly ParamValue[];
  title?: string;
}

/**
 * The model body as blocks: user-function calls at the model level (not their
 * bodies), model-level ops as small nodes, edges following the variables.
 */
export function blocksDiagram(input: BlocksInput): Diagram {
  const b = new DiagramBuilder(input.title ?? input.model.name);
  const params = new Map<string, number | boolean>();
  for (const p of input.params ?? []) params.set(p.name, p.value);
  /** Model-level variables holding numbers (`n = layers * 2`), for repeat counts. */
  const scalars = new Map<string, number | boolean>();
  let env = new Map<string, string[]>();
  /** Blocks by their `as` scope, for weights read by name elsewhere (tied weights). */
  const scopes = new Map<string, string>();
  const loops: LoopFrame[] = [];
  /** Loop indices: names whose value differs per iteration. */
  const indices = new Set<string>();
  let cluster: string | undefined;
  let scopePrefix: string[] = [];

  const constValue = (e: A.Expr): number | boolean | undefined => {
    switch (e.kind) {
      case "number":
        return e.value;
      case "bool":
        return e.value;
      case "name":
        if (env.has(e.name) || indices.has(e.name)) return undefined;
        if (scalars.has(e.name)) return scalars.get(e.name);
        if (params.has(e.name)) return params.get(e.name);
        return e.name in constants ? constants[e.name] : undefined;
      case "unary": {
        const v = constValue(e.operand);
        return typeof v === "number" ? -v : undefined;
      }
      case "call": {
        const f = scalarMath[e.callee];
        if (!f || e.args.length !== 1 || input.functions.has(e.callee)) return undefined;
        const v = constValue(e.args[0].value);
        return typeof v === "number" ? f(v) : undefined;
      }
      case "binary": {
        const l = constValue(e.left);
        const r = constValue(e.right);
        if (l === undefined || r === undefined) return undefined;
        if (e.op === "==") return l === r;
        if (e.op === "!=") return l !== r;
        if (typeof l !== "number" || typeof r !== "number") return undefined;
        switch (e.op) {
          case "+":
            return l + r;
          case "-":
            return l - r;
          case "*":
            return l * r;
          case "/":
            return l / r;
          case "**":
            return l ** r;
          case "<":
            return l < r;
          case "<=":
            return l <= r;
          case ">":
            return l > r;
          case ">=":
            return l >= r;
          default:
            return undefined;
        }
      }
      default:
        return undefined;
    }
  };

  /** The block that owns the weight `path` (its longest scope prefix), if any. */
  const ownerOf = (path: string[]): string | undefined => {
    for (let n = path.length - 1; n > 0; n--) {
      const owner = scopes.get(path.slice(0, n).join("."));
      if (owner) return owner;
    }
    return undefined;
  };
  const memberPath = (e: A.Expr): string[] | undefined =>
    e.kind === "name"
      ? [e.name]
      : e.kind === "member"
        ? memberPath(e.object)?.concat(e.name)
        : undefined;

  /** Draws a dashed edge from the block whose weight `text` names. */
  const tie = (weightExpr: A.Expr | undefined, to: string) => {
    const path = weightExpr && memberPath(weightExpr);
    const owner = path && ownerOf(path);
    if (owner) b.edge(owner, to, { label: "tied weight", dashed: true });
  };

  /** Turns a flow into node ids: a bare weight gets a node of its own. */
  const materialize = (f: Flow, weightExpr?: A.Expr): string[] => {
    if (f.srcs.length > 0 || f.weight === undefined) return f.srcs;
    const id = b.node(f.weight, "weight", cluster);
    tie(weightExpr, id);
    return [id];
  };

  const connect = (flows: { flow: Flow; expr?: A.Expr }[], to: string) => {
    for (const { flow, expr } of flows) {
      for (const s of materialize(flow, expr)) b.edge(s, to);
      for (const r of flow.reads) {
        if (!r.loop.readers.has(r.name)) r.loop.readers.set(r.name, new Set());
        r.loop.readers.get(r.name)!.add(to);
      }
    }
  };

  const opNode = (label: string, parts: { flow: Flow; expr?: A.Expr }[]): Flow => {
    const id = b.node(label, "op", cluster);
    connect(parts, id);
    return { srcs: [id], reads: [] };
  };

  const hasData = (f: Flow) => f.srcs.length > 0;

  const expr = (e: A.Expr): Flow => {
    switch (e.kind) {
      case "number":
      case "string":
      case "bool":
        return noFlow();
      case "name": {
        const srcs = env.get(e.name);
        if (!srcs) return noFlow();
        const reads = loops
          .filter((l) => l.entry.get(e.name) === srcs)
          .map((loop) => ({ loop, name: e.name }));
        return { srcs, reads };
      }
      case "member": {
        const o = expr(e.object);
        if (hasData(o)) return e.name === "T" ? opNode(".T", [{ flow: o }]) : o;
        // `wte.weight`, `wte.weight.T`: a weight of a named scope.
        if (memberPath(e) && !(e.object.kind === "name" && constValue(e.object) !== undefined))
          return { srcs: [], reads: [], weight: formatExpr(e) };
        return o.weight !== undefined ? { ...o, weight: formatExpr(e) } : noFlow();
      }
      case "index": {
        const o = expr(e.object);
        const i = expr(e.index);
        if (!hasData(o) && !hasData(i)) return noFlow();
        if (!hasData(o) && o.weight !== undefined) {
          const f = opNode(`gather ${short(o.weight)}`, [{ flow: i }]);
          tie(e.object, f.srcs[0]);
          return f;
        }
        return opNode("gather", [
          { flow: o, expr: e.object },
          { flow: i, expr: e.index },
        ]);
      }
      case "list": {
        const flows = e.items.map((item) => ({ flow: expr(item), expr: item }));
        if (!flows.some((f) => hasData(f.flow) || f.flow.weight !== undefined)) return noFlow();
        const srcs: string[] = [];
        const reads: Flow["reads"] = [];
        for (const f of flows) {
          srcs.push(...materialize(f.flow, f.expr));
          reads.push(...f.flow.reads);
        }
        return { srcs: [...new Set(srcs)], reads };
      }
      case "unary": {
        const o = expr(e.operand);
        return hasData(o) ? opNode(e.op, [{ flow: o }]) : noFlow();
      }
      case "binary": {
        const l = expr(e.left);
        const r = expr(e.right);
        if (hasData(l) && hasData(r))
          return opNode(e.op, [
            { flow: l, expr: e.left },
            { flow: r, expr: e.right },
          ]);
        if (!hasData(l) && !hasData(r)) {
          if (l.weight === undefined && r.weight === undefined) return noFlow();
          return opNode(e.op, [
            { flow: l, expr: e.left },
            { flow: r, expr: e.right },
          ]);
        }
        // One side is data, the other a constant or a weight: fold it into the label.
        const [data, other, otherExpr] = hasData(l) ? [l, r, e.right] : [r, l, e.left];
        const text = short(formatExpr(otherExpr));
        const label = hasData(l) ? `${e.op} ${text}` : `${text} ${e.op}`;
        const f = opNode(label, [{ flow: data }]);
        if (other.weight !== undefined) tie(otherExpr, f.srcs[0]);
        return f;
      }
      case "call":
        return call(e);
    }
  };

  const call = (e: A.CallExpr): Flow => {
    const args = e.args.map((a) => ({ flow: expr(a.value), expr: a.value }));
    const scope = e.scope?.join(".");
    if (input.functions.has(e.callee)) {
      const id = b.node(scope ? `${e.callee} (${scope})` : e.callee, "block", cluster);
      connect(args, id);
      if (scope) scopes.set([...scopePrefix, scope].join("."), id);
      if (scope && scopePrefix.length) scopes.set(scope, id);
      return { srcs: [id], reads: [] };
    }
    const data = args.filter((a) => hasData(a.flow) || a.flow.weight !== undefined);
    if (data.length === 0 && (e.callee in scalarMath || scalarBuiltins.has(e.callee)))
      return noFlow();
    const label = data.length === 0 ? short(formatExpr({ ...e, scope: undefined })) : e.callee;
    return opNode(scope ? `${label} (${scope})` : label, data);
  };

  const block = (stmts: A.Stmt[]) => {
    for (const s of stmts) stmt(s);
  };

  const stmt = (s: A.Stmt) => {
    switch (s.kind) {
      case "param":
      case "return":
        return;
      case "input": {
        const id = b.node(`${s.name}\n${formatTypeExpr(s.type)}`, "input", cluster);
        env.set(s.name, [id]);
        scalars.delete(s.name);
        return;
      }
      case "weight": {
        const id = b.node(`${s.name}\n${formatTypeExpr(s.type)}`, "weight", cluster);
        env.set(s.name, [id]);
        scalars.delete(s.name);
        return;
      }
      case "assign": {
        const v = constValue(s.value);
        const f = expr(s.value);
        const srcs = materialize(f, s.value);
        for (const t of s.targets) {
          if (v !== undefined && s.targets.length === 1 && srcs.length === 0) {
            scalars.set(t.name, v);
            env.delete(t.name);
          } else {
            scalars.delete(t.name);
            env.set(t.name, srcs);
          }
        }
        return;
      }
      case "output": {
        const label = s.type ? `${s.name}\n${formatTypeExpr(s.type)}` : s.name;
        const flow = expr(s.value);
        const id = b.node(label, "output", cluster);
        connect([{ flow, expr: s.value }], id);
        env.set(s.name, [id]);
        return;
      }
      case "loss": {
        const flow = expr(s.value);
        const id = b.node("loss", "loss", cluster);
        connect([{ flow, expr: s.value }], id);
        return;
      }
      case "repeat": {
        const n = constValue(s.count);
        const times = typeof n === "number" ? `${n}×` : `${short(formatExpr(s.count))} times`;
        const path = [...s.scope, s.index ?? "i"].join(".");
        const outer = cluster;
        const outerPrefix = scopePrefix;
        cluster = b.cluster(`repeat ${times} (${path})`, outer);
        scopePrefix = [...scopePrefix, ...s.scope, s.index ?? "i"];
        const loop: LoopFrame = { entry: new Map(env), readers: new Map() };
        loops.push(loop);
        const shadowed = s.index !== undefined && indices.has(s.index);
        if (s.index !== undefined) indices.add(s.index);
        block(s.body);
        if (s.index !== undefined && !shadowed) indices.delete(s.index);
        loops.pop();
        // Loop-carried values: written in the body, read before that in the body.
        for (const [name, readers] of loop.readers) {
          const now = env.get(name);
          if (!now || now === loop.entry.get(name)) continue;
          for (const from of now)
            for (const to of readers)
              b.edge(from, to, { label: `${name} (next)`, dashed: true, back: true });
        }
        cluster = outer;
        scopePrefix = outerPrefix;
        return;
      }
      case "if": {
        const c = constValue(s.cond);
        if (c !== undefined) {
          if (c) block(s.then);
          else if (s.else) block(s.else);
          return;
        }
        // Not decided by the parameters (e.g. it reads the loop index): draw both branches.
        const before = env;
        const outer = cluster;
        const branch = (label: string, body: A.Stmt[]) => {
          env = new Map(before);
          cluster = b.cluster(label, outer);
          block(body);
          cluster = outer;
          return env;
        };
        const cond = short(formatExpr(s.cond));
        const a = branch(`if ${cond}`, s.then);
        const z = s.else ? branch(`else (not ${cond})`, s.else) : before;
        env = new Map(before);
        for (const name of new Set([...a.keys(), ...z.keys()])) {
          const x = a.get(name);
          const y = z.get(name);
          if (x === y) continue;
          env.set(name, [...new Set([...(x ?? []), ...(y ?? [])])]);
        }
        return;
      }
    }
  };

  block(input.model.body);
  return b.d;
}

// ---- ops: one node per IR op -----------------------------------------------------------

function formatConst(v: unknown): string {
  return typeof v === "number" && Number.isFinite(v) ? String(Number(v.toPrecision(4))) : String(v);
}

/** One node per op of `g` (constants folded into their readers' labels); outputs marked. */
export function opsDiagram(g: Graph, title = `${g.name} (ops)`): Diagram {
  const b = new DiagramBuilder(title);
  const ids = new Map<number, string>();
  for (const n of g.nodes) {
    if (n.op === "const") continue;
    const type = formatType(n.type);
    let label: string;
    let shape: NodeShape = "block";
    if (n.op === "input" || n.op === "weight") {
      label = `%${n.id} ${n.op} ${String(n.attrs.name)}\n${type}`;
      shape = n.op;
    } else {
      const consts = n.inputs
        .filter((i) => g.nodes[i].op === "const")
        .map((i) => formatConst(g.nodes[i].attrs.value));
      label = `%${n.id} ${n.op}\n${type}${consts.length ? `\nconst ${consts.join(", ")}` : ""}`;
    }
    const id = b.node(label, shape);
    ids.set(n.id, id);
    for (const i of new Set(n.inputs)) {
      const from = ids.get(i);
      if (from) b.edge(from, id);
    }
  }
  for (const o of g.outputs) {
    const from = ids.get(o.id);
    const id = b.node(`output ${o.name}`, o.name === "loss" ? "loss" : "output");
    if (from) b.edge(from, id);
  }
  return b.d;
}

// ---- kernels: one node per fused kernel ---------------------------------------------------

/** One node per kernel of `s`; edges from whatever writes each buffer a kernel reads. */
export function kernelsDiagram(s: Schedule, title = `${s.graph.name} (kernels)`): Diagram {
  const g = s.graph;
  const b = new DiagramBuilder(title);
  const writer = new Map<number, string>();
  const bufferNode = (i: number): string => {
    let id = writer.get(i);
    if (id) return id;
    const n = g.nodes[i];
    const type = formatType(n.type);
    id =
      n.op === "input" || n.op === "weight"
        ? b.node(`${String(n.attrs.name)}\n${type}`, n.op)
        : b.node(`%${n.id} ${n.op}\n${type}`, "block");
    writer.set(i, id);
    return id;
  };
  for (const k of s.kernels) {
    const sources = k.inputs.map(bufferNode);
    const id = b.node(`${k.name}\n${k.kind} ${formatType(g.nodes[k.output].type)}`, "kernel");
    writer.set(k.output, id);
    for (const from of sources) b.edge(from, id);
  }
  for (const o of g.outputs) {
    const id = b.node(`output ${o.name}`, o.name === "loss" ? "loss" : "output");
    b.edge(bufferNode(o.id), id);
  }
  return b.d;
}
