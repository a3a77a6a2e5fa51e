// Runs GEMM plans on the WebAssembly module from codegen/wasm/gemm.ts. One
// engine (one memory) per process, shared by every executor:
//
//   [ resident packed weights | scratch: operands, packed operands, C ]
//
// A weight operand is packed once and kept (keyed by its array, the view and
// the array's version, which the optimizer bumps): decoding a token then reads
// the packed weights straight from memory instead of copying and packing
// ~500 MB of them per token. Everything else is copied in, packed and
// multiplied per call; the M x N result is written where the caller's output
// lives in this memory (else copied out of a padded C).
import { availableParallelism } from "node:os";
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { GemmOperand, GemmPlan } from "../codegen/gemm-plan.js";
import { evenK, gemmModule, ITEM_BYTES, KC, MR, NC, NR, PANELS } from "../codegen/wasm/gemm.js";
import { relaxedSimd } from "./wasm-features.js";
import { quantizedForm, type QuantizedWeight } from "./quantize.js";
import { weightVersion } from "./weights.js";

/**
 * A helper thread: the same module over the same shared memory, running one
 * call per job. Jobs pass through a shared Int32Array (sequence number, done
 * number, job, argument count, arguments, error flag, ready flag) with
 * Atomics.wait/notify, so a call costs microseconds and the main thread never
 * yields to the event loop. Jobs 0-6 are the GEMM module's exports; job 7
 * loads the kernel modules posted to the thread's port since the last load
 * (receiveMessageOnPort: the thread reads its messages without an event loop);
 * job 8 shares a range with this thread: both claim chunks of it from a
 * counter (NEXT) until none is left, so a slower core takes fewer (one of this
 * machine's two vCPUs runs the same code 20-40% slower than the other at times).
 */
const MAX_ARGS = 60;
const ERROR = 4 + MAX_ARGS;
const READY = ERROR + 1;
const NEXT = READY + 1;
/** A range [start, end) in chunks of `step`; fn's arguments are `rest` with (from, to) inserted at `at`. */
type Chunks = [at: number, start: number, end: number, step: number, rest: number[]];

/**
 * Runs fn over chunks claimed from the counter ctl[next] until none is left.
 * The helper runs this same function (its source is copied into the worker),
 * so it uses nothing from outside itself.
 */
function claim(
  ctl: Int32Array,
  next: number,
  fn: (...args: number[]) => void,
  ...[at, start, end, step, rest]: Chunks
): void {
  for (;;) {
    const from = start + Atomics.add(ctl, next, 1) * step;
    if (from >= end) return;
    const args = rest.slice(0, at);
    args.push(from, Math.min(from + step, end));
    for (let k = at; k < rest.length; k++) args.push(rest[k]);
    fn(...args);
  }
}
const exportIndex = {
  pack_a: 0,
  pack_b: 1,
  gemm: 2,
  gemm_int8: 3,
  gemm_f16: 4,
  gemv_rows: 5,
  gemv_cols: 6,
  gemm_items: 7,
  quantize_row: 8,
  gemv_int8: 9,
} as const;
type ExportName = keyof typeof exportIndex;
const EXPORTS = Object.keys(exportIndex);
/** Jobs after the exports' calls (job = export index for those). */
const LOAD = EXPORTS.length;
const SHARE = LOAD + 1;
const workerSource = `
const { workerData, receiveMessageOnPort } = require("node:worker_threads");
const { module, memory, control, port } = workerData;
const fns = new WebAssembly.Instance(module, { env: { memory } }).exports;
const names = ${JSON.stringify(EXPORTS)};
const kernels = [];
const ctl = new Int32Array(control);
const claim = ${claim.toString()};
Atomics.store(ctl, ${READY}, 1);
let seen = 0;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  seen = Atomics.load(ctl, 0);
  if (seen < 0) break;
  try {
    const job = ctl[2];
    const args = Array.from(ctl.subarray(4, 4 + ctl[3]));
    if (job < ${LOAD}) fns[names[job]](...args);
    else if (job === ${LOAD}) {
      for (let m; (m = receiveMessageOnPort(port)) !== undefined; ) {
        const env = { memory };
        for (const name of m.message.imports) env["Math_" + name] = Math[name];
        kernels[m.message.slot] = new WebAssembly.Instance(m.message.module, { env }).exports.run;
      }
    } else {
      // [target (export index, or the exports' count + kernel slot), at, start, end, step, ...rest]
      const [target, at, start, end, step] = args;
      claim(ctl, ${NEXT}, target < names.length ? fns[names[target]] : kernels[target - names.length], at, start, end, step, args.slice(5));
    }
  } catch (e) {
    // The main thread is blocked waiting: say so through memory, not a message.
    ctl[${ERROR}] = 1;
    require("node:fs").writeSync(2, "gptc: WebAssembly helper thread: " + e + "\\n");
  }
  Atomics.store(ctl, 1, seen);
  Atomics.notify(ctl, 1);
}
`;
/** Below this many multiply-adds a product runs on one thread (a hand-off costs ~10-50 us). */
const PARALLEL_MACS = 1 << 20;
/**
 * Below this many multiply-adds per matrix, a batch's threads take whole
 * items (gemm_items), not shares of each item's packs and columns.
 */
const ITEM_MACS = 1 << 23;

const PAGE = 65536;
/** wasm32 addresses reach 4 GiB. */
const MAX_PAGES = 65536;
const MAX_BYTES = MAX_PAGES * PAGE;
/**
 * Executors' arenas (and held state: weights and moments, KV caches) together
 * stay within three quarters of the memory; packs and scratch keep the rest
 * (at least one GEMM's operands). Resident packs above the arenas are
 * dropped and made again when arenas grow into them: training re-packs its
 * weights every step anyway (they change), and inference keeps small arenas.
 */
export const ARENA_BYTES = (MAX_BYTES / 4) * 3;

interface GemmExports {
  /** Both: (src, lineStride, kStride, lines, K, dst); see codegen/wasm/gemm.ts. */
  pack_a(src: number, ls: number, ks: number, lines: number, K: number, dst: number): void;
  pack_b(src: number, ls: number, ks: number, lines: number, K: number, dst: number): void;
  gemm(
    ap: number,
    bp: number,
    c: number,
    M: number,
    K: number,
    ldc: number,
    j0: number,
    j1: number,
    depth: number,
  ): void;
  /** As gemm, B packed as int8 with its columns' scales at byte `scales` (see PackedB). */
  gemm_int8(...args: number[]): void;
  /** As gemm, B packed as float16. */
  gemm_f16(...args: number[]): void;
  /** (a, b, c, K, N, ldb): one row times B read in place; see codegen/wasm/gemv.ts. */
  gemv_rows(a: number, b: number, c: number, K: number, N: number, ldb: number): void;
  gemv_cols(a: number, b: number, c: number, K: number, N: number, ldb: number): void;
  /** (m0, m1, table, M, K, N, depth, aLs, aKs, bLs, bKs, ldc); see codegen/wasm/gemm.ts. */
  gemm_items(...args: number[]): void;
  /** (src, K, dst) and (aq, bp, c, K, j0, j1, scales): see codegen/wasm/gemv-int8.ts. */
  quantize_row(src: number, K: number, dst: number): void;
  gemv_int8(...args: number[]): void;
}

interface Packed {
  offset: number;
  version: number;
  /** Resident packs are dropped all at once (a new epoch) when memory runs short. */
  epoch: number;
}

/** Byte offsets and sizes in the memory are kept at multiples of 64 (a cache line). */
export const align = (n: number) => Math.ceil(n / 64) * 64;

/** The memory type of modules over an engine's memory (what codegen/wasm's builders take). */
export const engineMemory = { initial: 1, maximum: MAX_PAGES, shared: true };

/** A kernel module loaded into an engine (see loadKernel). */
export interface LoadedKernel {
  slot: number;
  run: (...args: number[]) => void;
}
const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;
/**
 * The depth of gemm's blocks for M rows: KC, so that a block of B stays in
 * cache while every row panel of A passes over it. One panel of rows
 * (decoding: one row) reuses nothing: the whole depth at once makes packed B
 * a single sequential stream.
 */
const depthOf = (M: number, K: number) => (M <= MR ? K : KC);

/**
 * A few small calls of the GEMM's hot functions on zeros at the bottom of a
 * new memory (before anything lives there). V8 runs a wasm function's first
 * calls in its baseline compiler and optimizes it in the background once it
 * has run a while; a call already running stays baseline (3-4x slower), so
 * the first large product (a training step's vocabulary-sized one) would run
 * slow throughout. These calls start that optimization while the caller
 * still compiles its kernels.
 */
function warmUp(fns: GemmExports): void {
  const [M, K, N] = [32, 64, 32];
  const [a, b, ap, bp, c] = [0, 8192, 16384, 24576, 32768];
  for (let r = 0; r < 3; r++) {
    fns.pack_a(a, K, 1, M, K, ap); // rows of A: k adjacent
    fns.pack_b(b, 1, N, N, K, bp); // rows of B: lines adjacent
    fns.gemm(ap, bp, c, M, K, N, 0, N, KC);
    fns.gemm(ap, bp, c, 1, K, N, 0, N, K); // one row
    fns.gemv_rows(a, b, c, K, N, N);
    fns.gemv_cols(a, b, c, K, N, K);
  }
}

export class Gemm {
  /** Also the memory of the webasm backend's generated kernels (runtime/wasm-kernel.ts). */
  readonly memory = new WebAssembly.Memory({
    initial: 1,
    maximum: MAX_PAGES,
    shared: true,
  });
  private readonly fns: GemmExports;
  private readonly packed = new WeakMap<Float32Array, Map<string, Packed>>();
  private residentTop = 0;
  private epoch = 0;
  /** Executors' arenas (see reserve) sit below this; a new epoch restarts the packs here. */
  private pinnedTop = 0;
  private readonly arenas = new Map<number, { bytes: number; free: boolean }>();
  /** Every SharedArrayBuffer `memory.buffer` has returned (it is a new object after each grow). */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private readonly helper?: { worker: Worker; ctl: Int32Array; port: MessagePort };
  /** Kernel modules registered (slots), and whether the helper thread has loaded them all. */
  private kernelSlots = 0;
  private helperLoaded = true;

  /** `threads`: 1 runs everything here; 2 adds one helper thread (the machine's cores by default). */
  /** `fma`: the micro-kernel's fused multiply-add (relaxed SIMD), where this Node.js has it. */
  constructor(
    readonly threads = defaultThreads(),
    fma = relaxedSimd(),
  ) {
    const module = new WebAssembly.Module(gemmModule(engineMemory, fma));
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    this.fns = instance.exports as unknown as GemmExports;
    warmUp(this.fns);
    if (threads > 1) {
      const control = new SharedArrayBuffer(4 * (NEXT + 1));
      const { port1, port2 } = new MessageChannel();
      const ctl = new Int32Array(control);
      const worker = new Worker(workerSource, {
        eval: true,
        // Plain JavaScript: no loaders (a TypeScript loader's startup in the
        // thread can wait on this thread, which may be blocked in Atomics.wait).
        execArgv: [],
        workerData: { module, memory: this.memory, control, port: port2 },
        transferList: [port2],
      });
      worker.unref(); // never keeps the process alive
      port1.unref();
      // A thread that cannot start leaves the ready flag unset: the work stays here.
      worker.on("error", () => {});
      // A thread that ended takes no more work (a hand-off would wait forever).
      worker.on("exit", () => Atomics.store(ctl, READY, 0));
      this.helper = { worker, ctl, port: port1 };
    }
  }

  /** Stops the helper thread. */
  close(): void {
    if (!this.helper) return;
    // No more hand-offs: work stays on this thread after closing.
    Atomics.store(this.helper.ctl, READY, 0);
    Atomics.store(this.helper.ctl, 0, -1);
    Atomics.notify(this.helper.ctl, 0);
  }

  /** Whether work is split with a helper thread now (it starts in the background). */
  parallel(): boolean {
    return this.helper !== undefined && Atomics.load(this.helper.ctl, READY) === 1;
  }

  /** Job `job` with `args` on the helper thread while `mine` runs here; returns when both are done. */
  private handoff(job: number, args: number[], mine: () => void): void {
    const h = this.helper!;
    if (args.length > MAX_ARGS)
      throw new Error(`internal: ${args.length} arguments for the helper`);
    const seq = (Atomics.load(h.ctl, 0) + 1) & 0x3fffffff;
    h.ctl[2] = job;
    h.ctl[3] = args.length;
    args.forEach((v, k) => (h.ctl[4 + k] = v));
    Atomics.store(h.ctl, 0, seq);
    Atomics.notify(h.ctl, 0);
    try {
      mine();
    } finally {
      // Even when this thread's part threw: the helper may still be writing.
      for (;;) {
        // Sleep only while the done number is still the one just read (no lost wake-up).
        const done = Atomics.load(h.ctl, 1);
        if (done === seq) break;
        Atomics.wait(h.ctl, 1, done);
      }
    }
    if (h.ctl[ERROR]) {
      h.ctl[ERROR] = 0;
      throw new Error(`internal: the WebAssembly helper thread failed (job ${job})`);
    }
  }

  /**
   * Runs `name` twice at once: `mine` here and `theirs` on the helper thread
   * (or both here without one), and returns when both are done.
   */
  private both(name: ExportName, mine: number[], theirs: number[]): void {
    const fn = this.fns[name] as (...args: number[]) => void;
    if (!this.parallel()) {
      fn(...mine);
      fn(...theirs);
      return;
    }
    this.handoff(exportIndex[name], theirs, () => fn(...mine));
  }

  /**
   * A module in the kernel calling convention (`run(out, from, to, ...)`, from
   * codegen/wasm) instantiated over this memory here and posted to the helper
   * thread; `imports` are the Math functions it imports as env.Math_<name>.
   * Its slot and run function go to `runKernel`.
   */
  loadKernel(bytes: Uint8Array<ArrayBuffer>, imports: string[] = []): LoadedKernel {
    const module = new WebAssembly.Module(bytes);
    const env: WebAssembly.ModuleImports = { memory: this.memory };
    for (const m of imports)
      env[`Math_${m}`] = (Math as unknown as Record<string, WebAssembly.ImportValue>)[m];
    const run = new WebAssembly.Instance(module, { env }).exports.run as LoadedKernel["run"];
    const slot = this.kernelSlots++;
    if (this.helper) {
      this.helper.port.postMessage({ slot, module, imports });
      this.helperLoaded = false;
    }
    return { slot, run };
  }

  /**
   * Runs a loaded kernel over rows [0, rows): with `split`, in chunks of rows
   * shared with the helper thread. `args` follow (out, from, to).
   */
  runKernel(
    { slot, run }: LoadedKernel,
    out: number,
    rows: number,
    args: number[],
    split: boolean,
  ): void {
    // (A kernel with more arguments than the hand-off carries stays here.)
    if (!split || rows < 2 || args.length + 6 > MAX_ARGS || !this.parallel())
      return run(out, 0, rows, ...args);
    if (!this.helperLoaded) {
      this.handoff(LOAD, [], () => {});
      this.helperLoaded = true;
    }
    this.share(EXPORTS.length + slot, run, 1, 0, rows, Math.max(1, Math.ceil(rows / 16)), [
      out,
      ...args,
    ]);
  }

  /**
   * fn over `chunks`, claimed by this thread and the helper as each finishes
   * its last: `target` names fn for the helper (an export's index, or the
   * exports' count + a kernel's slot).
   */
  private share(target: number, fn: (...args: number[]) => void, ...chunks: Chunks): void {
    const ctl = this.helper!.ctl;
    const [at, start, end, step, rest] = chunks;
    Atomics.store(ctl, NEXT, 0);
    this.handoff(SHARE, [target, at, start, end, step, ...rest], () =>
      claim(ctl, NEXT, fn, ...chunks),
    );
  }

  /**
   * Packs A into 4-row panels or B into 8-column panels (`n` rows or columns);
   * with `split`, the second half of the panels on the helper thread.
   */
  private pack(
    which: "a" | "b",
    src: number,
    op: GemmOperand,
    n: number,
    K: number,
    dst: number,
    split: boolean,
  ) {
    const [name, W] = which === "a" ? (["pack_a", MR] as const) : (["pack_b", NR] as const);
    // A line is a row of A or a column of B; k runs along the other stride.
    const [ls, ks] = which === "a" ? [op.rowStride, op.colStride] : [op.colStride, op.rowStride];
    const h = roundUp(Math.ceil(n / 2), W);
    if (!split || h >= n) return this.fns[name](src, ls, ks, n, K, dst);
    this.both(
      name,
      [src, ls, ks, h, K, dst],
      [src + 4 * h * ls, ls, ks, n - h, K, dst + h * K * 4],
    );
  }

  /**
   * A region of `bytes` that stays an executor's until `release`: its buffers
   * live in this memory between kernels (no copies in and out per kernel).
   * Resident packs above it are dropped (a new epoch) to make room.
   */
  reserve(bytes: number): number {
    bytes = align(Math.max(bytes, 64));
    for (const [offset, a] of this.arenas)
      if (a.free && a.bytes >= bytes && a.bytes <= 2 * bytes) {
        a.free = false;
        return offset;
      }
    const held = [...this.arenas.values()].reduce((n, a) => n + (a.free ? 0 : a.bytes), 0);
    let offset = align(this.residentTop);
    if (held + bytes > ARENA_BYTES || align(this.pinnedTop) + bytes > MAX_BYTES)
      throw new RangeError(
        `buffers of ${(bytes / 2 ** 30).toFixed(2)} GiB do not fit beside the others in WebAssembly memory`,
      );
    if (offset + bytes > MAX_BYTES) {
      // Drop the resident packs to make room above the other arenas.
      this.epoch++;
      this.residentTop = this.pinnedTop;
      offset = align(this.residentTop);
    }
    this.ensure(offset + bytes);
    this.arenas.set(offset, { bytes, free: false });
    this.pinnedTop = this.residentTop = offset + bytes;
    return offset;
  }

  /** Gives an arena back; the topmost free ones return their space to scratch and packs. */
  release(offset: number): void {
    const a = this.arenas.get(offset);
    if (!a) return;
    a.free = true;
    for (;;) {
      const top = [...this.arenas].reduce<[number, { bytes: number; free: boolean }] | undefined>(
        (best, e) => (!best || e[0] > best[0] ? e : best),
        undefined,
      );
      if (!top || !top[1].free) break;
      this.arenas.delete(top[0]);
      this.pinnedTop = [...this.arenas].reduce((end, [o, x]) => Math.max(end, o + x.bytes), 0);
    }
  }

  /**
   * Arrays of these sizes (zeros) in one arena of this memory, for state that
   * kernels read in place across runs (weights and moments, KV caches), and
   * the function that gives the arena back; undefined when they take more
   * than `maxBytes` or do not fit.
   */
  hold(
    sizes: number[],
    maxBytes = Infinity,
  ): { arrays: Float32Array[]; release: () => void } | undefined {
    const total = sizes.reduce((n, k) => n + align(k * 4), 0);
    if (total > maxBytes) return undefined;
    // Memory past its present end was never written: growing it gives zeros.
    const fresh = this.memory.buffer.byteLength;
    let at: number;
    try {
      at = this.reserve(total);
    } catch (e) {
      if (e instanceof RangeError) return undefined;
      throw e;
    }
    const base = at;
    const arrays = sizes.map((k) => {
      // A reused arena holds what its last tenant left (or scratch, packs):
      // zeroed below the old end (gpt2-124M's training state is 1.5 GB).
      const view = this.view(at, k);
      if (at < fresh) view.fill(0, 0, Math.min(k, (fresh - at) / 4));
      at += align(k * 4);
      return view;
    });
    let held = true;
    // Once only: the arena may have a new tenant after that.
    const release = () => {
      if (held) this.release(base);
      held = false;
    };
    return { arrays, release };
  }

  /** A Float32Array over `size` elements of this memory from byte `offset`. */
  view(offset: number, size: number): Float32Array {
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    return new Float32Array(buffer, offset, size);
  }

  /** Whether `a` is a view of this memory (its byteOffset is its address). */
  owns(a: Float32Array): boolean {
    return this.buffers.has(a.buffer);
  }

  /** Bumped each time the resident packs are dropped (their places reused). */
  get epochNow(): number {
    return this.epoch;
  }

  /**
   * The address of a copy of weight `w` kept among the resident packs (made
   * again when its version moves), for kernels that read a weight whole (a
   * position table's gather) instead of copying it in per call; undefined
   * when it does not fit above the arenas. Valid until the packs are dropped
   * (see epochNow).
   */
  residentCopy(w: Float32Array): number | undefined {
    const bytes = w.length * 4;
    if (align(this.residentTop) + bytes > MAX_BYTES) return undefined;
    const op = { buffer: 0, offsets: [0], rowStride: 0, colStride: 0, resident: true };
    const { entry, current } = this.place([{ op, data: w, key: "copy", bytes }])[0]!;
    if (!current) {
      this.ensure(entry.offset + bytes);
      new Float32Array(this.memory.buffer).set(w, entry.offset / 4);
      entry.version = weightVersion(w);
    }
    return entry.offset;
  }

  /**
   * Byte offset of `bytes` of scratch space above the resident packs, valid
   * until the next call into the engine.
   */
  scratch(bytes: number): number {
    const at = align(this.residentTop);
    if (at + bytes > MAX_BYTES) {
      this.epoch++;
      this.residentTop = this.pinnedTop;
      if (align(this.pinnedTop) + bytes > MAX_BYTES)
        throw new RangeError(
          `a kernel needs ${(bytes / 2 ** 30).toFixed(1)} GiB of WebAssembly memory (at most 4)`,
        );
      return this.scratch(bytes);
    }
    this.ensure(at + bytes);
    return at;
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / PAGE));
  }

  /**
   * Where each resident operand's pack lives (allocated above the others when
   * new or from an older epoch), and whether it is current; undefined for
   * operands packed per call.
   */
  private place(
    operands: { op: GemmOperand; data: Float32Array; key: string; bytes: number }[],
  ): ({ entry: Packed; current: boolean } | undefined)[] {
    return operands.map(({ op, data, key, bytes }) => {
      if (!op.resident) return undefined;
      let views = this.packed.get(data);
      if (!views) this.packed.set(data, (views = new Map()));
      let entry = views.get(key);
      if (entry && entry.epoch === this.epoch)
        return { entry, current: entry.version === weightVersion(data) };
      entry = { offset: align(this.residentTop), version: -1, epoch: this.epoch };
      this.residentTop = entry.offset + bytes;
      views.set(key, entry);
      return { entry, current: false };
    });
  }

  /**
   * Byte addresses of `arrays` in this memory: where they lie when they are
   * views of it, else copies in scratch space; then the address of `extra`
   * more bytes of scratch. Valid until the next call into the engine.
   */
  stage(arrays: Float32Array[], extra = 0): number[] {
    // Scratch offsets of the arrays to copy in, each once (the same array
    // twice, a matrix times itself, is one copy).
    const copies = new Map<Float32Array, number>();
    let top = 0;
    for (const a of arrays)
      if (!this.owns(a) && !copies.has(a)) {
        copies.set(a, top);
        top = align(top + a.length * 4);
      }
    // Nothing to place: no scratch (decoding's kernels mostly read arenas).
    const base = top + extra > 0 ? this.scratch(top + extra) : 0;
    if (top > 0) {
      const mem = new Float32Array(this.memory.buffer);
      for (const [a, at] of copies) mem.set(a, (base + at) / 4);
    }
    const addrs = arrays.map((a) => {
      const at = copies.get(a);
      return at === undefined ? a.byteOffset : base + at;
    });
    addrs.push(base + top);
    return addrs;
  }

  /** run for one row of A and a B with contiguous rows or columns, unpacked (see codegen/wasm/gemv.ts). */
  private gemv(plan: GemmPlan, a: Float32Array, b: Float32Array, out?: Float32Array) {
    const { N, K, batch } = plan;
    const rows = plan.b.colStride === 1;
    const ldb = rows ? plan.b.rowStride : plan.b.colStride;
    const ownC = out !== undefined && this.owns(out);
    const [pa, pb, free] = this.stage([a, b], ownC ? 0 : batch * N * 4);
    const pc = ownC ? out.byteOffset : free;
    const fn = rows ? this.fns.gemv_rows : this.fns.gemv_cols;
    for (let m = 0; m < batch; m++)
      fn(pa + 4 * plan.a.offsets[m], pb + 4 * plan.b.offsets[m], pc + 4 * m * N, K, N, ldb);
    if (ownC) return out;
    const c = new Float32Array(this.memory.buffer, pc, batch * N);
    return out ? (out.set(c), out) : c.slice();
  }

  /**
   * run for a batch of small products, neither operand a weight: the
   * threads claim whole items (see gemm_items in codegen/wasm/gemm.ts), each
   * packed into its own scratch; C straight into `out` when it is a view of
   * this memory with rows a multiple of 8 floats, else padded and copied out.
   */
  private runItems(plan: GemmPlan, a: Float32Array, b: Float32Array, out?: Float32Array) {
    const { M, N, K, batch } = plan;
    const [Mp, Np] = [roundUp(M, MR), roundUp(N, NR)];
    out ??= new Float32Array(batch * M * N);
    const direct = this.owns(out) && N % NR === 0;
    const [apBytes, bpBytes] = [align(Mp * K * 4), align(Np * K * 4)];
    const itemBytes = apBytes + bpBytes + (direct ? 0 : align(Mp * Np * 4));
    const tableBytes = align(batch * ITEM_BYTES);
    const [pa, pb, table] = this.stage([a, b], tableBytes + batch * itemBytes);
    const entries = new Int32Array(this.memory.buffer, table, (batch * ITEM_BYTES) / 4);
    const cOf = (m: number) =>
      direct
        ? out.byteOffset + m * M * N * 4
        : table + tableBytes + m * itemBytes + apBytes + bpBytes;
    for (let m = 0; m < batch; m++) {
      const ap = table + tableBytes + m * itemBytes;
      entries.set(
        [pa + 4 * plan.a.offsets[m], pb + 4 * plan.b.offsets[m], ap, ap + apBytes, cOf(m)],
        (m * ITEM_BYTES) / 4,
      );
    }
    const { a: A, b: B } = plan;
    this.share(exportIndex.gemm_items, this.fns.gemm_items, 0, 0, batch, 1, [
      ...[table, M, K, N, depthOf(M, K)],
      ...[A.rowStride, A.colStride, B.colStride, B.rowStride, direct ? N : Np],
    ]);
    if (direct) return out;
    const mem = new Float32Array(this.memory.buffer);
    for (let m = 0; m < batch; m++)
      for (let i = 0; i < M; i++) {
        const c = cOf(m) / 4 + i * Np;
        out.set(mem.subarray(c, c + N), (m * M + i) * N);
      }
    return out;
  }

  /**
   * The product of every matrix pair in the batch, row-major [batch, M, N],
   * written into `out` when given. Operands that are views of this memory
   * (executors' arenas) are packed where they are, not copied in.
   */
  run(plan: GemmPlan, a: Float32Array, b: Float32Array, out?: Float32Array): Float32Array {
    const { M, N, K, batch } = plan;
    if (K === 0) return out ? out.fill(0) : new Float32Array(batch * M * N);
    // One row times a matrix that is no weight (decoding's attention): read where it lies.
    if (
      M === 1 &&
      !plan.b.resident &&
      plan.a.colStride === 1 &&
      (plan.b.colStride === 1 || plan.b.rowStride === 1)
    )
      return this.gemv(plan, a, b, out);
    if (
      batch > 1 &&
      !plan.a.resident &&
      !plan.b.resident &&
      M * N * K < ITEM_MACS &&
      batch * M * N * K >= PARALLEL_MACS &&
      this.parallel()
    )
      return this.runItems(plan, a, b, out);
    const ownA = this.owns(a);
    const ownB = this.owns(b);
    const Mp = roundUp(M, MR);
    const Np = roundUp(N, NR);
    // A weight kept narrow (runtime/quantize.ts) is packed from its int8 or
    // float16 form when B's columns are its output channels.
    const qb = plan.b.resident ? narrowB(plan, b) : undefined;
    const qBytes = qb?.dtype === "int8" ? align(Np * evenK(K)) + Np * 4 : Np * K * 2;
    // A pack depends on its own matrix only (not on the other operand's size):
    // the prompt's and the decode step's products share a weight's pack.
    const operands = [
      {
        op: plan.a,
        data: a,
        key: `a:${plan.a.offsets[0]}:${plan.a.rowStride}:${plan.a.colStride}:${M}:${K}`,
        bytes: Mp * K * 4,
      },
      {
        op: plan.b,
        data: b,
        key: `b:${plan.b.offsets[0]}:${plan.b.rowStride}:${plan.b.colStride}:${K}:${N}${qb ? `:${qb.dtype}` : ""}`,
        bytes: qb ? qBytes : Np * K * 4,
      },
    ];
    // C straight into `out` (rows N floats apart) when it is a view of this
    // memory: the 8-column panels that fit, and a last partial panel (N not a
    // multiple of 8) through a small padded tile. Else a padded C, copied out.
    const direct = out !== undefined && this.owns(out) && N >= NR;
    const N8 = direct ? N - (N % NR) : 0;
    const cBytes = direct ? (N8 < N ? Mp * NR * 4 : 0) : Mp * Np * 4;
    const scratch = () => {
      // [A | B | packed A | packed B | C] above the resident packs.
      let top = align(this.residentTop);
      const offA = ownA ? a.byteOffset : top;
      if (!ownA) top = align(top + a.length * 4);
      const offB = a === b ? offA : ownB ? b.byteOffset : top;
      if (a !== b && !ownB) top = align(top + b.length * 4);
      const offAp = top;
      const offBp = align(offAp + operands[0].bytes);
      const offC = align(offBp + operands[1].bytes);
      return { offA, offB, offAp, offBp, offC, end: offC + cBytes };
    };
    let slots = this.place(operands);
    let at = scratch();
    if (at.end > MAX_BYTES) {
      // Forget every resident pack and start again above the arenas.
      this.epoch++;
      this.residentTop = this.pinnedTop;
      slots = this.place(operands);
      at = scratch();
      if (at.end > MAX_BYTES)
        throw new RangeError(
          `matmul ${M}x${K} @ ${K}x${N} needs ${(at.end / 2 ** 30).toFixed(1)} GiB of WebAssembly memory (at most 4)`,
        );
    }
    this.ensure(at.end);
    const mem = new Float32Array(this.memory.buffer);
    const [sa, sb] = slots;
    const packA = !sa?.current;
    const packB = !sb?.current;
    if (packA && !ownA) mem.set(a, at.offA / 4);
    if (packB && !ownB && !qb && !(a === b && packA)) mem.set(b, at.offB / 4);

    out ??= new Float32Array(batch * M * N);
    const ap = sa ? sa.entry.offset : at.offAp;
    const bp = sb ? sb.entry.offset : at.offBp;
    const split = M * N * K >= PARALLEL_MACS;
    const depth = depthOf(M, K);
    // Column chunks for the two threads: 16 for one row panel (decoding: B
    // streams, nothing is reused); else chunks at least NC wide (a chunk runs
    // the blocked loops over all of A), and 2 (one each) where every chunk
    // would read a large packed A again. An even count: with an odd one
    // (3 for N = 768) one thread runs the last chunk while the other waits.
    const chunks =
      operands[0].bytes > 8 << 20
        ? 2
        : M <= MR
          ? 16
          : roundUp(Math.max(2, Math.min(16, Math.floor(Np / NC))), 2);
    const scales = qb?.dtype === "int8" ? [bp + align(Np * evenK(K))] : [];
    // One contiguous row times int8 weights: in integers, the row rounded to
    // int16 where the pack of A would go (see codegen/wasm/gemv-int8.ts).
    const intRow = M === 1 && qb?.dtype === "int8" && plan.a.colStride === 1 && !sa;
    /**
     * Columns [j0, j1) of C at byte address c, rows ldc floats apart, by
     * `kernel`, shared with the helper.
     */
    const product = (kernel: ExportName, c: number, ldc: number, j0: number, j1: number) => {
      const fn = this.fns[kernel] as (...args: number[]) => void;
      // Its arguments, the column range going in at `at` (as claim puts it).
      const [at, rest] =
        kernel === "gemv_int8"
          ? [4, [ap, bp, c, K, ...scales]]
          : [6, [ap, bp, c, M, K, ldc, depth, ...scales]];
      // Chunks of whole 8-column panels (one row: of PANELS panels, run at once).
      const step = roundUp(Math.ceil((j1 - j0) / chunks), M === 1 ? NR * PANELS : NR);
      if (split && step < j1 - j0 && this.parallel())
        this.share(exportIndex[kernel], fn, at, j0, j1, step, rest);
      else fn(...rest.slice(0, at), j0, j1, ...rest.slice(at));
    };
    for (let m = 0; m < batch; m++) {
      const src = at.offA + 4 * plan.a.offsets[m];
      let kernel: ExportName = qb ? `gemm_${qb.dtype}` : "gemm";
      if (intRow) {
        this.fns.quantize_row(src, K, ap);
        // A row with NaN or infinity has no int16 form: multiplied in floats.
        if (Number.isFinite(mem[ap / 4])) kernel = "gemv_int8";
        else this.pack("a", src, plan.a, M, K, ap, false);
      } else if (packA && (!sa || m === 0))
        // A resident operand is the same matrix for the whole batch: packed once.
        this.pack("a", src, plan.a, M, K, ap, split);
      if (packB && qb && m === 0)
        packNarrow(qb, new Uint8Array(this.memory.buffer), bp, plan.b, K, N);
      else if (packB && (!sb || m === 0))
        this.pack("b", at.offB + 4 * plan.b.offsets[m], plan.b, N, K, bp, split);
      const c = at.offC / 4;
      if (direct) {
        const base = out.byteOffset + m * M * N * 4;
        product(kernel, base, N, 0, N8);
        if (N8 === N) continue;
        // The last panel: a tile 8 columns wide (its column j at offC + (j - N8) * 4).
        product(kernel, at.offC - N8 * 4, NR, N8, Np);
        for (let i = 0; i < M; i++)
          out.set(mem.subarray(c + i * NR, c + i * NR + N - N8), (m * M + i) * N + N8);
        continue;
      }
      product(kernel, at.offC, Np, 0, Np);
      if (Np === N) out.set(mem.subarray(c, c + M * N), m * M * N);
      else
        for (let i = 0; i < M; i++)
          out.set(mem.subarray(c + i * Np, c + i * Np + N), (m * M + i) * N);
    }
    if (sa) sa.entry.version = weightVersion(a);
    if (sb) sb.entry.version = weightVersion(b);
    return out;
  }
}

/**
 * The narrow form of weight `b` when the plan's B is the whole weight, [K, N]
 * row-major or the transpose of an [N, K] one (a tied LM head), and, for
 * int8, B's columns are its output channels (the scales' axis); else
 * undefined (packed as float32 from the dequantized values: the same numbers).
 */
function narrowB(plan: GemmPlan, b: Float32Array): QuantizedWeight | undefined {
  const q = quantizedForm(b);
  if (!q || plan.b.offsets[0] !== 0) return undefined;
  const [R, C] = q.shape;
  const { rowStride: rs, colStride: cs } = plan.b;
  const plain = R === plan.K && C === plan.N && rs === C && cs === 1;
  const transposed = R === plan.N && C === plan.K && rs === 1 && cs === C;
  if (q.dtype === "f16") return plain || transposed ? q : undefined;
  return (q.axis === 1 ? plain : transposed) ? q : undefined;
}

/**
 * Packs a narrow weight as B ([K, N], columns its channels) into 8-column
 * panels, k-major, at byte `dst` of `bytes`: float16 bits (2 bytes each), or
 * int8 in pairs of k (see PackedB in codegen/wasm/gemm.ts: byte 2c + h of
 * a pair's 16 is column c of k 2i + h; an odd K's last pair
 * ends in zeros) with the Np scales, times 2^-24, after the panels from the
 * next 64-byte boundary. Done once per weight, in JavaScript.
 */
function packNarrow(
  q: QuantizedWeight,
  bytes: Uint8Array,
  dst: number,
  b: GemmPlan["b"],
  K: number,
  N: number,
) {
  const Np = roundUp(N, NR);
  // Element (k, n) of B is stored at k * ks + n * ns of the weight's array.
  const [ks, ns] = [b.rowStride, b.colStride];
  const at = (src: Int8Array | Uint16Array, k: number, n: number) =>
    k < K && n < N ? src[k * ks + n * ns] : 0;
  if (q.dtype === "f16") {
    const out = new Uint16Array(bytes.buffer, dst, Np * K);
    for (let p = 0; p < Np; p += NR)
      for (let w = 0; w < NR; w++)
        for (let k = 0, o = p * K + w; k < K; k++, o += NR) out[o] = at(q.bits, k, p + w);
    return;
  }
  const Ke = evenK(K);
  const out = new Int8Array(bytes.buffer, dst, Np * Ke);
  for (let p = 0, o = 0; p < Np; p += NR)
    for (let k = 0; k < Ke; k += 2)
      for (let c = 0; c < NR; c++) {
        out[o++] = at(q.q, k, p + c);
        out[o++] = at(q.q, k + 1, p + c);
      }
  const scales = new Float32Array(bytes.buffer, dst + align(Np * Ke), Np);
  scales.fill(0);
  for (let n = 0; n < N; n++) scales[n] = q.scales[n] * 2 ** -24;
}

/**
 * Threads of the engine: set by `engineThreads`, else GPTC_GEMM_THREADS=1 keeps
 * it on one thread; by default two where two cores exist (it has one helper).
 */
let wantedThreads: number | undefined;
function defaultThreads(): number {
  if (wantedThreads !== undefined) return wantedThreads;
  const env = Number(process.env.GPTC_GEMM_THREADS);
  return Number.isInteger(env) && env >= 1 ? Math.min(env, 2) : Math.min(2, availableParallelism());
}

let shared: Gemm | undefined;

/**
 * Chooses the engine's thread count (1 or 2) before it starts. The engine is
 * one per process (one WebAssembly memory shared by every executor), so once
 * it runs its count is fixed: asking for another then returns false.
 */
export function engineThreads(threads: number): boolean {
  const n = Math.max(1, Math.min(2, Math.floor(threads)));
  if (shared) return shared.threads === n;
  wantedThreads = n;
  return true;
}

/** The process's GEMM engine (one WebAssembly memory for every executor). */
export function gemmEngine(): Gemm {
  shared ??= new Gemm();
  return shared;
}
