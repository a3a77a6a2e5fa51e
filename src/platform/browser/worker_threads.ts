// node:worker_threads in a browser: absent (the engine runs one thread, see os.ts).
function absent(): never {
  throw new Error("Node worker threads are not available in a browser");
}
export class Worker {
  constructor() {
    absent();
  }
}
export class MessageChannel {
  constructor() {
    absent();
  }
}
export type MessagePort = never;
export const parentPort = null;
export const workerData = undefined;
