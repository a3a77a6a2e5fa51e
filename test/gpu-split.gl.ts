// Tensors past one texture's limits on headlessgl: tiled textures
// (codegen/device-layout.ts) keep every index exact. First on small made-up
// limits, where each kind of tile (several rows per texture line, one row per
// line, one row over several lines) is cheap to reach, then at the real limit
// gpu.js's float32 index math has: 2^24 - 1, 2^24 and 2^24 + 1 elements. Part
// of the GL suite (`xvfb-run -a npx vitest run -c vitest.gl.config.ts`); fails,
// never skips, where headlessgl cannot start.
import { describe, expect, it } from "vitest";
import { layoutOf, type DeviceLimits } from "../src/codegen/device-layout.js";
import { Graph } from "../src/ir/graph.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { createBackend, type Backend } from "../src/runtime/backend.js";
import { Executor } from "../src/runtime/executor.js";
import { CapacityError, checkCapacity } from "../src/runtime/session.js";
import { compareOutputs, input } from "./helpers/backend.js";

let gl: Promise<Backend> | undefined;
const headlessgl = () => (gl ??= createBackend("headlessgl"));

/** Small limits: 2^10 elements indexed exactly, 64 x 64 textures. */
const small: DeviceLimits = {
  backend: "headlessgl",
  exactIndex: 2 ** 10,
  maxTextureSize: 64,
  maxElements: 64 * 64,
};

/** h = x @ w (a matmul writing [R, C]), then kernels reading h: h + 1 and rowsum(h * h). */
function matmulGraph(R: number, K: number, C: number): Graph {
  const g = new Graph(`split${R}x${C}`);
  const x = input(g, "x", [R, K]);
  const w = input(g, "w", [K, C]);
  const h = g.op("matmul", [x, w]);
  g.output("h", h);
  g.output("h1", g.op("add", [h, g.scalar(1)]));
  g.output("s", g.op("sum", [g.op("mul", [h, h])], { axes: [1], keepdim: false }));
  return g;
}

const tensor = (shape: number[], f: (i: number) => number) => ({
  shape,
  data: Float64Array.from({ length: shape.reduce((p, q) => p * q, 1) }, (_, i) => f(i)),
});

describe("tiled textures on small limits", () => {
  for (const [R, K, C, kind] of [
    [40, 3, 30, "one row per line"],
    [100, 4, 20, "two rows per line"],
    [12, 5, 100, "a row over two lines"],
  ] as const) {
    it(`[${R}, ${C}]: ${kind}`, async () => {
      const l = layoutOf([R, C], small);
      expect(l.kind).toBe("tiled");
      const be = { ...(await headlessgl()), limits: small };
      const g = matmulGraph(R, K, C);
      const { errors } = await compareOutputs(g, be, {
        inputs: {
          x: tensor([R, K], (i) => ((i * 7) % 13) - 6),
          w: tensor([K, C], (i) => ((i * 5) % 11) - 5),
        },
      });
      for (const [name, e] of Object.entries(errors)) expect(e, name).toBeLessThan(1e-6);
    });
  }

  it("refuses, before running, a tensor no texture of the device holds, naming it", async () => {
    const g = matmulGraph(200, 2, 20); // 200 rows of 20 need a 80 x 50 texture
    expect(layoutOf([200, 20], small).kind).toBe("refused");
    expect(() => checkCapacity(fuse(g), {}, "headlessgl", false, small)).toThrow(CapacityError);
    expect(() => checkCapacity(fuse(g), {}, "headlessgl", false, small)).toThrow(
      /f32\[200, 20\], has 4,000 elements .* do not fit one 64 x 64 texture: use a smaller/,
    );
  });
});
