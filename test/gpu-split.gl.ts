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
import { CapacityError, checkCapacity, Session } from "../src/runtime/session.js";
import { weightChanged } from "../src/runtime/weights.js";
import { backend, compareOutputs, input, relError } from "./helpers/backend.js";
import { gpuParity } from "./helpers/gpu-parity.js";
import { model } from "./helpers/train.js";

let gl: Promise<Backend> | undefined;
const headlessgl = () => (gl ??= createBackend("headlessgl"));

/** Small limits: 2^10 elements indexed exactly, 64 x 64 textures. */
const small: DeviceLimits = {
  backend: "headlessgl",
  exactIndex: 2 ** 10,
  maxTextureSize: 64,
  maxElements: 64 * 64,
  maxLoopIterations: Infinity,
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

/**
 * y = 2x + 1 (a kernel reading and writing [R, C]) and its row sums, at the
 * device's real limits; x[i] = i mod 1021, so every y is an exact integer and a
 * read from the wrong element shows.
 */
async function affine(be: Backend, R: number, C: number) {
  const g = new Graph(`affine${R}x${C}`);
  const x = input(g, "x", [R, C]);
  const y = g.op("add", [g.op("mul", [x, g.scalar(2)]), g.scalar(1)]);
  g.output("y", y);
  // Row sums where a shader may loop over a row (llvmpipe stops at 65,535 iterations).
  const sums = C <= be.limits!.maxLoopIterations;
  if (sums) g.output("s", g.op("sum", [y], { axes: [1], keepdim: false }));
  const schedule = fuse(g);
  checkCapacity(schedule, {}, be.name, false, be.limits);
  const ex = new Executor(schedule, {}, be);
  try {
    const n = R * C;
    const xv = new Float32Array(n);
    for (let i = 0; i < n; i++) xv[i] = i % 1021;
    const out = await ex.run(new Map([[x, xv]]));
    const yv = out.get(g.outputs[0].id)!;
    const sv = sums ? out.get(g.outputs[1].id)! : undefined;
    const wrong: number[] = [];
    for (let i = 0; i < n && wrong.length < 5; i++) if (yv[i] !== 2 * (i % 1021) + 1) wrong.push(i);
    let rowsWrong = 0;
    for (let r = 0; sv && r < R; r++) {
      let e = 0;
      for (let c = 0; c < C; c++) e += 2 * ((r * C + c) % 1021) + 1;
      // A float32 sum of C terms is good to about C rounding steps.
      if (!(Math.abs(sv[r] - e) <= Math.max(1e-5, C * 2 ** -24) * e)) rowsWrong++;
    }
    return { length: yv.length, wrong, rowsWrong };
  } finally {
    ex.destroy();
  }
}

describe("at the float32 index limit, 2^24", () => {
  // 2^24 + 1 elements still index exactly (the last index is 2^24); 2^24 + 2 is
  // the first size with an index (2^24 + 1) float32 cannot hold.
  for (const [R, C, layout] of [
    [4095, 4097, "flat"], // 2^24 - 1
    [4096, 4096, "flat"], // 2^24
    [97 * 257, 673, "tiled"], // 2^24 + 1
    [6, 2796203, "tiled"], // 2^24 + 2: rows longer than a texture line (too long to sum)
    [512, 32769, "tiled"], // 2^24 + 512: rows over three texture lines
    [24930, 673, "tiled"], // 2^24 + 674
  ] as const) {
    it(`${R} x ${C} = 2^24 ${R * C >= 2 ** 24 ? "+" : "-"} ${Math.abs(R * C - 2 ** 24)} elements (${layout})`, async () => {
      const be = await headlessgl();
      expect(layoutOf([R, C], be.limits!).kind).toBe(layout);
      const r = await affine(be, R, C);
      expect(r.length).toBe(R * C);
      expect(r.wrong).toEqual([]);
      expect(r.rowsWrong).toBe(0);
    });
  }

  it("without the split, reads past 2^24 + 1 go wrong (what the tiles are for)", async () => {
    const be = await headlessgl();
    const unsplit = { ...be, limits: { ...be.limits!, exactIndex: Infinity } };
    const r = await affine(unsplit, 24930, 673);
    expect(r.wrong[0]).toBe(2 ** 24 + 1);
  });
});

describe("loops past the device's iteration limit", () => {
  it("are refused before running, naming the kernel and the limit", () => {
    const g = new Graph("long-sum");
    const x = input(g, "x", [1, 2000]);
    g.output("s", g.op("sum", [x], { axes: [1], keepdim: false }));
    const limits = { ...small, exactIndex: 4096, maxLoopIterations: 1000 };
    expect(() => checkCapacity(fuse(g), {}, "headlessgl", false, limits)).toThrow(
      /kernel k\d+_sum, op sum, runs 2,000 loop iterations per thread; headlessgl here stops a shader after 1,000/,
    );
    expect(() =>
      checkCapacity(fuse(g), {}, "headlessgl", false, { ...limits, maxLoopIterations: 2000 }),
    ).not.toThrow();
  });

  it("the probe measures the limit of this GL (Mesa llvmpipe: 65,535; none: Infinity)", async () => {
    const n = (await headlessgl()).limits!.maxLoopIterations;
    expect(n === Infinity || (Number.isInteger(n) && n >= 4096)).toBe(true);
  });
});

describe("a GPT-2 whose embedding is past 2^24 elements, headlessgl against webasm", () => {
  // vocab 32800 (not 65600 x 256: its loss would loop past llvmpipe's 65,535 iterations).
  it("vocab 32800 x d 512 (16,793,600 elements): forward, prompt + 8 decode steps, a training step", async () => {
    const m = model("gpt2-tiny", { vocab: "32800", d: "512", heads: "4", layers: "1" });
    expect(layoutOf(m.shapes.get("wte.weight")!, (await headlessgl()).limits!).kind).toBe("tiled");
    const checks = await gpuParity(m, await headlessgl(), await backend("webasm"), {
      forwardT: 32,
      prompt: 4,
      decodeSteps: 8,
      trainT: 16,
      seed: 7,
    });
    for (const c of checks) expect(c.err, c.name).toBeLessThanOrEqual(c.tol);
  }, 600_000); // about 90 s on 2 busy cores under llvmpipe
});

describe("weights stay on the device", () => {
  it("uploaded once per session, again only when changed; one read-back per output asked for", async () => {
    const be = await createBackend("headlessgl"); // its own weight cache
    const m = model("gpt2-tiny");
    const w = m.init(3);
    const session = new Session(m.graphs, be);
    let copies = 0;
    session.profiler = { kernel: () => {}, copy: () => void copies++ };
    try {
      const tokens = Float32Array.from({ length: 8 }, (_, i) => (i * 5) % 64);
      const dims = { B: 1, T: 8 };
      const first = Float32Array.from((await session.forward(w, { tokens }, dims)).logits);
      const weights = m.graphs.forwardOpt.nodesOf("weight").length;
      expect(be.weights!.uploads).toBe(weights);
      expect(copies).toBe(1); // the logits, nothing inside the step
      const again = (await session.forward(w, { tokens }, dims)).logits;
      expect(be.weights!.uploads).toBe(weights);
      expect(again).toEqual(first);
      // The optimizer writes in place and says so: that weight alone goes up again.
      const ln = w.get("ln_f.bias")!;
      ln.fill(0.5);
      weightChanged(ln);
      const changed = (await session.forward(w, { tokens }, dims)).logits;
      expect(be.weights!.uploads).toBe(weights + 1);
      const ref = new Session(m.graphs, await backend("webasm"));
      expect(relError(changed, (await ref.forward(w, { tokens }, dims)).logits)).toBeLessThan(1e-4);
      ref.destroy();
    } finally {
      session.destroy();
    }
  });
});
