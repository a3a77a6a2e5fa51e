// `gptc verify`: runs a PyTorch reference fixture (see test/fixtures/tiny/README.md)
// on a backend and compares every quantity against the float32 tolerances the
// fixture documents.
import { GptcError } from "../errors.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { CompiledGraphs } from "../ir/pipeline.js";
import type { Backend } from "./backend.js";
import { adamwStep, decays, globalNorm, newAdamWState, type AdamWConfig } from "./optimizer.js";
import { readSafetensors } from "./safetensors.js";
import { generateCached, generateFull } from "./generate.js";
import { Session } from "./session.js";
import { loadWeightsFile, type WeightSpec, type Weights } from "./weights.js";

/** One quantity of a fixture compared with PyTorch's. */
export interface Check {
  /** What was compared, e.g. "logits", "grad.wte.weight", "greedy tokens (KV cache)". */
  name: string;
  /** Whether it is within the tolerance. */
  pass: boolean;
  /** Largest absolute difference from the reference (0 for exact comparisons). */
  maxAbs: number;
  /** max|x - ref| / max|ref| (or the check's own relative measure). */
  rel: number;
  /** The tolerance applied, in words, e.g. "err <= 0.0001". */
  tolerance: string;
  /** Details of a failure (e.g. the tokens generated instead). */
  note?: string;
}

export interface FixtureCase {
  inputs: number[][];
  targets: number[][];
  loss: number;
  grad_global_norm: number;
  generation: { prompt: number[]; max_new_tokens: number; new_tokens: number[] };
  adamw: {
    lr: number;
    betas: [number, number];
    eps: number;
    weight_decay: number;
    decay: string[];
    no_decay: string[];
  };
  gelu_new_samples?: { x: number[]; y: number[] };
  /** The Hugging Face GPT-2 config the fixture was made with (as in config.json). */
  config?: {
    vocab_size: number;
    n_positions: number;
    n_embd: number;
    n_layer: number;
    n_head: number;
    layer_norm_epsilon: number;
  };
  /** Loss on the same batch after the AdamW step. */
  loss_after_adamw?: number;
}

export class FixtureError extends GptcError {
  constructor(message: string) {
    super("fixture", message);
  }
}

export function readFixtureCase(dir: string): FixtureCase {
  const path = join(dir, "case.json");
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new FixtureError(`cannot read ${path}: ${(e as Error).message}`);
  }
  const c = value as FixtureCase;
  if (
    !c ||
    !Array.isArray(c.inputs) ||
    !Array.isArray(c.targets) ||
    typeof c.loss !== "number" ||
    !c.generation ||
    !c.adamw
  )
    throw new FixtureError(`${path} lacks inputs, targets, loss, generation or adamw`);
  return c;
}

/** err = max|x - ref| / max|ref| over a tensor. */
export function tensorError(
  x: ArrayLike<number>,
  ref: ArrayLike<number>,
): { maxAbs: number; rel: number } {
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(x[i] - ref[i]);
    if (!(d <= maxAbs)) maxAbs = d; // NaN-propagating max
    maxRef = Math.max(maxRef, Math.abs(ref[i]));
  }
  if (x.length !== ref.length) maxAbs = Infinity;
  return { maxAbs, rel: maxRef > 0 ? maxAbs / maxRef : maxAbs };
}

function tensorCheck(
  name: string,
  x: ArrayLike<number>,
  ref: ArrayLike<number>,
  tol: number,
): Check {
  const { maxAbs, rel } = tensorError(x, ref);
  return { name, pass: rel <= tol, maxAbs, rel, tolerance: `err <= ${tol}` };
}

export interface VerifyInput {
  dir: string;
  graphs: CompiledGraphs;
  specs: WeightSpec[];
  backend: Backend;
  /** Evaluates the spec's GELU on samples, if the caller can (checks gelu_new_samples). */
  gelu?: (x: Float32Array) => Promise<Float32Array>;
}

export async function verifyFixture(v: VerifyInput): Promise<Check[]> {
  const c = readFixtureCase(v.dir);
  const expected = readSafetensors(join(v.dir, "expected.safetensors")).tensors;
  const ref = (key: string) => {
    const t = expected.get(key);
    if (!t) throw new FixtureError(`expected.safetensors has no '${key}'`);
    return t.data;
  };
  const weights = loadWeightsFile(v.dir, v.specs);
  const shapes = new Map(v.specs.map((s) => [s.key, s.shape]));
  const session = new Session(v.graphs, v.backend);
  const checks: Check[] = [];
  try {
    const B = c.inputs.length;
    const T = c.inputs[0].length;
    const inputs = {
      tokens: Float32Array.from(c.inputs.flat()),
      targets: Float32Array.from(c.targets.flat()),
    };

    const fwd = await session.forward(weights, inputs, { B, T });
    checks.push(tensorCheck("logits", fwd.logits, ref("logits"), 1e-4));

    const { loss, grads } = await session.lossAndGrads(weights, inputs, { B, T });
    const lossErr = Math.abs(loss - c.loss);
    const lossTol = 1e-5 * Math.max(1, Math.abs(c.loss));
    checks.push({
      name: "loss",
      pass: lossErr <= lossTol,
      maxAbs: lossErr,
      rel: lossErr / Math.abs(c.loss),
      tolerance: `abs <= ${lossTol.toPrecision(3)}`,
    });
    for (const s of v.specs)
      checks.push(tensorCheck(`grad.${s.key}`, grads.get(s.key)!, ref(`grad.${s.key}`), 1e-3));
    const norm = globalNorm(grads);
    const normRel = Math.abs(norm - c.grad_global_norm) / c.grad_global_norm;
    checks.push({
      name: "grad_global_norm",
      pass: normRel <= 1e-4,
      maxAbs: Math.abs(norm - c.grad_global_norm),
      rel: normRel,
      tolerance: "rel <= 1e-4",
    });

    // AdamW: the decay grouping, then one step from stored gradients and from our own.
    const cfg: AdamWConfig = {
      lr: c.adamw.lr,
      beta1: c.adamw.betas[0],
      beta2: c.adamw.betas[1],
      eps: c.adamw.eps,
      weightDecay: c.adamw.weight_decay,
    };
    const ours = v.specs
      .filter((s) => decays(s.shape))
      .map((s) => s.key)
      .sort();
    const theirs = [...c.adamw.decay].sort();
    const sameGroups = ours.length === theirs.length && ours.every((k, i) => k === theirs[i]);
    checks.push({
      name: "adamw decay groups",
      pass: sameGroups,
      maxAbs: 0,
      rel: 0,
      tolerance: "same keys",
      note: sameGroups ? undefined : `ours: ${ours.join(",")}`,
    });
    const stepWith = (g: Weights) => {
      const p: Weights = new Map([...weights].map(([k, w]) => [k, Float32Array.from(w)]));
      adamwStep(p, g, shapes, newAdamWState(p), cfg);
      return p;
    };
    const storedGrads: Weights = new Map(v.specs.map((s) => [s.key, ref(`grad.${s.key}`)]));
    const fromStored = stepWith(storedGrads);
    const fromOwn = stepWith(grads);
    let worstOpt = 0;
    let worstOptAbs = 0;
    let worstE2E = 0;
    let worstE2EAbs = 0;
    for (const s of v.specs) {
      const r = ref(`after_adamw.${s.key}`);
      const gRef = ref(`grad.${s.key}`);
      const a = fromStored.get(s.key)!;
      const b = fromOwn.get(s.key)!;
      for (let i = 0; i < r.length; i++) {
        const dOpt = Math.abs(a[i] - r[i]);
        worstOptAbs = Math.max(worstOptAbs, dOpt);
        worstOpt = Math.max(worstOpt, dOpt / (1e-7 + 1e-6 * Math.abs(r[i])));
        const dE = Math.abs(b[i] - r[i]);
        const tol = Math.abs(gRef[i]) >= 1e-5 ? 1e-6 : 2 * cfg.lr + 1e-6;
        worstE2EAbs = Math.max(worstE2EAbs, dE);
        worstE2E = Math.max(worstE2E, dE / tol);
      }
    }
    checks.push({
      name: "after_adamw (stored grads)",
      pass: worstOpt <= 1,
      maxAbs: worstOptAbs,
      rel: worstOpt,
      tolerance: "abs <= 1e-7 + 1e-6|ref| (rel = worst ratio)",
    });
    checks.push({
      name: "after_adamw (own grads)",
      pass: worstE2E <= 1,
      maxAbs: worstE2EAbs,
      rel: worstE2E,
      tolerance: "abs <= 1e-6 (2lr+1e-6 where |g_ref| < 1e-5)",
    });

    // Greedy generation at batch 1: recomputing the prefix each step, and with the KV cache.
    const gen = c.generation;
    const genLogits = ref("gen_logits");
    const vocab = genLogits.length / gen.max_new_tokens;
    const ways: [string, typeof generateFull][] = [["full recompute", generateFull]];
    if (session.canDecode) ways.push(["KV cache", generateCached]);
    for (const [label, run] of ways) {
      let step = 0;
      let worst = { maxAbs: 0, rel: 0 };
      const [newTokens] = await run(session, weights, [gen.prompt], {
        maxNewTokens: gen.max_new_tokens,
        temperature: 0,
        seed: 0,
        onLogits: (_row, logits) => {
          const e = tensorError(logits, genLogits.subarray(step * vocab, (step + 1) * vocab));
          if (!(e.rel <= worst.rel)) worst = e;
          step++;
        },
      });
      checks.push({
        name: `gen_logits (${label})`,
        pass: worst.rel <= 1e-4,
        maxAbs: worst.maxAbs,
        rel: worst.rel,
        tolerance: "err <= 1e-4",
      });
      const same =
        newTokens.length === gen.new_tokens.length &&
        newTokens.every((t, i) => t === gen.new_tokens[i]);
      checks.push({
        name: `greedy tokens (${label})`,
        pass: same,
        maxAbs: 0,
        rel: 0,
        tolerance: "exact",
        note: same ? undefined : `got ${newTokens.join(" ")}, expected ${gen.new_tokens.join(" ")}`,
      });
    }

    if (c.gelu_new_samples && v.gelu) {
      const y = await v.gelu(Float32Array.from(c.gelu_new_samples.x));
      let worst = 0;
      c.gelu_new_samples.y.forEach((r, i) => (worst = Math.max(worst, Math.abs(y[i] - r))));
      checks.push({
        name: "gelu_new_samples",
        pass: worst <= 1e-6,
        maxAbs: worst,
        rel: worst,
        tolerance: "abs <= 1e-6",
      });
    }
  } finally {
    session.destroy();
  }
  return checks;
}

/**
 * Checks as `gptc verify` prints them: a header naming the fixture folder and
 * the backend, one PASS/FAIL line per check, and a count of failures.
 */
export function formatChecks(dir: string, backend: string, checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = [`${dir} on ${backend}:`];
  for (const c of checks)
    lines.push(
      `  ${c.pass ? "PASS" : "FAIL"}  ${c.name.padEnd(width)}  max abs ${c.maxAbs.toExponential(2)}  rel ${c.rel.toExponential(2)}  (${c.tolerance})${c.note ? `  ${c.note}` : ""}`,
    );
  const failed = checks.filter((c) => !c.pass).length;
  lines.push(
    failed ? `  ${failed} of ${checks.length} checks FAIL` : `  all ${checks.length} checks pass`,
  );
  return lines.join("\n");
}
