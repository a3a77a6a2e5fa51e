// Messages between the playground page (main.ts) and its worker (worker.ts).
// Every request carries an id; the worker answers it with one `done` or `error`
// and, on the way, events (steps, tokens) tagged with the same id.

export type BackendChoice = "webgl2" | "webgpu" | "webasm" | "cpu";

/** A diagnostic in the editor's text: offsets, and line/column as `gptc check` prints them. */
export interface EditorDiagnostic {
  from: number;
  to: number;
  line: number;
  col: number;
  severity: "error" | "warning";
  message: string;
}

export interface TrainRequest {
  spec: string;
  backend: BackendChoice;
  batch: number;
  seq: number;
  steps: number;
  lr: number;
  text: string;
  /** Continue the session's last run (weights, AdamW moments, step) instead of starting anew. */
  resume?: boolean;
}

export type Request =
  | { id: number; kind: "check"; spec: string }
  | { id: number; kind: "compile"; spec: string; batch: number; seq: number }
  | { id: number; kind: "verify"; backend: BackendChoice; files: Record<string, Uint8Array> }
  | { id: number; kind: "train"; req: TrainRequest }
  | { id: number; kind: "stop" }
  | {
      id: number;
      kind: "generate";
      prompt: string;
      maxNewTokens: number;
      temperature: number;
      topK?: number;
      topP?: number;
    }
  | { id: number; kind: "download" }
  | { id: number; kind: "weights"; backend: BackendChoice; files: Record<string, Uint8Array> }
  | { id: number; kind: "brown" }
  | { id: number; kind: "specs" }
  /**
   * For tests (test/helpers/browser.ts): runs `source` as the body of an async
   * function of `gptc` (the library), `fs` (the in-memory file system) and
   * `args`; resolves with what it returns (structured-cloneable).
   */
  | { id: number; kind: "eval"; source: string; args?: unknown };

export interface StepEvent {
  step: number;
  totalSteps: number;
  loss: number;
  valLoss?: number;
  tokensPerSec: number;
  averageTokensPerSec: number;
}

export type Reply =
  | { id: number; kind: "done"; result: unknown }
  | { id: number; kind: "error"; message: string; code?: string }
  | { id: number; kind: "step"; step: StepEvent }
  | { id: number; kind: "token"; text: string; tokenId: number };
