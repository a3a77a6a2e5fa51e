// The one base class of every error gptc raises about its input or its machine.
// Each stage defines its own subclasses (DiagnosticError in the front end,
// DataError in the runtime, ...) next to the code that throws them; all carry a
// stable `code` from this catalog, so a program can branch on it instead of on
// the message, which may be reworded. Anything that is not a GptcError reaching
// a caller is a bug in gptc.

/** Stable error codes: the catalog. Add a code here when a new class needs one. */
export const errorCodes = {
  /** The model's text has errors; `diagnostics` lists them with file, line and column. */
  diagnostics: "the model spec has errors",
  /** An option or argument does not make sense (bad flag, missing file, wrong combination). */
  usage: "an option or argument is invalid",
  /** The chosen backend cannot run here. */
  backend: "the backend is not available",
  /** The model does not fit what the backend or the machine can hold. */
  capacity: "the model does not fit",
  /** A training checkpoint is missing, damaged or from another model. */
  checkpoint: "the checkpoint cannot be used",
  /** The training text cannot be read or is too small. */
  data: "the training data cannot be used",
  /** A model cannot be exported to the asked format (an op with no mapping, an unsupported option). */
  export: "the model cannot be exported",
  /** A PyTorch fixture folder is malformed. */
  fixture: "the fixture cannot be used",
  /** A generation request cannot be met (empty prompt, prompt too long). */
  generate: "the generation request is invalid",
  /** A kernel produced NaN or infinity (with numerics checks on). */
  numerics: "a kernel produced NaN or infinity",
  /** Weights cannot be stored in the narrower type asked for (non-finite, or beyond float16's range). */
  quantize: "the weights cannot be quantized",
  /** A safetensors file is malformed, or tensors cannot be written. */
  safetensors: "the safetensors file cannot be used",
  /** A tokenizer does not fit the model or the checkpoint. */
  tokenizer: "the tokenizer does not fit",
  /** Training stopped (the loss became NaN or infinite). */
  train: "training stopped",
  /** Weights do not fit the model (missing keys, wrong shapes). */
  weights: "the weights do not fit the model",
  /** A file could not be written (full disk, no permission). */
  write: "a file could not be written",
} as const;

/** A stable error code: one of the keys of {@link errorCodes} (e.g. "usage", "diagnostics"). */
export type ErrorCode = keyof typeof errorCodes;

/** Base class of every error about the user's input or machine. */
export class GptcError extends Error {
  constructor(
    /** Stable, catalogued in `errorCodes`: branch on this, not on the message. */
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A problem with what the caller asked for (bad option, missing file, wrong combination). */
export class UsageError extends GptcError {
  constructor(message: string) {
    super("usage", message);
  }
}
