// The gptc side of `npm run bench`: one workload per process (so peak RSS is
// the workload's own), printed as one JSON line.
//   npx tsx bench/gptc-run.ts train|generate|generate-bench|train124m|compile|dropout [--quick] [--backend b] [--profile]
//   dropout: [--steps n] (default 8 of each kind, interleaved)
//   generate: [--dtypes f32,f16,int8] [--rounds n] [--no-ort] (weights' types and ONNX
//   Runtime on the exported model, 1 and 2 threads, in interleaved rounds) [--new n]
//   (tokens generated, default 64) [--profile-dtype d] (whose runs --profile times; the
//   first of --dtypes by default); generate-bench: the same on the bench model
//   train124m: [--steps n] (the first step and the median of the others)
// Generation and compilation go through the library's API; the training step
// drives the runtime's Session and AdamW directly, so that what is timed is
// the step alone (no batch sampling, clipping or logging).
import {
  compile,
  createBackend,
  StepProfile,
  type BackendName,
  onnxFiles,
  type ModelSession,
  type WeightsDtype,
} from "../src/index.js";
import { shapeEval } from "../src/ir/dims.js";
import { rngKey, rngKeyInput } from "../src/ir/ops/random.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { fastDropoutMask } from "../src/runtime/dropout-masks.js";
import { decodeGreedy } from "../test/helpers/onnx.js";
import { ortSession, ortVersion } from "./ort.js";
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
/** The value after flag `name`, if given. */
const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);

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
    describe: backend.describe,
    loss: NaN,
    /** Each step's AdamW update, ms (part of the step's time). */
    adamMs: [] as number[],
    async step(): Promise<number> {
      const tokens = Float32Array.from({ length: B * T }, () => Math.floor(rng.next() * vocab));
      const targets = Float32Array.from({ length: B * T }, () => Math.floor(rng.next() * vocab));
      // The dropout key, as the trainer gives it (ignored by a graph without dropout).
      const inputs = { tokens, targets, [rngKeyInput]: rngKey(1, steps++, 0) };
      const t0 = performance.now();
      const r = await session.lossAndGrads(weights, inputs, { B, T }, { views: true });
      const tAdam = performance.now();
      adamwStep(weights, r.grads, shapes, adam, {
        lr: 1e-4,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weightDecay: 0.1,
      });
      this.loss = r.loss;
      this.adamMs.push(performance.now() - tAdam);
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
  return { times, loss: t.loss, profile, describe: t.describe, adamMs: t.adamMs };
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
      // The first step (compiling, packing, warm-up) and the steady ones after it.
      const [B, T] = quick ? [1, 16] : [1, 128];
      const steps = quick ? 2 : Number(arg("--steps") ?? 3);
      try {
        const { times, loss, profile, adamMs } = await trainSteps(smallSets, B, T, steps);
        const steady = times.slice(1);
        return {
          workload,
          backend: backendName,
          B,
          T,
          msPerStep: steady.length ? median(steady) : times[0],
          firstStepMs: times[0],
          steadyMs: steady.length
            ? { min: Math.min(...steady), median: median(steady), max: Math.max(...steady) }
            : undefined,
          adamwMs: median(adamMs.slice(1).length ? adamMs.slice(1) : adamMs),
          loss,
          profile: profile?.toJSON(),
          profileTable: profile?.table(),
        };
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
    case "generate":
    case "generate-bench": {
      // fp32 and the quantized weights (--weights-dtype) side by side, their
      // runs interleaved (rounds of f32, f16, int8) so that a busy machine
      // slows each alike: the ratios are what to read.
      const m = model(workload === "generate" ? smallSets : benchSets);
      const vocab = quick ? 512 : 50257;
      const rng = new Rng(3);
      const prompt = Array.from({ length: 16 }, () => Math.floor(rng.next() * vocab));
      const newTokens = quick ? 8 : Number(arg("--new") ?? 64);
      const rounds = quick ? 1 : Number(arg("--rounds") ?? 3);
      const greedy = { maxNewTokens: newTokens, temperature: 0, stopAtEnd: false };
      const dtypes = (arg("--dtypes") ?? "f32,f16,int8").split(",") as WeightsDtype[];
      const sessions: ModelSession[] = [];
      const tokens: number[][] = [];
      for (const weightsDtype of dtypes) {
        const session = await m.open({ backend: backendName, seed: 1, weightsDtype });
        // Warm-up: the same run once, as TF.js's side does (cold, then warm). Its
        // executors (prompt and single-token, sized for this cache) are compiled
        // there, and the weights packed; a shorter warm-up would size another cache.
        tokens.push((await session.generate([prompt], greedy))[0].tokens);
        sessions.push(session);
      }
      // ONNX Runtime on the same model and weights (fp32's), exported with onnxFiles.
      const ortThreads = args.includes("--no-ort") ? [] : [1, 2];
      const decode = ortThreads.length
        ? onnxFiles(m, sessions[0].weights).get("decode.onnx")
        : undefined;
      const orts = decode ? await Promise.all(ortThreads.map((n) => ortSession(decode, n))) : [];
      const ortTokens: number[][] = [];
      for (const s of orts) ortTokens.push((await decodeGreedy(s, prompt, newTokens)).tokens); // warm-up
      const ortRuns = orts.map(() => ({ total: [] as number[], steady: [] as number[] }));
      const profile = profileOn ? new StepProfile() : undefined;
      // --profile times one dtype's runs: --profile-dtype (f32 by default).
      const profiledDtype = arg("--profile-dtype") ?? dtypes[0];
      const runs = dtypes.map(() => ({ total: [] as number[], steady: [] as number[] }));
      for (let r = 0; r < rounds; r++) {
        for (const [i, s] of orts.entries()) {
          const t0 = performance.now();
          const { firstAt } = await decodeGreedy(s, prompt, newTokens);
          const end = performance.now();
          ortRuns[i].total.push(newTokens / ((end - t0) / 1000));
          ortRuns[i].steady.push((newTokens - 1) / ((end - firstAt) / 1000));
        }
        for (const [i, session] of sessions.entries()) {
          session.profiler = dtypes[i] === profiledDtype ? profile : undefined;
          let firstAt = 0;
          const t0 = performance.now();
          await session.generate([prompt], {
            ...greedy,
            onToken: () => {
              if (!firstAt) firstAt = performance.now();
            },
          });
          const end = performance.now();
          runs[i].total.push(newTokens / ((end - t0) / 1000));
          // Steady state: the tokens after the first (which includes the prompt pass).
          runs[i].steady.push((newTokens - 1) / ((end - firstAt) / 1000));
        }
      }
      for (const s of sessions) s.close();
      for (const s of orts) await s.release();
      const stats = (xs: number[]) => ({
        min: Math.min(...xs),
        median: median(xs),
        max: Math.max(...xs),
      });
      const byDtype = Object.fromEntries(
        dtypes.map((d, i) => [
          d,
          {
            tokensPerSec: stats(runs[i].total),
            steadyTokensPerSec: stats(runs[i].steady),
            // Greedy tokens equal to fp32's, position by position (random weights: a sanity check;
            // quality on a trained model is bench/quantize-quality.ts's).
            agreeWithF32: tokens[i].filter((t, j) => t === tokens[0][j]).length / newTokens,
          },
        ]),
      );
      const f32 = byDtype.f32 ?? Object.values(byDtype)[0];
      const ort = orts.length
        ? {
            engine: ortVersion,
            byThreads: Object.fromEntries(
              ortThreads.map((n, i) => [
                n,
                {
                  tokensPerSec: stats(ortRuns[i].total),
                  steadyTokensPerSec: stats(ortRuns[i].steady),
                  // Greedy tokens equal to gptc's fp32 (the same weights: all, up to ties).
                  agreeWithGptc:
                    ortTokens[i].filter((t, j) => t === tokens[0][j]).length / newTokens,
                },
              ]),
            ),
          }
        : undefined;
      return {
        workload,
        backend: backendName,
        newTokens,
        rounds,
        tokensPerSec: f32.tokensPerSec.median,
        steadyTokensPerSec: f32.steadyTokensPerSec.median,
        byDtype,
        ort,
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
