// Weights kept on the GPU between calls. gpu.js uploads a Float32Array argument
// on every kernel call (gpt2-small: 500 MB per decoded token); here each weight
// is uploaded once, by a copy kernel, into a texture (GL; a storage buffer on
// WebGPU, which gpu.js hands out the same way) that every kernel reading it is then given, and again only when the optimizer has changed it in place
// (runtime/weights.ts versions). One cache per backend, shared by its sessions.
import { pack, type Layout } from "../codegen/device-layout.js";
import { gpujs } from "./backend.js";
import { weightVersion } from "./weights.js";

interface Held {
  version: number;
  key: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  texture: any;
}

export class DeviceWeights {
  private readonly held = new WeakMap<Float32Array, Held>();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly copiers = new Map<string, any>();
  /** Uploads so far (the tests count them: one per weight per change). */
  uploads = 0;

  constructor(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    private readonly gpu: any,
    private readonly async: boolean,
  ) {}

  /** The texture holding `v` laid out as `layout`, uploaded if it is not there yet or changed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async texture(v: Float32Array, layout: Layout): Promise<any> {
    const dims =
      layout.kind === "flat" ? [Math.max(1, layout.size)] : [layout.width, layout.height];
    const key = dims.join("x");
    const version = weightVersion(v);
    const hit = this.held.get(v);
    if (hit && hit.version === version && hit.key === key) return hit.texture;
    hit?.texture.delete?.();
    let copy = this.copiers.get(key);
    if (!copy) {
      const read = dims.length === 2 ? "a[this.thread.y][this.thread.x]" : "a[this.thread.x]";
      copy = this.gpu.createKernel(`function (a) { return ${read}; }`, {
        output: dims,
        pipeline: true,
        // A texture of its own per call: the next weight of this shape must not overwrite it.
        immutable: true,
        tactic: "precision",
        precision: "single",
        asyncMode: this.async,
      });
      this.copiers.set(key, copy);
    }
    let texture = copy(dims.length === 2 ? gpujs().input(pack(layout, v), dims) : v);
    if (texture && typeof texture.then === "function") texture = await texture;
    this.held.set(v, { version, key, texture });
    this.uploads++;
    return texture;
  }
}
