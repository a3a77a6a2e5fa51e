// The gptc side of `npm run bench`: one workload per process (so peak RSS is
// the workload's own), printed as one JSON line.
//   npx tsx bench/gptc-run.ts train|generate|train124m|compile [--quick] [--backend b] [--profile]
// Generation and compilation go through the library's API; the training step
// drives the runtime's Session and AdamW directly, so that what is timed is
// the step alone (no batch sampling, clipping or logging).
import { compile, createBackend, StepProfile, type BackendName } from "../src/index.js";
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

/** The bench model: GPT-2 with vocab 50257, 4 layers, 4 heads, d 256 (16.3M parameters). */
const benchSets: Record<string, string> = quick
  ? { vocab: "512", layers: "2", heads: "2", d: "64", ctx: "64" }
  : { vocab: "50257", layers: "4", heads: "4", d: "256", ctx: "1024" };
const smallSets: Record<string, string> = quick
  ? { vocab: "512", layers: "2", heads: "2", d: "64", ctx: "64" }
  : {};

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

async function trainSteps(set: Record<string, string>, B: number, T: number, steps: number) {
  const m = model(set);
  const backend = await createBackend(backendName);
  const session = new Session(m.graphs, backend);
  const profile = profileOn ? new StepProfile() : undefined;
  const specs = m.weights;
  const shapes = new Map(specs.map((s) => [s.key, s.shape]));
  let weights = initWeights(specs, 1);
  let adam = newAdamWState(weights);
  // As `gptc train` does: weights and moments in the engine's memory where they fit.
  const placed = inEngine(backend, weights, adam);
  if (placed) ({ weights, state: adam } = placed);
  const vocab = Number(set.vocab ?? 50257);
  const rng = new Rng(7);
  const times: number[] = [];
  let loss = NaN;
  for (let s = 0; s < steps; s++) {
    const tokens = Float32Array.from({ length: B * T }, () => Math.floor(rng.next() * vocab));
    const targets = Float32Array.from({ length: B * T }, () => Math.floor(rng.next() * vocab));
    if (s === 1 && profile) session.profiler = profile; // after the compile-heavy first step
    const t0 = performance.now();
    const r = await session.lossAndGrads(weights, { tokens, targets }, { B, T }, { views: true });
    adamwStep(weights, r.grads, shapes, adam, {
      lr: 1e-4,
      beta1: 0.9,
      beta2: 0.95,
      eps: 1e-8,
      weightDecay: 0.1,
    });
    times.push(performance.now() - t0);
    loss = r.loss;
  }
  session.destroy();
  placed?.release();
  return { times, loss, profile, describe: backend.describe };
}

async function main(): Promise<Record<string, unknown>> {
  switch (workload) {
    case "train": {
      const [B, T] = quick ? [2, 32] : [4, 128];
      const steps = quick ? 4 : 8;
      const { times, loss, profile, describe } = await trainSteps(benchSets, B, T, steps);
      const ms = median(times.slice(1));
      return {
        workload,
        backend: backendName,
        describe,
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
  throw new Error(`unknown workload '${workload}' (train, generate, train124m, compile)`);
}

const result = await main();
process.stdout.write(JSON.stringify({ ...result, peakRssMiB: peakRssMiB() }) + "\n");
process.exit(0);
