// `--profile`: where a step's time goes — per kernel family, per matmul shape
// (with achieved GFLOP/s), in copies from the backend back to JavaScript, and
// the slowest kernels by name (with what runs them: gptc's wasm, gpu.js, GEMM).
import type { KernelFamily, Profiler } from "./executor.js";

interface Row {
  ms: number;
  flops: number;
  calls: number;
}

/**
 * Where steps' time goes (what `--profile` prints): set it as a session's
 * `profiler` and it adds up every kernel run and copy back to JavaScript, by
 * kernel family, by matmul shape and by kernel.
 */
export class StepProfile implements Profiler {
  private readonly byKind = new Map<string, Row>();
  private readonly byMatmul = new Map<string, Row>();
  private readonly byKernel = new Map<string, Row>();
  /** Milliseconds spent copying results from the backend back to JavaScript. */
  copyMs = 0;
  /** Milliseconds spent running kernels. */
  kernelMs = 0;

  /** Records one run of a kernel: `ms` milliseconds, `flops` floating-point operations. */
  kernel(f: KernelFamily, ms: number, flops: number): void {
    this.kernelMs += ms;
    add(this.byKind, f.kind, ms, flops);
    if (f.matmul) add(this.byMatmul, f.matmul, ms, flops);
    add(this.byKernel, `${f.name} (${f.runs})`, ms, flops);
  }

  /** Records one copy back to JavaScript that took `ms` milliseconds. */
  copy(ms: number): void {
    this.copyMs += ms;
  }

  /**
   * The totals as text: time, share and GFLOP/s per kernel family, copies, each
   * matmul shape, and the slowest kernels by name.
   */
  table(): string {
    const lines = ["kernel family        calls      ms   share   GFLOP/s"];
    const total = this.kernelMs + this.copyMs || 1;
    const row = (label: string, r: Row) =>
      `${label.padEnd(20)} ${String(r.calls).padStart(5)} ${r.ms.toFixed(1).padStart(8)} ${((100 * r.ms) / total).toFixed(1).padStart(6)}% ${(r.flops / 1e6 / Math.max(r.ms, 1e-9)).toFixed(2).padStart(9)}`;
    for (const [k, r] of [...this.byKind].sort((a, b) => b[1].ms - a[1].ms)) lines.push(row(k, r));
    lines.push(
      `${"copies to JS".padEnd(20)} ${"".padStart(5)} ${this.copyMs.toFixed(1).padStart(8)} ${((100 * this.copyMs) / total).toFixed(1).padStart(6)}%`,
    );
    lines.push("", "matmul shape (M x K @ K x N)        calls      ms   GFLOP/s");
    for (const [k, r] of [...this.byMatmul].sort((a, b) => b[1].ms - a[1].ms))
      lines.push(
        `${k.padEnd(34)} ${String(r.calls).padStart(5)} ${r.ms.toFixed(1).padStart(8)} ${(r.flops / 1e6 / Math.max(r.ms, 1e-9)).toFixed(2).padStart(9)}`,
      );
    lines.push("", `slowest kernels (runs on)                             calls      ms`);
    for (const [k, r] of [...this.byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, SLOWEST))
      lines.push(`${k.padEnd(52)} ${String(r.calls).padStart(5)} ${r.ms.toFixed(1).padStart(8)}`);
    return lines.join("\n");
  }

  /**
   * The totals as data: `kernelMs`, `copyMs`, and `{ ms, flops, calls }` by
   * family (`byKind`), by matmul shape (`byMatmul`) and for the slowest kernels (`slowest`).
   */
  toJSON(): Record<string, unknown> {
    return {
      kernelMs: this.kernelMs,
      copyMs: this.copyMs,
      byKind: Object.fromEntries(this.byKind),
      byMatmul: Object.fromEntries(this.byMatmul),
      slowest: Object.fromEntries(
        [...this.byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, SLOWEST),
      ),
    };
  }
}

/** Kernels listed by name in the table. */
const SLOWEST = 12;

function add(m: Map<string, Row>, key: string, ms: number, flops: number): void {
  const r = m.get(key) ?? { ms: 0, flops: 0, calls: 0 };
  r.ms += ms;
  r.flops += flops;
  r.calls += 1;
  m.set(key, r);
}
