// Runs a fused schedule on a backend: one gpu.js kernel per fused kernel, built
// from generated source for concrete sizes, called in order. On GL backends the
// intermediates stay on the device as textures (pipeline mode); only the
// outputs asked for are read back.
import { GptcError } from "../errors.js";
import { gemmPlan, type GemmPlan } from "../codegen/gemm-plan.js";
import { inPlaceWrite, writeRows, type InPlaceWrite } from "../codegen/cache-write.js";
import { gatherRows, hostGathers, type HostGather } from "../codegen/host-gather.js";
import { hostMasks, type HostMask } from "../codegen/host-random.js";
import { buildKernel } from "../codegen/kernel-ir/build.js";
import type { Buffer, KernelIR } from "../codegen/kernel-ir/types.js";
import { printJs, type KernelJs } from "../codegen/kernel-js.js";
import {
  layoutOf,
  pack,
  texels as texelsOf,
  unpack,
  type Layout,
} from "../codegen/device-layout.js";
import type { Kernel, Schedule } from "../ir/passes/fuse.js";
import { nodeFlops } from "../ir/cost.js";
import { shapeEval } from "../ir/dims.js";
import { size } from "../ir/ops/tensor.js";
import { gpujs, onGpu, type Backend } from "./backend.js";
import { planMemory } from "../ir/passes/memory.js";
import { align, gemmEngine, type Gemm } from "./gemm.js";
import { fillMask } from "./dropout-masks.js";
import { WasmKernel } from "./wasm-kernel.js";

/** A kernel: its IR, and what runs it: gpu.js (`fn`, from `js`), or on webasm gptc's own WebAssembly (`wasm`). */
export interface KernelFn {
  ir: KernelIR;
  /** Node ids of the graph values it reads, in argument order (index tables follow them). */
  inputs: number[];
  /** The index tables it reads after them (scatter kernels). */
  tables: Buffer[];
  js?: KernelJs;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  fn?: any;
  wasm?: WasmKernel;
  /** Dropout masks the host fills before each call (codegen/host-random). */
  masks?: HostMask[];
}

/** The kernel (the whole fused kernel, or for a GEMM its epilogue if any) and how it runs. */
export interface CompiledKernel extends Partial<KernelFn> {
  /** Matmul kernels on webasm: the product runs on gptc's WebAssembly GEMM. */
  gemm?: GemmPlan;
  /** Rows gathered on the host before the kernel runs (see codegen/host-gather). */
  gathers?: HostGather[];
  /** Kernels writing GEMM operands that are no view of a buffer. */
  prologue?: KernelFn[];
  /** A cache write that can update a donated cache in place (codegen/cache-write). */
  inPlace?: { write: InPlaceWrite; fresh?: KernelFn };
}

function kernelFlops(s: Schedule, nodes: number[], bindings: Record<string, number>): number {
  return nodes.reduce((a, id) => a + nodeFlops(s.graph, id, bindings), 0);
}

/** Last kernel index reading each buffer, so dead intermediates are dropped early. */
function lastUses(s: Schedule): Map<number, number> {
  const last = new Map<number, number>();
  for (const k of s.kernels) for (const i of k.inputs) last.set(i, k.index);
  return last;
}

/** Collects time per kernel (and readbacks) when `--profile` asks for it. */
export interface Profiler {
  kernel(family: KernelFamily, ms: number, flops: number): void;
  copy(ms: number): void;
}

/** What a kernel is, for profiles: its kind, and for matmuls the problem shape. */
export interface KernelFamily {
  /** The kernel's name (e.g. "k96_detach_sub_exp"). */
  name: string;
  /** Its kind from fusion: elementwise, reduce, matmul, scatter, ... */
  kind: string;
  /** What runs it: "wasm" (gptc's kernels), "gpu.js", "GEMM" (+ its epilogue's). */
  runs: string;
  /** e.g. "512x256 @ 256x768" (batch folded into M). */
  matmul?: string;
}

/**
 * A kernel's output left on the device (a gpu.js texture on the GL backends):
 * the holder deletes it when done; the kernel then writes its next output
 * elsewhere (it was built immutable).
 */
export interface DeviceTensor {
  /** The texture's own dims (gpu.js `output`): its element count, tiles included. */
  output: number[];
  delete(): void;
}

/** A kernel produced NaN or infinity (`--check-numerics`). */
export class NumericsError extends GptcError {
  constructor(message: string) {
    super("numerics", message);
  }
}

export class Executor {
  readonly kernels: CompiledKernel[];
  profiler?: Profiler;
  /** Scan every kernel's output for NaN/inf and stop at the first (slow: reads everything back). */
  checkNumerics = false;
  /** FLOPs of each kernel at these sizes (for achieved GFLOP/s). */
  readonly flops: number[];
  readonly families: KernelFamily[];
  /** Element count of each kernel's output. */
  private readonly sizes: number[];
  private readonly last: Map<number, number>;
  private readonly onDevice: boolean;
  private gemmEngine?: Gemm;

  constructor(
    readonly schedule: Schedule,
    readonly bindings: Record<string, number>,
    readonly backend: Backend,
    /**
     * Graph outputs that may stay on the device (GL backends: decoding's KV
     * caches): their kernels return a texture of their own per run (gpu.js
     * immutable), which `run` hands out instead of reading it back.
     */
    readonly resident: ReadonlySet<number> = new Set(),
  ) {
    this.onDevice = onGpu(backend);
    // webasm vectorizes along thread.x: give it the last axis (a rows grid).
    const flatGrid = backend.name === "webasm" ? "rows" : "flat";
    const g = schedule.graph;
    // GPU backends: tensors past one texture's exact range are tiled (device-layout.ts);
    // checkCapacity has refused, before this, any that cannot be.
    const limits = this.onDevice ? backend.limits : undefined;
    this.layoutOf = (id: number): Layout => {
      const shape = shapeEval(g.nodes[id].type.shape, bindings);
      const l = limits ? layoutOf(shape, limits) : undefined;
      if (l?.kind === "refused")
        throw new Error(`internal: %${id} cannot be laid out: ${l.reason}`);
      return l ?? { kind: "flat", size: size(shape) };
    };
    const elements = (id: number) => size(shapeEval(g.nodes[id].type.shape, bindings));
    // Every backend allocates one element for an empty tensor.
    const buffer = (id: number) => Math.max(1, elements(id));
    const build = (fused: Kernel): KernelFn => {
      const host = hostMasks(g, fused, bindings);
      const kernel = host?.kernel ?? fused;
      const masks = host?.masks;
      const grid = this.layoutOf(kernel.output).kind === "tiled" ? "rows" : flatGrid;
      const ir = buildKernel(g, kernel, bindings, grid);
      // What each call passes, found once here rather than on every run.
      const inputs = ir.buffers.filter((b) => b.kind === "input").map((b) => b.node);
      const tables = ir.buffers.filter((b) => b.kind !== "input");
      if (backend.wasmKernels) {
        this.gemmEngine ??= gemmEngine();
        // Weights a kernel reads (a position table's gather) are kept in the
        // engine's memory between calls, not copied in per call.
        const weights = inputs.map((id) => g.nodes[id].op === "weight");
        return { ir, inputs, tables, masks, wasm: new WasmKernel(ir, this.gemmEngine, weights) };
      }
      const js = printJs(ir, { rowReads: backend.name === "webasm", limits });
      const fn = backend.gpu.createKernel(js.source, {
        output: js.dims,
        pipeline: this.onDevice,
        immutable: this.onDevice && resident.has(kernel.output),
        tactic: "precision",
        precision: "single",
        asyncMode: backend.async,
      });
      return { ir, inputs, tables, masks, js, fn };
    };
    this.kernels = schedule.kernels.map((k) => {
      const gemm = backend.gemm ? gemmPlan(schedule.graph, k, bindings) : undefined;
      if (!gemm) {
        const host = hostGathers(schedule.graph, k, bindings);
        const compiled: CompiledKernel = host
          ? { ...build(host.kernel), gathers: host.gathers }
          : build(k);
        // Caches in host memory can be written in place when a run donates them.
        const write = this.onDevice || host ? undefined : inPlaceWrite(g, k, bindings);
        if (write) compiled.inPlace = { write, fresh: write.kernel && build(write.kernel) };
        return compiled;
      }
      this.gemmEngine ??= gemmEngine();
      const prologue = gemm.prologue.map(build);
      return gemm.epilogue ? { gemm, prologue, ...build(gemm.epilogue) } : { gemm, prologue };
    });
    this.last = lastUses(schedule);
    this.outputs = new Set(schedule.graph.outputs.map((o) => o.id));
    for (const n of g.nodes)
      if (n.op === "input" || n.op === "weight") this.feedSizes.set(n.id, elements(n.id));
    this.sizes = schedule.kernels.map((k) => buffer(k.output));
    this.flops = schedule.kernels.map((k) => kernelFlops(schedule, k.nodes, bindings));
    this.families = schedule.kernels.map((k) => {
      const c = this.kernels[k.index];
      const epilogue = c.wasm ? "wasm" : c.fn ? "gpu.js" : undefined;
      const runs = c.gemm ? `GEMM${epilogue ? ` + ${epilogue}` : ""}` : (epilogue ?? "host");
      const fam: KernelFamily = { name: k.name, kind: k.kind, runs };
      if (k.kind === "matmul" && k.anchor !== undefined) {
        const g = schedule.graph;
        const a = shapeEval(g.nodes[g.nodes[k.anchor].inputs[0]].type.shape, bindings);
        const o = shapeEval(g.nodes[k.anchor].type.shape, bindings);
        const M = o.slice(0, -1).reduce((p, q) => p * q, 1);
        const K = a[a.length - 1];
        fam.matmul = `${M}x${K} @ ${K}x${o[o.length - 1]}`;
      }
      return fam;
    });
    if (backend.wasmKernels && this.gemmEngine) this.placeBuffers();
  }

  /**
   * Runs every kernel. `feeds` holds the inputs and weights by node id; returns
   * the buffers of the requested nodes (graph outputs by default) as Float32Arrays.
   * With `views`, requested graph outputs that live in the engine's memory
   * (webasm) are returned as views of it, valid until this executor runs
   * again, instead of copies. `into` gives graph outputs a place of their own
   * in the engine's memory (by node id, e.g. decoding's next KV caches): their
   * kernels write there instead of the arena, and the result is that array.
   * It must not be a buffer this run reads. `held`: inputs already on the
   * device (a previous run's `keep`), by node id, in place of feeds. `keep`:
   * where given, the `resident` outputs are put there as device tensors, not
   * read back (the caller deletes them); otherwise they are read back.
   * `donated`: inputs whose arrays this run may overwrite (decoding's caches
   * off the GPU): a cache write updates such a cache in place, and its
   * output is that same array.
   */
  async run(
    feeds: Map<number, Float32Array>,
    want?: number[],
    {
      views = false,
      into,
      held,
      keep,
      donated,
    }: {
      views?: boolean;
      into?: Map<number, Float32Array>;
      held?: Map<number, DeviceTensor>;
      keep?: Map<number, DeviceTensor>;
      donated?: ReadonlySet<number>;
    } = {},
  ): Promise<Map<number, Float32Array>> {
    const wanted = new Set(want ?? this.schedule.graph.outputs.map((o) => o.id));
    for (const [id, v] of feeds) {
      // Kernels read what the shape says; a shorter buffer would be read past its end.
      const size = this.feedSizes.get(id) ?? 0;
      if (v.length < size) {
        const n = this.schedule.graph.nodes[id];
        throw new RangeError(
          `${n.op} '${n.attrs.name ?? `%${id}`}' has ${v.length} values; its shape needs ${size}`,
        );
      }
    }
    for (const [id, t] of held ?? []) {
      const l = this.layoutOf(id);
      const need = l.kind === "flat" ? l.size : texelsOf(l);
      if (t.output.reduce((a, b) => a * b, 1) < need)
        throw new RangeError(
          `device tensor for %${id} has dims ${t.output}; its layout needs ${need}`,
        );
    }
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const live = new Map<number, any>(feeds);
    for (const [id, t] of held ?? []) live.set(id, t);
    // Resident outputs read back: their textures are deleted once the run is
    // over, or (a run that threw) when the next starts or the executor goes.
    for (const t of this.unfreed.splice(0)) t.delete();
    const done = this.unfreed;
    // GPU backends: weights as the textures the backend keeps (uploaded once, not per call).
    const kept = this.onDevice ? this.backend.weights : undefined;
    if (kept)
      for (const [id, v] of feeds)
        if (this.schedule.graph.nodes[id].op === "weight")
          live.set(id, await kept.texture(v, this.layoutOf(id)));
    const result = new Map<number, Float32Array>();
    const tables = new Map<string, ReturnType<typeof indexTables>>();
    // Feeds a kernel reads as tiled textures, packed once per run.
    const packed = new Map<number, Float32Array>();
    const indexTable = (b: Buffer) => {
      // Built once per run and ids buffer: a scatter kernel takes both tables.
      const key = `${b.node}:${b.rows}`;
      let t = tables.get(key);
      if (!t) tables.set(key, (t = indexTables(feeds.get(b.node)!, b.rows!)));
      return t[b.kind as "order" | "offsets"];
    };
    const take = (id: number, name: string) => {
      const v = live.get(id);
      if (v === undefined) throw new Error(`internal: buffer %${id} missing for kernel ${name}`);
      return v;
    };
    /** The current kernel's `out` is a new array of this run's own (no copy needed to return it). */
    let fresh = false;
    const call = async (k: KernelFn, into?: Float32Array) => {
      if (!k.masks) return callKernel(k, into);
      // Masks live only while their kernel runs: a later kernel recomputes its own.
      for (const m of k.masks) live.set(m.node, fillMask(take(m.key, k.ir.name), m));
      try {
        return await callKernel(k, into);
      } finally {
        for (const m of k.masks) live.delete(m.node);
      }
    };
    const callKernel = async (
      { ir, inputs, tables, js, fn, wasm }: KernelFn,
      into?: Float32Array,
    ) => {
      fresh = wasm !== undefined && !into;
      if (wasm) {
        const args: Float32Array[] = [];
        for (const id of inputs) {
          const v = take(id, ir.name);
          args.push(isArray(v) ? v : await toArray(v, -1));
        }
        for (const b of tables) args.push(indexTable(b));
        return wasm.call(args, into);
      }
      const args = inputs.map((id, k) => {
        const v = take(id, ir.name);
        const dims = js!.inputDims[k];
        // Textures (kernel outputs on the device) carry their own dims.
        if (!dims || !(v instanceof Float32Array)) return v;
        if (!this.onDevice) return gpujs().input(v, dims);
        let p = packed.get(id);
        if (!p) packed.set(id, (p = pack(this.layoutOf(id), v)));
        return gpujs().input(p, dims);
      });
      for (const b of tables) args.push(indexTable(b));
      let out = fn(...args);
      if (out && typeof out.then === "function") out = await out;
      return js!.dims.length === 2 ? flatten(out, js!.dims[0] * js!.dims[1]) : out;
    };
    for (let index = 0; index < this.kernels.length; index++) {
      const compiled = this.kernels[index];
      const { ir, fn, wasm, gemm, prologue, gathers } = compiled;
      const kernel = this.schedule.kernels[index];
      const started = this.profiler ? performance.now() : 0;
      // Where this kernel's output lives in the engine memory (webasm), if
      // planned: the caller's place for it (`into`) where it gives one.
      const own = this.targets[index] && into?.get(kernel.output);
      const target = own && this.gemmEngine!.owns(own) ? own : this.targets[index];
      fresh = false;
      let out;
      const inPlace = compiled.inPlace && donated?.has(compiled.inPlace.write.past);
      if (inPlace) {
        // Only the fresh rows are computed, then copied into the donated cache.
        const { write: w, fresh: rowsKernel } = compiled.inPlace!;
        const rows = rowsKernel
          ? await call(rowsKernel)
          : await toArray(take(w.fresh, kernel.name), -1);
        out = feeds.get(w.past)!;
        writeRows(out, rows, feeds.get(w.len)![0], w);
        fresh = true;
      } else if (gemm) {
        // Operands written out contiguously live only for this product.
        for (const p of prologue!) live.set(p.ir.output, await call(p));
        const [va, vb] = [take(gemm.a.buffer, kernel.name), take(gemm.b.buffer, kernel.name)];
        const a = isArray(va) ? va : await toArray(va, -1);
        const b = isArray(vb) ? vb : await toArray(vb, -1);
        // The product goes to the kernel's output, or (an epilogue follows) to
        // its planned place in the arena, where the epilogue reads it.
        const into = ir ? this.products[index] : target;
        out = this.gemmEngine!.run(gemm, a, b, into);
        fresh = !ir && !target;
        for (const p of prologue!) live.delete(p.ir.output);
        live.set(gemm.product, out);
      }
      for (const h of gathers ?? [])
        live.set(
          h.node,
          // A weight's rows from the host's copy, never its texture read back.
          gatherRows(
            feeds.get(h.table) ??
              (await toArray(take(h.table, kernel.name), -1, this.backend.readBacks)),
            feeds.get(h.ids)!,
            h,
          ),
        );
      if (ir && (fn || wasm) && !inPlace) {
        // With its IR, a compiled kernel has every field of a KernelFn.
        out = await call(compiled as KernelFn, target);
        if (gemm) live.delete(gemm.product);
      }
      for (const h of gathers ?? []) live.delete(h.node);
      if (this.profiler)
        this.profiler.kernel(this.families[index], performance.now() - started, this.flops[index]);

      const size = this.sizes[index];
      live.set(kernel.output, out);
      if (this.checkNumerics) this.scan(index, await this.read(kernel.output, out, size));
      const resident = this.onDevice && this.resident.has(kernel.output);
      if (resident && keep) keep.set(kernel.output, out);
      else if (resident) done.push(out);
      if (wanted.has(kernel.output) && !(resident && keep)) {
        const t = this.profiler ? performance.now() : 0;
        // A copy: backends reuse output buffers (gpu.js's, the arena's) on the
        // next call; an array made for this call alone is returned as it is,
        // and so is a graph output's arena slot when views are asked for (the
        // memory plan keeps those to the end of the run).
        const keep = fresh || (views && target !== undefined && this.outputs.has(kernel.output));
        result.set(
          kernel.output,
          keep ? out : Float32Array.from(await this.read(kernel.output, out, size)),
        );
        if (this.profiler) this.profiler.copy(performance.now() - t);
      }
      for (const id of kernel.inputs)
        if (this.last.get(id) === index && !feeds.has(id)) live.delete(id);
    }
    for (const id of wanted) if (!result.has(id) && feeds.has(id)) result.set(id, feeds.get(id)!);
    for (const t of done.splice(0)) t.delete();
    return result;
  }

  /** The cache inputs a donating run (see `run`) writes in place. */
  inPlaceCaches(): Set<number> {
    return new Set(this.kernels.flatMap((k) => (k.inPlace ? [k.inPlace.write.past] : [])));
  }

  /** Layout of a node's value on this executor's device (flat off the GPU backends). */
  private readonly layoutOf: (id: number) => Layout;

  /**
   * A kernel's output as the tensor's values: a texture read back (the one
   * device-to-host copy, for what the caller asked for), tiles unpacked; may
   * share memory with `out` (copy what is kept).
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private async read(id: number, out: any, size: number): Promise<Float32Array> {
    const l = this.layoutOf(id);
    const reads = this.backend.readBacks;
    if (l.kind === "flat") return toArray(out, size, reads);
    return unpack(l, await toArray(out, texelsOf(l), reads));
  }

  private scan(index: number, values: Float32Array): void {
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad < 0) return;
    const g = this.schedule.graph;
    const k = this.schedule.kernels[index];
    // Name the ops of the kernel with the source lines that built them.
    const ops = k.nodes
      .map((id) => g.nodes[id])
      .filter((n) => n.op !== "const")
      .map(
        (n) => `${n.op}%${n.id}${n.span ? ` (${n.span.file}:${n.span.line}:${n.span.col})` : ""}`,
      );
    // Masks hold -3.4e38, not infinity; only true NaN/inf are reported.
    throw new NumericsError(
      `kernel ${k.name} produced ${values[bad]} at element ${bad} of %${k.output}; it computes: ${ops.join(", ")}`,
    );
  }

  /** Resident outputs read back in a run, whose textures it has not deleted yet. */
  private readonly unfreed: DeviceTensor[] = [];
  /** The graph's outputs (their arena slots are kept to the end of a run). */
  private readonly outputs: Set<number>;
  /** Element count of each input and weight at these sizes (checked against feeds). */
  private readonly feedSizes = new Map<number, number>();
  private arena?: number;
  /**
   * By kernel index, on webasm: its output's planned place in the engine's
   * memory, and the place of a GEMM product its epilogue reads. Views made
   * once: a shared memory's views stay valid when it grows.
   */
  private readonly targets: (Float32Array | undefined)[] = [];
  private readonly products: (Float32Array | undefined)[] = [];

  /**
   * On webasm, every kernel output gets a place in the engine's memory from the
   * compiler's memory plan (slots reused once their tenant is dead; outputs
   * the plan keeps apart, the gradients, after them): wasm kernels and GEMMs
   * write there and read each other's outputs where they are.
   */
  private placeBuffers(): void {
    // The product of a GEMM with an epilogue lives only until the epilogue has
    // read it: the plan gives it dead space of its kernel's time.
    const productSize = (c: CompiledKernel) => (c.gemm ? c.gemm.batch * c.gemm.M * c.gemm.N : 0);
    const within = new Map<number, number>();
    this.kernels.forEach((c, i) => {
      if (c.gemm && c.ir) within.set(i, 4 * productSize(c));
    });
    const plan = planMemory(this.schedule, this.bindings, { training: false, within });
    const offsets = new Map(plan.buffers.map((b) => [b.node, b.offset]));
    let top = plan.activationBytes;
    this.schedule.kernels.forEach((k, i) => {
      if (offsets.has(k.output)) return;
      offsets.set(k.output, top);
      top += align(this.sizes[i] * 4);
    });
    try {
      this.arena = this.gemmEngine!.reserve(top);
    } catch (e) {
      // Activations past what the 4 GiB memory has left (a large model at a
      // long context): outputs stay JavaScript arrays, copied in per kernel.
      if (e instanceof RangeError) return;
      throw e;
    }
    const engine = this.gemmEngine!;
    this.schedule.kernels.forEach((k, i) => {
      this.targets[i] = engine.view(this.arena! + offsets.get(k.output)!, this.sizes[i]);
      const product = offsets.get(-1 - i);
      if (product !== undefined)
        this.products[i] = engine.view(this.arena! + product, productSize(this.kernels[i]));
    });
  }

  destroy(): void {
    for (const t of this.unfreed.splice(0)) t.delete();
    if (this.arena !== undefined) this.gemmEngine!.release(this.arena);
    for (const k of this.kernels) {
      k.fn?.destroy?.();
      for (const p of k.prologue ?? []) p.fn?.destroy?.();
    }
  }
}

/** A 2-D result (rows) as one flat buffer: a view when the rows share one buffer. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function flatten(rows: any, size: number): any {
  if (!Array.isArray(rows) || !(rows[0] instanceof Float32Array)) return rows;
  const first = rows[0] as Float32Array;
  if (
    rows.every(
      (r: Float32Array, k: number) =>
        r.buffer === first.buffer && r.byteOffset === first.byteOffset + k * first.byteLength,
    )
  )
    return new Float32Array(first.buffer, first.byteOffset, size);
  const out = new Float32Array(size);
  rows.forEach((r: Float32Array, k: number) => out.set(r, k * first.length));
  return out;
}

/** Positions grouped by id (stable), and each id's first position: a counting sort. */
export function indexTables(
  ids: Float32Array,
  rows: number,
): { order: Float32Array; offsets: Float32Array } {
  const offsets = new Float32Array(rows + 1);
  for (const id of ids) if (id >= 0 && id < rows) offsets[id + 1]++;
  for (let r = 0; r < rows; r++) offsets[r + 1] += offsets[r];
  const next = offsets.slice(0, rows);
  const order = new Float32Array(Math.max(1, ids.length));
  ids.forEach((id, p) => {
    if (id >= 0 && id < rows) order[next[id]++] = p;
  });
  return { order, offsets };
}

/**
 * Whether a buffer is already a Float32Array: callers then skip toArray's
 * await (a turn of the microtask queue; decoding makes some hundreds of
 * calls per token).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const isArray = (v: any): v is Float32Array => v instanceof Float32Array;

/** A buffer as a Float32Array of `size` elements (-1: all of it); `reads` counts textures read back. */
async function toArray(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  v: any,
  size: number,
  reads?: { count: number; bytes: number },
): Promise<Float32Array> {
  if (size < 0) size = v.length;
  if (v instanceof Float32Array) return v.length === size ? v : v.subarray(0, size);
  if (v && typeof v.toArray === "function") {
    if (reads) {
      reads.count++;
      reads.bytes += 4 * (v.output as number[]).reduce((a, b) => a * b, 1);
    }
    let a = v.toArray();
    if (a && typeof a.then === "function") a = await a;
    // A 2-D texture (a tiled tensor) reads back as rows.
    const arr =
      a instanceof Float32Array
        ? a
        : a[0] instanceof Float32Array
          ? flatten(a, a.length * a[0].length)
          : Float32Array.from(a);
    // Textures are padded to a rectangle: keep the output's own elements.
    return arr.length === size ? arr : arr.subarray(0, size);
  }
  return Float32Array.from(v).subarray(0, size);
}
