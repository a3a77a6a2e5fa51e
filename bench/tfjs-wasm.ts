// Starting TF.js's wasm backend in Node, optionally with XNNPACK threads forced on.
//
// Out of the box, @tensorflow/tfjs-backend-wasm 4.22 never uses threads in Node:
//  1. The WASM_HAS_MULTITHREAD_SUPPORT flag returns false whenever IS_NODE
//     (tfjs issue #3830), so the non-threaded SIMD binary is loaded. setThreadsCount() alone
//     changes nothing. The flag can be overridden: tf.env().set(...) before setBackend.
//  2. The threaded build then creates its pthread workers from a blob: URL (the worker
//     script) and hands them the main script as a Blob; Node's worker_threads.Worker cannot
//     load either. We substitute worker_threads.Worker (read by the Emscripten glue when the
//     module is instantiated) with a subclass that loads the same worker script from a temp
//     file, without the parent's execArgv (tsx's loader must not run in the worker), and
//     rewrites the 'load' message's Blob into the path of the threaded glue script in
//     node_modules.
//  3. The C side caps the pool at emscripten_num_logical_cores()/2 (it assumes 2 hyperthreads
//     per core), and in Node that is require("os").cpus().length/2 = 1 on a 2-core machine.
//     We make os.cpus() report 2*N entries while the module initialises, then restore it.
// With all three, getThreadsCount() reports N and XNNPACK runs on N threads.
import * as tf from "@tensorflow/tfjs";
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(import.meta.url);

export interface WasmBackendInfo {
  backend: string;
  simd: boolean;
  /** Threaded (SharedArrayBuffer) binary loaded. */
  threadedBinary: boolean;
  /** XNNPACK pthreadpool size as the backend reports it. */
  threads: number;
  tfjsVersion: string;
}

function forceThreadsPlumbing(threads: number): () => void {
  const wt = require("node:worker_threads") as typeof import("node:worker_threads");
  const os = require("node:os") as typeof import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "tfjs-wasm-threads-"));
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  const workerFile = join(dir, "tfjs-backend-wasm-threaded-simd.worker.cjs");
  const contents: string =
    require("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js").wasmWorkerContents;
  // The backend does the same before making its Blob: the template literal turned "\n" inside
  // the script's string literals into real newlines.
  writeFileSync(workerFile, contents.replace(/\n/g, "\\n"));
  const mainScript =
    require.resolve("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js");
  const RealWorker = wt.Worker;
  class FileWorker extends RealWorker {
    constructor(_url: unknown, options?: import("node:worker_threads").WorkerOptions) {
      super(workerFile, { ...options, execArgv: [] });
    }
    override postMessage(
      msg: unknown,
      transfer?: readonly import("node:worker_threads").Transferable[],
    ): void {
      const m = msg as { cmd?: string; urlOrBlob?: unknown } | null;
      if (m && m.cmd === "load" && typeof m.urlOrBlob !== "string")
        msg = { ...m, urlOrBlob: mainScript };
      super.postMessage(msg, transfer);
    }
  }
  (wt as { Worker: unknown }).Worker = FileWorker;
  const realCpus = os.cpus;
  (os as { cpus: unknown }).cpus = () => {
    const c = realCpus();
    return Array.from({ length: 2 * threads }, (_, i) => c[i % c.length]);
  };
  return () => {
    (os as { cpus: unknown }).cpus = realCpus;
    // Later pthread creations (none expected: the pool of 8 workers is made at start) would
    // still need the substitute, so it stays installed.
  };
}

/**
 * Selects the wasm backend. `threads` > 1 forces the threaded binary with that many XNNPACK
 * threads; undefined or 1 is the stock Node behaviour (SIMD, one thread).
 */
export async function initWasm(threads?: number): Promise<WasmBackendInfo> {
  let restore = () => {};
  if (threads !== undefined && threads > 1) {
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    tfwasm.setThreadsCount(threads);
    restore = forceThreadsPlumbing(threads);
  }
  try {
    const ok = await tf.setBackend("wasm");
    if (!ok || tf.getBackend() !== "wasm") throw new Error("could not select the wasm backend");
    await tf.ready();
  } finally {
    restore();
  }
  return {
    backend: tf.getBackend(),
    simd: Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT")),
    threadedBinary: Boolean(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT")),
    threads: tfwasm.getThreadsCount(),
    tfjsVersion: tf.version.tfjs,
  };
}

/** Bytes of the wasm linear memory (the backend's heap), or NaN. */
export function wasmHeapBytes(): number {
  try {
    const b = tf.backend() as unknown as {
      wasm?: { HEAPU8?: Uint8Array; wasmMemory?: WebAssembly.Memory };
    };
    const mem = b.wasm?.wasmMemory;
    if (mem) return mem.buffer.byteLength;
    return b.wasm?.HEAPU8?.buffer.byteLength ?? NaN;
  } catch {
    return NaN;
  }
}
