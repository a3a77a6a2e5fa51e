// The tensor IR: an SSA graph. Each node is one op of the registry applied to
// earlier nodes; its type (dtype and symbolic shape) is computed when it is added,
// so a graph that exists is a graph whose shapes check.
import type { Span } from "../dsl/source.js";
import { getOp } from "./ops/registry.js";
import type { Attrs, Builder, Node, TypeInfo } from "./ops/types.js";

export type { Node, TypeInfo, Attrs } from "./ops/types.js";

export interface GraphOutput {
  name: string;
  id: number;
}

export class Graph implements Builder {
  readonly nodes: Node[] = [];
  readonly outputs: GraphOutput[] = [];
  /** Span attached to nodes added without one (set by passes building on a forward node). */
  defaultSpan: Span | undefined;

  constructor(readonly name: string) {}

  /** Appends `op(inputs)`; throws ShapeError when the op's shape rule rejects the inputs. */
  op(name: string, inputs: number[], attrs: Attrs = {}, span?: Span): number {
    const def = getOp(name);
    if (def.arity !== "many" && inputs.length !== def.arity)
      throw new Error(`op ${name} takes ${def.arity} inputs, got ${inputs.length}`);
    for (const i of inputs)
      if (!this.nodes[i]) throw new Error(`op ${name}: input %${i} does not exist`);
    const type = def.type(
      inputs.map((i) => this.nodes[i].type),
      attrs,
    );
    const node: Node = {
      id: this.nodes.length,
      op: name,
      inputs,
      attrs,
      type,
      span: span ?? this.defaultSpan,
    };
    this.nodes.push(node);
    return node.id;
  }

  type(id: number): TypeInfo {
    return this.nodes[id].type;
  }

  node(id: number): Node {
    return this.nodes[id];
  }

  scalar(value: number): number {
    return this.op("const", [], { value });
  }

  output(name: string, id: number): void {
    this.outputs.push({ name, id });
  }

  /** Nodes of one op, in order (e.g. every weight). */
  nodesOf(op: string): Node[] {
    return this.nodes.filter((n) => n.op === op);
  }

  /** Symbolic dims used by the graph's inputs, in order of first appearance. */
  symbols(): string[] {
    const out = new Set<string>();
    for (const n of this.nodesOf("input"))
      for (const d of n.type.shape)
        for (const k of d.keys()) if (k) for (const s of k.split("*")) out.add(s);
    return [...out];
  }
}
