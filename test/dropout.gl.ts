// Dropout on headlessgl (needs the gl package and a display: CI runs it under
// xvfb-run with vitest.gl.config.ts): the same mask bit for bit as cpu and
// webasm for the same key, and gradients equal to the reference interpreter's.
// gpu.js's GLSL holds every value as a float32, so Philox's 32-bit words cannot
// be computed in the shader; the host fills the mask (codegen/host-random.ts)
// and the shader multiplies by it, inside the fused kernel.
import { describe, expect, it } from "vitest";
import { rngKey } from "../src/ir/ops/random.js";
import { backend } from "./helpers/backend.js";
import { gptOn, gptReference, probeExpected, probeOn } from "./helpers/dropout.js";
import { relErr } from "./helpers/ir.js";

describe("dropout on headlessgl", () => {
  // Why the mask is not computed in the shader: measured, gpu.js's GLSL keeps
  // integers as float32. Should this ever hold, Philox could run in the shader.
  it("gpu.js's GLSL cannot hold Philox's 32-bit words (why the host fills masks)", async () => {
    const be = await backend("headlessgl");
    const k = be.gpu.createKernel("function (a) { return a[this.thread.x] ^ 1540483477; }", {
      output: [2],
      precision: "single",
      tactic: "precision",
    });
    const r = Array.from(k(Float32Array.of(3, 16777217)) as Float32Array);
    k.destroy?.();
    // Exact 32-bit xor gives 1540483478 and 1523706260 (JavaScript: 3 ^ 0x5bd1e995, ...).
    expect([3 ^ 1540483477, 16777217 ^ 1540483477]).toEqual([1540483478, 1523706260]);
    expect(r).not.toEqual([1540483478, 1523706260]);
  });

  it("computes x * mask exactly as cpu, webasm and the reference do", async () => {
    const y = await probeOn(await backend("headlessgl"));
    const want = probeExpected();
    expect(want.some((v) => v === 0)).toBe(true);
    expect(Array.from(y)).toEqual(Array.from(want));
  });

  it("loss and every gradient equal the interpreter's with the same mask", async () => {
    const key = rngKey(1337, 7, 1);
    const ref = gptReference(key);
    const got = await gptOn(await backend("headlessgl"), key);
    expect(Math.abs(got.loss - ref.loss) / Math.abs(ref.loss)).toBeLessThan(1e-5);
    const bad = [...ref.grads]
      .map(([k, g]) => [k, relErr(got.grads.get(k)!, g)] as const)
      .filter(([, e]) => !(e < 1e-4));
    expect(bad).toEqual([]);
  });
});
