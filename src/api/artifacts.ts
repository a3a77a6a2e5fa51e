// Everything `gptc compile` can write, as named texts: the same function feeds
// the CLI and the golden tests, so what the tests pin is what users see.
import { stripSpans } from "../dsl/ast-json.js";
import { countFlops } from "../ir/cost.js";
import type { Lowered } from "../ir/lower.js";
import { getOp } from "../ir/ops/registry.js";
import { assertBindings } from "../ir/passes/bindings.js";
import { emitKernelModule, formatJs, printKernels } from "../codegen/module.js";
import { printDeviceLayouts } from "../codegen/device-layout.js";
import { fuse, printSchedule, type Schedule } from "../ir/passes/fuse.js";
import { formatBytes, planMemory, printMemoryPlan, type MemoryPlan } from "../ir/passes/memory.js";
import { compileGraphs, type CompiledGraphs } from "../ir/pipeline.js";
import { summarize, type ModelSummary } from "../ir/summary.js";
import { printGraph } from "../ir/text.js";
import type { Program } from "../dsl/load.js";

/**
 * The texts `CompiledModel.artifact()` (and `gptc compile --emit`) can produce:
 * the spec's AST as JSON, the forward IR as lowered and optimized, the training
 * IR (forward, loss and gradients), the fused kernels as a listing and as
 * JavaScript, the memory plan, and the compile summary as JSON.
 */
export const artifactKinds = [
  "ast",
  "ir",
  "ir-opt",
  "ir-train",
  "kernels",
  "kernels-js",
  "plan",
  "summary",
] as const;
/** One of {@link artifactKinds}. */
export type ArtifactKind = (typeof artifactKinds)[number];

/** The file name `gptc compile` writes each artifact to in its output folder. */
export const artifactFile: Record<ArtifactKind, string> = {
  ast: "ast.json",
  ir: "forward.ir",
  "ir-opt": "forward-opt.ir",
  "ir-train": "train.ir",
  kernels: "kernels.txt",
  "kernels-js": "kernels.js",
  plan: "plan.txt",
  summary: "summary.json",
};

/**
 * The model summary plus costs at one batch size and sequence length: FLOPs,
 * op and kernel counts, and memory (what the "summary" artifact holds as JSON).
 */
export interface CompileSummary extends ModelSummary {
  /** Sequences per batch (B) the costs are computed for. */
  batch: number;
  /** Tokens per sequence (T) the costs are computed for. */
  seq: number;
  /** FLOPs of the optimized forward graph per token (batch × seq tokens), rounded. */
  flopsPerTokenForward: number;
  /** FLOPs the training graph adds to the forward pass, per token; absent without a loss. */
  flopsPerTokenBackward?: number;
  /** The optimized forward graph. */
  forward: {
    /** Ops computed (sources such as inputs, weights and constants not counted). */
    ops: number;
    /** Kernels the ops are fused into. */
    kernels: number;
  };
  /** The training graph (loss and gradients); absent without a loss. */
  training?: {
    /** Ops computed (sources such as inputs, weights and constants not counted). */
    ops: number;
    /** Kernels the ops are fused into. */
    kernels: number;
  };
  /**
   * Bytes (float32) of the memory plan: the training schedule's where the model
   * has a loss, else the forward one's.
   */
  memory: {
    /** Peak of the activation arena, with buffers reused once dead. */
    activations: number;
    /** What the activations would take if no buffer were reused. */
    activationsWithoutReuse: number;
    /** All weights. */
    weights: number;
    /** All gradients (0 without training). */
    gradients: number;
    /** AdamW's two moments per weight (0 without training). */
    optimizer: number;
    /** Activations, weights, gradients, optimizer state and inputs together. */
    total: number;
  };
}

/** What the compiler made of a model at one batch size and sequence length. */
export interface Compilation {
  /** The forward, optimized, evaluation, training and decode graphs. */
  graphs: CompiledGraphs;
  /** The optimized forward graph fused into kernels. */
  forwardSchedule: Schedule;
  /** The training graph fused into kernels; absent when the model declares no loss. */
  trainingSchedule?: Schedule;
  /** The memory plan (of the training schedule when there is one, else the forward one). */
  plan: MemoryPlan;
  /** Costs and sizes at these dims, as the "summary" artifact writes them. */
  summary: CompileSummary;
}

/** Binds the model's symbolic dims: B to batch, T to seq, anything else to 1. */
export function bindDims(symbols: string[], batch: number, seq: number): Record<string, number> {
  // No prototype: a dim named `__proto__` must be an own key (and `constructor` not inherited).
  const b: Record<string, number> = Object.create(null);
  for (const s of symbols) b[s] = s === "B" ? batch : s === "T" ? seq : 1;
  return b;
}

export function compileModel(
  l: Lowered,
  opts: { batch: number; seq: number },
  graphs: CompiledGraphs = compileGraphs(l),
): Compilation {
  const forwardSchedule = fuse(graphs.forwardOpt);
  const trainingSchedule = graphs.training ? fuse(graphs.training) : undefined;
  const bindings = bindDims(l.graph.symbols(), opts.batch, opts.seq);
  assertBindings(trainingSchedule?.graph ?? forwardSchedule.graph, bindings);
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

export async function renderArtifact(
  kind: ArtifactKind,
  c: Compilation,
  program: Program,
): Promise<string> {
  switch (kind) {
    case "kernels-js": {
      const b = c.plan.bindings;
      const header = `// Generated by gptc for ${
        Object.entries(b)
          .map(([k, v]) => `${k}=${v}`)
          .join(", ") || "fixed sizes"
      }. Each kernel is a gpu.js kernel function over flat Float32 buffers.\n`;
      let text = header + emitKernelModule(c.forwardSchedule, b, "forward");
      if (c.trainingSchedule) text += emitKernelModule(c.trainingSchedule, b, "training");
      return formatJs(text);
    }
    case "ast":
      return JSON.stringify(stripSpans(program.root), null, 2) + "\n";
    case "ir":
      return printGraph(c.graphs.forward);
    case "ir-opt":
      return printGraph(c.graphs.forwardOpt);
    case "ir-train":
      return c.graphs.training ? printGraph(c.graphs.training) : "# the model declares no loss\n";
    case "kernels": {
      // The schedules (which nodes each kernel computes), then every kernel's IR.
      const b = c.plan.bindings;
      const schedules = [
        { s: c.forwardSchedule, what: "forward" },
        ...(c.trainingSchedule ? [{ s: c.trainingSchedule, what: "training" }] : []),
      ];
      const ir = ({ s, what }: (typeof schedules)[number]) =>
        `# kernel IR of the ${what} schedule\n\n${printKernels(s, b)}`;
      return [...schedules.map(({ s }) => printSchedule(s)), ...schedules.map(ir)].join("\n");
    }
    case "plan":
      return (
        printMemoryPlan(c.plan, c.trainingSchedule ?? c.forwardSchedule) +
        printDeviceLayouts(c.trainingSchedule ?? c.forwardSchedule, c.plan.bindings)
      );
    case "summary":
      return JSON.stringify(c.summary, null, 2) + "\n";
  }
}

/**
 * The compilation in a few lines, as `gptc compile` prints it: parameters,
 * FLOPs per token, ops and kernels, and memory at its batch and seq.
 */
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
  if (s.modeDependent)
    lines.push(
      `  mode-dependent: ${s.modeDependent} dropout op${s.modeDependent === 1 ? "" : "s"} in training (dropout_mask in ir-train); the forward, evaluation and decode graphs have none`,
    );
  return lines.join("\n");
}
