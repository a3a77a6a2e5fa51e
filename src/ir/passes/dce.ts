// Dead-code elimination: keeps what the outputs need (optionally only some outputs).
import type { Graph } from "../graph.js";
import { rebuild } from "./rebuild.js";

export function liveNodes(g: Graph, outputs = g.outputs.map((o) => o.id)): Set<number> {
  const live = new Set<number>();
  const stack = [...outputs];
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...g.nodes[id].inputs);
  }
  return live;
}

/** Removes nodes no output depends on; `keepOutputs` selects outputs by name. */
export function dce(g: Graph, keepOutputs?: (name: string) => boolean): Graph {
  const outputs = g.outputs.filter((o) => !keepOutputs || keepOutputs(o.name));
  const live = liveNodes(
    g,
    outputs.map((o) => o.id),
  );
  const { graph } = rebuild(g, undefined, (n) => live.has(n.id));
  const kept = graph.outputs.filter((o) => outputs.some((k) => k.name === o.name));
  graph.outputs.splice(0, graph.outputs.length, ...kept);
  return graph;
}
