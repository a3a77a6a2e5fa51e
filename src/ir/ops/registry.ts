// The one op registry: every op the IR knows, by name.
import { elementwiseOps } from "./elementwise.js";
import { indexOps } from "./index.js";
import { matmulOp } from "./matmul.js";
import { movementOps } from "./movement.js";
import { randomOps } from "./random.js";
import { reduceOps } from "./reduce.js";
import { sourceOps } from "./source.js";
import type { OpDef } from "./types.js";

const registry = new Map<string, OpDef>();
for (const op of [
  ...sourceOps,
  ...elementwiseOps,
  ...reduceOps,
  matmulOp,
  ...movementOps,
  ...indexOps,
  ...randomOps,
])
  registry.set(op.name, op);

export function getOp(name: string): OpDef {
  const op = registry.get(name);
  if (!op) throw new Error(`unknown op '${name}'`);
  return op;
}

export function hasOp(name: string): boolean {
  return registry.has(name);
}

export function allOps(): OpDef[] {
  return [...registry.values()];
}
