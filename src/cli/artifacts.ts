// Everything `gptc compile` can write, as named texts: the same function feeds
// the CLI and the golden tests, so what the tests pin is what users see.
import { stripSpans } from "../dsl/ast-json.js";
import { countFlops } from "../ir/cost.js";
import type { Lowered } from "../ir/lower.js";
import { getOp } from "../ir/ops/registry.js";
import { fuse, printSchedule, type Schedule } from "../ir/passes/fuse.js";
import { formatBytes, planMemory, printMemoryPlan, type MemoryPlan } from "../ir/passes/memory.js";
import { compileGraphs, type CompiledGraphs } from "../ir/pipeline.js";
import { summarize, type ModelSummary } from "../ir/summary.js";
import { printGraph } from "../ir/text.js";
import type { Program } from "../dsl/load.js";

export const artifactKinds = [
  "ast",
  "ir",
  "ir-opt",
  "ir-train",
  "kernels",
  "plan",
  "summary",
] as const;
export type ArtifactKind = (typeof artifactKinds)[number];

export const artifactFile: Record<ArtifactKind, string> = {
  ast: "ast.json",
  ir: "forward.ir",
  "ir-opt": "forward-opt.ir",
  "ir-train": "train.ir",
  kernels: "kernels.txt",
  plan: "plan.txt",
  summary: "summary.json",
};

export interface CompileSummary extends ModelSummary {
  batch: number;
  seq: number;
  flopsPerTokenForward: number;
  flopsPerTokenBackward?: number;
  forward: { ops: number; kernels: number };
  training?: { ops: number; kernels: number };
  memory: {
    activations: number;
    activationsWithoutReuse: number;
    weights: number;
    gradients: number;
    optimizer: number;
    total: number;
  };
}

export interface Compilation {
  graphs: CompiledGraphs;
  forwardSchedule: Schedule;
  trainingSchedule?: Schedule;
  plan: MemoryPlan;
  summary: CompileSummary;
}

/** Binds the model's symbolic dims: B to batch, T to seq, anything else to 1. */
export function bindDims(symbols: string[], batch: number, seq: number): Record<string, number> {
  const b: Record<string, number> = {};
  for (const s of symbols) b[s] = s === "B" ? batch : s === "T" ? seq : 1;
  return b;
}

export function compileModel(l: Lowered, opts: { batch: number; seq: number }): Compilation {
  const graphs = compileGraphs(l);
  const forwardSchedule = fuse(graphs.forwardOpt);
  const trainingSchedule = graphs.training ? fuse(graphs.training) : undefined;
  const bindings = bindDims(l.graph.symbols(), opts.batch, opts.seq);
  const plan = planMemory(trainingSchedule ?? forwardSchedule, bindings, {
    training: !!trainingSchedule,
  });
  const tokens = opts.batch * opts.seq;
  const fwdFlops = countFlops(graphs.forwardOpt, bindings);
  const trainFlops = graphs.training ? countFlops(graphs.training, bindings) : 0;
  const opNodes = (g: { nodes: { op: string }[] }) =>
    g.nodes.filter((n) => getOp(n.op).kind !== "source").length;
  const base = summarize(l);
  const summary: CompileSummary = {
    ...base,
    batch: opts.batch,
    seq: opts.seq,
    flopsPerTokenForward: Math.round(fwdFlops / tokens),
    flopsPerTokenBackward: graphs.training
      ? Math.round((trainFlops - fwdFlops) / tokens)
      : undefined,
    forward: { ops: opNodes(graphs.forwardOpt), kernels: forwardSchedule.kernels.length },
    training: trainingSchedule
      ? { ops: opNodes(graphs.training!), kernels: trainingSchedule.kernels.length }
      : undefined,
    memory: {
      activations: plan.activationBytes,
      activationsWithoutReuse: plan.activationBytesNoReuse,
      weights: plan.weightBytes,
      gradients: plan.gradientBytes,
      optimizer: plan.optimizerBytes,
      total: plan.totalBytes,
    },
  };
  return { graphs, forwardSchedule, trainingSchedule, plan, summary };
}

export function renderArtifact(kind: ArtifactKind, c: Compilation, program: Program): string {
  switch (kind) {
    case "ast":
      return JSON.stringify(stripSpans(program.root), null, 2) + "\n";
    case "ir":
      return printGraph(c.graphs.forward);
    case "ir-opt":
      return printGraph(c.graphs.forwardOpt);
    case "ir-train":
      return c.graphs.training ? printGraph(c.graphs.training) : "# the model declares no loss\n";
    case "kernels":
      return (
        printSchedule(c.forwardSchedule) +
        (c.trainingSchedule ? "\n" + printSchedule(c.trainingSchedule) : "")
      );
    case "plan":
      return printMemoryPlan(c.plan, c.trainingSchedule ?? c.forwardSchedule);
    case "summary":
      return JSON.stringify(c.summary, null, 2) + "\n";
  }
}

export function formatCompileSummary(c: Compilation): string {
  const s = c.summary;
  const m = s.memory;
  const lines = [
    `model ${s.name}: ${s.parameters.toLocaleString("en-US")} parameters`,
    `  FLOPs per token: forward ${s.flopsPerTokenForward.toLocaleString("en-US")}` +
      (s.flopsPerTokenBackward !== undefined
        ? `, backward ${s.flopsPerTokenBackward.toLocaleString("en-US")}`
        : ""),
    `  forward: ${s.forward.ops} ops -> ${s.forward.kernels} kernels` +
      (s.training ? `; training: ${s.training.ops} ops -> ${s.training.kernels} kernels` : ""),
    `  memory at batch ${s.batch}, seq ${s.seq}: activations ${formatBytes(m.activations)} (${formatBytes(m.activationsWithoutReuse)} without reuse), weights ${formatBytes(m.weights)}, gradients ${formatBytes(m.gradients)}, optimizer ${formatBytes(m.optimizer)}; total ${formatBytes(m.total)}`,
  ];
  return lines.join("\n");
}
