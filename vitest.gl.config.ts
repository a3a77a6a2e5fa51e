import { defineConfig } from "vitest/config";

// The GL (shader) parity suite: needs the built `gl` package and a display;
// CI runs it as `xvfb-run -a npx vitest run -c vitest.gl.config.ts`.
export default defineConfig({
  test: {
    include: ["test/**/*.gl.ts"],
    testTimeout: 120_000,
    maxWorkers: 1,
  },
});
