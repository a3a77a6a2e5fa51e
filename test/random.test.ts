import { describe, expect, it } from "vitest";
import { dropoutMask, philox4x32, rngKey } from "../src/ir/ops/random.js";
import { fastDropoutMask } from "../src/runtime/dropout-masks.js";

const hex = (ws: number[]) => ws.map((w) => w.toString(16).padStart(8, "0"));

describe("Philox 4x32-10", () => {
  // Known-answer vectors of Random123 (kat_vectors: philox4x32 10 rounds).
  it("matches Random123's known answers", () => {
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(
      hex([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
    );
    expect(hex(philox4x32([~0, ~0, ~0, ~0], [~0, ~0]))).toEqual(
      hex([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]),
    );
    expect(
      hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    ).toEqual(hex([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]));
  });
});

describe("dropoutMask", () => {
  // dropoutMask runs Philox's rounds on locals with another exact 32x32 -> 64
  // product (float64 rounding, corrected by the exact low half); the decisions
  // must be philox4x32's, at thresholds that test high and low bits of words.
  it("keeps exactly the elements whose Philox word is at or above p's threshold", () => {
    let mismatches = 0;
    let checked = 0;
    for (let s = 0; s < 20; s++) {
      const seed = (0xdeadbeef + s * 7919) >>> 0;
      const step = (s * 104729 + 65535) >>> 0;
      const micro = s * 3;
      const stream = s * 31 + 5;
      for (const p of [1e-6, 0.1, 0.5, 0.999]) {
        const m = dropoutMask(rngKey(seed, step, micro), stream, p, 1001);
        const cut = Math.ceil(p * 2 ** 24);
        for (let i = 0; i < m.length; i++) {
          const w = philox4x32([i >> 2, step, micro, 0], [seed, stream])[i & 3];
          if ((m[i] === 0) !== w >>> 8 < cut) mismatches++;
          checked++;
        }
      }
    }
    expect(checked).toBe(20 * 4 * 1001);
    expect(mismatches).toBe(0);
  });

  it("rngKey splits seed, step and micro-batch into 16-bit halves a float32 holds exactly", () => {
    expect(Array.from(rngKey(0xfffe0001, 65536 + 5, 2))).toEqual([1, 0xfffe, 5, 1, 2, 0]);
  });
});

describe("the executor's masks (WebAssembly, i64 products)", () => {
  it("equal the reference generator's bit for bit", () => {
    for (const [seed, step, micro, stream, p, n] of [
      [1337, 0, 0, 0, 0.1, 1],
      [1337, 5, 2, 3, 0.3, 4097],
      [0xffffffff, 0xfffffffe, 65537, 40, 0.5, 10_003],
      [7, 1 << 20, 3, 12, 0.999, 999],
      [2024, 3, 0, 1, 1e-7, 1 << 16],
    ])
      expect(fastDropoutMask(rngKey(seed, step, micro), stream, p, n)).toEqual(
        dropoutMask(rngKey(seed, step, micro), stream, p, n),
      );
  });
});
