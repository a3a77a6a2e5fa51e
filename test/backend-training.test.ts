// gpt2-tiny learns on the backends every machine has: on one fixed random batch
// (B = 2, T = 8, ids < 64) from initWeights(seed 0), 50 AdamW steps at lr 1e-2
// more than halve the loss on cpu and on webasm, and the two backends agree to
// float32 tolerance at every step. The headlessgl variant needs a display and
// lives in backend-training.gl.ts, run by CI under xvfb (see that file).
import { describe, expect, it } from "vitest";
import type { BackendName } from "../src/runtime/backend.js";
import {
  backend,
  cpuBackends,
  defaultTraining,
  expectLossFalls,
  expectLossesAgree,
  trainGpt2Tiny,
} from "./helpers/backend.js";

const runs = new Map<BackendName, Promise<number[]>>();

/** The training run of one backend, shared by the tests below (each runs once). */
function losses(name: BackendName): Promise<number[]> {
  let run = runs.get(name);
  if (!run) {
    run = backend(name).then(async (be) => (await trainGpt2Tiny(be)).losses);
    runs.set(name, run);
  }
  return run;
}

describe("training gpt2-tiny on one batch", () => {
  it.each(cpuBackends)("the loss falls over 50 AdamW steps on %s", async (name) => {
    const l = await losses(name);
    expect(l.length).toBe(defaultTraining.steps + 1);
    // ln 64 = 4.16: a fresh model is close to uniform over the vocabulary.
    expect(Math.abs(l[0] - Math.log(64))).toBeLessThan(0.5);
    expectLossFalls(l, name);
  });

  it("cpu and webasm agree at every step", async () => {
    expectLossesAgree(await losses("webasm"), await losses("cpu"), "webasm vs cpu");
  });
});
