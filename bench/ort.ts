// ONNX Runtime's side of the generation bench: gptc's own model exported with
// onnxFiles (the same weights gptc runs) and decoded greedily by
// onnxruntime-node (fp32; the engine under transformers.js) through
// decode.onnx's KV cache, as gptc's generator does it: the prompt, then one
// token a step. bench/gptc-run.ts interleaves its rounds with gptc's.
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

const ids = (xs: number[]) =>
  new ort.Tensor(
    "int64",
    BigInt64Array.from(xs, (x) => BigInt(x)),
    [1, xs.length],
  );

/** Greedy decoding through decode.onnx as gptc's generator does it: the prompt, then a token a step. */
export async function ortGreedy(s: ort.InferenceSession, prompt: number[], steps: number) {
  const C = prompt.length + steps - 1;
  const feeds: Record<string, ort.Tensor> = {};
  for (const [i, name] of s.inputNames.entries()) {
    if (!name.startsWith("cache.")) continue;
    const meta = s.inputMetadata[i] as { shape?: (number | string)[] };
    const dims = (meta.shape ?? []).map((d) => (d === "B" ? 1 : d === "C" ? C : Number(d)));
    feeds[name] = new ort.Tensor(
      "float32",
      new Float32Array(dims.reduce((a, b) => a * b, 1)),
      dims,
    );
  }
  const tokens: number[] = [];
  let window = prompt;
  let filled = 0;
  let firstAt = 0;
  for (let step = 0; step < steps; step++) {
    feeds.tokens = ids(window);
    feeds.cache_len = new ort.Tensor("int64", BigInt64Array.of(BigInt(filled)), []);
    const out = await s.run(feeds);
    for (const name of Object.keys(feeds))
      if (name.startsWith("cache.")) feeds[name] = out[`${name}.next`];
    const all = out.logits.data as Float32Array;
    const V = all.length / window.length;
    const base = (window.length - 1) * V;
    let best = 0;
    for (let v = 1; v < V; v++) if (all[base + v] > all[base + best]) best = v;
    tokens.push(best);
    if (step === 0) firstAt = performance.now();
    filled += window.length;
    window = [best];
  }
  return { tokens, firstAt };
}
