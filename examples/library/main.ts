// gptc from a TypeScript program: a model written inline (a small GPT-2 with
// one change, a SiLU feed-forward network), compiled, trained on the Brown
// corpus at the character level with a live loss readout, then sampled from,
// streamed token by token.
//   npx tsx examples/library/main.ts          (from the repository)
// In a project that installed gptc, `import ... from "gptc"` instead.
import { compile, DiagnosticError, loadDataset } from "../../src/index.js";

const small = process.env.SMALL === "1";

const spec = `import "std/nn.model"

fn silu_mlp(x: [..., C], hidden) {
  return linear(silu(linear(x, hidden) as fc), C) as proj
}

model silu_gpt {
  param vocab = 50257 from "vocab_size"
  param ctx = 64 from "n_positions"
  param d = ${small ? 32 : 96}
  param layers = ${small ? 1 : 3}
  param heads = 4
  input tokens: int[B, T]
  x = embedding(tokens, vocab, d) as wte + embedding(positions(T), ctx, d, std = 0.01) as wpe
  repeat layers as h {
    x = x + causal_self_attention(layernorm(x) as ln_1, heads) as attn
    x = x + silu_mlp(layernorm(x) as ln_2, 4 * d) as mlp
  }
  output logits: [B, T, vocab] = layernorm(x) as ln_f @ wte.weight.T
  input targets: int[B, T]
  loss = cross_entropy(logits, targets)
}
`;

// The Brown corpus as characters: the tokenizer decides the vocabulary.
const data = await loadDataset({ tokenizer: "char", minTokens: 66 });
let model;
try {
  model = compile(spec, { vocabSize: data.tokenizer.vocabSize });
} catch (e) {
  // Errors in a spec come with file, line and column, printed as `gptc check` does.
  if (e instanceof DiagnosticError) console.error(e.format());
  throw e;
}
console.log(`${model.name}: ${model.parameters.toLocaleString("en-US")} parameters`);
console.log(`outputs: ${model.outputs.map((o) => `${o.name}: ${o.type}`).join(", ")}`);

const session = await model.open({ backend: "webasm", tokenizer: data.tokenizer, seed: 1 });
console.log(`backend: ${session.backendName}`);
const summary = await session.train(data, {
  steps: small ? 10 : 300,
  batch: 16,
  seq: 64,
  lr: 3e-3,
  evalEvery: small ? 5 : 100,
  onStep: (r) => {
    if (r.step % (small ? 5 : 50) === 0)
      console.log(
        `step ${r.step}: loss ${r.loss.toFixed(3)}${r.valLoss !== undefined ? `, val ${r.valLoss.toFixed(3)}` : ""}, ${Math.round(r.averageTokensPerSec)} tokens/s`,
      );
  },
});
console.log(`trained ${summary.steps} steps in ${summary.seconds.toFixed(1)} s`);

process.stdout.write("sample: The jury");
for await (const t of session.stream("The jury", { maxNewTokens: 60, temperature: 0.8, topK: 20 }))
  process.stdout.write(t.text);
process.stdout.write("\n");
session.close();
