// Runs a fused kernel compiled to WebAssembly (codegen/wasm/kernel.ts) in the
// GEMM engine's memory, on both threads for large kernels (chunks of rows
// claimed by each). Arguments that are views of that memory (executors'
// arenas) are read in place, others copied into scratch space above the
// resident weight packs; the output goes to the executor's arena, or scratch
// and is copied out.
import { bufferSize, outputSize, type KernelIR } from "../codegen/kernel-ir/types.js";
import { wasmKernel } from "../codegen/wasm/kernel.js";
import { align, engineMemory, type Gemm, type LoadedKernel } from "./gemm.js";

/** Kernels reading and writing fewer floats run on one thread. */
const PARALLEL_FLOATS = 1 << 17;

export class WasmKernel {
  private readonly kernel: LoadedKernel;
  /** Rows (2-D output) or elements (1-D) the export's [from, to) ranges over. */
  private readonly rows: number;
  private readonly split: boolean;
  private readonly outputSize: number;

  constructor(
    readonly ir: KernelIR,
    private readonly engine: Gemm,
    /** Which arguments are weights: read from a copy the engine keeps (see Gemm.residentCopy). */
    private readonly weights: boolean[] = [],
  ) {
    const { bytes, imports } = wasmKernel(ir, engineMemory);
    this.kernel = engine.loadKernel(bytes, imports);
    this.rows = ir.grid.kind === "rows" ? ir.grid.rows : ir.grid.size;
    this.outputSize = outputSize(ir);
    // Worth a hand-off to the helper thread (~10-50 us) when it moves this
    // many floats: reductions read far more than they write.
    const floats = this.outputSize + ir.buffers.reduce((a, b) => a + bufferSize(b), 0);
    this.split = floats >= PARALLEL_FLOATS;
  }

  /**
   * The output for these arguments (the kernel's buffers: inputs, then index
   * tables), written into `out` (a view of the engine's memory) when given,
   * else returned as a new array. Arguments that are views of the engine's
   * memory are read where they are; others are copied into scratch space.
   */
  call(args: Float32Array[], out?: Float32Array, keepWeights = true): Float32Array {
    const engine = this.engine;
    if (out && !engine.owns(out))
      throw new Error("internal: kernel output outside the engine memory");
    // Everything in this memory already (executors' arenas): nothing to place or copy.
    if (out && args.every((a) => engine.owns(a))) {
      const addrs = args.map((a) => a.byteOffset);
      engine.runKernel(this.kernel, out.byteOffset, this.rows, addrs, this.split);
      return out;
    }
    const epoch = engine.epochNow;
    // Weights: the engine's kept copy (placed before the scratch space, which lies above it).
    const kept = args.map((a, k) =>
      keepWeights && this.weights[k] && !engine.owns(a) ? engine.residentCopy(a) : undefined,
    );
    // Scratch offsets of the arguments to copy in; -1 for those read in place.
    const offsets: number[] = [];
    let top = out ? 0 : align(this.outputSize * 4);
    for (const [k, a] of args.entries()) {
      const copy = !engine.owns(a) && kept[k] === undefined;
      offsets.push(copy ? top : -1);
      if (copy) top = align(top + a.length * 4);
    }
    const base = engine.scratch(top);
    // Scratch that did not fit dropped the kept copies: this call copies everything.
    if (engine.epochNow !== epoch && kept.some((a) => a !== undefined))
      return this.call(args, out, false);
    const mem = new Float32Array(engine.memory.buffer);
    const addrs = args.map((a, k) => {
      if (kept[k] !== undefined) return kept[k];
      if (offsets[k] < 0) return a.byteOffset;
      mem.set(a, (base + offsets[k]) / 4);
      return base + offsets[k];
    });
    engine.runKernel(this.kernel, out ? out.byteOffset : base, this.rows, addrs, this.split);
    return out ?? mem.slice(base / 4, base / 4 + this.outputSize);
  }
}
