// Constant folding and algebraic simplification. Every rewrite is exact (it
// changes no value, not even a rounding), so the pass preserves meaning bit for bit.
import { dimValue, shapeEq, type Dim } from "../dims.js";
import type { Graph } from "../graph.js";
import { transposeLast } from "../ops/matmul.js";
import { getOp } from "../ops/registry.js";
import { liveNodes } from "./dce.js";
import { rebuild } from "./rebuild.js";

/** Whether `perm` swaps the last two axes and keeps the others. */
function swapsLastTwo(perm: number[]): boolean {
  const r = perm.length;
  return r >= 2 && perm.every((p, i) => p === (i === r - 2 ? r - 1 : i === r - 1 ? r - 2 : i));
}

export function fold(g: Graph): Graph {
  return transposedProducts(simplify(g));
}

function simplify(g: Graph): Graph {
  return rebuild(g, (n, inputs, out) => {
    const node = (i: number) => out.node(i);
    const constValue = (i: number): number | undefined => {
      const m = node(i);
      return m.op === "const" ? (m.attrs.value as number) : undefined;
    };
    const sameAs = (i: number) => {
      const t = out.type(i);
      return t.dtype === n.type.dtype && shapeEq(t.shape, n.type.shape);
    };
    const def = getOp(n.op);

    // A size known at compile time is a constant.
    if (n.op === "dim") {
      const v = dimValue(n.attrs.dim as Dim);
      if (v !== undefined) return out.op("const", [], { value: v }, n.span);
    }
    // Elementwise ops on constants only.
    if (def.kind === "elementwise" && def.scalar && inputs.length > 0) {
      const vs = inputs.map(constValue);
      if (vs.every((v) => v !== undefined) && n.type.shape.length === 0 && n.type.dtype === "f32")
        return out.op("const", [], { value: def.scalar(...(vs as number[])) }, n.span);
    }
    const [a, b] = inputs;
    switch (n.op) {
      case "add":
        if (constValue(b) === 0 && sameAs(a)) return a;
        if (constValue(a) === 0 && sameAs(b)) return b;
        break;
      case "sub":
        if (constValue(b) === 0 && sameAs(a)) return a;
        break;
      case "mul":
        if (constValue(b) === 1 && sameAs(a)) return a;
        if (constValue(a) === 1 && sameAs(b)) return b;
        break;
      case "div":
        if (constValue(b) === 1 && sameAs(a)) return a;
        break;
      case "neg":
        // neg always gives f32: -(-x) is x only when x is f32 already.
        if (node(a).op === "neg" && sameAs(node(a).inputs[0])) return node(a).inputs[0];
        break;
      case "cast":
        if (out.type(a).dtype === "f32") return a;
        break;
      case "reshape":
      case "expand":
        if (sameAs(a)) return a;
        if (n.op === "reshape" && node(a).op === "reshape")
          return out.op("reshape", [node(a).inputs[0]], n.attrs, n.span);
        break;
      case "permute": {
        const perm = n.attrs.perm as number[];
        if (perm.every((p, i) => p === i)) return a;
        if (node(a).op === "permute") {
          const inner = node(a).attrs.perm as number[];
          const composed = perm.map((p) => inner[p]);
          if (composed.every((p, i) => p === i)) return node(a).inputs[0];
          return out.op("permute", [node(a).inputs[0]], { perm: composed }, n.span);
        }
        break;
      }
    }
    return undefined;
  }).graph;
}

/**
 * (A B)ᵀ = Bᵀ Aᵀ, the same products summed in the same order: the transposes
 * become operand strides a GEMM reads for free, where a transposed product is
 * a copy gathering along columns (the tied embedding's gradient: a
 * [50257, 256] transpose per step). Only for a product with no other use
 * (else it would be computed twice); uses are counted over live nodes of the
 * simplified graph, where aliases (x*1, same-shape reshapes) are resolved.
 */
function transposedProducts(g: Graph): Graph {
  const live = liveNodes(g);
  const uses = new Map<number, number>();
  for (const id of live) for (const i of g.nodes[id].inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  for (const o of g.outputs) uses.set(o.id, (uses.get(o.id) ?? 0) + 1);
  return rebuild(g, (n, inputs, out) => {
    if (n.op !== "permute" || !swapsLastTwo(n.attrs.perm as number[])) return undefined;
    const product = out.node(inputs[0]);
    if (product.op !== "matmul" || uses.get(n.inputs[0]) !== 1) return undefined;
    const transposed = (x: number) => {
      const m = out.node(x);
      if (m.op === "permute" && swapsLastTwo(m.attrs.perm as number[])) return m.inputs[0];
      return transposeLast(out, x);
    };
    const [x, y] = product.inputs;
    // New nodes carry the transpose's source position.
    out.defaultSpan = n.span;
    try {
      return out.op("matmul", [transposed(y), transposed(x)]);
    } finally {
      out.defaultSpan = undefined;
    }
  }).graph;
}
