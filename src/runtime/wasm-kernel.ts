// Runs a fused kernel compiled to WebAssembly (codegen/wasm/kernel.ts) in the
// GEMM engine's memory: the arguments are copied into scratch space above the
// resident weight packs, the kernel writes its output there, and the output is
// copied out.
import type { KernelSource } from "../codegen/kernel-source.js";
import { wasmKernel } from "../codegen/wasm/kernel.js";
import type { Gemm } from "./gemm.js";

type Run = (out: number, from: number, to: number, ...args: number[]) => void;

const align = (n: number) => Math.ceil(n / 64) * 64;

export class WasmKernel {
  private readonly run: Run;
  /** Rows (2-D output) or elements (1-D) the export's [from, to) ranges over. */
  private readonly rows: number;

  constructor(
    readonly source: KernelSource,
    argSizes: number[],
    private readonly engine: Gemm,
  ) {
    const { bytes, imports } = wasmKernel(source, argSizes, {
      initial: 1,
      maximum: 65536,
      shared: true,
    });
    const env: WebAssembly.ModuleImports = { memory: engine.memory };
    for (const m of imports)
      env[`Math_${m}`] = (Math as unknown as Record<string, WebAssembly.ImportValue>)[m];
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env });
    this.run = instance.exports.run as Run;
    this.rows = source.dims.length === 2 ? source.dims[1] : source.dims[0];
  }

  /** The output for these arguments (inputs, extras, then the source's constants). */
  call(args: Float32Array[]): Float32Array {
    const all = [...args, ...Object.values(this.source.constants)];
    const offsets: number[] = [];
    let top = align(this.source.outputSize * 4);
    for (const a of all) {
      offsets.push(top);
      top = align(top + a.length * 4);
    }
    const base = this.engine.scratch(top);
    const mem = new Float32Array(this.engine.memory.buffer);
    all.forEach((a, k) => mem.set(a, (base + offsets[k]) / 4));
    this.run(base, 0, this.rows, ...offsets.map((o) => base + o));
    return mem.slice(base / 4, base / 4 + this.source.outputSize);
  }
}
