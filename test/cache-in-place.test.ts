// KV caches written in place (codegen/cache-write.ts): a decoding step given
// its caches to overwrite writes only the new rows, into the arrays it was
// given, and computes what the copying step computes.
import { afterAll, describe, expect, it } from "vitest";
import { writeRows, type InPlaceWrite } from "../src/codegen/cache-write.js";
import { Session } from "../src/runtime/session.js";
import { backend, cpuBackends } from "./helpers/backend.js";
import { boldWeights, model } from "./helpers/train.js";

const small = { d: "16", heads: "2", hidden: "24", layers: "2", vocab: "50" };
const specs = [
  { name: "gpt2-tiny", set: {} },
  { name: "llama-style", set: { ...small, kv_heads: "1" } },
  { name: "seed-transformer", set: small },
];

const sessions: Session[] = [];
afterAll(() => sessions.forEach((s) => s.destroy()));

describe.each(cpuBackends)("on %s", (be) => {
  it.each(specs)(
    "$name: a step updates its caches in place, as the copying step does",
    async (s) => {
      const m = model(s.name, s.set);
      const session = new Session(m.graphs, await backend(be));
      sessions.push(session);
      const w = boldWeights(m, 5, 1);
      const dims = { B: 1, C: 9, T: 3 };
      expect(session.decodesInPlace(dims)).toBe(true);
      const caches = session.cacheInputs(dims);
      expect(caches.length).toBeGreaterThan(0);
      // Caches holding earlier rows (2 filled), and 3 new tokens written at 2..4.
      const filled = 2;
      const inputs = (): Record<string, Float32Array> => ({
        tokens: Float32Array.of(3, 1, 4),
        cache_len: Float32Array.of(filled),
        ...Object.fromEntries(
          caches.map((c, i) => [
            c.name,
            Float32Array.from({ length: c.size }, (_, k) => Math.sin(k + i)),
          ]),
        ),
      });
      const copied = await session.decode(w, inputs(), dims);
      const given = inputs();
      const before = Object.fromEntries(Object.entries(given).map(([k, v]) => [k, v.slice()]));
      const inPlace = await session.decode(w, given, dims, { inPlace: true });
      expect(Array.from(inPlace.logits)).toEqual(Array.from(copied.logits));
      for (const c of caches) {
        // The output is the array given, now the copying step's cache.
        expect(inPlace[c.name]).toBe(given[c.name]);
        expect(Array.from(given[c.name])).toEqual(Array.from(copied[c.name]));
        // ... and it changed: the new rows were written.
        expect(Array.from(given[c.name])).not.toEqual(Array.from(before[c.name]));
      }
    },
  );
});

describe("writeRows", () => {
  const w: InPlaceWrite = { past: 0, len: 1, fresh: 2, outer: 2, slots: 4, inner: 3, rows: 1 };
  it("writes each outer block's rows at the position, nothing else", () => {
    const cache = new Float32Array(2 * 4 * 3);
    writeRows(cache, Float32Array.of(1, 2, 3, 4, 5, 6), 2, w);
    const expected = new Float32Array(24);
    expected.set([1, 2, 3], 2 * 3);
    expected.set([4, 5, 6], (4 + 2) * 3);
    expect(Array.from(cache)).toEqual(Array.from(expected));
  });
  it("refuses a position past the cache's slots", () => {
    expect(() => writeRows(new Float32Array(24), new Float32Array(6), 4, w)).toThrow(
      /outside the cache's 4 slots/,
    );
  });
});
