// `exportModel`: a compiled model as files other engines run. PyTorch: a
// generated module, a torchrun training script and the settings it needs;
// ONNX: the forward graph and the KV-cache decode graph with weights. Every
// check runs before the first file is written, so a refused export leaves
// nothing behind.
import { mkdirSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { stdlibDir } from "../dsl/load.js";
import { UsageError } from "../errors.js";
import type { Span } from "../dsl/source.js";
import { graphToOnnx, onnxOpset, onnxOutputName } from "../export/onnx/model.js";
import { pytorchModule } from "../export/pytorch/module.js";
import { trainScript } from "../export/pytorch/train-py.js";
import { writeFileAtomic } from "../runtime/atomic.js";
import type { ModelRef } from "../runtime/checkpoint.js";
import type { Weights } from "../runtime/weights.js";
import type { CompiledModel } from "./compile.js";
import { hfConfig, ModelSession, readWeights, type WeightsSource } from "./session.js";

/** The formats `exportModel` writes. */
export const exportFormats = ["pytorch", "onnx"] as const;
/** "pytorch" or "onnx". */
export type ExportFormat = (typeof exportFormats)[number];

/** What `exportModel` writes, and where. */
export interface ExportOptions {
  /** "pytorch" (model.py, train.py) or "onnx" (model.onnx, decode.onnx). */
  format: ExportFormat;
  /** The folder to write (created if missing; files of the same names are replaced). */
  out: string;
  /**
   * ONNX only: the weights to embed, as `open()` takes them, or an open
   * session (its current weights). Default: the seeded random initialization.
   */
  weights?: WeightsSource | ModelSession;
  /** ONNX only: seed of the random initialization when no weights are given (default 1337). */
  seed?: number;
}

/** What an export wrote. */
export interface ExportResult {
  /** The format written. */
  format: ExportFormat;
  /** The files, as `join(out, name)` (model.py, train.py, gptc-export.json; model.onnx, decode.onnx). */
  files: string[];
}

/** Names in the ONNX files: graph inputs, outputs (updated caches are `cache.X.next`). */
export interface OnnxSignature {
  /** tokens, cache_len, then the caches `cache.*`. */
  inputs: string[];
  /** The updated caches `cache.*.next`, and logits. */
  outputs: string[];
}

/**
 * A spec line for model.py's comments, with the function (or model) it is in:
 * `causal_self_attention: q, k, v = split(...)`.
 */
function quoter(model: CompiledModel): (span: Span) => string | undefined {
  const p = model.program;
  const scopes: { name: string; span: Span }[] = [...p.functions.values()].map((f) => ({
    name: f.name,
    span: f.span,
  }));
  if (p.model) scopes.push({ name: `model ${p.model.name}`, span: p.model.span });
  if (p.rootModel) scopes.push({ name: `model ${p.rootModel.name}`, span: p.rootModel.span });
  return (span) => {
    const line = p.sources.get(span.file)?.split("\n")[span.line - 1]?.trim();
    const inside = scopes.find(
      (s) => s.span.file === span.file && s.span.start <= span.start && span.end <= s.span.end,
    );
    return line && inside ? `${inside.name}: ${line}` : line;
  };
}

/** The ONNX files' contents: the forward graph (logits) and the decode graph (logits and caches). */
export function onnxFiles(model: CompiledModel, weights: Weights): Map<string, Uint8Array> {
  const g = model.graphs;
  const doc = `${model.name}, exported by gptc from ${model.ref.spec} (opset ${onnxOpset})`;
  const files = new Map([["model.onnx", graphToOnnx(g.forwardOpt, weights, doc)]]);
  if (g.decode)
    files.set("decode.onnx", graphToOnnx(g.decode, weights, `${doc}; KV-cache decoding`));
  return files;
}

/** The decode graph's input and output names as the ONNX file has them. */
export function onnxDecodeSignature(model: CompiledModel): OnnxSignature | undefined {
  const d = model.graphs.decode;
  if (!d) return undefined;
  return {
    inputs: d.nodesOf("input").map((n) => n.attrs.name as string),
    outputs: d.outputs.map((o) => onnxOutputName(o.name)),
  };
}

/**
 * The model's reference with its spec's text and imports included (the
 * standard library aside, which every gptc bundles), so a run trained on
 * another machine compiles again where the spec's path does not exist.
 */
export function portableRef(model: CompiledModel): ModelRef {
  const ref = model.ref;
  if (ref.source !== undefined) return ref;
  const base = dirname(ref.spec);
  let source: string | undefined;
  const files: Record<string, string> = {};
  for (const m of model.program.modules) {
    const abs = resolve(m.file);
    const text = model.program.sources.get(m.file);
    if (text === undefined || abs.startsWith(stdlibDir + sep)) continue;
    if (abs === ref.spec) source = text;
    else files[relative(base, abs)] = text;
  }
  if (source === undefined) return ref;
  return { ...ref, source, ...(Object.keys(files).length ? { files } : {}) };
}

function pytorchFiles(model: CompiledModel): Map<string, string> {
  const g = model.graphs;
  const source = pytorchModule({
    spec: model.ref.spec,
    name: model.name,
    weights: model.weights,
    // Training mode: model.py applies the spec's dropout where the module is in
    // train(), and is the evaluation graph in eval() (torch's own random numbers).
    graph: g.trainingForward ?? g.forwardOpt,
    quote: quoter(model),
  });
  const settings = {
    name: model.name,
    spec: model.ref.spec,
    model: portableRef(model),
    vocab_size: model.vocabSize,
    context: model.context,
    trainable: model.trainable,
    hf_config: hfConfig(model),
  };
  return new Map([
    ["model.py", source],
    ["train.py", trainScript],
    ["gptc-export.json", JSON.stringify(settings, null, 2) + "\n"],
  ]);
}

/**
 * Exports `model` to `o.out`. Throws an ExportError (code "export") for an op
 * the format has no mapping for, naming the op and its spec line, and a
 * UsageError for options the format does not take; nothing is written then.
 *
 * ```ts
 * const model = compile({ file: "specs/gpt2-tiny.model" });
 * await exportModel(model, { format: "onnx", out: "onnx/", weights: "runs/tiny" });
 * ```
 */
export async function exportModel(model: CompiledModel, o: ExportOptions): Promise<ExportResult> {
  if (!exportFormats.includes(o.format))
    throw new UsageError(
      `unknown export format '${o.format}': expected ${exportFormats.join(" or ")}`,
    );
  if (typeof o.out !== "string" || o.out === "")
    throw new UsageError("export: give the folder to write (out)");
  let files: Map<string, string | Uint8Array>;
  if (o.format === "pytorch") {
    if (o.weights !== undefined || o.seed !== undefined)
      throw new UsageError(
        "the PyTorch export writes code, not weights: drop --weights/--seed and start training from a checkpoint with train.py --init RUN",
      );
    files = pytorchFiles(model);
  } else {
    const weights =
      o.weights instanceof ModelSession
        ? o.weights.weights
        : readWeights(model, o.weights, o.seed ?? 1337);
    files = onnxFiles(model, weights);
  }
  mkdirSync(o.out, { recursive: true });
  const written: string[] = [];
  for (const [name, data] of files) {
    const path = join(o.out, name);
    writeFileAtomic(path, data);
    written.push(path);
  }
  return { format: o.format, files: written };
}
