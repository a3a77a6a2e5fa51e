// Layouts of tensors on GPU backends (codegen/device-layout.ts): which tensors
// are flat, tiled or refused for given limits, the texture packing round trip,
// and loop counting. The GPU runs of these layouts are in gpu-split.gl.ts.
import { describe, expect, it } from "vitest";
import {
  layoutOf,
  loopIterations,
  pack,
  texels,
  unpack,
  type DeviceLimits,
} from "../src/codegen/device-layout.js";
import { buildKernel } from "../src/codegen/kernel-ir/build.js";
import { Graph } from "../src/ir/graph.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { CapacityError, checkCapacity } from "../src/runtime/session.js";
import { input } from "./helpers/backend.js";

const webgl: DeviceLimits = {
  backend: "headlessgl",
  exactIndex: 2 ** 24,
  maxTextureSize: 16384,
  maxElements: 16384 ** 2,
  maxLoopIterations: Infinity,
};

describe("layoutOf", () => {
  it("keeps tensors up to 2^24 elements flat and tiles larger ones by rows", () => {
    expect(layoutOf([4096, 4096], webgl).kind).toBe("flat");
    expect(layoutOf([50257, 768], webgl)).toMatchObject({
      kind: "tiled",
      per: 4,
      lines: 1,
      width: 3072,
      height: 12565,
    });
    // gpt2-small's logits at B=4, T=128: each row of 50257 over 4 texture lines.
    expect(layoutOf([4, 128, 50257], webgl)).toMatchObject({
      kind: "tiled",
      rows: 512,
      per: 1,
      lines: 4,
      width: 12565,
      height: 2048,
    });
  });

  it("refuses what no texture holds, saying why", () => {
    const big = layoutOf([5, 1024, 50257], webgl); // 5120 rows x 4 lines > 16384
    expect(big).toMatchObject({ kind: "refused" });
    expect(big.kind === "refused" && big.reason).toMatch(/do not fit one 16384 x 16384 texture/);
    const flat = layoutOf([2 ** 25], webgl);
    expect(flat.kind === "refused" && flat.reason).toMatch(/cannot be split by rows/);
    // A WebGPU adapter whose storage bindings hold 128 MiB (2^25 floats).
    const webgpu = { ...webgl, backend: "webgpu", maxTextureSize: 2 ** 24, maxElements: 2 ** 25 };
    const wte = layoutOf([50257, 1600], webgpu); // gpt2-xl's embedding
    expect(wte.kind === "refused" && wte.reason).toBe(
      "80,411,200 elements, more than one webgpu buffer holds (33,554,432)",
    );
  });

  it("pack and unpack are inverse, padding where lines are longer than rows", () => {
    const small = { ...webgl, exactIndex: 16, maxTextureSize: 8, maxElements: 64 };
    for (const shape of [
      [20, 6], // 3 rows of 6 per line would be 18 wide: refused
      [7, 8],
      [4, 13],
      [30, 2],
    ]) {
      const l = layoutOf(shape, small);
      if (l.kind === "refused") continue;
      const v = Float32Array.from({ length: shape[0] * shape[1] }, (_, i) => i + 1);
      const p = pack(l, v);
      expect(p.length).toBe(texels(l));
      expect(Array.from(unpack(l, p))).toEqual(Array.from(v));
    }
    expect(layoutOf([4, 13], small)).toMatchObject({ kind: "tiled", lines: 2, width: 7 });
  });
});

describe("loopIterations", () => {
  it("counts every loop of a kernel's reductions, nested ones multiplied", () => {
    const g = new Graph("loops");
    const x = input(g, "x", [3, 40, 50]);
    g.output("s", g.op("sum", [x], { axes: [1, 2], keepdim: false }));
    const [k] = fuse(g).kernels;
    // 40 outer iterations, each running 50 inner ones.
    expect(loopIterations(buildKernel(g, k, {}, "flat"))).toBe(40 * 51);
  });

  it("checkCapacity refuses a kernel that would loop past the device's limit", () => {
    const g = new Graph("long");
    const x = input(g, "x", [2, 70000]);
    g.output("m", g.op("max", [x], { axes: [1], keepdim: false }));
    const limits = { ...webgl, maxLoopIterations: 65535 };
    expect(() => checkCapacity(fuse(g), {}, "headlessgl", false, limits)).toThrow(CapacityError);
    expect(() => checkCapacity(fuse(g), {}, "headlessgl", false, webgl)).not.toThrow();
  });
});
