// GPT-2 written in TensorFlow.js ops: the comparison model for gptc's benchmark.
//
// Faithful to Hugging Face GPT-2: learned positions, pre-LayerNorm blocks (eps 1e-5, biased
// variance), tanh GELU ("gelu_new"), causal self-attention scaled by 1/sqrt(head_dim), Conv1D
// weights stored [in, out] (y = x @ W + b), c_attn columns [q | k | v], and an LM head tied to
// the token embedding (logits = ln_f(x) @ wte^T). Parameters use the public checkpoint's names
// ("wte.weight", "h.0.attn.c_attn.weight", ...), so test/fixtures/tiny loads as is.
//
// Two variants of the same math (bench/README.md has the measurements):
//  * "naive": plain tf.matMul on 2-D activations [B*T, C] (transposeB for the tied head and for
//    q @ k^T) with TF.js's built-in gradients. On the wasm backend only an untransposed matmul
//    whose batch is 1 reaches XNNPACK; everything else (every transposed matmul, hence every
//    matmul in the built-in backward pass, and all batched attention matmuls) runs the backend's
//    scalar fallback loop (slow_batch_matmul).
//  * "tuned": every matmul is a plain untransposed 2-D matmul that reaches XNNPACK, backward
//    included: `mm` carries a custom gradient that transposes explicitly
//    (dA = dY @ transpose(B), dB = transpose(A) @ dY), and the tied head is x @ wteT with
//    wteT = tf.transpose(wte) taken inside the tape so the head gradient flows back into wte.
//    Attention either loops over the B*H heads with 2-D `mm` ("per-head", XNNPACK, default)
//    or uses one batched matmul with explicit transposes ("batched": still the scalar loop on
//    wasm, whatever the transposes, because its batch is > 1).
//
// Both variants need one deviation from "built-in gradients only": the gradient of tf.gather
// is UnsortedSegmentSum, which the wasm backend does not implement ("Kernel 'UnsortedSegmentSum'
// not registered for backend 'wasm'"), so the token embedding carries a custom gradient that
// scatter-adds with tf.scatterND (which sums duplicate indices). Position embeddings are a
// slice of wpe (gradient: pad), so they need nothing special. A broadcast [B,T,C] @ [C,N]
// tf.matMul is also unusable for training: its built-in gradient for the weight keeps the
// batch dimension ("The gradient of input 'b' has shape '3,7,4', which does not match ...").
import * as tf from "@tensorflow/tfjs";

export interface GPT2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  layerNormEps: number;
}

/** The benchmark's training model: 16.3M parameters with the tied head. */
export const BENCH_CONFIG: GPT2Config = {
  vocabSize: 50257,
  nPositions: 1024,
  nEmbd: 256,
  nLayer: 4,
  nHead: 4,
  layerNormEps: 1e-5,
};

/** The public gpt2 (124M) shape. */
export const GPT2_124M_CONFIG: GPT2Config = {
  vocabSize: 50257,
  nPositions: 1024,
  nEmbd: 768,
  nLayer: 12,
  nHead: 12,
  layerNormEps: 1e-5,
};

/** `--quick` (CI smoke): the same sizes as bench/gptc-run.ts --quick. */
export const QUICK_CONFIG: GPT2Config = {
  vocabSize: 512,
  nPositions: 64,
  nEmbd: 64,
  nLayer: 2,
  nHead: 2,
  layerNormEps: 1e-5,
};

export type Variant = "naive" | "tuned";
/** How the tuned variant computes attention (the naive one always uses batched transposeB). */
export type AttnMode = "per-head" | "batched";

export interface ModelOptions {
  variant: Variant;
  /** Tuned only. Default "per-head" for training. */
  attn?: AttnMode;
  /**
   * Tuned only, beyond the brief's "tuned" (the runner's "tuned+"): "custom" gives the tied
   * head its own gradient, dX = dY @ wte and dWte = transpose(dY) @ X (no transposed copy of
   * wte to pack, no transpose of dWte); default "wteT" is x @ transpose(wte) on the tape.
   */
  head?: "wteT" | "custom";
  /**
   * Tuned only ("tuned+"): "fused" is cross-entropy with its own gradient,
   * (softmax - onehot) / N from one exp pass, instead of logSoftmax * oneHot with built-in
   * gradients (default "plain").
   */
  ce?: "plain" | "fused";
}

/** Parameters by Hugging Face name; Variables for training, any tensors for inference. */
export type Params = Record<string, tf.Tensor>;

/** [name, shape] of every parameter, in checkpoint order (embeddings, blocks, ln_f). */
export function paramShapes(cfg: GPT2Config): Array<[string, number[]]> {
  const C = cfg.nEmbd;
  const out: Array<[string, number[]]> = [
    ["wte.weight", [cfg.vocabSize, C]],
    ["wpe.weight", [cfg.nPositions, C]],
  ];
  for (let l = 0; l < cfg.nLayer; l++) {
    const p = `h.${l}.`;
    out.push(
      [p + "ln_1.weight", [C]],
      [p + "ln_1.bias", [C]],
      [p + "attn.c_attn.weight", [C, 3 * C]],
      [p + "attn.c_attn.bias", [3 * C]],
      [p + "attn.c_proj.weight", [C, C]],
      [p + "attn.c_proj.bias", [C]],
      [p + "ln_2.weight", [C]],
      [p + "ln_2.bias", [C]],
      [p + "mlp.c_fc.weight", [C, 4 * C]],
      [p + "mlp.c_fc.bias", [4 * C]],
      [p + "mlp.c_proj.weight", [4 * C, C]],
      [p + "mlp.c_proj.bias", [C]],
    );
  }
  out.push(["ln_f.weight", [C]], ["ln_f.bias", [C]]);
  return out;
}

export function parameterCount(cfg: GPT2Config): number {
  return paramShapes(cfg).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
}

/** AdamW weight decay applies to the 2-D weights (wte, wpe, Conv1D weights) only. */
export function isDecayParam(name: string): boolean {
  return name === "wte.weight" || name === "wpe.weight" || /\.c_(attn|proj|fc)\.weight$/.test(name);
}

/**
 * GPT-2's initialisation: weights N(0, 0.02), residual projections (c_proj) N(0, 0.02/sqrt(2L)),
 * biases 0, LayerNorm weight 1 and bias 0. Deterministic for a seed.
 */
export function initParams(cfg: GPT2Config, seed = 1): Record<string, tf.Variable> {
  const out: Record<string, tf.Variable> = {};
  let k = 0;
  for (const [name, shape] of paramShapes(cfg)) {
    k++;
    const t = tf.tidy(() => {
      if (name.endsWith(".bias")) return tf.zeros(shape);
      if (/ln_[12f]\.weight$/.test(name) || name === "ln_f.weight") return tf.ones(shape);
      const std = name.endsWith("c_proj.weight") ? 0.02 / Math.sqrt(2 * cfg.nLayer) : 0.02;
      return tf.randomNormal(shape, 0, std, "float32", seed * 1000 + k);
    });
    out[name] = tf.variable(t, true, name);
    t.dispose();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Building blocks

/** a @ b for 2-D a, b with a gradient made of untransposed 2-D matmuls (all XNNPACK on wasm). */
const mm2dGrad = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const a = args[0] as tf.Tensor2D;
  const b = args[1] as tf.Tensor2D;
  const save = args[2] as tf.GradSaveFunc;
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor2D[];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, tf.transpose(sb)), tf.matMul(tf.transpose(sa), g)];
    },
  };
});
export function mm(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  return mm2dGrad(a, b) as tf.Tensor2D;
}

/** Batched a @ b ([N,m,k] @ [N,k,n]) with explicit transposes in the gradient as well. */
const bmmGrad = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const a = args[0] as tf.Tensor3D;
  const b = args[1] as tf.Tensor3D;
  const save = args[2] as tf.GradSaveFunc;
  save([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sa, sb] = saved as tf.Tensor3D[];
      const g = dy as tf.Tensor3D;
      return [tf.matMul(g, tf.transpose(sb, [0, 2, 1])), tf.matMul(tf.transpose(sa, [0, 2, 1]), g)];
    },
  };
});
function bmm(a: tf.Tensor, b: tf.Tensor): tf.Tensor3D {
  return bmmGrad(a, b) as tf.Tensor3D;
}

/** x @ transpose(wte) with dX = dY @ wte and dWte = transpose(dY) @ X, all plain 2-D matmuls. */
const tiedHeadGrad = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = args[0] as tf.Tensor2D;
  const wte = args[1] as tf.Tensor2D;
  const save = args[2] as tf.GradSaveFunc;
  save([x, wte]);
  return {
    value: tf.matMul(x, tf.transpose(wte)),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sw] = saved as tf.Tensor2D[];
      const g = dy as tf.Tensor2D;
      return [tf.matMul(g, sw), tf.matMul(tf.transpose(g), sx)];
    },
  };
});

/** Mean cross-entropy with a fused gradient: one exp pass forward, one backward. */
function fusedCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const [n, v] = logits.shape;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const z = args[0] as tf.Tensor2D;
    const save = args[1] as tf.GradSaveFunc;
    const lse = tf.logSumExp(z, 1, true);
    const flatIdx = tf.add(tf.mul(tf.range(0, n, 1, "int32"), tf.scalar(v, "int32")), targets);
    const picked = tf.gather(tf.reshape(z, [-1]), flatIdx);
    save([z, lse, flatIdx]);
    return {
      value: tf.mean(tf.sub(tf.reshape(lse, [-1]), picked)) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sz, slse, sidx] = saved;
        const scale = tf.div(dy, n);
        const p = tf.exp(tf.sub(sz, slse));
        const pt = tf.gather(tf.reshape(p, [-1]), sidx as tf.Tensor1D);
        const g = tf.tensorScatterUpdate(
          tf.reshape(tf.mul(p, scale), [-1]),
          tf.reshape(sidx, [-1, 1]),
          tf.mul(tf.sub(pt, 1), scale),
        );
        return tf.reshape(g, [n, v]);
      },
    };
  });
  return f(logits) as tf.Scalar;
}

/** table[ids] with a scatter-add gradient (tf.gather's own gradient is missing on wasm). */
function embed(table: tf.Tensor, ids: tf.Tensor1D): tf.Tensor2D {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const t = args[0] as tf.Tensor2D;
    const shape = t.shape;
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy: tf.Tensor) => tf.scatterND(tf.reshape(ids, [-1, 1]), dy, shape),
    };
  });
  return f(table) as tf.Tensor2D;
}

export function layerNorm(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor, eps: number): tf.Tensor {
  const mean = tf.mean(x, -1, true);
  const xc = tf.sub(x, mean);
  const variance = tf.mean(tf.square(xc), -1, true);
  return tf.add(tf.mul(tf.mul(xc, tf.rsqrt(tf.add(variance, eps))), g), b);
}

/** gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluNew(x: tf.Tensor): tf.Tensor {
  const x3 = tf.mul(tf.mul(x, x), x);
  const inner = tf.mul(tf.add(x, tf.mul(x3, 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

function linear(x: tf.Tensor, w: tf.Tensor, b: tf.Tensor, o: ModelOptions): tf.Tensor2D {
  const y = o.variant === "tuned" ? mm(x, w) : tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D);
  return tf.add(y, b) as tf.Tensor2D;
}

const MASK_VALUE = -1e9;

/** [rows, cols] additive causal mask for queries at positions offset..offset+rows-1. */
function causalMask(rows: number, cols: number, offset: number): tf.Tensor2D {
  const m = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) if (j > offset + i) m[i * cols + j] = MASK_VALUE;
  return tf.tensor2d(m, [rows, cols]);
}

/**
 * Causal self-attention over a [B*T, 3C] qkv block; returns [B*T, C] (before c_proj).
 */
function attention(
  qkv: tf.Tensor,
  B: number,
  T: number,
  cfg: GPT2Config,
  o: ModelOptions,
): tf.Tensor2D {
  const C = cfg.nEmbd;
  const H = cfg.nHead;
  const hd = C / H;
  const scale = 1 / Math.sqrt(hd);
  const [q2, k2, v2] = tf.split(qkv, 3, 1);
  const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, hd]), [0, 2, 1, 3]);
  const mask = causalMask(T, T, 0);
  let y: tf.Tensor; // [B, H, T, hd]
  if (o.variant === "naive") {
    const q = heads(q2) as tf.Tensor4D;
    const k = heads(k2) as tf.Tensor4D;
    const v = heads(v2) as tf.Tensor4D;
    const att = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), mask));
    y = tf.matMul(att as tf.Tensor4D, v);
  } else {
    const q = tf.reshape(heads(q2), [B * H, T, hd]);
    const kT = tf.reshape(tf.transpose(tf.reshape(k2, [B, T, H, hd]), [0, 2, 3, 1]), [
      B * H,
      hd,
      T,
    ]);
    const v = tf.reshape(heads(v2), [B * H, T, hd]);
    if ((o.attn ?? "per-head") === "batched") {
      const att = tf.softmax(tf.add(tf.mul(bmm(q, kT), scale), mask));
      y = bmm(att, v);
    } else {
      const qs = tf.unstack(q);
      const ks = tf.unstack(kT);
      const vs = tf.unstack(v);
      const scores = tf.stack(qs.map((qi, i) => mm(qi, ks[i])));
      const att = tf.unstack(tf.softmax(tf.add(tf.mul(scores, scale), mask)));
      y = tf.stack(att.map((ai, i) => mm(ai, vs[i])));
    }
    y = tf.reshape(y, [B, H, T, hd]);
  }
  return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [B * T, C]) as tf.Tensor2D;
}

function block(
  P: Params,
  l: number,
  x: tf.Tensor,
  B: number,
  T: number,
  cfg: GPT2Config,
  o: ModelOptions,
): tf.Tensor {
  const p = (n: string) => P[`h.${l}.${n}`];
  const eps = cfg.layerNormEps;
  const h = layerNorm(x, p("ln_1.weight"), p("ln_1.bias"), eps);
  const qkv = linear(h, p("attn.c_attn.weight"), p("attn.c_attn.bias"), o);
  const a = attention(qkv, B, T, cfg, o);
  x = tf.add(x, linear(a, p("attn.c_proj.weight"), p("attn.c_proj.bias"), o));
  const h2 = layerNorm(x, p("ln_2.weight"), p("ln_2.bias"), eps);
  const f = geluNew(linear(h2, p("mlp.c_fc.weight"), p("mlp.c_fc.bias"), o));
  return tf.add(x, linear(f, p("mlp.c_proj.weight"), p("mlp.c_proj.bias"), o));
}

/** The tied LM head: x [N, C] -> logits [N, V]. `wteT` (tuned) may be precomputed. */
function head(P: Params, x: tf.Tensor, o: ModelOptions, wteT?: tf.Tensor): tf.Tensor2D {
  const wte = P["wte.weight"] as tf.Tensor2D;
  if (o.variant === "naive") return tf.matMul(x as tf.Tensor2D, wte, false, true);
  if (wteT) return mm(x, wteT);
  if (o.head === "custom") return tiedHeadGrad(x, wte) as tf.Tensor2D;
  return mm(x, tf.transpose(wte));
}

/** Full-sequence forward. idx: int32 [B, T]. Returns logits [B*T, V]. */
export function forward(
  P: Params,
  cfg: GPT2Config,
  o: ModelOptions,
  idx: tf.Tensor2D,
): tf.Tensor2D {
  const [B, T] = idx.shape;
  const C = cfg.nEmbd;
  const tok = embed(P["wte.weight"], tf.reshape(idx, [B * T]) as tf.Tensor1D);
  const pos = tf.slice(P["wpe.weight"], [0, 0], [T, C]);
  let x: tf.Tensor = tf.reshape(tf.add(tf.reshape(tok, [B, T, C]), pos), [B * T, C]);
  for (let l = 0; l < cfg.nLayer; l++) x = block(P, l, x, B, T, cfg, o);
  x = layerNorm(x, P["ln_f.weight"], P["ln_f.bias"], cfg.layerNormEps);
  return head(P, x, o);
}

/** Mean cross-entropy of logits [N, V] against int32 targets [N]. */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Scalar {
  const V = logits.shape[1];
  const logp = tf.logSoftmax(logits);
  // Not tf.oneHot(targets, V, 1, 0, "float32"): the wasm OneHot kernel ignores the dtype and
  // writes int32 bit patterns into the float32 tensor (1 reads as 1.4e-45), giving loss 0.
  const oh = tf.cast(tf.oneHot(targets, V), "float32");
  return tf.neg(tf.mean(tf.sum(tf.mul(oh, logp), -1))) as tf.Scalar;
}

export function lossFn(
  P: Params,
  cfg: GPT2Config,
  o: ModelOptions,
  idx: tf.Tensor2D,
  targets: tf.Tensor2D,
): tf.Scalar {
  const [B, T] = targets.shape;
  const logits = forward(P, cfg, o, idx);
  const flat = tf.reshape(targets, [B * T]) as tf.Tensor1D;
  if (o.variant === "tuned" && o.ce === "fused") return fusedCrossEntropy(logits, flat);
  return crossEntropy(logits, flat);
}

// ---------------------------------------------------------------------------------------------
// AdamW (TF.js's tf.train.adam has no decoupled weight decay), torch.optim.AdamW's order:
//   p *= 1 - lr*wd (decay params only); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

// The same settings gptc's AdamW takes.
export type { AdamWConfig } from "../src/runtime/optimizer.js";
import type { AdamWConfig } from "../src/runtime/optimizer.js";

export const DEFAULT_ADAMW: AdamWConfig = {
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  weightDecay: 0.1,
};

export class AdamW {
  readonly m: Record<string, tf.Variable> = {};
  readonly v: Record<string, tf.Variable> = {};
  step = 0;

  constructor(
    readonly params: Record<string, tf.Variable>,
    readonly cfg: AdamWConfig = DEFAULT_ADAMW,
    readonly decay: (name: string) => boolean = isDecayParam,
  ) {
    for (const [name, p] of Object.entries(params)) {
      this.m[name] = tf.variable(tf.zerosLike(p), false, `adamw.m.${name}`);
      this.v[name] = tf.variable(tf.zerosLike(p), false, `adamw.v.${name}`);
    }
  }

  /** One update; `grads` by parameter name (as tf.variableGrads returns them). */
  apply(grads: Record<string, tf.Tensor>): void {
    this.step++;
    const { lr, beta1, beta2, eps, weightDecay } = this.cfg;
    const stepSize = lr / (1 - beta1 ** this.step);
    const bc2Sqrt = Math.sqrt(1 - beta2 ** this.step);
    for (const [name, p] of Object.entries(this.params)) {
      const g = grads[name];
      if (!g) throw new Error(`AdamW: no gradient for ${name}`);
      tf.tidy(() => {
        const m = tf.add(tf.mul(this.m[name], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[name], beta2), tf.mul(tf.square(g), 1 - beta2));
        this.m[name].assign(m);
        this.v[name].assign(v);
        const decayed = this.decay(name) && weightDecay !== 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
      });
    }
  }

  dispose(): void {
    for (const t of [...Object.values(this.m), ...Object.values(this.v)]) t.dispose();
  }
}

/** One training step: loss, gradients (tf.variableGrads) and AdamW. Returns the loss. */
export function trainStep(
  params: Record<string, tf.Variable>,
  opt: AdamW,
  cfg: GPT2Config,
  o: ModelOptions,
  idx: tf.Tensor2D,
  targets: tf.Tensor2D,
): { loss: number; fwdBwdMs: number; optMs: number; cpuMs: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const { value, grads } = tf.variableGrads(
    () => lossFn(params, cfg, o, idx, targets),
    Object.values(params),
  );
  const loss = value.dataSync()[0];
  const t1 = performance.now();
  opt.apply(grads);
  // The wasm backend runs every op synchronously, so the update is done once apply returns;
  // reading one value keeps this honest on asynchronous backends too.
  params["ln_f.bias"].dataSync();
  const t2 = performance.now();
  const c = process.cpuUsage(c0);
  value.dispose();
  tf.dispose(grads);
  // cpuMs: user+system CPU time of the whole process (all threads) during the step.
  return { loss, fwdBwdMs: t1 - t0, optMs: t2 - t1, cpuMs: (c.user + c.system) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// Incremental decoding with a KV cache (batch 1). The cache holds per layer k, v as
// [H, len, hd]; each step concatenates the new keys/values (tf.concat, i.e. one copy of the
// cache per step, O(len) - no preallocation, TF.js tensors are immutable).

export interface KVCache {
  k: tf.Tensor3D[];
  v: tf.Tensor3D[];
  len: number;
}

export function emptyCache(): KVCache {
  return { k: [], v: [], len: 0 };
}

export function disposeCache(c: KVCache): void {
  tf.dispose([...c.k, ...c.v]);
  c.k = [];
  c.v = [];
  c.len = 0;
}

export interface DecodeOptions extends ModelOptions {
  /** Tuned only: attention in decode, "batched" (default) or "per-head". */
  decodeAttn?: AttnMode;
}

/**
 * Runs `tokens` (positions cache.len ..) through the model, appending to the cache, and
 * returns the logits of the last position [V]. Call inside no tape. `wteT` (tuned): the
 * transposed embedding, computed once by the caller (x @ wteT then reaches XNNPACK).
 */
export function decode(
  P: Params,
  cfg: GPT2Config,
  o: DecodeOptions,
  tokens: number[],
  cache: KVCache,
  wteT?: tf.Tensor,
): tf.Tensor1D {
  const n = tokens.length;
  const pos0 = cache.len;
  if (pos0 + n > cfg.nPositions) throw new Error("decode: past n_positions");
  const C = cfg.nEmbd;
  const H = cfg.nHead;
  const hd = C / H;
  const scale = 1 / Math.sqrt(hd);
  const eps = cfg.layerNormEps;
  const newK: tf.Tensor3D[] = [];
  const newV: tf.Tensor3D[] = [];
  const logits = tf.tidy(() => {
    const ids = tf.tensor1d(tokens, "int32");
    let x: tf.Tensor = tf.add(
      tf.gather(P["wte.weight"], ids),
      tf.slice(P["wpe.weight"], [pos0, 0], [n, C]),
    );
    const mask = n > 1 ? causalMask(n, pos0 + n, pos0) : null;
    for (let l = 0; l < cfg.nLayer; l++) {
      const p = (s: string) => P[`h.${l}.${s}`];
      const h = layerNorm(x, p("ln_1.weight"), p("ln_1.bias"), eps);
      const qkv = linear(h, p("attn.c_attn.weight"), p("attn.c_attn.bias"), o);
      const [q2, k2, v2] = tf.split(qkv, 3, 1);
      const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [n, H, hd]), [1, 0, 2]);
      const q = heads(q2) as tf.Tensor3D;
      const kNew = heads(k2) as tf.Tensor3D;
      const vNew = heads(v2) as tf.Tensor3D;
      const K = l < cache.k.length ? tf.concat([cache.k[l], kNew], 1) : kNew;
      const V = l < cache.v.length ? tf.concat([cache.v[l], vNew], 1) : vNew;
      newK.push(tf.keep(K));
      newV.push(tf.keep(V));
      let y: tf.Tensor;
      if (o.variant === "naive") {
        let s = tf.mul(tf.matMul(q, K, false, true), scale);
        if (mask) s = tf.add(s, mask);
        y = tf.matMul(tf.softmax(s) as tf.Tensor3D, V);
      } else if ((o.decodeAttn ?? "batched") === "batched") {
        let s = tf.mul(tf.matMul(q, tf.transpose(K, [0, 2, 1])), scale);
        if (mask) s = tf.add(s, mask);
        y = tf.matMul(tf.softmax(s) as tf.Tensor3D, V);
      } else {
        const qs = tf.unstack(q);
        const kTs = tf.unstack(tf.transpose(K, [0, 2, 1]));
        const vs = tf.unstack(V);
        let s: tf.Tensor = tf.mul(
          tf.stack(qs.map((qi, i) => tf.matMul(qi as tf.Tensor2D, kTs[i] as tf.Tensor2D))),
          scale,
        );
        if (mask) s = tf.add(s, mask);
        const att = tf.unstack(tf.softmax(s));
        y = tf.stack(att.map((ai, i) => tf.matMul(ai as tf.Tensor2D, vs[i] as tf.Tensor2D)));
      }
      const a = tf.reshape(tf.transpose(y, [1, 0, 2]), [n, C]);
      x = tf.add(x, linear(a, p("attn.c_proj.weight"), p("attn.c_proj.bias"), o));
      const h2 = layerNorm(x, p("ln_2.weight"), p("ln_2.bias"), eps);
      const f = geluNew(linear(h2, p("mlp.c_fc.weight"), p("mlp.c_fc.bias"), o));
      x = tf.add(x, linear(f, p("mlp.c_proj.weight"), p("mlp.c_proj.bias"), o));
    }
    const last = tf.slice(x, [n - 1, 0], [1, C]);
    const xf = layerNorm(last, P["ln_f.weight"], P["ln_f.bias"], eps);
    return tf.reshape(head(P, xf, o, wteT), [cfg.vocabSize]) as tf.Tensor1D;
  });
  tf.dispose([...cache.k, ...cache.v]);
  cache.k = newK;
  cache.v = newV;
  cache.len = pos0 + n;
  return logits;
}

/** Argmax of a [V] logits vector (first maximum, as torch.argmax). */
export function argmax(logits: tf.Tensor1D): number {
  const d = logits.dataSync();
  let best = 0;
  for (let i = 1; i < d.length; i++) if (d[i] > d[best]) best = i;
  return best;
}

export interface GenerateResult {
  tokens: number[];
  /** ms for the prompt (prefill, yields new token 1) and for each later decode step. */
  prefillMs: number;
  stepMs: number[];
  /** Last-position logits per new token, when requested. */
  logits?: Float32Array[];
}

/** Greedy decoding with the KV cache: prefill the prompt, then one token per step. */
export function generateGreedy(
  P: Params,
  cfg: GPT2Config,
  o: DecodeOptions,
  prompt: number[],
  newTokens: number,
  keepLogits = false,
): GenerateResult {
  const wteT = o.variant === "tuned" ? tf.transpose(P["wte.weight"]) : undefined;
  const cache = emptyCache();
  const out: number[] = [];
  const logitsOut: Float32Array[] = [];
  const stepMs: number[] = [];
  let t = performance.now();
  let lg = decode(P, cfg, o, prompt, cache, wteT);
  let next = argmax(lg);
  if (keepLogits) logitsOut.push(lg.dataSync().slice() as Float32Array);
  lg.dispose();
  const prefillMs = performance.now() - t;
  out.push(next);
  for (let i = 1; i < newTokens; i++) {
    t = performance.now();
    lg = decode(P, cfg, o, [next], cache, wteT);
    next = argmax(lg);
    if (keepLogits) logitsOut.push(lg.dataSync().slice() as Float32Array);
    lg.dispose();
    stepMs.push(performance.now() - t);
    out.push(next);
  }
  disposeCache(cache);
  wteT?.dispose();
  return { tokens: out, prefillMs, stepMs, logits: keepLogits ? logitsOut : undefined };
}

/** Greedy decoding without a cache: the full forward over the whole sequence per token. */
export function generateGreedyNoCache(
  P: Params,
  cfg: GPT2Config,
  o: ModelOptions,
  prompt: number[],
  newTokens: number,
): { tokens: number[]; logits: Float32Array[] } {
  const seq = [...prompt];
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  for (let i = 0; i < newTokens; i++) {
    const lg = tf.tidy(() => {
      const all = forward(P, cfg, o, tf.tensor2d([seq], [1, seq.length], "int32"));
      return tf.reshape(tf.slice(all, [seq.length - 1, 0], [1, cfg.vocabSize]), [
        cfg.vocabSize,
      ]) as tf.Tensor1D;
    });
    const next = argmax(lg);
    logits.push(lg.dataSync().slice() as Float32Array);
    lg.dispose();
    tokens.push(next);
    seq.push(next);
  }
  return { tokens, logits };
}
