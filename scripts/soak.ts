// Soak test: long runs must keep the process's memory flat. Trains gpt2-tiny for
// --steps steps (small batches), then generates --tokens tokens with the KV cache in
// chunks of generateCached calls, sampling the resident set size (RSS) and the heap at the
// start, after every 10% of each phase, and at the end. Exits 1 when RSS grows by more than
// --max-growth (20%) from the end of the warm-up (10% of the training steps and one chunk
// of generation) to the end.
//
//   npx tsx scripts/soak.ts [--steps 1000] [--tokens 10000] [--backend webasm]
//                           [--batch 4] [--seq 16] [--chunk 28] [--max-growth 0.2]
//
// Not part of npm test: it runs for minutes. Run it with --expose-gc
// (`node --expose-gc --import tsx scripts/soak.ts`) for steadier numbers.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileRef } from "../src/api/load.js";
import { specsDir } from "../src/dsl/load.js";
import { backendNames, createBackend, type BackendName } from "../src/runtime/backend.js";
import { loadDataset } from "../src/runtime/data.js";
import { generateCached } from "../src/runtime/generate.js";
import { newAdamWState } from "../src/runtime/optimizer.js";
import { Session } from "../src/runtime/session.js";
import { Trainer, type TrainOptions } from "../src/runtime/trainer.js";
import { initWeights, weightSpecs } from "../src/runtime/weights.js";

interface Args {
  steps: number;
  tokens: number;
  backend: BackendName;
  batch: number;
  seq: number;
  chunk: number;
  maxGrowth: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    steps: 1000,
    tokens: 10_000,
    backend: "webasm",
    batch: 4,
    seq: 16,
    chunk: 28,
    maxGrowth: 0.2,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    const int = () => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a whole number >= 1`);
      return n;
    };
    if (flag === "--steps") a.steps = int();
    else if (flag === "--tokens") a.tokens = int();
    else if (flag === "--batch") a.batch = int();
    else if (flag === "--seq") a.seq = int();
    else if (flag === "--chunk") a.chunk = int();
    else if (flag === "--max-growth") a.maxGrowth = Number(v);
    else if (flag === "--backend") {
      if (!(backendNames as readonly string[]).includes(v))
        throw new Error(`--backend ${v}: expected ${backendNames.join(", ")}`);
      a.backend = v as BackendName;
    } else throw new Error(`unknown option ${flag}`);
  }
  return a;
}

interface Sample {
  phase: string;
  rss: number;
  heapUsed: number;
  external: number;
  seconds: number;
}

const MiB = 2 ** 20;
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const tmp = mkdtempSync(join(tmpdir(), "gptc-soak-"));
  // The token cache goes to the temp folder, never ~/.cache.
  process.env.GPTC_CACHE_DIR = join(tmp, "cache");
  const started = performance.now();
  const samples: Sample[] = [];
  const sample = (phase: string) => {
    gc?.();
    const m = process.memoryUsage();
    const s = {
      phase,
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      seconds: (performance.now() - started) / 1000,
    };
    samples.push(s);
    process.stdout.write(
      `${phase.padEnd(24)} rss ${mib(s.rss).padStart(10)}  heap ${mib(s.heapUsed).padStart(10)}  external ${mib(s.external).padStart(10)}  (${s.seconds.toFixed(1)} s)\n`,
    );
  };
  try {
    process.stdout.write(
      `soak: gpt2-tiny, ${args.steps} training steps (batch ${args.batch}, seq ${args.seq}), then ${args.tokens} tokens ` +
        `in chunks of ${args.chunk} with the KV cache, on ${args.backend}${gc ? " (gc before each sample)" : ""}\n`,
    );
    sample("start");
    const data = await loadDataset({ tokenizer: "char", minTokens: args.seq + 2 });
    const ref = { spec: join(specsDir, "gpt2-tiny.model"), set: {} };
    const { lowered, graphs } = compileRef(ref, data.tokenizer.vocabSize);
    const specs = weightSpecs(lowered.graph);
    const weights = initWeights(specs, 1337);
    const backend = await createBackend(args.backend);
    const session = new Session(graphs, backend);
    const options: TrainOptions = {
      steps: args.steps,
      batch: args.batch,
      seq: args.seq,
      accum: 1,
      lr: 3e-3,
      minLr: 3e-4,
      warmup: Math.floor(args.steps / 20),
      weightDecay: 0.1,
      beta1: 0.9,
      beta2: 0.95,
      clip: 1,
      evalEvery: 0,
      evalBatches: 1,
      saveEvery: 0,
      seed: 1337,
    };
    const trainer = new Trainer({
      session,
      data,
      weights,
      shapes: new Map(specs.map((s) => [s.key, s.shape])),
      adam: newAdamWState(weights),
      options,
      out: tmp,
      model: ref,
    });
    sample("loaded");

    // Training, sampled every 10% of the steps.
    let loss = NaN;
    for (let step = 1; step <= args.steps; step++) {
      loss = (await trainer.trainStep()).loss;
      if (step % Math.max(1, Math.floor(args.steps / 10)) === 0 || step === args.steps)
        sample(`train ${Math.round((100 * step) / args.steps)}% (loss ${loss.toFixed(2)})`);
    }

    // Generation: prompts of a fixed length, so the decode executors are built once.
    const prompt = data.tokenizer.encode("The jury");
    const context = 32;
    const perChunk = Math.min(args.chunk, context - prompt.length + 1);
    let generated = 0;
    let chunks = 0;
    const tenth = Math.max(1, Math.floor(args.tokens / 10));
    let nextSample = tenth;
    let warmedUp = -1;
    while (generated < args.tokens) {
      const n = Math.min(perChunk, args.tokens - generated);
      const [row] = await generateCached(session, weights, [prompt], {
        maxNewTokens: n,
        temperature: 0.8,
        topK: 40,
        seed: chunks,
        context,
      });
      if (row.length !== n) throw new Error(`a chunk gave ${row.length} tokens, not ${n}`);
      generated += n;
      chunks++;
      if (chunks === 1) {
        sample("generate: first chunk");
        warmedUp = samples.length - 1;
      }
      if (generated >= nextSample || generated === args.tokens) {
        sample(`generate ${Math.round((100 * generated) / args.tokens)}%`);
        nextSample += tenth;
      }
    }
    session.destroy();
    sample("end");

    // Warm-up: 10% of training (executors built, allocator settled) and one generation chunk
    // (decode executors built). Growth is measured from the larger of those two samples.
    const trainWarm = samples.findIndex((s) => s.phase.startsWith("train "));
    const base = Math.max(samples[trainWarm].rss, samples[warmedUp].rss);
    const last = samples[samples.length - 1];
    const peak = Math.max(...samples.slice(trainWarm).map((s) => s.rss));
    const growth = last.rss / base - 1;
    process.stdout.write(
      `\nfirst RSS ${mib(samples[0].rss)}, after warm-up ${mib(base)}, peak ${mib(peak)}, last ${mib(last.rss)}: ` +
        `growth after warm-up ${(100 * growth).toFixed(1)}% (limit ${(100 * args.maxGrowth).toFixed(0)}%); ` +
        `heap ${mib(samples[trainWarm].heapUsed)} -> ${mib(last.heapUsed)}; ` +
        `${args.steps} steps (final loss ${loss.toFixed(3)}), ${generated} tokens in ${chunks} chunks, ${last.seconds.toFixed(0)} s\n`,
    );
    if (growth > args.maxGrowth) {
      process.stdout.write("FAIL: memory grew during the run\n");
      return 1;
    }
    process.stdout.write("OK: memory stayed flat\n");
    return 0;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`soak: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 2;
  },
);
