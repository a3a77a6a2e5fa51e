import { describe, expect, it } from "vitest";
import { dropoutMask, philox4x32, rngKey } from "../src/ir/ops/random.js";

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
