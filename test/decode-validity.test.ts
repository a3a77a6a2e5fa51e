// A model whose attention does not cache its keys and values cannot decode one
// token at a time: its decode graph would let each new token attend to itself
// only. Such a model gets no decode graph, and generation recomputes the prefix
// (the same tokens as the reference); a model that caches keeps its decode graph.
import { describe, expect, it } from "vitest";
import { compile } from "../src/api/compile.js";

const spec = (cached: boolean) => `
import "std/nn.model"
model m {
  param vocab = 32
  param d = 16
  param heads = 2
  input tokens: int[B, T]
  x = embedding(tokens, vocab, d) as wte + embedding(positions(T), 64, d, std = 0.3) as wpe
  q, k, v = split(linear(x, 3 * d, std = 1) as c_attn, 3, axis = -1)
  kh = ${cached ? "cache(split_heads(k, heads))" : "split_heads(k, heads)"}
  vh = ${cached ? "cache(split_heads(v, heads))" : "split_heads(v, heads)"}
  x = x + linear(merge_heads(attention(split_heads(q, heads), kh, vh)), d, std = 1) as proj
  output logits: [B, T, vocab] = linear(layernorm(x) as ln_f, vocab) as head
}
`;

describe("decode graph validity", () => {
  it("an attention without cache() gets no decode graph", () => {
    const m = compile(spec(false));
    const g = m.graphs;
    expect(g.decode).toBeUndefined();
  });

  it("the same attention with cache() keeps its decode graph", () => {
    expect(compile(spec(true)).graphs.decode).toBeDefined();
  });

  it("generation without a cache gives the tokens of recomputing the prefix", async () => {
    const tokensOf = async (cached: boolean) => {
      const s = await compile(spec(cached)).open({ backend: "cpu", seed: 3 });
      try {
        const [g] = await s.generate([[1, 2, 3, 4]], { maxNewTokens: 12, temperature: 0 });
        return g.tokens;
      } finally {
        s.close();
      }
    };
    // Same weights (same seed and keys): the cached and the recomputed model
    // must agree token for token; before the guard, the uncached model's
    // decode steps attended to the new token alone and diverged.
    expect(await tokensOf(false)).toEqual(await tokensOf(true));
  });
});
