// What weight-only quantization costs in quality, measured on a trained model:
// perplexity on held-out text (the validation split the run never trained
// on) and the share of greedy tokens equal to float32's, for f16 and int8.
//   npx tsx bench/quantize-quality.ts RUN_DIR [--tokens N] [--prompts P] [--new K] [--data PATH]
// RUN_DIR: a gptc run folder (e.g. the README's main job: runs/gpt2-mini) or a
// Hugging Face GPT-2 folder. Prints one JSON line.
import { load, loadDataset, type WeightsDtype } from "../src/index.js";

const args = process.argv.slice(2);
const run = args[0];
if (!run) throw new Error("usage: npx tsx bench/quantize-quality.ts RUN_DIR [--tokens N]");
const arg = (name: string, dflt: number) =>
  args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt;
const nTokens = arg("--tokens", 32768);
const nPrompts = arg("--prompts", 8);
const newTokens = arg("--new", 64);
const dataAt = args.indexOf("--data");

const results: Record<string, unknown> = {};
let heldOut: number[] = [];
let greedyF32: number[][] = [];
for (const weightsDtype of ["f32", "f16", "int8"] as WeightsDtype[]) {
  const { session } = await load(run, { backend: "webasm", weightsDtype });
  if (!heldOut.length) {
    // The validation split of the data the run trained on (the Brown corpus by default).
    const data = await loadDataset({
      data: dataAt >= 0 ? args[dataAt + 1] : undefined,
      tokenizer: session.tokenizer,
      minTokens: 1,
    });
    const n = Math.min(nTokens, data.val.length);
    const buf = new Uint32Array(n);
    data.val.read(0, buf);
    heldOut = [...buf];
    data.close?.();
  }
  const t0 = performance.now();
  const perplexity = await session.perplexity(heldOut);
  const pplSeconds = (performance.now() - t0) / 1000;
  // Prompts: 16 tokens from evenly spaced places of the held-out text.
  const step = Math.floor((heldOut.length - 16) / nPrompts);
  const prompts = Array.from({ length: nPrompts }, (_, i) =>
    heldOut.slice(i * step, i * step + 16),
  );
  const greedy = (
    await session.generate(prompts, { temperature: 0, maxNewTokens: newTokens, stopAtEnd: false })
  ).map((g) => g.tokens);
  if (weightsDtype === "f32") greedyF32 = greedy;
  let same = 0;
  let all = 0;
  // Also the tokens before the first difference (after it the contexts differ).
  let prefix = 0;
  greedy.forEach((row, i) => {
    let diverged = false;
    row.forEach((t, j) => {
      all++;
      if (t === greedyF32[i][j]) same++;
      else diverged = true;
      if (!diverged) prefix++;
    });
  });
  results[weightsDtype] = {
    perplexity,
    relToF32: results.f32 ? perplexity / (results.f32 as { perplexity: number }).perplexity - 1 : 0,
    greedyAgreement: same / all,
    greedyCommonPrefix: prefix / all,
    pplSeconds,
  };
  session.close();
}
process.stdout.write(
  JSON.stringify({ run, heldOutTokens: heldOut.length, prompts: nPrompts, newTokens, ...results }) +
    "\n",
);
process.exit(0);
