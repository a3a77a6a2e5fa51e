// `--profile` (runtime/profile.ts): one training step of GPT-2 tiny on webasm,
// profiled, accounts for every kernel it ran, by family, matmul shape and name.
import { describe, expect, it } from "vitest";
import { fuse } from "../src/ir/passes/fuse.js";
import { StepProfile } from "../src/runtime/profile.js";
import { Session } from "../src/runtime/session.js";
import { initWeights } from "../src/runtime/weights.js";
import { backend, gpt2Tiny } from "./helpers/backend.js";

describe("--profile", () => {
  it("counts every kernel of a step once, and names the slowest with what ran them", async () => {
    const { graphs, specs } = gpt2Tiny();
    const be = await backend("webasm");
    const session = new Session(graphs, be);
    const profile = new StepProfile();
    session.profiler = profile;
    try {
      const tokens = Float32Array.from({ length: 2 * 8 }, (_, i) => (i * 7) % 64);
      await session.lossAndGrads(
        initWeights(specs, 3),
        { tokens, targets: tokens },
        { B: 2, T: 8 },
      );
      // The backend's own fusion (its kernels inline row reductions).
      const kernels = fuse(graphs.training!, be.fusion).kernels.length;
      const json = profile.toJSON() as {
        byKind: Record<string, { calls: number }>;
        slowest: Record<string, { calls: number; ms: number }>;
      };
      const calls = Object.values(json.byKind).reduce((a, r) => a + r.calls, 0);
      expect(calls).toBe(kernels);
      const table = profile.table();
      for (const heading of ["kernel family", "matmul shape", "slowest kernels (runs on)"])
        expect(table).toContain(heading);
      // On webasm matmuls run on the GEMM and the rest on gptc's wasm kernels.
      const names = Object.keys(json.slowest);
      expect(names.length).toBeGreaterThan(5);
      expect(names.some((n) => /\(GEMM( \+ wasm)?\)$/.test(n))).toBe(true);
      expect(names.some((n) => n.endsWith("(wasm)"))).toBe(true);
      const ms = Object.values(json.slowest).map((r) => r.ms);
      expect(ms).toEqual([...ms].sort((a, b) => b - a));
    } finally {
      session.destroy();
    }
  });
});
