// The playground's worker: gptc's compiler and runtime, off the page's thread so
// the page never freezes. It answers the requests of protocol.ts: check and
// compile the editor's spec, verify a PyTorch fixture, train on text, stream
// generated tokens, and hand back weights as safetensors.
import specs from "gptc-web:specs";
import brown from "gptc-web:brown";
import {
  buildCharTokenizer,
  compile,
  createBackend,
  DataError,
  DiagnosticError,
  formatCompileSummary,
  GptcError,
  load,
  memoryTokens,
  verify,
  type CompiledModel,
  type Dataset,
  type ModelSession,
  type Tokenizer,
  type TrainStepReport,
  UsageError,
} from "../src/index.js";
import { hfConfig } from "../src/api/session.js";
import { readCheckpointState } from "../src/runtime/checkpoint.js";
import { untagBrown } from "../src/runtime/corpus.js";
import { gemmEngine } from "../src/runtime/gemm.js";
import * as gptc from "../src/index.js";
import * as fs from "../src/platform/browser/fs.js";
import { mount, readdirSync, readFileSync, unmount } from "../src/platform/browser/fs.js";
import type { BackendChoice, EditorDiagnostic, Reply, Request, TrainRequest } from "./protocol.js";

mount(specs);
/** Where the editor's text is taken to live: `import "gpt2-small.model"` resolves beside it. */
const specPath = "/specs/playground.model";
/**
 * The shipped specs the editor's text may import, given to compile() as `files`
 * so checkpoints record them (the CLI compiles a page's checkpoint without /specs).
 */
const specFiles = Object.fromEntries(
  Object.entries(specs)
    .filter(([p]) => !p.startsWith("/specs/std/"))
    .map(([p, text]) => [p.slice("/specs/".length), text]),
);
/** The run folder training writes (in memory): what Download hands out, what Resume continues. */
const runDir = "/run";

const post = (r: Reply, transfer: Transferable[] = []) =>
  (self as unknown as Worker).postMessage(r, transfer);

/** The editor's spec as `gptc check` sees it: every diagnostic in that file, with offsets. */
function check(
  spec: string,
  vocabSize?: number,
): { diagnostics: EditorDiagnostic[]; model?: CompiledModel } {
  try {
    return {
      diagnostics: [],
      model: compile(spec, { path: specPath, vocabSize, files: specFiles }),
    };
  } catch (e) {
    if (e instanceof DiagnosticError) {
      const file = "specs/playground.model";
      return {
        diagnostics: e.diagnostics.map((d) => {
          const here = d.span?.file === file ? d.span : undefined;
          const message =
            (d.span && !here ? `${d.span.file}:${d.span.line}:${d.span.col}: ` : "") +
            d.message +
            (d.hint ? ` (${d.hint})` : "");
          return {
            from: here?.start ?? 0,
            to: here?.end ?? 0,
            line: here?.line ?? 1,
            col: here?.col ?? 1,
            severity: d.severity,
            message,
          };
        }),
      };
    }
    if (e instanceof GptcError)
      return {
        diagnostics: [{ from: 0, to: 0, line: 1, col: 1, severity: "error", message: e.message }],
      };
    throw e;
  }
}

// The session being trained and sampled, and what it was made from.
let current:
  | {
      spec: string;
      backend: BackendChoice;
      model: CompiledModel;
      session: ModelSession;
      data: Dataset;
      tokenizer: Tokenizer;
      step: number;
      batchRng?: number;
    }
  | undefined;
let abort: AbortController | undefined;
/**
 * The character vocabulary of the last text trained on or loaded (the Brown
 * sample), so the summary and diagram show the model that trains; GPT-2's
 * vocabulary before any text.
 */
let textVocab: number | undefined;

/** Text as a Dataset in memory: the last tenth is validation. */
function dataset(text: string, tokenizer: Tokenizer, seq: number): Dataset {
  const ids = Uint32Array.from(tokenizer.encode(text));
  const cut = Math.floor(ids.length * 0.9);
  if (cut - seq - 1 < 1 || ids.length - cut - seq - 1 < 1)
    throw new DataError(
      `the text has ${ids.length} tokens: too few for windows of ${seq + 1} in both its training (90%) and validation (10%) parts; give more text or a smaller sequence`,
    );
  return {
    tokenizer,
    train: memoryTokens(ids.subarray(0, cut)),
    val: memoryTokens(ids.subarray(cut)),
    source: "the page's text",
    cached: false,
    close: () => {},
  };
}

/** The backend in words; for webasm, how many threads the engine ran (2 only in a cross-origin isolated page). */
function describe(name: string, backend: BackendChoice): string {
  if (backend !== "webasm") return name;
  const e = gemmEngine();
  return `${name}, ${e.parallel() ? `${e.threads} threads` : "1 thread"}`;
}

async function train(id: number, r: TrainRequest) {
  const resume = r.resume && current && current.spec === r.spec && current.backend === r.backend;
  if (!resume) {
    current?.session.close();
    current = undefined;
    unmount(runDir);
    const tokenizer = buildCharTokenizer([r.text]);
    textVocab = tokenizer.vocabSize;
    const { model, diagnostics } = check(r.spec, tokenizer.vocabSize);
    if (!model) throw new GptcError("diagnostics", diagnostics.map((d) => d.message).join("\n"));
    const session = await model.open({ backend: r.backend, tokenizer, seed: 1337 });
    current = {
      spec: r.spec,
      backend: r.backend,
      model,
      session,
      tokenizer,
      data: dataset(r.text, tokenizer, r.seq),
      step: 0,
    };
  }
  const c = current!;
  abort = new AbortController();
  const summary = await c.session.train(c.data, {
    steps: r.steps,
    batch: r.batch,
    seq: r.seq,
    lr: r.lr,
    warmup: Math.max(1, Math.floor(r.steps / 20)),
    evalEvery: Math.max(1, Math.floor(r.steps / 10)),
    evalBatches: 2,
    signal: abort.signal,
    out: runDir,
    saveEvery: 0,
    // Resume: the session keeps its weights and AdamW moments; the run folder's
    // checkpoint gives the step, the data position and the best validation loss.
    resume:
      resume && c.step > 0
        ? { weights: c.session.weights, adam: undefined!, state: readCheckpointState(runDir) }
        : undefined,
    onStep: (s: TrainStepReport) =>
      post({
        id,
        kind: "step",
        step: {
          step: s.step,
          totalSteps: s.totalSteps,
          loss: s.loss,
          valLoss: s.valLoss,
          tokensPerSec: s.tokensPerSec,
          averageTokensPerSec: s.averageTokensPerSec,
        },
      }),
  });
  c.step = summary.steps;
  return {
    backend: describe(c.session.backendName, r.backend),
    steps: summary.steps,
    stopped: summary.stopped,
    loss: summary.loss,
    valLoss: summary.valLoss,
    first: summary.losses[0]?.loss,
    seconds: summary.seconds,
  };
}

async function generate(id: number, m: Extract<Request, { kind: "generate" }>) {
  if (!current) throw new UsageError("train a model (or load weights) first");
  let text = "";
  let tokens = 0;
  const started = performance.now();
  for await (const t of current.session.stream(m.prompt, {
    maxNewTokens: m.maxNewTokens,
    temperature: m.temperature,
    topK: m.topK,
    topP: m.topP,
    seed: Date.now() % 100000,
  })) {
    text += t.text;
    tokens++;
    post({ id, kind: "token", text: t.text, tokenId: t.id });
  }
  return { text, tokens, seconds: (performance.now() - started) / 1000 };
}

/** A fixture folder's files (config.json, model.safetensors, case.json, expected.safetensors) verified as `gptc verify` does. */
async function verifyFiles(backend: BackendChoice, files: Record<string, Uint8Array>) {
  const dir = "/fixture";
  unmount(dir);
  mount(Object.fromEntries(Object.entries(files).map(([k, v]) => [`${dir}/${k}`, v])));
  const b = await createBackend(backend);
  const r = await verify(dir, { backend: b });
  return { backend: describe(b.describe, backend), pass: r.pass, checks: r.checks };
}

/**
 * Dropped weights, opened as `gptc generate FOLDER` opens a folder: a Hugging
 * Face GPT-2 (model.safetensors + config.json, with GPT-2's tokenizer) or a gptc
 * run folder (checkpoint.safetensors, model.safetensors, tokenizer.json).
 */
async function loadWeights(backend: BackendChoice, files: Record<string, Uint8Array>) {
  const dir = "/upload";
  unmount(dir);
  mount(Object.fromEntries(Object.entries(files).map(([k, v]) => [`${dir}/${k}`, v])));
  const { session, kind } = await load(dir, { backend });
  current?.session.close();
  current = {
    spec: "",
    backend,
    model: session.model,
    session,
    tokenizer: session.tokenizer!,
    data: undefined as never,
    step: 0,
  };
  return {
    kind,
    backend: session.backendName,
    parameters: session.model.parameters,
    name: session.model.name,
  };
}

async function handle(m: Request): Promise<unknown> {
  switch (m.kind) {
    case "check":
      return { diagnostics: check(m.spec).diagnostics };
    case "compile": {
      const { model, diagnostics } = check(m.spec, textVocab);
      if (!model) return { diagnostics };
      const seq = Math.min(m.seq, model.context ?? m.seq);
      return {
        diagnostics,
        mermaid: model.diagram(),
        summary: formatCompileSummary(model.compilation({ batch: m.batch, seq })),
      };
    }
    case "verify":
      return verifyFiles(m.backend, m.files);
    case "train":
      return train(m.id, m.req);
    case "stop":
      abort?.abort();
      return {};
    case "generate":
      return generate(m.id, m);
    case "download": {
      // The run folder as `gptc train` writes it: `gptc generate FOLDER` reads it.
      if (!current) throw new UsageError("nothing trained or loaded yet");
      if (current.step === 0)
        return {
          files: {
            "model.safetensors": current.session.safetensors(),
            "config.json": new TextEncoder().encode(
              JSON.stringify(hfConfig(current.model), null, 2),
            ),
          },
        };
      return {
        files: Object.fromEntries(
          readdirSync(runDir).map((f) => [f, readFileSync(`${runDir}/${f}`) as Uint8Array]),
        ),
      };
    }
    case "weights":
      return loadWeights(m.backend, m.files);
    case "brown": {
      const text = brown.map(untagBrown).join("\n\n");
      textVocab = buildCharTokenizer([text]).vocabSize;
      return { text };
    }
    case "eval": {
      const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
      return new AsyncFunction("gptc", "fs", "args", m.source)(gptc, fs, m.args);
    }
    case "specs":
      return {
        specs: Object.fromEntries(
          Object.entries(specs).filter(([p]) => !p.startsWith("/specs/std/")),
        ),
      };
  }
}

self.onmessage = async (e: MessageEvent<Request>) => {
  const m = e.data;
  try {
    const result = await handle(m);
    post({ id: m.id, kind: "done", result });
  } catch (err) {
    const g = err instanceof GptcError ? err : undefined;
    post({
      id: m.id,
      kind: "error",
      message:
        err instanceof DiagnosticError ? err.format() : String((err as Error)?.message ?? err),
      code: g?.code,
    });
  }
};
post({ id: 0, kind: "done", result: { ready: true, threads: self.crossOriginIsolated } });
