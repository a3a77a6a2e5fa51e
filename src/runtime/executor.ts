// Runs a fused schedule on a backend: one gpu.js kernel per fused kernel, built
// from generated source for concrete sizes, called in order. On GL backends the
// intermediates stay on the device as textures (pipeline mode); only the
// outputs asked for are read back.
import { kernelSource, type KernelSource } from "../codegen/kernel-source.js";
import type { Schedule } from "../ir/passes/fuse.js";
import type { Backend } from "./backend.js";

export interface CompiledKernel {
  source: KernelSource;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  fn: any;
}

/** Last kernel index reading each buffer, so dead intermediates are dropped early. */
function lastUses(s: Schedule): Map<number, number> {
  const last = new Map<number, number>();
  for (const k of s.kernels) for (const i of k.inputs) last.set(i, k.index);
  return last;
}

export class Executor {
  readonly kernels: CompiledKernel[];
  private readonly last: Map<number, number>;
  private readonly onDevice: boolean;

  constructor(
    readonly schedule: Schedule,
    readonly bindings: Record<string, number>,
    readonly backend: Backend,
  ) {
    this.onDevice = backend.name === "headlessgl" || backend.name === "webgpu";
    this.kernels = schedule.kernels.map((k) => {
      const source = kernelSource(schedule.graph, k, bindings);
      const fn = backend.gpu.createKernel(source.source, {
        output: [source.outputSize],
        pipeline: this.onDevice,
        immutable: false,
        tactic: "precision",
        precision: "single",
        asyncMode: backend.async,
      });
      return { source, fn };
    });
    this.last = lastUses(schedule);
  }

  /**
   * Runs every kernel. `feeds` holds the inputs and weights by node id; returns
   * the buffers of the requested nodes (graph outputs by default) as Float32Arrays.
   */
  async run(feeds: Map<number, Float32Array>, want?: number[]): Promise<Map<number, Float32Array>> {
    const wanted = new Set(want ?? this.schedule.graph.outputs.map((o) => o.id));
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const live = new Map<number, any>(feeds);
    const result = new Map<number, Float32Array>();
    for (const { source, fn } of this.kernels) {
      const args = source.inputs.map((id) => {
        const v = live.get(id);
        if (v === undefined)
          throw new Error(`internal: buffer %${id} missing for kernel ${source.name}`);
        return v;
      });
      let out = fn(...args);
      if (out && typeof out.then === "function") out = await out;
      live.set(source.output, out);
      if (wanted.has(source.output))
        result.set(source.output, await toArray(out, source.outputSize));
      const index = this.kernels.findIndex((k) => k.source === source);
      for (const id of source.inputs)
        if (this.last.get(id) === index && !feeds.has(id)) live.delete(id);
    }
    for (const id of wanted) if (!result.has(id) && feeds.has(id)) result.set(id, feeds.get(id)!);
    return result;
  }

  destroy(): void {
    for (const k of this.kernels) k.fn.destroy?.();
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function toArray(v: any, size: number): Promise<Float32Array> {
  if (v instanceof Float32Array) return v.length === size ? v : v.subarray(0, size);
  if (v && typeof v.toArray === "function") {
    let a = v.toArray();
    if (a && typeof a.then === "function") a = await a;
    return a instanceof Float32Array ? a : Float32Array.from(a);
  }
  return Float32Array.from(v);
}
