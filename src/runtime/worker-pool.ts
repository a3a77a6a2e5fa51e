// Worker threads for prepare's tokenizing: a fixed pool, one job per worker at
// a time, answers matched to jobs by id. The worker's entry file is the
// TypeScript source next to this one when gptc runs from source (tsx, vitest;
// the worker registers tsx itself), and dist/prepare-worker.js next to the
// bundle after `npm run build` (scripts/build.mjs builds both).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { TokenDtype } from "./token-files.js";
import { tokenizerFromJSON, type TokenizerJSON } from "./tokenizer.js";

export interface WorkerSetup {
  tokenizer?: TokenizerJSON;
  dtype: TokenDtype;
}

export type WorkerJob = { id: number; kind: "chars" | "encode"; bytes: Uint8Array };
export type WorkerAnswer = { id: number; chars?: string; ids?: Uint16Array | Uint32Array };

/** What a worker does with a job: the characters of the chunk, or its token ids. */
export function jobRunner(setup: WorkerSetup): (job: WorkerJob) => WorkerAnswer {
  const tok = setup.tokenizer ? tokenizerFromJSON(setup.tokenizer) : undefined;
  return (job) => {
    // Buffer's decoder keeps a byte-order mark as U+FEFF, as reading the file whole does.
    const b = job.bytes;
    const text = Buffer.from(b.buffer, b.byteOffset, b.length).toString("utf8");
    if (job.kind === "chars") {
      const seen = new Set<string>();
      for (const c of text) seen.add(c);
      return { id: job.id, chars: [...seen].join("") };
    }
    const ids = tok!.encode(text);
    return {
      id: job.id,
      ids: setup.dtype === "uint16" ? Uint16Array.from(ids) : Uint32Array.from(ids),
    };
  };
}

export interface Pool {
  run(kind: WorkerJob["kind"], bytes: Uint8Array): Promise<WorkerAnswer>;
  close(): Promise<void>;
}

/** Text of a chunk or less: no threads to start, the same work on this one. */
export class InlinePool implements Pool {
  private readonly runJob: (job: WorkerJob) => WorkerAnswer;
  constructor(setup: WorkerSetup) {
    this.runJob = jobRunner(setup);
  }
  async run(kind: WorkerJob["kind"], bytes: Uint8Array): Promise<WorkerAnswer> {
    return this.runJob({ id: 0, kind, bytes });
  }
  async close(): Promise<void> {}
}

function spawnWorker(setup: WorkerSetup): Worker {
  const self = import.meta.url;
  if (!/\.ts$/.test(self))
    return new Worker(new URL("./prepare-worker.js", self), { workerData: setup });
  // The ES module build of tsx's API (require.resolve finds the CommonJS one next to it).
  const tsx = pathToFileURL(
    createRequire(self)
      .resolve("tsx/esm/api")
      .replace(/\.cjs$/, ".mjs"),
  ).href;
  const entry = new URL("./prepare-worker.ts", self).href;
  const boot =
    `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); ` +
    `return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: setup });
}

export class WorkerPool implements Pool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: { job: WorkerJob; resolve: (a: WorkerAnswer) => void }[] = [];
  private readonly pending = new Map<number, { resolve: (a: WorkerAnswer) => void }>();
  private failure: Error | undefined;
  private readonly rejects = new Set<(e: Error) => void>();
  private nextId = 0;

  constructor(size: number, setup: WorkerSetup) {
    for (let i = 0; i < size; i++) {
      const w = spawnWorker(setup);
      w.on("message", (a: WorkerAnswer) => {
        const p = this.pending.get(a.id);
        this.pending.delete(a.id);
        this.release(w);
        p?.resolve(a);
      });
      w.on("error", (e) => this.fail(e));
      w.on("exit", (code) => {
        if (code !== 0) this.fail(new Error(`a tokenizer worker exited with code ${code}`));
      });
      this.all.push(w);
      this.idle.push(w);
    }
  }

  /** Runs one job; its bytes are moved to the worker (the array is unusable afterwards). */
  run(kind: WorkerJob["kind"], bytes: Uint8Array): Promise<WorkerAnswer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<WorkerAnswer>((resolve, reject) => {
      const job = { id: this.nextId++, kind, bytes };
      const settle = (a: WorkerAnswer) => {
        this.rejects.delete(reject);
        resolve(a);
      };
      this.rejects.add(reject);
      this.queue.push({ job, resolve: settle });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const { job, resolve } = this.queue.shift()!;
      this.pending.set(job.id, { resolve });
      const whole =
        job.bytes.byteOffset === 0 && job.bytes.byteLength === job.bytes.buffer.byteLength;
      w.postMessage(job, whole ? [job.bytes.buffer as ArrayBuffer] : []);
    }
  }

  private release(w: Worker): void {
    this.idle.push(w);
    this.dispatch();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const reject of this.rejects) reject(e);
    this.rejects.clear();
  }

  async close(): Promise<void> {
    this.failure ??= new Error("the worker pool is closed");
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}
