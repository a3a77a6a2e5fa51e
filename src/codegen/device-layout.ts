// How a tensor lies in one GPU texture (or storage buffer) given the device's
// limits. gpu.js indexes buffers with float32 arithmetic in the shaders it
// writes, exact only below 2^24, and one texture is at most MAX_TEXTURE_SIZE on
// a side. A tensor within both limits is a flat array, as always. A larger one
// is `tiled`: a 2-D texture [width, height] whose element (Y, X) is found from
// the tensor's (row, col) — its last axis is `col`, the others flattened to
// `row` — with only small numbers (below the texture's sides) in float math;
// gpu.js then combines Y and X in integer arithmetic (GLSL `int`), which is
// exact to 2^31. Short rows are packed `per` to a texture line; a row longer
// than a line is spread over `lines` lines of `width`. Kernels writing such a
// tensor run over the texture's threads (codegen/kernel-js.ts maps them back to
// (row, col)); readers index it the same way. Both follow from the shape and
// the limits alone, so producer and consumer agree without being told.
import { shapeEval } from "../ir/dims.js";
import type { Schedule } from "../ir/passes/fuse.js";
import type { KernelIR, Stmt } from "./kernel-ir/types.js";

/** What one buffer of a GPU backend can hold and index exactly. */
export interface DeviceLimits {
  /** The backend's name, for messages (e.g. "headlessgl"). */
  backend: string;
  /** Element counts up to this are indexed exactly by the kernels' own (float32) index math. */
  exactIndex: number;
  /** Largest side of one texture (GL MAX_TEXTURE_SIZE); for buffers, the exact range. */
  maxTextureSize: number;
  /** Most elements one texture or storage binding holds. */
  maxElements: number;
  /**
   * Most loop iterations one shader invocation runs, all its loops together
   * (Mesa's llvmpipe stops at 65,535 and returns what it has: measured by the
   * backend's probe); Infinity where nothing stops them.
   */
  maxLoopIterations: number;
}

export type Layout =
  | { kind: "flat"; size: number }
  | {
      kind: "tiled";
      size: number;
      /** Rows (all axes but the last, flattened) and the last axis. */
      rows: number;
      cols: number;
      /** Tensor rows per texture line (1 when a row spans several lines). */
      per: number;
      /** Texture lines per tensor row (1 when rows are packed `per` a line). */
      lines: number;
      width: number;
      height: number;
    };

/** Why a tensor cannot lie in one texture of this device, or undefined if it can. */
export type LayoutResult = Layout | { kind: "refused"; reason: string };

const fmt = (n: number) => n.toLocaleString("en-US");

/** The layout of a tensor of `shape` on a device with `limits`. */
export function layoutOf(shape: readonly number[], limits: DeviceLimits): LayoutResult {
  const size = shape.reduce((p, q) => p * q, 1);
  const max = limits.maxTextureSize;
  if (size <= limits.exactIndex && size <= max * max) return { kind: "flat", size };
  const cols = shape[shape.length - 1] ?? 1;
  const rows = size / cols;
  if (size > limits.maxElements)
    return {
      kind: "refused",
      reason: `${fmt(size)} elements, more than one ${limits.backend} buffer holds (${fmt(limits.maxElements)})`,
    };
  if (shape.length < 2 || cols <= 1 || rows >= limits.exactIndex || cols >= limits.exactIndex)
    return {
      kind: "refused",
      reason: `${fmt(size)} elements, past ${limits.backend}'s exact index range (${fmt(limits.exactIndex)}), and it cannot be split by rows (rows ${fmt(rows)} x last axis ${fmt(cols)}; both must be between 2 and ${fmt(limits.exactIndex)})`,
    };
  if (cols <= max) {
    // Whole rows, `per` of them to a texture line.
    const per = Math.ceil(rows / max);
    const width = per * cols;
    const height = Math.ceil(rows / per);
    if (width <= max) return { kind: "tiled", size, rows, cols, per, lines: 1, width, height };
  } else {
    // Each row over `lines` texture lines of `width` (the last one padded).
    const lines = Math.ceil(cols / max);
    const width = Math.ceil(cols / lines);
    const height = rows * lines;
    if (height <= max) return { kind: "tiled", size, rows, cols, per: 1, lines, width, height };
  }
  return {
    kind: "refused",
    reason: `${fmt(size)} elements (rows ${fmt(rows)} x ${fmt(cols)}) do not fit one ${max} x ${max} texture`,
  };
}

/** Elements the texture of a tiled layout has (its padding included). */
export const texels = (l: Layout): number => (l.kind === "flat" ? l.size : l.width * l.height);

/** A tensor's values laid out as its texture (padded); `v` itself when that is already the layout. */
export function pack(l: Layout, v: Float32Array): Float32Array {
  if (l.kind === "flat") return v;
  const out = new Float32Array(texels(l));
  if (l.lines === 1) out.set(v.subarray(0, l.size));
  else
    for (let r = 0; r < l.rows; r++)
      out.set(v.subarray(r * l.cols, (r + 1) * l.cols), r * l.lines * l.width);
  return out;
}

/** The tensor's values from its texture's (row-major, padded) values. */
export function unpack(l: Layout, t: Float32Array): Float32Array {
  if (l.kind === "flat" || l.lines === 1) return t.length === l.size ? t : t.subarray(0, l.size);
  const out = new Float32Array(l.size);
  const line = l.lines * l.width;
  for (let r = 0; r < l.rows; r++) out.set(t.subarray(r * line, r * line + l.cols), r * l.cols);
  return out;
}

/** The layout in words, for plans and messages: e.g. "3072 x 12565 texture, 4 rows per line". */
export function describeLayout(l: Layout): string {
  if (l.kind === "flat") return "flat";
  return l.lines === 1
    ? `${l.width} x ${l.height} texture, ${l.per} row${l.per > 1 ? "s" : ""} of ${l.cols} per line`
    : `${l.width} x ${l.height} texture, each row of ${l.cols} over ${l.lines} lines`;
}

/** Loop iterations one thread of a kernel runs: every reduction's nest, multiplied out. */
export function loopIterations(ir: KernelIR): number {
  const walk = (stmts: Stmt[]): number =>
    stmts.reduce((total, st) => {
      if (st.k !== "reduce") return total;
      // Each loop runs its extent times, and each iteration runs the loops inside it.
      let inner = 0;
      for (let i = st.loops.length - 1; i >= 0; i--)
        inner = st.loops[i].extent * (1 + inner + walk(st.loops[i].body));
      return total + inner;
    }, 0);
  return walk(ir.body);
}

/**
 * Limits the plan shows the split for (`gptc compile --emit plan`, which runs
 * no backend): WebGL's float32 index range and a common MAX_TEXTURE_SIZE. A
 * session uses the limits its backend reports instead.
 */
export const referenceGpuLimits: DeviceLimits = {
  backend: "webgl",
  exactIndex: 2 ** 24,
  maxTextureSize: 16384,
  maxElements: 16384 ** 2,
  maxLoopIterations: Infinity,
};

/**
 * The buffers of a schedule a GPU backend with `limits` tiles or cannot hold,
 * one line each; empty when every buffer is flat.
 */
export function printDeviceLayouts(
  s: Schedule,
  bindings: Record<string, number>,
  limits: DeviceLimits = referenceGpuLimits,
): string {
  const g = s.graph;
  const lines: string[] = [];
  for (const id of [...s.materialized].sort((a, b) => a - b)) {
    const n = g.nodes[id];
    const shape = shapeEval(n.type.shape, bindings);
    const l = layoutOf(shape, limits);
    if (l.kind === "flat") continue;
    const what = n.op === "weight" || n.op === "input" ? `${n.op} ${String(n.attrs.name)}` : n.op;
    lines.push(
      `    %${id} ${what} f32[${shape.join(", ")}]: ${l.kind === "tiled" ? describeLayout(l) : `refused: ${l.reason}`}`,
    );
  }
  if (!lines.length) return "";
  return (
    [
      `  split on GPU backends (index exact to ${fmt(limits.exactIndex)}, textures ${limits.maxTextureSize} x ${limits.maxTextureSize}; a session uses its backend's own limits):`,
      ...lines,
    ].join("\n") + "\n"
  );
}
