import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    // Two cores on the CI machine: keep workers to what it has.
    maxWorkers: 2,
    // Every middle-end pass's result goes through the IR verifier (src/ir/pipeline.ts).
    env: { GPTC_VERIFY_PASSES: "1" },
  },
});
