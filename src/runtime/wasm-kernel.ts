// Runs a fused kernel compiled to WebAssembly (codegen/wasm/kernel.ts) in the
// GEMM engine's memory, on both threads for large kernels (chunks of rows
// claimed by each). Arguments that are views of that memory (executors'
// arenas) are read in place, others copied into scratch space above the
// resident weight packs; the output goes to the executor's arena, or scratch
// and is copied out.
import { bufferSize, outputSize, type KernelIR } from "../codegen/kernel-ir/types.js";
import { wasmKernel } from "../codegen/wasm/kernel.js";
import { engineMemory, type Gemm, type LoadedKernel } from "./gemm.js";

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
    const epoch = engine.epochNow;
    // Weights: the engine's kept copy (placed before the scratch space, which lies above it).
    const kept = args.map((a, k) =>
      keepWeights && this.weights[k] && !engine.owns(a) ? engine.residentCopy(a) : undefined,
    );
    // The others where they lie, or copied into scratch; the output after them.
    const staged = engine.stage(
      args.filter((_, k) => kept[k] === undefined),
      out ? 0 : this.outputSize * 4,
    );
    // Scratch that did not fit dropped the kept copies: this call copies everything.
    if (engine.epochNow !== epoch && kept.some((a) => a !== undefined))
      return this.call(args, out, false);
    let next = 0;
    const addrs = kept.map((at) => at ?? staged[next++]);
    const at = out ? out.byteOffset : staged[next];
    engine.runKernel(this.kernel, at, this.rows, addrs, this.split);
    return out ?? new Float32Array(engine.memory.buffer, at, this.outputSize).slice();
  }
}
