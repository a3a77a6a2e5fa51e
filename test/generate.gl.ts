// KV-cache generation on headlessgl (GLSL): the same tokens and logits as
// recomputing the prefix, as generate.test.ts checks on cpu and webasm. Part of
// the GL suite CI runs under xvfb (`npx vitest run -c vitest.gl.config.ts`);
// it fails, never skips, where headlessgl cannot start.
import { afterAll, describe, expect, it } from "vitest";
import { contextOf } from "../src/api/compile.js";
import { createBackend } from "../src/runtime/backend.js";
import { generateCached, generateFull, type GenerateOptions } from "../src/runtime/generate.js";
import { Session } from "../src/runtime/session.js";
import { relError } from "./helpers/backend.js";
import { boldWeights, model } from "./helpers/train.js";

const m = model("gpt2-tiny", {});
let session: Session | undefined;
afterAll(() => session?.destroy());

describe("KV cache equals full recompute on headlessgl", () => {
  it("for single prompts and a batch of mixed lengths", async () => {
    session = new Session(m.graphs, await createBackend("headlessgl"));
    const w = boldWeights(m, 3);
    const o: GenerateOptions = {
      maxNewTokens: 5,
      temperature: 0,
      seed: 0,
      context: contextOf(m.lowered),
    };
    for (const prompts of [[[1]], [[5, 9, 13, 2]], [[1], [2, 3, 4], [4, 3, 2]]]) {
      const logits = { full: [] as Float32Array[], cached: [] as Float32Array[] };
      const full = await generateFull(session, w, prompts, {
        ...o,
        onLogits: (_r, l) => logits.full.push(Float32Array.from(l)),
      });
      const cached = await generateCached(session, w, prompts, {
        ...o,
        onLogits: (_r, l) => logits.cached.push(Float32Array.from(l)),
      });
      expect(cached).toEqual(full);
      expect(logits.cached.length).toBe(logits.full.length);
      // Rows may come in another order (batches are grouped by prompt length): compare as sets of rows.
      const key = (l: Float32Array) => l.slice(0, 4).join(",");
      const byKey = new Map(logits.full.map((l) => [key(l), l]));
      for (const l of logits.cached) {
        const match = [...byKey.values()].reduce((best, f) =>
          relError(l, f) < relError(l, best) ? f : best,
        );
        expect(relError(l, match)).toBeLessThan(1e-5);
      }
    }
  });
});
