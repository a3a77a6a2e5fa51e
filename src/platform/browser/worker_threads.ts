// node:worker_threads in a browser, as far as the WebAssembly engine's helper
// thread (src/runtime/gemm.ts) uses it. Its thread is a Web Worker made from
// the engine's source text, started with `workerData` by a message. The one
// thing browsers lack is a synchronous receive (receiveMessageOnPort): the
// helper blocks in Atomics.wait and never runs its event loop. So a channel
// here is a mailbox in a SharedArrayBuffer, and the WebAssembly modules posted
// through it travel as their bytes (recorded when compiled, below) and are
// compiled again on the other side. Needs cross-origin isolation (COOP/COEP),
// which os.ts checks before the engine asks for a second thread.

/** The bytes every WebAssembly.Module was compiled from, so a mailbox can carry it. */
const moduleBytes = new WeakMap<WebAssembly.Module, Uint8Array>();
const NativeModule = WebAssembly.Module;
function RecordingModule(bytes: BufferSource): WebAssembly.Module {
  const m = new NativeModule(bytes);
  const view = ArrayBuffer.isView(bytes)
    ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    : new Uint8Array(bytes);
  moduleBytes.set(m, view.slice());
  return m;
}
RecordingModule.prototype = NativeModule.prototype;
Object.setPrototypeOf(RecordingModule, NativeModule);
(WebAssembly as { Module: unknown }).Module = RecordingModule;

/** Mailbox layout (Int32 words): [0] messages written, [1] bytes used, [2] messages read, [3] read offset; data from byte 16. */
const MAILBOX_BYTES = 64 * 2 ** 20;

/** One side of a channel: a mailbox the other side reads synchronously. */
export class MessagePort {
  readonly mailbox: SharedArrayBuffer;
  constructor(mailbox: SharedArrayBuffer) {
    this.mailbox = mailbox;
  }
  postMessage(message: unknown): void {
    const json = JSON.stringify(message, (_k, v) =>
      v instanceof NativeModule ? { __wasm: Array.from(moduleBytes.get(v) ?? noBytes()) } : v,
    );
    const data = new TextEncoder().encode(json);
    const ctl = new Int32Array(this.mailbox, 0, 4);
    const at = 16 + ctl[1];
    if (at + 4 + data.length > this.mailbox.byteLength)
      throw new Error("the WebAssembly engine's mailbox to its helper thread is full");
    new DataView(this.mailbox).setInt32(at, data.length, true);
    new Uint8Array(this.mailbox, at + 4, data.length).set(data);
    ctl[1] += 4 + data.length;
    Atomics.add(ctl, 0, 1);
  }
  unref(): void {}
  close(): void {}
}
function noBytes(): never {
  throw new Error("a WebAssembly module compiled before the browser shim cannot be posted");
}

export class MessageChannel {
  readonly port1: MessagePort;
  readonly port2: MessagePort;
  constructor() {
    const mailbox = new SharedArrayBuffer(MAILBOX_BYTES);
    this.port1 = new MessagePort(mailbox);
    this.port2 = this.port1;
  }
}

/**
 * The helper's receiveMessageOnPort: the next message of the mailbox, or
 * undefined. Copied into the helper as source text, so it uses nothing outside.
 */
function receiveMessageOnPort(port: {
  mailbox: SharedArrayBuffer;
}): { message: unknown } | undefined {
  const ctl = new Int32Array(port.mailbox, 0, 4);
  if (ctl[2] >= Atomics.load(ctl, 0)) return undefined;
  const at = 16 + ctl[3];
  const n = new DataView(port.mailbox).getInt32(at, true);
  const json = new TextDecoder().decode(new Uint8Array(port.mailbox, at + 4, n).slice());
  ctl[3] += 4 + n;
  ctl[2]++;
  const message = JSON.parse(json, (_k, v) =>
    v && typeof v === "object" && Array.isArray(v.__wasm)
      ? new WebAssembly.Module(Uint8Array.from(v.__wasm))
      : v,
  );
  return { message };
}

/** A Node-style Worker over a Web Worker: `source` runs with `require` answering node:worker_threads and node:fs. */
export class Worker {
  private readonly worker: globalThis.Worker;
  constructor(
    source: string,
    o: { workerData?: { port?: MessagePort } & Record<string, unknown> } = {},
  ) {
    const code = `self.onmessage = (e) => {
  self.onmessage = null;
  const workerData = e.data;
  const receiveMessageOnPort = ${receiveMessageOnPort.toString()};
  const require = (id) => {
    if (id === "node:worker_threads") return { workerData, receiveMessageOnPort };
    if (id === "node:fs") return { writeSync: (_fd, text) => console.error(text) };
    throw new Error(id + " is not available in a browser");
  };
  (function () {
${source}
  })();
};`;
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    this.worker = new globalThis.Worker(url);
    const data = { ...o.workerData };
    if (data.port) data.port = { mailbox: data.port.mailbox } as MessagePort;
    this.worker.postMessage(data);
  }
  unref(): void {}
  on(event: string, fn: () => void): void {
    if (event === "error") this.worker.addEventListener("error", fn);
  }
  terminate(): void {
    this.worker.terminate();
  }
}
export const parentPort = null;
export const workerData = undefined;
