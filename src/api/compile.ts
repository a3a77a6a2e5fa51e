// The compile driver: a spec (text or file) through the front end, lowering and
// the middle end to a CompiledModel, which answers what a person asks of a model
// (parameters, inputs, outputs, IR, kernels, memory plan, diagram) and opens
// sessions that run it. The CLI's commands are thin shells over this.
import { resolve } from "node:path";
import { DiagnosticError } from "../dsl/diagnostics.js";
import { frontend } from "../dsl/frontend.js";
import { readSpecFile, type Program, type SpecReader } from "../dsl/load.js";
import { UsageError } from "../errors.js";
import {
  blocksDiagram,
  kernelsDiagram,
  opsDiagram,
  renderDiagram,
  type Diagram,
  type DiagramFormat,
  type DiagramLevel,
} from "../ir/diagram.js";
import { dimValue } from "../ir/dims.js";
import { configValues, lowerProgram, type Lowered, type LowerOptions } from "../ir/lower.js";
import { fuse } from "../ir/passes/fuse.js";
import { compileGraphs, type CompiledGraphs } from "../ir/pipeline.js";
import { summarize, type ModelSummary } from "../ir/summary.js";
import type { ModelRef } from "../runtime/checkpoint.js";
import { weightSpecs, type WeightSpec } from "../runtime/weights.js";
import { ModelSession, type OpenOptions } from "./session.js";
import { compileModel, renderArtifact, type ArtifactKind, type Compilation } from "./artifacts.js";

/** A spec on disk, as opposed to a spec given as text. */
export interface SpecFile {
  /** Path of the .model file; its imports resolve relative to it (and `std/...` to the bundled library). */
  file: string;
}

/** How `compile` reads and configures a spec; every field is optional. */
export interface CompileOptions {
  /** Parameter overrides, as `--set name=value` does: `{ layers: 2, d: 64 }`. */
  set?: Record<string, string | number | boolean>;
  /** A Hugging Face config.json object: parameters declared `from "key"` read it. */
  config?: Record<string, unknown>;
  /** A named parameter set of the spec (`preset medium { ... }`). */
  preset?: string;
  /**
   * The vocabulary size to use (the spec's parameter read from "vocab_size"),
   * usually a tokenizer's `vocabSize`; it wins over `config`.
   */
  vocabSize?: number;
  /**
   * Files a spec given as text imports, by path relative to it
   * (`{ "blocks.model": "fn ..." }`); `std/...` always resolves to the bundled
   * standard library. Files not listed are read from disk unless `read` says otherwise.
   */
  files?: Record<string, string>;
  /** Reads a file by absolute path instead of the file system (a virtual file system, a browser). */
  read?: SpecReader;
  /**
   * Where a spec given as text is taken to live (for messages and relative
   * imports); default `model.model` in the working directory.
   */
  path?: string;
  /**
   * false: the training graph too runs without dropout (evaluation mode), as
   * PyTorch reference fixtures are made; `verify` sets it. Default true:
   * training applies the spec's dropout, every other graph never does.
   */
  dropout?: boolean;
}

/** Sizes for memory plans and FLOP counts: the symbolic dims B and T (others are 1). */
export interface Sizes {
  /** Sequences per batch (the symbolic dim B); `compilation()` defaults it to 4. */
  batch: number;
  /**
   * Tokens per sequence (the symbolic dim T); `compilation()` defaults it to 128,
   * or the model's context where that is shorter, and refuses more than the context.
   */
  seq: number;
}

function setText(set: CompileOptions["set"]): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(set ?? {})) out[k] = String(v);
  return out;
}

/** The front end over a spec, or a DiagnosticError carrying every problem with file/line/column. */
function runFrontend(
  source: string | SpecFile,
  o: CompileOptions,
): { program: Program; path: string; text?: string } {
  const isFile = typeof source !== "string";
  if (isFile && (typeof source?.file !== "string" || source.file === ""))
    throw new UsageError("compile: give the spec as text, or as { file: path }");
  const path = resolve(isFile ? source.file : (o.path ?? "model.model"));
  let read = o.read ?? readSpecFile;
  if (o.files) {
    const base = resolve(path, "..");
    const files = new Map(Object.entries(o.files).map(([k, v]) => [resolve(base, k), v]));
    const fallback = read;
    read = (abs) => files.get(abs) ?? fallback(abs);
  }
  const text = isFile ? undefined : source;
  const fe = frontend(path, text, read);
  if (!fe.program) throw new DiagnosticError(fe.diagnostics.items, fe.sources);
  return { program: fe.program, path, text };
}

/** Lowering errors carry spans into the spec: make them printable with the spec's text. */
function lowerOrThrow(program: Program, opts: LowerOptions): Lowered {
  try {
    return lowerProgram(program, opts);
  } catch (e) {
    if (e instanceof DiagnosticError && !e.sources)
      throw new DiagnosticError(e.diagnostics, program.sources);
    throw e;
  }
}

/**
 * Compiles a model spec. `source` is the spec's text, or `{ file }` for a
 * .model file. Throws a DiagnosticError (code "diagnostics") listing every
 * problem with its file, line and column; `err.format()` prints them as
 * `gptc check` does.
 *
 * ```ts
 * const model = compile(`import "std/nn.model"
 * model tiny { ... }`, { set: { layers: 2 } });
 * console.log(model.parameters, model.outputs);
 * ```
 */
export function compile(source: string | SpecFile, options: CompileOptions = {}): CompiledModel {
  const { program, path, text } = runFrontend(source, options);
  const config =
    options.vocabSize === undefined
      ? options.config
      : { ...(options.config ?? {}), vocab_size: options.vocabSize };
  const lowerOpts: LowerOptions = { set: setText(options.set), config, preset: options.preset };
  const lowered = lowerOrThrow(program, lowerOpts);
  const ref: ModelRef = {
    spec: path,
    set: lowerOpts.set!,
    preset: options.preset,
    config,
    ...(text !== undefined ? { source: text } : {}),
    ...(options.files ? { files: { ...options.files } } : {}),
  };
  // The middle end (autodiff, the decode lowering) runs on first use: `check` needs none of it.
  const graphs = () =>
    compileGraphs(lowered, lowerOrThrow(program, { ...lowerOpts, decode: true }), {
      dropout: options.dropout,
    });
  return new CompiledModel(program, lowered, graphs, ref);
}

/** The context length: the parameter read from "n_positions", if the spec has one. */
export function contextOf(l: Lowered): number | undefined {
  const v = configValues(l).get("n_positions");
  return typeof v === "number" ? v : undefined;
}

function vocabOf(l: Lowered): number | undefined {
  const v = configValues(l).get("vocab_size");
  if (typeof v === "number") return v;
  const logits = l.graph.outputs.find((o) => o.name === "logits");
  const last = logits && l.graph.type(logits.id).shape.at(-1);
  return last === undefined ? undefined : dimValue(last);
}

/** A compiled model: what it is, what the compiler made of it, and how to run it. */
export class CompiledModel {
  /** The model's name (`model gpt2 { ... }` is "gpt2"). */
  readonly name: string;
  /** Number of trainable parameters. */
  readonly parameters: number;
  /** Parameters, inputs and outputs, as `gptc check` prints them. */
  readonly summary: ModelSummary;
  /** The weights the model declares: key (as in its safetensors files), shape and initializer. */
  readonly weights: WeightSpec[];
  /** The longest sequence the model takes (the parameter read from "n_positions"), if it declares one. */
  readonly context?: number;
  /**
   * The vocabulary: the parameter read from "vocab_size", else the width of
   * the `logits` output; undefined for a model with neither.
   */
  readonly vocabSize?: number;
  private readonly compilations = new Map<string, Compilation>();
  private compiledGraphs?: CompiledGraphs;

  /** @internal Use `compile()`. */
  constructor(
    /** The parsed program (AST of the spec and its imports). */
    readonly program: Program,
    /** The lowered graph (before optimization) and the parameter values used. */
    readonly lowered: Lowered,
    private readonly makeGraphs: () => CompiledGraphs,
    /** How to compile this model again (spec path, overrides): what checkpoints record. */
    readonly ref: ModelRef,
  ) {
    this.summary = summarize(lowered);
    this.name = this.summary.name;
    this.parameters = this.summary.parameters;
    this.weights = weightSpecs(lowered.graph);
    this.context = contextOf(lowered);
    this.vocabSize = vocabOf(lowered);
  }

  /** The forward, optimized, evaluation, training and decode graphs (compiled on first use). */
  get graphs(): CompiledGraphs {
    this.compiledGraphs ??= this.makeGraphs();
    return this.compiledGraphs;
  }

  /** Input names and types, e.g. `{ name: "tokens", type: "i32[B, T]" }`. */
  get inputs(): ModelSummary["inputs"] {
    return this.summary.inputs;
  }

  /** Output names and types, e.g. `{ name: "logits", type: "f32[B, T, 50257]" }`. */
  get outputs(): ModelSummary["outputs"] {
    return this.summary.outputs;
  }

  /**
   * Opens the model on a backend with weights (a file, safetensors bytes, a
   * Map, or a seeded random init) to generate and train; see OpenOptions.
   */
  open(options: OpenOptions = {}): Promise<ModelSession> {
    return ModelSession.open(this, options);
  }

  /** Whether the model declares a loss (and so can be trained). */
  get trainable(): boolean {
    return this.graphs.training !== undefined;
  }

  /** Sizes that fit the model: the given ones, with seq at most the context. */
  defaultSizes(want: Partial<Sizes> = {}): Sizes {
    const seq = want.seq ?? Math.min(128, this.context ?? 128);
    return { batch: want.batch ?? 4, seq };
  }

  /** Fusion, memory plan and cost summary at the given sizes (computed once per size). */
  compilation(sizes: Partial<Sizes> = {}): Compilation {
    const s = this.defaultSizes(sizes);
    if (this.context !== undefined && s.seq > this.context)
      throw new UsageError(
        `seq ${s.seq} is longer than the model's context (${this.context}); use seq <= ${this.context}`,
      );
    const key = `${s.batch}x${s.seq}`;
    let c = this.compilations.get(key);
    if (!c) {
      c = compileModel(this.lowered, s, this.graphs);
      this.compilations.set(key, c);
    }
    return c;
  }

  /**
   * One of the compiler's texts, as `gptc compile --emit KIND` writes it: "ast",
   * "ir", "ir-opt", "ir-train", "kernels", "kernels-js", "plan", "summary".
   */
  async artifact(kind: ArtifactKind, sizes: Partial<Sizes> = {}): Promise<string> {
    return renderArtifact(kind, this.compilation(sizes), this.program);
  }

  /**
   * The model as a diagram in Mermaid (default) or Graphviz dot: its blocks
   * (as a paper draws it; the default), its optimized ops, or its fused kernels.
   */
  diagram(o: { level?: DiagramLevel; format?: DiagramFormat } = {}): string {
    return renderDiagram(this.diagramData(o.level), o.format ?? "mermaid");
  }

  /** The diagram's nodes, edges and clusters, for drawing it some other way. */
  diagramData(level: DiagramLevel = "blocks"): Diagram {
    const name = this.name;
    return level === "blocks"
      ? blocksDiagram({
          model: this.program.model ?? this.lowered.model,
          functions: this.program.functions,
          params: this.lowered.params,
          title: `${name} (blocks)`,
        })
      : level === "ops"
        ? opsDiagram(this.graphs.forwardOpt, `${name} (forward ops)`)
        : kernelsDiagram(fuse(this.graphs.forwardOpt), `${name} (forward kernels)`);
  }
}
