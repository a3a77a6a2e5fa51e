// The kernel IR printed as a gpu.js kernel function (the cpu, headlessgl and
// webgpu backends; `gptc compile --emit kernels-js`). gpu.js numbers are all
// floats, so i32/f32 conversions print as nothing; loads print their flat
// index; a reduction is `let acc` and a loop nest.
import { strides as stridesOf } from "../ir/ops/tensor.js";
import { layoutOf, type DeviceLimits } from "./device-layout.js";
import { constText, infix } from "./kernel-ir/print.js";
import { outputSize, type Expr, type KernelIR, type Stmt } from "./kernel-ir/types.js";

export interface KernelJs {
  /** The function source, `function (in0, in1) { ... }`. */
  source: string;
  /** gpu.js output dimensions: [size], or [cols, rows] for a rows grid. */
  dims: number[];
  /**
   * Buffers read as 2-D arrays (`inK[row][col]`), by position: the runtime
   * passes them as gpu.js inputs of these dims ([cols, rows]).
   */
  inputDims: (number[] | undefined)[];
}

/** Integers above 2^24 are not exact in float32, which is how gpu.js webasm indexes a flat array. */
const EXACT_F32 = 2 ** 24;

/**
 * floor(a / b) of integers in float math, exact while a and b are below 2^24.
 * WGSL's division may be off by 2.5 ulp: Chromium's WebGPU (SwiftShader) gives
 * floor(50257 / 50257) = 0, which put logits of vocabulary id 0 on the wrong
 * row (measured: 12 of 32 rows). The quotient is corrected by its remainder,
 * which float math computes exactly: a no-op where the division was right.
 */
const floorDiv = (a: string, b: string | number) => {
  const q = `Math.floor(${a} / ${b})`;
  const r = `(${a} - ${q} * ${b})`;
  return `(${q} + (${r} >= ${b} ? 1.0 : 0.0) - (${r} < 0.0 ? 1.0 : 0.0))`;
};

const calls: Partial<Record<string, string>> = {
  exp: "Math.exp",
  log: "Math.log",
  sqrt: "Math.sqrt",
  abs: "Math.abs",
  sin: "Math.sin",
  cos: "Math.cos",
  pow: "Math.pow",
  min: "Math.min",
  max: "Math.max",
};

class Printer {
  readonly inputDims: (number[] | undefined)[] = [];

  constructor(
    private readonly ir: KernelIR,
    /** gpu.js webasm indexes in float32: read buffers past 2^24 elements as rows. */
    private readonly rowReads: boolean,
    /** GL/WebGPU: buffers past these limits are tiled textures (codegen/device-layout.ts). */
    private readonly limits?: DeviceLimits,
  ) {}

  expr(e: Expr): string {
    switch (e.k) {
      case "const": {
        const s = constText(e.ty, e.value);
        return s === "nan" ? "NaN" : e.value < 0 ? `(${s})` : s;
      }
      case "var":
        return e.name;
      case "load":
        return this.load(e);
      case "select":
        return `(${this.expr(e.cond)} ? ${this.expr(e.then)} : ${this.expr(e.else)})`;
      case "alu": {
        const [a, b] = e.args.map((x) => this.expr(x));
        // The text form's operators are JavaScript's, but for floordiv (`//`).
        if (e.op === "floordiv") return floorDiv(a, b);
        const sym = infix[e.op];
        if (sym) return `(${a} ${sym} ${b})`;
        if (e.op === "neg") return `(-${a})`;
        if (e.op === "f32" || e.op === "i32") return a;
        // GLSL's tanh overflows to NaN past |x| ~ 44; in float32 tanh is exactly ±1
        // beyond |x| = 9.1, so clamping to ±15 changes no result.
        if (e.op === "tanh") return `Math.tanh(Math.min(Math.max(${a}, -15.0), 15.0))`;
        const f = calls[e.op];
        if (!f) throw new Error(`internal: no JavaScript for ${e.op}`);
        return `${f}(${e.args.map((x) => this.expr(x)).join(", ")})`;
      }
    }
  }

  private load(e: Expr & { k: "load" }): string {
    const b = this.ir.buffers[e.buf];
    const size = b.shape.reduce((p, q) => p * q, 1);
    const flat = (coords: Expr[], shape: number[]) => {
      const st = stridesOf(shape);
      const terms = coords
        .map((c, i) =>
          shape[i] === 1 || (c.k === "const" && c.value === 0)
            ? ""
            : st[i] === 1
              ? this.expr(c)
              : `${this.expr(c)} * ${st[i]}`,
        )
        .filter((t) => t);
      return terms.length ? terms.join(" + ") : "0";
    };
    const tiled = this.limits && layoutOf(b.shape, this.limits);
    if (tiled && tiled.kind === "tiled") {
      // Only numbers below the texture's sides in float math; gpu.js joins Y and X as ints.
      const row = flat(e.coords.slice(0, -1), b.shape.slice(0, -1));
      const col = this.expr(e.coords[e.coords.length - 1]);
      const { per, cols, lines, width } = tiled;
      this.inputDims[e.buf] = [tiled.width, tiled.height];
      if (lines > 1) {
        const q = floorDiv(col, width);
        return `${b.name}[(${row}) * ${lines} + ${q}][${col} - ${q} * ${width}]`;
      }
      if (per === 1) return `${b.name}[${row}][${col}]`;
      const q = floorDiv(`(${row})`, per);
      return `${b.name}[${q}][((${row}) - ${q} * ${per}) * ${cols} + ${col}]`;
    }
    if (!this.rowReads || size <= EXACT_F32 || b.shape.length < 2)
      return `${b.name}[${flat(e.coords, b.shape)}]`;
    const cols = b.shape[b.shape.length - 1];
    this.inputDims[e.buf] = [cols, size / cols];
    return `${b.name}[${flat(e.coords.slice(0, -1), b.shape.slice(0, -1))}][${this.expr(e.coords[e.coords.length - 1])}]`;
  }

  stmt(s: Stmt, out: string[], pad: string): void {
    if (s.k === "let") {
      out.push(`${pad}const ${s.name} = ${this.expr(s.value)};`);
      return;
    }
    out.push(`${pad}let ${s.acc} = ${s.op === "max" ? "-3.4e38" : "0.0"};`);
    let p = pad;
    s.loops.forEach((l, i) => {
      out.push(`${p}for (let ${l.v} = 0; ${l.v} < ${l.extent}; ${l.v}++) {`);
      p += "  ";
      if (i === s.loops.length - 1 && s.until)
        out.push(`${p}if (${l.v} >= ${this.expr(s.until)}) { break; }`);
      for (const b of l.body) this.stmt(b, out, p);
    });
    const t = this.expr(s.term);
    out.push(`${p}${s.acc} = ${s.op === "max" ? `Math.max(${s.acc}, ${t})` : `${s.acc} + ${t}`};`);
    for (let i = 0; i < s.loops.length; i++) {
      p = p.slice(2);
      out.push(`${p}}`);
    }
  }

  print(): KernelJs {
    const ir = this.ir;
    const out = this.limits && layoutOf(ir.outShape, this.limits);
    let dims = ir.grid.kind === "rows" ? [ir.grid.cols, ir.grid.rows] : [outputSize(ir)];
    let lines =
      ir.grid.kind === "rows"
        ? ["  const x = this.thread.x;", "  const y = this.thread.y;"]
        : ["  const i = this.thread.x;"];
    if (out && out.kind === "tiled") {
      if (ir.grid.kind !== "rows")
        throw new Error(`internal: tiled output of ${ir.name} needs a rows grid`);
      // Threads run over the output's texture; (y, x) is the tensor's (row, col) they write.
      dims = [out.width, out.height];
      lines =
        out.lines > 1
          ? [
              `  const tq = ${floorDiv("this.thread.y", out.lines)};`,
              "  const y = tq;",
              `  const x = (this.thread.y - tq * ${out.lines}) * ${out.width} + this.thread.x;`,
            ]
          : [
              `  const tq = ${floorDiv("this.thread.x", out.cols)};`,
              `  const y = this.thread.y * ${out.per} + tq;`,
              `  const x = this.thread.x - tq * ${out.cols};`,
            ];
    }
    for (const s of ir.body) this.stmt(s, lines, "  ");
    lines.push(`  return ${this.expr(ir.result)};`);
    const params = ir.buffers.map((b) => b.name).join(", ");
    return {
      source: `function (${params}) {\n${lines.join("\n")}\n}`,
      dims,
      inputDims: this.inputDims,
    };
  }
}

/**
 * gpu.js source of a kernel; `rowReads` for gpu.js's webasm backend (see
 * EXACT_F32); `limits` for the GPU backends, where buffers past them are
 * tiled textures (device-layout.ts) and a kernel writing one (built on a rows
 * grid) runs over its texture.
 */
export function printJs(
  ir: KernelIR,
  opts: { rowReads?: boolean; limits?: DeviceLimits } = {},
): KernelJs {
  return new Printer(ir, opts.rowReads ?? false, opts.limits).print();
}
