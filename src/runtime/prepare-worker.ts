// A tokenizer worker of `prepare` (see prepare.ts and worker-pool.ts): decodes
// chunks of UTF-8 text and answers the characters in them (the char
// tokenizer's first pass) or their token ids.
import { parentPort, workerData } from "node:worker_threads";
import { jobRunner, type WorkerJob, type WorkerSetup } from "./worker-pool.js";

const run = jobRunner(workerData as WorkerSetup);

parentPort!.on("message", (job: WorkerJob) => {
  const answer = run(job);
  parentPort!.postMessage(answer, answer.ids ? [answer.ids.buffer as ArrayBuffer] : []);
});
