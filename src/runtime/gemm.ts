// Runs GEMM plans on the WebAssembly module from codegen/wasm/gemm.ts: copies
// the operand buffers into the module's memory, packs each batch's matrices,
// multiplies, and copies the M x N result out of the padded C.
import type { GemmPlan } from "../codegen/gemm-plan.js";
import { gemmModule, MR, NR } from "../codegen/wasm/gemm.js";

const PAGE = 65536;
/** wasm32 addresses reach 4 GiB. */
const MAX_PAGES = 65536;

interface GemmExports {
  pack_a(src: number, rs: number, cs: number, M: number, K: number, dst: number): void;
  pack_b(src: number, rs: number, cs: number, K: number, N: number, dst: number): void;
  gemm(
    ap: number,
    bp: number,
    c: number,
    Mp: number,
    K: number,
    ldc: number,
    j0: number,
    j1: number,
  ): void;
}

let compiled: WebAssembly.Module | undefined;

export class Gemm {
  private readonly memory = new WebAssembly.Memory({ initial: 1, maximum: MAX_PAGES });
  private readonly fns: GemmExports;

  constructor() {
    compiled ??= new WebAssembly.Module(
      gemmModule({ initial: 1, maximum: MAX_PAGES, shared: false }),
    );
    const instance = new WebAssembly.Instance(compiled, { env: { memory: this.memory } });
    this.fns = instance.exports as unknown as GemmExports;
  }

  /** Bytes of module memory a plan needs (operands, packed panels, padded C). */
  static bytes(plan: GemmPlan, aSize: number, bSize: number): number {
    const Mp = Math.ceil(plan.M / MR) * MR;
    const Np = Math.ceil(plan.N / NR) * NR;
    return 4 * (aSize + bSize + Mp * plan.K + Np * plan.K + Mp * Np) + 64;
  }

  /** The product of every matrix pair in the batch, row-major [batch, M, N]. */
  run(plan: GemmPlan, a: Float32Array, b: Float32Array): Float32Array {
    const { M, N, K, batch } = plan;
    const Mp = Math.ceil(M / MR) * MR;
    const Np = Math.ceil(N / NR) * NR;
    if (K === 0) return new Float32Array(batch * M * N);
    const same = a === b;
    // Layout (bytes, 16-aligned): [A | B | packed A | packed B | C].
    const align = (n: number) => Math.ceil(n / 16) * 16;
    const offA = 0;
    const offB = same ? offA : align(offA + a.length * 4);
    const offAp = align(offB + b.length * 4);
    const offBp = align(offAp + Mp * K * 4);
    const offC = align(offBp + Np * K * 4);
    const need = offC + Mp * Np * 4;
    if (need > MAX_PAGES * PAGE)
      throw new RangeError(
        `matmul ${M}x${K} @ ${K}x${N} needs ${(need / 2 ** 30).toFixed(1)} GiB of WebAssembly memory (at most 4)`,
      );
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / PAGE));
    const heap = new Float32Array(this.memory.buffer);
    heap.set(a, offA / 4);
    if (!same) heap.set(b, offB / 4);
    const out = new Float32Array(batch * M * N);
    for (let m = 0; m < batch; m++) {
      this.fns.pack_a(
        offA + 4 * plan.a.offsets[m],
        plan.a.rowStride,
        plan.a.colStride,
        M,
        K,
        offAp,
      );
      this.fns.pack_b(
        offB + 4 * plan.b.offsets[m],
        plan.b.rowStride,
        plan.b.colStride,
        K,
        N,
        offBp,
      );
      this.fns.gemm(offAp, offBp, offC, Mp, K, Np, 0, Np);
      const c = offC / 4;
      if (Np === N) out.set(heap.subarray(c, c + M * N), m * M * N);
      else
        for (let i = 0; i < M; i++)
          out.set(heap.subarray(c + i * Np, c + i * Np + N), (m * M + i) * N);
    }
    return out;
  }
}
