// The headlessgl variant of backend-training.test.ts: gpt2-tiny's loss falls over
// 50 AdamW steps on headlessgl (GLSL through the `gl` package) and agrees with the
// cpu backend at every step. It needs an X display and a built `gl`, so it is not
// part of the default suite (vitest.config.ts includes only test/**/*.test.ts) and
// CI runs it explicitly, under xvfb:
//
//   xvfb-run -a node --input-type=module -e "import { startVitest } from 'vitest/node'; const v = await startVitest('test', ['test/backend-training.gl.ts'], { run: true, include: ['test/**/*.gl.ts'] }); await v?.close();"
//
// (`npx vitest run test/backend-training.gl.ts` finds no test file: CLI filters only
// narrow the config's include, and vitest's CLI has no --include.) Where headlessgl
// cannot start, this file fails — it never skips.
import { describe, expect, it } from "vitest";
import { createBackend, type Backend } from "../src/runtime/backend.js";
import {
  backend,
  defaultTraining,
  expectLossFalls,
  expectLossesAgree,
  trainGpt2Tiny,
} from "./helpers/backend.js";

let gl: Promise<Backend> | undefined;
let glLosses: Promise<number[]> | undefined;

const train = (be: Promise<Backend>) => be.then(async (b) => (await trainGpt2Tiny(b)).losses);

describe("training gpt2-tiny on headlessgl", () => {
  it("headlessgl is available (run under xvfb-run -a with the gl package built)", async () => {
    gl = createBackend("headlessgl");
    const be = await gl; // throws BackendError with the fix when gl or the display is missing
    expect(be.name).toBe("headlessgl");
  });

  it("the loss falls over 50 AdamW steps on headlessgl", async () => {
    if (!gl) throw new Error("headlessgl was not created: see the first test");
    glLosses = train(gl);
    const l = await glLosses;
    expect(l.length).toBe(defaultTraining.steps + 1);
    expectLossFalls(l, "headlessgl");
  });

  it("headlessgl and cpu agree at every step", async () => {
    if (!glLosses) throw new Error("headlessgl did not train: see the tests above");
    const glRun = await glLosses;
    const cpuRun = await train(backend("cpu"));
    expectLossesAgree(glRun, cpuRun, "headlessgl vs cpu");
  });
});
