// Weights that generated kernels read whole (a position table's gather) are
// kept in the WebAssembly engine's memory between calls (Gemm.residentCopy)
// instead of being copied in per call: the copy is made once, made again when
// the weight's version moves, and kernels read it.
import { describe, expect, it } from "vitest";
import { Gemm } from "../src/runtime/gemm.js";
import { weightChanged } from "../src/runtime/weights.js";

describe("weights kept in the engine's memory", () => {
  it("one copy per weight, refreshed when the optimizer says it changed", () => {
    const engine = new Gemm(1);
    const w = Float32Array.from({ length: 1000 }, (_, i) => i);
    const at = engine.residentCopy(w)!;
    const read = () => Array.from(new Float32Array(engine.memory.buffer, at, 4));
    expect(read()).toEqual([0, 1, 2, 3]);
    // Same place, no new copy while the version stands (what decoding relies on).
    w[0] = 42;
    expect(engine.residentCopy(w)).toBe(at);
    expect(read()[0]).toBe(0);
    weightChanged(w);
    expect(engine.residentCopy(w)).toBe(at);
    expect(read()[0]).toBe(42);
    // Another weight gets its own place.
    const v = new Float32Array(16).fill(7);
    const at2 = engine.residentCopy(v)!;
    expect(at2).not.toBe(at);
    expect(new Float32Array(engine.memory.buffer, at2, 1)[0]).toBe(7);
    engine.close();
  });
});
