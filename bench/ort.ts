// ONNX Runtime's side of the generation bench: gptc's own model exported with
// onnxFiles (the same weights gptc runs) and decoded greedily by
// onnxruntime-node (fp32; the engine under transformers.js) through
// decode.onnx's KV cache, as gptc's generator does it: the prompt, then one
// token a step (test/helpers/onnx.ts decodeGreedy, the export tests' driver).
// bench/gptc-run.ts interleaves its rounds with gptc's.
import ort from "onnxruntime-node";

/** An ONNX Runtime session on decode.onnx with `threads` intra-op threads. */
export function ortSession(decode: Uint8Array, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(decode, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
}

export const ortVersion = `onnxruntime-node ${ort.env.versions?.common ?? ""}`.trim();
