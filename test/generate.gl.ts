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

describe("decoding keeps the KV caches on the device (headlessgl)", () => {
  it("reads back only each step's logits, and decodes webasm's tokens", async () => {
    const gl = await createBackend("headlessgl");
    const ref = new Session(m.graphs, await createBackend("webasm"));
    const s = new Session(m.graphs, gl);
    expect(s.keepsCaches).toBe(true);
    const vocab = m.shapes.get("wte.weight")![0];
    const w = boldWeights(m, 5);
    const context = contextOf(m.lowered);
    // 30 new tokens after 6 at a context of 32: the window slides once, so a
    // second prompt pass starts from the kept textures' kernels again.
    const prompts = [[3, 1, 4, 1, 5, 9]];
    const o: GenerateOptions = { maxNewTokens: 30, temperature: 0, seed: 0, context };
    const run = async (session: Session) => {
      const logits: Float32Array[] = [];
      const reads: { count: number; bytes: number }[] = [];
      const snap = () => reads.push({ ...(gl.readBacks ?? { count: 0, bytes: 0 }) });
      snap();
      const tokens = await generateCached(session, w, prompts, {
        ...o,
        onLogits: (_r, l) => logits.push(Float32Array.from(l)),
        onToken: snap,
      });
      return { tokens, logits, reads };
    };
    try {
      const want = await run(ref);
      const got = await run(s);
      expect(got.tokens).toEqual(want.tokens);
      expect(got.tokens[0].length).toBe(30);
      got.logits.forEach((l, i) => expect(relError(l, want.logits[i])).toBeLessThan(1e-4));
      // Between two tokens: one read-back, the step's logits (B = 1, T = 1),
      // except at a prompt pass (the first, and where the window slid: T
      // tokens of logits). Reading the caches back would add 2 per layer.
      const steps = got.reads.slice(1).map((r, i) => ({
        count: r.count - got.reads[i].count,
        bytes: r.bytes - got.reads[i].bytes,
      }));
      const prompt = steps.filter((d) => d.bytes > 4 * vocab);
      expect(prompt.length).toBe(2);
      expect(steps.filter((d) => d.bytes === 4 * vocab).length).toBe(28);
      for (const d of steps) expect(d.count).toBe(1);
      expect(steps[0].bytes).toBe(4 * vocab * prompts[0].length);

      // Session.decode, the host path, on the same executor: its caches are
      // read back (their textures then freed), twice over, as webasm's.
      const C = 8;
      const host = async (session: Session) => {
        const caches = Object.fromEntries(
          session.cacheInputs({ B: 1, C }).map((c) => [c.name, new Float32Array(c.size)]),
        );
        const dims = { B: 1, C, T: 3 };
        const inputs = { tokens: Float32Array.of(7, 8, 9), cache_len: Float32Array.of(0) };
        const a = await session.decode(w, { ...inputs, ...caches }, dims);
        const b = await session.decode(w, { ...inputs, ...caches }, dims);
        return { a, b };
      };
      const [h, r] = [await host(s), await host(ref)];
      expect(Object.keys(h.a).sort()).toEqual(Object.keys(r.a).sort());
      for (const [name, v] of Object.entries(r.a)) {
        expect(relError(h.a[name], v), name).toBeLessThan(1e-4);
        expect(h.b[name]).toEqual(h.a[name]);
      }
    } finally {
      s.destroy();
      ref.destroy();
    }
  });
});
