// Weight initialization's normal samples (runtime/normals.ts): the WebAssembly
// module against its JavaScript spelling bit for bit, against the float64
// Box-Muller of the same uniforms, and as a distribution.
import { describe, expect, it } from "vitest";
import { fillNormal, normalsJs, stateAfter } from "../src/runtime/normals.js";
import { Rng } from "../src/runtime/rng.js";
import { initWeights } from "../src/runtime/weights.js";

/** Box-Muller in float64 from a Rng's draws (u = 1 - the first, v = the second). */
function boxMuller(n: number, state: number): Float64Array {
  const rng = new Rng(state);
  return Float64Array.from({ length: n }, () => {
    const u = 1 - rng.next();
    const v = rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  });
}

describe("normal samples for initialization", () => {
  it("the module equals its JavaScript spelling bit for bit, tails of a vector included", () => {
    // States near the 32-bit wrap too; lengths not a multiple of 4 or of a chunk.
    for (const [state, n, std] of [
      [0, 10_007, 1],
      [0xfffffff0, 4_099, 0.02],
      [12345, 70_001, 3],
    ]) {
      const wasm = new Float32Array(n);
      const js = new Float32Array(n);
      expect(fillNormal(wasm, state, std)).toBe(stateAfter(state, n));
      normalsJs(js, state, std);
      for (let i = 0; i < n; i++)
        if (!Object.is(wasm[i], js[i])) expect([i, wasm[i]]).toEqual([i, js[i]]);
    }
  });

  it("continues the Rng's stream: the state after n samples is 2n draws on, and samples follow on", () => {
    const rng = new Rng(99);
    for (let i = 0; i < 2 * 1001; i++) rng.next();
    expect(stateAfter(99, 1001)).toBe(rng.state);
    const whole = new Float32Array(3000);
    fillNormal(whole, 99, 1);
    const head = new Float32Array(1001);
    const tail = new Float32Array(1999);
    fillNormal(tail, fillNormal(head, 99, 1), 1);
    expect([...head, ...tail]).toEqual([...whole]);
  });

  it("within 2e-6 of float64 Box-Muller on the same uniforms", () => {
    const n = 200_000;
    const got = new Float32Array(n);
    fillNormal(got, 7, 1);
    const want = boxMuller(n, 7);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
    expect(worst).toBeLessThan(2e-6);
  });

  it("a standard normal: mean, variance, tails and the largest sample", () => {
    const n = 1_000_000;
    const x = new Float32Array(n);
    fillNormal(x, 2024, 1);
    let [sum, sq, beyond2, beyond3, max] = [0, 0, 0, 0, 0];
    for (const v of x) {
      sum += v;
      sq += v * v;
      if (Math.abs(v) > 2) beyond2++;
      if (Math.abs(v) > 3) beyond3++;
      max = Math.max(max, Math.abs(v));
    }
    // Standard errors: mean 1e-3, variance 1.4e-3, P(|x| > 2) = 0.0455 (2e-4), P(|x| > 3) = 0.0027 (5e-5).
    expect(Math.abs(sum / n)).toBeLessThan(5e-3);
    expect(Math.abs(sq / n - 1)).toBeLessThan(7e-3);
    expect(Math.abs(beyond2 / n - 0.0455)).toBeLessThan(1e-3);
    expect(Math.abs(beyond3 / n - 0.0027)).toBeLessThan(2.5e-4);
    // u >= 2^-32 bounds a sample by sqrt(64 ln 2) = 6.66; a million give about 4.9.
    expect(max).toBeGreaterThan(4);
    expect(max).toBeLessThan(6.67);
  });

  it("initWeights: reproducible from the seed, std applied, each weight its own stretch of the stream", () => {
    const specs = [
      { key: "a", shape: [300, 7], init: "normal", std: 0.02 },
      { key: "b", shape: [5], init: "ones", std: 0 },
      { key: "c", shape: [1001], init: "normal", std: 0.5 },
    ];
    const w = initWeights(specs, 3);
    expect([...initWeights(specs, 3).get("c")!]).toEqual([...w.get("c")!]);
    expect([...initWeights(specs, 4).get("c")!]).not.toEqual([...w.get("c")!]);
    const a = new Float32Array(2100);
    const c = new Float32Array(1001);
    fillNormal(c, fillNormal(a, 3, 0.02), 0.5);
    expect([...w.get("a")!]).toEqual([...a]);
    expect([...w.get("b")!]).toEqual([1, 1, 1, 1, 1]);
    expect([...w.get("c")!]).toEqual([...c]);
  });
});
