// Running gptc's ONNX exports with onnxruntime-node: the forward graph on a
// batch of ids, and greedy decoding through the decode graph with its KV
// cache (inputs cache.X, outputs cache.X.next), as gptc's generator does it:
// the prompt first, then one token per step, into a cache of
// prompt + new - 1 slots.
import ort from "onnxruntime-node";

const ids = (xs: number[], dims: number[]) =>
  new ort.Tensor(
    "int64",
    BigInt64Array.from(xs, (x) => BigInt(x)),
    dims,
  );

/** Logits [B, T, V] of the forward graph (model.onnx). */
export async function ortLogits(file: string, tokens: number[], B: number, T: number) {
  const s = await ort.InferenceSession.create(file);
  try {
    const out = await s.run({ tokens: ids(tokens, [B, T]) });
    return { dims: out.logits.dims as number[], data: out.logits.data as Float32Array };
  } finally {
    await s.release();
  }
}

/** Greedy tokens of one prompt through decode.onnx, and the last-position logits of every step. */
export async function ortGreedy(file: string, prompt: number[], steps: number) {
  const s = await ort.InferenceSession.create(file);
  try {
    return await decodeGreedy(s, prompt, steps, { logits: true });
  } finally {
    await s.release();
  }
}

/**
 * Greedy decoding on an open decode.onnx session (also the bench's ONNX
 * Runtime side): the tokens, each step's last-position logits where asked,
 * and when the first token was out (performance.now()).
 */
export async function decodeGreedy(
  s: ort.InferenceSession,
  prompt: number[],
  steps: number,
  o: { logits?: boolean } = {},
) {
  const C = prompt.length + steps - 1;
  const feeds: Record<string, ort.Tensor> = {};
  for (const [i, name] of s.inputNames.entries()) {
    if (!name.startsWith("cache.")) continue;
    const meta = s.inputMetadata[i] as { shape?: (number | string)[] };
    // [B, heads, C, head_dim]: the symbolic axes are B (1) and C.
    const dims = (meta.shape ?? []).map((d) => (d === "B" ? 1 : d === "C" ? C : Number(d)));
    feeds[name] = new ort.Tensor(
      "float32",
      new Float32Array(dims.reduce((a, b) => a * b, 1)),
      dims,
    );
  }
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  let window = prompt;
  let filled = 0;
  let firstAt = 0;
  for (let step = 0; step < steps; step++) {
    feeds.tokens = ids(window, [1, window.length]);
    feeds.cache_len = ids([filled], []);
    const out = await s.run(feeds);
    for (const name of Object.keys(feeds))
      if (name.startsWith("cache.")) feeds[name] = out[`${name}.next`];
    const all = out.logits.data as Float32Array;
    const V = all.length / window.length;
    const base = (window.length - 1) * V;
    let best = 0;
    for (let v = 1; v < V; v++) if (all[base + v] > all[base + best]) best = v;
    tokens.push(best);
    if (o.logits) logits.push(all.slice(base));
    if (step === 0) firstAt = performance.now();
    filled += window.length;
    window = [best];
  }
  return { tokens, logits, firstAt };
}
