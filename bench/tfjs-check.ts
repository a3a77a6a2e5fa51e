// Correctness of the TF.js comparison model (bench/tfjs-gpt2.ts) against the PyTorch fixture
// test/fixtures/tiny, with the tolerances of its README: logits, loss, every gradient, greedy
// decoding with and without the KV cache (tokens and gen_logits), AdamW (optimiser alone and
// end to end) and gelu_new samples. Run through the runner: npx tsx bench/tfjs-run.ts --only check
import * as tf from "@tensorflow/tfjs";
import { fileURLToPath } from "node:url";
import { readSafetensors, type SafetensorsTensor } from "../src/runtime/safetensors.js";
import { readFixtureCase, tensorError } from "../src/runtime/verify.js";
import {
  AdamW,
  forward,
  geluNew,
  generateGreedy,
  generateGreedyNoCache,
  lossFn,
  paramShapes,
  type DecodeOptions,
  type GPT2Config,
} from "./tfjs-gpt2.js";

const FIXTURE = fileURLToPath(new URL("../test/fixtures/tiny/", import.meta.url));

/** max|x - ref| / max|ref|, the README's per-tensor error (gptc's verify computes it the same way). */
const relErr = (x: ArrayLike<number>, ref: ArrayLike<number>) => tensorError(x, ref).rel;

export interface CheckItem {
  what: string;
  value: number | string;
  limit: number | string;
  ok: boolean;
}

export interface VariantCheck {
  variant: string;
  items: CheckItem[];
  ok: boolean;
}

export interface FixtureCheck {
  fixture: string;
  ok: boolean;
  variants: VariantCheck[];
  common: CheckItem[];
}

function variableFrom(t: SafetensorsTensor, name: string): tf.Variable {
  return tf.variable(tf.tensor(t.data, t.shape), true, name);
}

export function runFixtureCheck(): FixtureCheck {
  const cs = readFixtureCase(FIXTURE);
  const model = readSafetensors(FIXTURE + "model.safetensors").tensors;
  const expected = readSafetensors(FIXTURE + "expected.safetensors").tensors;
  const ex = (k: string) => {
    const t = expected.get(k);
    if (!t) throw new Error(`expected.safetensors lacks ${k}`);
    return t;
  };
  const c = cs.config;
  const { gelu_new_samples: gelu, loss_after_adamw: lossAfterRef } = cs;
  if (!c || !gelu || lossAfterRef === undefined)
    throw new Error(`${FIXTURE}case.json lacks config, gelu_new_samples or loss_after_adamw`);
  const cfg: GPT2Config = {
    vocabSize: c.vocab_size,
    nPositions: c.n_positions,
    nEmbd: c.n_embd,
    nLayer: c.n_layer,
    nHead: c.n_head,
    layerNormEps: c.layer_norm_epsilon,
  };
  const names = paramShapes(cfg).map(([n]) => n);
  const load = (prefix: string) => {
    const out: Record<string, tf.Variable> = {};
    for (const n of names) {
      const t = model.get(n);
      if (!t) throw new Error(`model.safetensors lacks ${n}`);
      out[n] = variableFrom(t, prefix + n);
    }
    return out;
  };
  const P = load("");
  const B = cs.inputs.length;
  const T = cs.inputs[0].length;
  const idx = tf.tensor2d(cs.inputs, [B, T], "int32");
  const tgt = tf.tensor2d(cs.targets, [B, T], "int32");
  const lr = cs.adamw.lr;
  const adamCfg = {
    lr,
    beta1: cs.adamw.betas[0],
    beta2: cs.adamw.betas[1],
    eps: cs.adamw.eps,
    weightDecay: cs.adamw.weight_decay,
  };
  const decaySet = new Set(cs.adamw.decay);

  const common: CheckItem[] = [];
  // gelu_new against the float64 samples.
  {
    const y = tf.tidy(() => geluNew(tf.tensor1d(gelu.x)).dataSync());
    let worst = 0;
    gelu.y.forEach((r, i) => (worst = Math.max(worst, Math.abs(y[i] - r))));
    common.push({
      what: "gelu_new_samples max abs err",
      value: worst,
      limit: 1e-6,
      ok: worst <= 1e-6,
    });
  }
  // AdamW alone: the stored params and the stored gradients.
  {
    const Q = load("adam_only.");
    const grads: Record<string, tf.Tensor> = {};
    for (const n of names) grads[n] = tf.tensor(ex("grad." + n).data, ex("grad." + n).shape);
    const opt = new AdamW(Q, adamCfg, (n) => decaySet.has(n));
    opt.apply(grads);
    let worst = 0;
    let worstName = "";
    for (const n of names) {
      const got = Q[n].dataSync();
      const ref = ex("after_adamw." + n).data;
      for (let i = 0; i < ref.length; i++) {
        const r = Math.abs(got[i] - ref[i]) / (1e-7 + 1e-6 * Math.abs(ref[i]));
        if (r > worst) [worst, worstName] = [r, n];
      }
    }
    common.push({
      what: `AdamW (stored grads) worst |x-ref|/(1e-7+1e-6|ref|) [${worstName}]`,
      value: worst,
      limit: 1,
      ok: worst <= 1,
    });
    opt.dispose();
    tf.dispose([...Object.values(Q), ...Object.values(grads)]);
  }

  const variants: DecodeOptions[] = [
    { variant: "naive" },
    { variant: "tuned", attn: "per-head", decodeAttn: "batched" },
    { variant: "tuned", attn: "batched", decodeAttn: "per-head" },
    { variant: "tuned", attn: "per-head", decodeAttn: "batched", head: "custom", ce: "fused" },
  ];
  const results: VariantCheck[] = [];
  for (const o of variants) {
    const label =
      o.variant === "naive"
        ? "naive"
        : `tuned (train attn ${o.attn}, decode attn ${o.decodeAttn}, head ${o.head ?? "wteT"}, ce ${o.ce ?? "plain"})`;
    const items: CheckItem[] = [];
    const logits = tf.tidy(() => forward(P, cfg, o, idx).dataSync());
    const le = relErr(logits, ex("logits").data);
    items.push({ what: "logits err", value: le, limit: 1e-4, ok: le <= 1e-4 });

    const { value, grads } = tf.variableGrads(() => lossFn(P, cfg, o, idx, tgt), Object.values(P));
    const loss = value.dataSync()[0];
    const lossTol = 1e-5 * Math.max(1, Math.abs(cs.loss));
    items.push({
      what: `loss |${loss.toFixed(7)} - ref|`,
      value: Math.abs(loss - cs.loss),
      limit: lossTol,
      ok: Math.abs(loss - cs.loss) <= lossTol,
    });
    let worstG = 0;
    let worstGName = "";
    let sq = 0;
    for (const n of names) {
      const g = grads[n].dataSync();
      for (const v of g) sq += v * v;
      const e = relErr(g, ex("grad." + n).data);
      if (e > worstG) [worstG, worstGName] = [e, n];
    }
    items.push({
      what: `grad err, worst param [${worstGName}]`,
      value: worstG,
      limit: 1e-3,
      ok: worstG <= 1e-3,
    });
    const gnErr = Math.abs(Math.sqrt(sq) - cs.grad_global_norm) / cs.grad_global_norm;
    items.push({ what: "grad global norm rel err (info)", value: gnErr, limit: "-", ok: true });

    // AdamW end to end on a copy of the parameters, with these gradients.
    {
      const Q: Record<string, tf.Variable> = {};
      for (const n of names) Q[n] = tf.variable(P[n].clone(), true, `e2e.${label}.${n}`);
      const opt = new AdamW(Q, adamCfg, (n) => decaySet.has(n));
      opt.apply(grads);
      let worstBig = 0;
      let worstSmall = 0;
      for (const n of names) {
        const got = Q[n].dataSync();
        const ref = ex("after_adamw." + n).data;
        const gRef = ex("grad." + n).data;
        for (let i = 0; i < ref.length; i++) {
          const d = Math.abs(got[i] - ref[i]);
          if (Math.abs(gRef[i]) >= 1e-5) worstBig = Math.max(worstBig, d);
          else worstSmall = Math.max(worstSmall, d);
        }
      }
      items.push({
        what: "AdamW e2e max|x-ref| where |g_ref|>=1e-5",
        value: worstBig,
        limit: 1e-6,
        ok: worstBig <= 1e-6,
      });
      items.push({
        what: "AdamW e2e max|x-ref| elsewhere",
        value: worstSmall,
        limit: 2 * lr + 1e-6,
        ok: worstSmall <= 2 * lr + 1e-6,
      });
      const lossAfter = tf.tidy(() => lossFn(Q, cfg, o, idx, tgt).dataSync()[0]);
      const la = Math.abs(lossAfter - lossAfterRef);
      items.push({
        what: "loss_after_adamw abs err (extra)",
        value: la,
        limit: lossTol,
        ok: la <= lossTol,
      });
      opt.dispose();
      tf.dispose(Object.values(Q));
    }
    value.dispose();
    tf.dispose(grads);

    // Greedy decoding, with the KV cache and without.
    const prompt = cs.generation.prompt;
    const want = cs.generation.new_tokens;
    const gen = generateGreedy(P, cfg, o, prompt, want.length, true);
    const genRef = ex("gen_logits");
    const V = cfg.vocabSize;
    const flat = (rows: Float32Array[]) => {
      const f = new Float32Array(rows.length * V);
      rows.forEach((r, i) => f.set(r, i * V));
      return f;
    };
    const eqTok = JSON.stringify(gen.tokens) === JSON.stringify(want);
    items.push({
      what: "greedy tokens (KV cache)",
      value: gen.tokens.join(","),
      limit: want.join(","),
      ok: eqTok,
    });
    const gle = relErr(flat(gen.logits!), genRef.data);
    items.push({ what: "gen_logits err (KV cache)", value: gle, limit: 1e-4, ok: gle <= 1e-4 });
    const nc = generateGreedyNoCache(P, cfg, o, prompt, want.length);
    const eqTok2 = JSON.stringify(nc.tokens) === JSON.stringify(want);
    items.push({
      what: "greedy tokens (no cache)",
      value: nc.tokens.join(","),
      limit: want.join(","),
      ok: eqTok2,
    });
    const gle2 = relErr(flat(nc.logits), genRef.data);
    items.push({ what: "gen_logits err (no cache)", value: gle2, limit: 1e-4, ok: gle2 <= 1e-4 });
    results.push({ variant: label, items, ok: items.every((i) => i.ok) });
  }
  tf.dispose([idx, tgt, ...Object.values(P)]);
  return {
    fixture: "test/fixtures/tiny",
    ok: common.every((i) => i.ok) && results.every((r) => r.ok),
    variants: results,
    common,
  };
}
