// Checks a graph's invariants: dense ids in topological order, known ops with
// the right arity, stored types equal to what each op's rule computes, unique
// input and weight names, outputs that exist. Passes run it on their results in tests.
import { getOp, hasOp } from "../ops/registry.js";
import type { Graph } from "../graph.js";
import { formatType } from "../text.js";

export function verify(g: Graph): string[] {
  const problems: string[] = [];
  const names = new Map<string, number>();
  g.nodes.forEach((n, idx) => {
    const at = `%${idx} (${n.op})`;
    if (n.id !== idx) problems.push(`${at}: id ${n.id} is out of place`);
    if (!hasOp(n.op)) return problems.push(`${at}: unknown op`);
    const def = getOp(n.op);
    if (def.arity !== "many" && n.inputs.length !== def.arity)
      problems.push(`${at}: takes ${def.arity} inputs, has ${n.inputs.length}`);
    for (const i of n.inputs)
      if (!(i >= 0 && i < idx)) problems.push(`${at}: input %${i} is not an earlier node`);
    if (problems.length) return;
    try {
      const t = def.type(
        n.inputs.map((i) => g.nodes[i].type),
        n.attrs,
      );
      if (formatType(t) !== formatType(n.type))
        problems.push(`${at}: stored type ${formatType(n.type)}, rule gives ${formatType(t)}`);
    } catch (e) {
      problems.push(`${at}: ${(e as Error).message}`);
    }
    if (n.op === "input" || n.op === "weight") {
      const key = `${n.op} ${n.attrs.name}`;
      if (names.has(key))
        problems.push(`${at}: ${key} is declared again (first %${names.get(key)})`);
      names.set(key, idx);
    }
  });
  const outs = new Set<string>();
  for (const o of g.outputs) {
    if (!g.nodes[o.id]) problems.push(`output ${o.name}: no node %${o.id}`);
    if (outs.has(o.name)) problems.push(`output ${o.name} is declared twice`);
    outs.add(o.name);
  }
  return problems;
}
