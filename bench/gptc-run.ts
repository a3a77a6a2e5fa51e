// The gptc side of `npm run bench`: one workload per process (so peak RSS is
// the workload's own), printed as one JSON line.
//   npx tsx bench/gptc-run.ts train|generate|train124m|compile|dropout [--quick] [--backend b] [--profile]
//   (dropout: [--steps n], default 8 of each kind, interleaved)
// Generation and compilation go through the library's API; the training step
// drives the runtime's Session and AdamW directly, so that what is timed is
// the step alone (no batch sampling, clipping or logging).
import { compile, createBackend, StepProfile, type BackendName } from "../src/index.js";
import { shapeEval } from "../src/ir/dims.js";
import { rngKey, rngKeyInput } from "../src/ir/ops/random.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { fastDropoutMask } from "../src/runtime/dropout-masks.js";
import { adamwStep, inEngine, newAdamWState } from "../src/runtime/optimizer.js";
import { Rng } from "../src/runtime/rng.js";
import { Session } from "../src/runtime/session.js";
import { initWeights } from "../src/runtime/weights.js";

const args = process.argv.slice(2);
const workload = args[0];
const quick = args.includes("--quick");
const profileOn = args.includes("--profile");
const backendAt = args.indexOf("--backend");
const backendName = (backendAt >= 0 ? args[backendAt + 1] : "webasm") as BackendName;

/** No dropout: the TF.js side has none, so the comparison is step for step (`dropout` measures it). */
const noDropout = { embd_pdrop: "0", attn_pdrop: "0", resid_pdrop: "0" };
const dropout = { embd_pdrop: "0.1", attn_pdrop: "0.1", resid_pdrop: "0.1" };
/** The bench model: GPT-2 with vocab 50257, 4 layers, 4 heads, d 256 (16.3M parameters). */
const benchSets: Record<string, string> = quick
  ? { vocab: "512", layers: "2", heads: "2", d: "64", ctx: "64", ...noDropout }
  : { vocab: "50257", layers: "4", heads: "4", d: "256", ctx: "1024", ...noDropout };
const smallSets: Record<string, string> = quick
  ? { vocab: "512", layers: "2", heads: "2", d: "64", ctx: "64", ...noDropout }
  : noDropout;

function model(set: Record<string, string>, preset?: string) {
  return compile({ file: "specs/gpt2-small.model" }, { set, preset });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** A training-step driver for one model: each call times one step (forward, backward, AdamW). */
async function trainer(set: Record<string, string>, B: number, T: number) {
  const m = model(set);
  const backend = await createBackend(backendName);
  const session = new Session(m.graphs, backend);
  const specs = m.weights;
  const shapes = new Map(specs.map((s) => [s.key, s.shape]));
  let weights = initWeights(specs, 1);
  let adam = newAdamWState(weights);
  // As `gptc train` does: weights and moments in the engine's memory where they fit.
  const placed = inEngine(backend, weights, adam);
  if (placed) ({ weights, state: adam } = placed);
  const vocab = Number(set.vocab ?? 50257);
  const rng = new Rng(7);
  let steps = 0;
  return {
    session,
    loss: NaN,
    async step(): Promise<number> {
      const tokens = Float32Array.from({ length: B * T }, () => Math.floor(rng.next() * vocab));
      const targets = Float32Array.from({ length: B * T }, () => Math.floor(rng.next() * vocab));
      // The dropout key, as the trainer gives it (ignored by a graph without dropout).
      const inputs = { tokens, targets, [rngKeyInput]: rngKey(1, steps++, 0) };
      const t0 = performance.now();
      const r = await session.lossAndGrads(weights, inputs, { B, T }, { views: true });
      adamwStep(weights, r.grads, shapes, adam, {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.1,
      });
      this.loss = r.loss;
      return performance.now() - t0;
    },
    destroy() {
      session.destroy();
      placed?.release();
    },
  };
}

async function trainSteps(set: Record<string, string>, B: number, T: number, steps: number) {
  const t = await trainer(set, B, T);
  const profile = profileOn ? new StepProfile() : undefined;
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    if (s === 1 && profile) t.session.profiler = profile; // after the compile-heavy first step
    times.push(await t.step());
  }
  t.destroy();
  return { times, loss: t.loss, profile };
}

async function main(): Promise<Record<string, unknown>> {
  switch (workload) {
    case "train": {
      const [B, T] = quick ? [2, 32] : [4, 128];
      const steps = quick ? 4 : 8;
      const { times, loss, profile } = await trainSteps(benchSets, B, T, steps);
      const ms = median(times.slice(1));
      return {
        workload,
        backend: backendName,
        B,
        T,
        msPerStep: ms,
        tokensPerSec: (B * T * 1000) / ms,
        firstStepMs: times[0],
        loss,
        profile: profile?.toJSON(),
        profileTable: profile?.table(),
      };
    }
    case "dropout": {
      // The bench step with dropout 0.1 in GPT-2's three places (embeddings,
      // attention weights, residual branches) against the same step without,
      // steps interleaved so that load on a shared machine hits both alike.
      const [B, T] = quick ? [2, 32] : [4, 128];
      const stepsAt = args.indexOf("--steps");
      const steps = quick ? 4 : stepsAt >= 0 ? Number(args[stepsAt + 1]) : 8;
      const off = await trainer(benchSets, B, T);
      const on = await trainer({ ...benchSets, ...dropout }, B, T);
      const offMs: number[] = [];
      const onMs: number[] = [];
      for (let s = 0; s < steps; s++) {
        offMs.push(await off.step());
        onMs.push(await on.step());
      }
      off.destroy();
      on.destroy();
      // The generator's share, measured apart: every mask the step's kernels fill
      // (forward and backward each recompute theirs), timed alone.
      const g = model({ ...benchSets, ...dropout }).graphs.training!;
      const fills: { size: number; p: number; stream: number }[] = [];
      for (const k of fuse(g).kernels)
        for (const id of k.nodes) {
          const n = g.nodes[id];
          if (n.op !== "dropout_mask") continue;
          const size = shapeEval(n.type.shape, { B, T }).reduce((a, b) => a * b, 1);
          fills.push({ size, p: n.attrs.p as number, stream: n.attrs.stream as number });
        }
      const maskMs: number[] = [];
      for (let s = 0; s < 5; s++) {
        const t0 = performance.now();
        for (const f of fills) fastDropoutMask(rngKey(1, s, 0), f.stream, f.p, f.size);
        maskMs.push(performance.now() - t0);
      }
      const msOff = median(offMs.slice(1));
      const msOn = median(onMs.slice(1));
      return {
        workload,
        backend: backendName,
        B,
        T,
        msPerStepNoDropout: msOff,
        msPerStepDropout: msOn,
        ratio: msOn / msOff,
        // The fastest step of each: less touched by other load on a shared machine.
        minRatio: Math.min(...onMs.slice(1)) / Math.min(...offMs.slice(1)),
        maskFillsPerStep: fills.length,
        maskElementsPerStep: fills.reduce((a, f) => a + f.size, 0),
        maskMsPerStep: median(maskMs),
        stepsMsNoDropout: offMs,
        stepsMsDropout: onMs,
        loss: on.loss,
      };
    }
    case "train124m": {
      const [B, T] = quick ? [1, 16] : [1, 128];
      try {
        const { times, loss } = await trainSteps(smallSets, B, T, 1);
        return { workload, backend: backendName, B, T, msPerStep: times[0], loss };
      } catch (e) {
        return {
          workload,
          backend: backendName,
          B,
          T,
          failed: (e as Error).message.split("\n")[0],
        };
      }
    }
    case "generate": {
      const m = model(smallSets);
      const session = await m.open({ backend: backendName, seed: 1 });
      const vocab = quick ? 512 : 50257;
      const rng = new Rng(3);
      const prompt = Array.from({ length: 16 }, () => Math.floor(rng.next() * vocab));
      const newTokens = quick ? 8 : 64;
      const greedy = { maxNewTokens: newTokens, temperature: 0, stopAtEnd: false };
      // Warm-up: the same run once, as TF.js's side does (cold, then warm). Its
      // executors (prompt and single-token, sized for this cache) are compiled
      // there, and the weights packed; a shorter warm-up would size another cache.
      await session.generate([prompt], greedy);
      const profile = profileOn ? new StepProfile() : undefined;
      session.profiler = profile;
      let firstAt = 0;
      const t0 = performance.now();
      await session.generate([prompt], {
        ...greedy,
        onToken: () => {
          if (!firstAt) firstAt = performance.now();
        },
      });
      const total = performance.now() - t0;
      session.close();
      // Steady state: the tokens after the first (which includes the prompt pass).
      const steady = (newTokens - 1) / ((performance.now() - firstAt) / 1000);
      return {
        workload,
        backend: backendName,
        newTokens,
        seconds: total / 1000,
        tokensPerSec: newTokens / (total / 1000),
        steadyTokensPerSec: steady,
        profile: profile?.toJSON(),
        profileTable: profile?.table(),
      };
    }
    case "compile": {
      const out: Record<string, number> = {};
      for (const preset of quick ? [undefined] : [undefined, "xl"]) {
        const t0 = performance.now();
        model({}, preset).compilation({ batch: 4, seq: 128 });
        out[preset ?? "small"] = performance.now() - t0;
      }
      return { workload, msSmall: out.small, msXl: out.xl };
    }
  }
  throw new Error(`unknown workload '${workload}' (train, generate, train124m, compile, dropout)`);
}

const result = await main();
process.stdout.write(JSON.stringify({ ...result, peakRssMiB: peakRssMiB() }) + "\n");
process.exit(0);
