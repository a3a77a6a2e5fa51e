/**
 * gptc as a library: compile a model written in gptc's language, open it on a
 * backend, train it, generate text, and check it against PyTorch fixtures.
 *
 * ```ts
 * import { compile } from "gptc";
 *
 * const model = compile({ file: "specs/gpt2-tiny.model" });
 * const session = await model.open({ backend: "webasm", seed: 1 });
 * for await (const t of session.stream("The jury", { maxNewTokens: 20 }))
 *   process.stdout.write(t.text);
 * session.close();
 * ```
 *
 * Every error about the caller's input is a {@link GptcError} with a stable
 * `code`; a {@link DiagnosticError} lists problems in a spec with file, line
 * and column. Nothing in the library prints or exits the process.
 *
 * @packageDocumentation
 */

// Compiling.
export { compile, contextOf, CompiledModel } from "./api/compile.js";
export type { CompileOptions, SpecFile, Sizes } from "./api/compile.js";
export { artifactKinds, artifactFile, formatCompileSummary } from "./api/artifacts.js";
export type { ArtifactKind, Compilation, CompileSummary } from "./api/artifacts.js";
export { parseSets, readConfig } from "./api/config.js";
export { formatSource } from "./dsl/format.js";
export { specsDir, stdlibDir } from "./dsl/load.js";
export type { SpecReader } from "./dsl/load.js";
export type { ModelSummary } from "./ir/summary.js";
export type {
  DiagramFormat,
  DiagramLevel,
  Diagram,
  DiagramNode,
  DiagramEdge,
  DiagramCluster,
} from "./ir/diagram.js";
// What a CompiledModel exposes of the compiler's stages.
export type { Program } from "./dsl/load.js";
export type { SourceSet } from "./dsl/source.js";
export type { Lowered } from "./ir/lower.js";
export type { CompiledGraphs } from "./ir/pipeline.js";
export type { Schedule } from "./ir/passes/fuse.js";
export type { MemoryPlan } from "./ir/passes/memory.js";

// Running.
export { ModelSession, checkTokenizer } from "./api/session.js";
export type { WeightsDtype } from "./runtime/quantize.js";
export type {
  OpenOptions,
  WeightsSource,
  SampleOptions,
  GeneratedToken,
  Generation,
  SessionTrainOptions,
  TrainStepReport,
  TrainSummary,
} from "./api/session.js";
export { load, compileRef, resolveTokenizer } from "./api/load.js";
export type { LoadOptions, Loaded } from "./api/load.js";
export { train } from "./api/train.js";
export type { TrainRunOptions, TrainRun, TrainStart } from "./api/train.js";
export { verify } from "./api/verify.js";
export { exportModel, exportFormats, onnxDecodeSignature, onnxFiles } from "./api/export.js";
export type { ExportOptions, ExportResult, ExportFormat, OnnxSignature } from "./api/export.js";
export type { VerifyOptions, VerifyResult, Check } from "./api/verify.js";
export { formatChecks } from "./runtime/verify.js";
export { backendNames, createBackend } from "./runtime/backend.js";
export type { Backend, BackendName } from "./runtime/backend.js";
export { StepProfile } from "./runtime/profile.js";
export type { KernelFamily } from "./runtime/executor.js";
export type { Session as RuntimeSession } from "./runtime/session.js";
export type { AdamWState } from "./runtime/optimizer.js";
export type { TrainOptions } from "./runtime/trainer.js";

// Data, tokenizers, weights.
export { loadDataset, cacheDir, sampleBatch, memoryTokens } from "./runtime/data.js";
export type { Dataset, LoadOptions as DatasetOptions, TokenSource } from "./runtime/data.js";
export { prepareCorpus, prepareTokens } from "./runtime/prepare.js";
export type { PrepareOptions, PrepareProgress } from "./runtime/prepare.js";
export { isPreparedDir, readMeta, openTokenFiles } from "./runtime/token-files.js";
export type { TokenMeta, TokenDtype } from "./runtime/token-files.js";
export {
  gpt2Tokenizer,
  charTokenizer,
  buildCharTokenizer,
  tokenizerFromJSON,
  endOfText,
} from "./runtime/tokenizer.js";
export type { Tokenizer, TokenizerJSON } from "./runtime/tokenizer.js";
export {
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensorsAtomic,
} from "./runtime/safetensors.js";
export type { SafetensorsFile, SafetensorsTensor, TensorToWrite } from "./runtime/safetensors.js";
export { initWeights, loadWeightsFile } from "./runtime/weights.js";
export type { Weights, WeightSpec } from "./runtime/weights.js";
export { hasCheckpoint, loadCheckpoint, readCheckpointState } from "./runtime/checkpoint.js";
export type { ModelRef, TrainState, LoadedCheckpoint } from "./runtime/checkpoint.js";

// Errors.
export { GptcError, UsageError, errorCodes } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { DiagnosticError, formatDiagnostics } from "./dsl/diagnostics.js";
export type { Diagnostic } from "./dsl/diagnostics.js";
export type { Span } from "./dsl/source.js";
export { BackendError } from "./runtime/backend.js";
export { CapacityError } from "./runtime/session.js";
export { CheckpointError } from "./runtime/checkpoint.js";
export { DataError } from "./runtime/data.js";
export { FixtureError } from "./runtime/verify.js";
export { GenerateError } from "./runtime/generate.js";
export { NumericsError } from "./runtime/executor.js";
export { SafetensorsError } from "./runtime/safetensors.js";
export { TokenizerError } from "./runtime/tokenizer.js";
export { TrainError } from "./runtime/trainer.js";
export { WeightError } from "./runtime/weights.js";
export { WriteError } from "./runtime/atomic.js";
export { ExportError } from "./export/common.js";
