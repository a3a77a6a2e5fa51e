// One fused kernel -> the source text of a gpu.js kernel function. Every size
// is a constant; each thread computes one element of the kernel's output (a
// flat Float32 buffer); movement ops are coordinate remappings; matmuls and
// reductions are loops with constant bounds. Identifiers are generated (t12,
// in3, r0): nothing a user wrote in a spec reaches the generated code.
import { shapeEval } from "../ir/dims.js";
import type { Graph } from "../ir/graph.js";
import { getOp } from "../ir/ops/registry.js";
import type { Node } from "../ir/ops/types.js";
import type { Kernel } from "../ir/passes/fuse.js";
import {
  broadcastCoords,
  clampCoord,
  flatIndex,
  literal,
  reshapeCoords,
  unravel,
} from "./index-math.js";

export interface KernelSource {
  /** Generated identifier of the kernel (from the schedule, e.g. k4_matmul_add). */
  name: string;
  /** The function source, `function (in0, in1) { ... }`. */
  source: string;
  /** Element count of the output buffer. */
  outputSize: number;
  /**
   * gpu.js output dimensions: [size] (thread.x is the flat index), or
   * [last axis, the rest] (thread.x the last coordinate, thread.y the others),
   * which lets webasm's SIMD run along the last axis (measured 1.5-2x on matmuls).
   */
  dims: number[];
  /** Node ids of the buffers passed as in0, in1, ... */
  inputs: number[];
  output: number;
  /**
   * Index tables the runtime derives from an ids buffer on the host, passed
   * after the inputs: for scatter_add, the positions grouped by id (`order`)
   * and where each id's group starts (`offsets`, n + 1 entries).
   */
  extras: { kind: "order" | "offsets"; ids: number; rows: number }[];
  /**
   * Inputs read as 2-D arrays (`inK[row][col]`), by argument position: the
   * runtime passes them as gpu.js inputs of these dims ([cols, rows]). See `read`.
   */
  inputDims: (number[] | undefined)[];
  /** gpu.js constants the kernel reads (`this.constants.name`). */
  constants: Record<string, Float32Array>;
}

export interface KernelOptions {
  /**
   * Compute exp inline (range reduction, a degree-7 polynomial, a table of
   * powers of two) instead of calling Math.exp: gpu.js webasm makes that a
   * call into JavaScript per element (~45 ns; the softmax over a 50257-word
   * vocabulary spent a quarter of the bench step in it). Within 2-3 float32
   * ulps of Math.exp; results past exp(88.3) are 2.2e38 instead of infinity.
   */
  inlineExp?: boolean;
}

/** 2^k for k = -127 .. 128, indexed k + 127 (the inline exp's scale factors). */
const POW2 = Float32Array.from({ length: 256 }, (_, k) => 2 ** (k - 127));

/** Integers above 2^24 are not exact in float32, which is how gpu.js webasm indexes a flat array. */
const EXACT_F32 = 2 ** 24;

interface Scope {
  lines: string[];
  memo: Map<string, string>;
  /** The loop variable this scope iterates (undefined for the kernel body). */
  loopVar?: string;
}

class Emitter {
  private readonly scopes: Scope[] = [{ lines: [], memo: new Map() }];
  private temp = 0;
  private loop = 0;
  private readonly argOf = new Map<number, string>();
  /** The scope declaring each loop variable, accumulator and temporary. */
  private readonly owner = new Map<string, Scope>();

  constructor(
    private readonly g: Graph,
    private readonly kernel: Kernel,
    private readonly bindings: Record<string, number>,
    private readonly layout: "1d" | "2d" = "1d",
    private readonly options: KernelOptions = {},
  ) {
    kernel.inputs.forEach((id, i) => this.argOf.set(id, `in${i}`));
  }

  shape(id: number): number[] {
    return shapeEval(this.g.nodes[id].type.shape, this.bindings);
  }

  /**
   * The innermost scope declaring a name that occurs in `exprs` (or the body). A
   * coordinate may be a loop variable or a temporary computed from one (an id
   * gathered inside a reduction over the ids' axes).
   */
  private scopeFor(exprs: string[]): Scope {
    let best = 0;
    for (const e of exprs)
      for (const [name] of e.matchAll(/\b[A-Za-z_]\w*\b/g)) {
        const s = this.owner.get(name);
        const k = s ? this.scopes.indexOf(s) : -1;
        if (k > best) best = k;
      }
    return this.scopes[best];
  }

  /** Binds `expr` to a fresh temporary in the right scope and returns its name. */
  private bind(key: string, expr: string, deps: string[]): string {
    const scope = this.scopeFor(deps);
    const known = scope.memo.get(key);
    if (known) return known;
    if (/^[\w.]+$/.test(expr) || /^-?\d/.test(expr)) {
      scope.memo.set(key, expr);
      return expr;
    }
    const name = `t${this.temp++}`;
    scope.lines.push(`const ${name} = ${expr};`);
    this.owner.set(name, scope);
    scope.memo.set(key, name);
    return name;
  }

  private lookup(key: string, deps: string[]): string | undefined {
    // Visible: the memo of the chosen scope or of any enclosing one.
    const target = this.scopeFor(deps);
    for (let s = this.scopes.indexOf(target); s >= 0; s--) {
      const hit = this.scopes[s].memo.get(key);
      if (hit) return hit;
    }
    return undefined;
  }

  /** Expression for node `id` at output coordinates `coords`. */
  value(id: number, coords: string[]): string {
    const key = `${id}@${coords.join(",")}`;
    const hit = this.lookup(key, coords);
    if (hit) return hit;
    const node = this.g.nodes[id];
    const arg = this.argOf.get(id);
    let expr: string;
    if (arg !== undefined) expr = this.read(id, arg, coords);
    else expr = this.compute(node, coords);
    return this.bind(key, expr, coords);
  }

  private readonly inputDims: (number[] | undefined)[] = [];

  /**
   * A buffer element. gpu.js's webasm backend computes a flat index in float32
   * (it declares every local a float), so past 2^24 elements it reads the wrong
   * neighbour (measured: odd indices round to even). Such a buffer is read as
   * a 2-D array instead: row and column stay small, and gpu.js combines them in
   * i32.
   */
  private read(id: number, arg: string, coords: string[]): string {
    const shape = this.shape(id);
    const size = shape.reduce((p, q) => p * q, 1);
    if (this.layout !== "2d" || size <= EXACT_F32 || shape.length < 2)
      return `${arg}[${flatIndex(coords, shape)}]`;
    const cols = shape[shape.length - 1];
    this.inputDims[this.kernel.inputs.indexOf(id)] = [cols, size / cols];
    return `${arg}[${flatIndex(coords.slice(0, -1), shape.slice(0, -1))}][${coords[coords.length - 1]}]`;
  }

  private compute(node: Node, coords: string[]): string {
    const def = getOp(node.op);
    const a = node.attrs;
    const shapeIn = (k: number) => this.shape(node.inputs[k]);
    switch (node.op) {
      case "const":
        return literal(a.value as number);
      case "dim":
        return literal(shapeEval([a.dim as never], this.bindings)[0]);
      case "arange":
        return coords[0];
      case "causal_mask": {
        const [q, k] = this.shape(node.id);
        return `(${coords[1]} <= ${coords[0]} + ${k - q} ? 0.0 : ${literal(-Infinity)})`;
      }
      case "causal_mask_at": {
        const len = this.value(node.inputs[0], []);
        return `(${coords[1]} <= ${coords[0]} + ${len} ? 0.0 : ${literal(-Infinity)})`;
      }
      case "cache_write": {
        const axis = a.axis as number;
        const len = this.value(node.inputs[2], []);
        const T = shapeIn(1)[axis];
        const c = [...coords];
        c[axis] = clampCoord(`(${coords[axis]} - ${len})`, T);
        const inside = `${coords[axis]} >= ${len} && ${coords[axis]} < ${len} + ${T}`;
        return `(${inside} ? ${this.value(node.inputs[1], c)} : ${this.value(node.inputs[0], coords)})`;
      }
      case "reshape":
        return this.value(node.inputs[0], reshapeCoords(coords, this.shape(node.id), shapeIn(0)));
      case "permute": {
        const perm = a.perm as number[];
        const inCoords = new Array<string>(perm.length);
        perm.forEach((p, i) => (inCoords[p] = coords[i]));
        return this.value(node.inputs[0], inCoords);
      }
      case "expand":
        return this.value(node.inputs[0], broadcastCoords(coords, shapeIn(0)));
      case "slice": {
        const c = [...coords];
        const axis = a.axis as number;
        c[axis] = (a.start as number) === 0 ? c[axis] : `(${c[axis]} + ${a.start as number})`;
        return this.value(node.inputs[0], c);
      }
      case "pad": {
        const axis = a.axis as number;
        const before = a.before as number;
        const len = shapeIn(0)[axis];
        const c = [...coords];
        c[axis] = clampCoord(before === 0 ? c[axis] : `(${c[axis]} - ${before})`, len);
        const cond = `${coords[axis]} >= ${before} && ${coords[axis]} < ${before + len}`;
        return `(${cond} ? ${this.value(node.inputs[0], c)} : 0.0)`;
      }
      case "concat": {
        const axis = a.axis as number;
        let offset = 0;
        const parts = node.inputs.map((input, k) => {
          const c = [...coords];
          const len = shapeIn(k)[axis];
          c[axis] = clampCoord(offset === 0 ? c[axis] : `(${c[axis]} - ${offset})`, len);
          const start = offset;
          offset += len;
          return { start, end: offset, c, input };
        });
        // Nested conditionals, last part as the fallback.
        let expr = this.value(parts[parts.length - 1].input, parts[parts.length - 1].c);
        for (let k = parts.length - 2; k >= 0; k--)
          expr = `(${coords[axis]} < ${parts[k].end} ? ${this.value(parts[k].input, parts[k].c)} : ${expr})`;
        return expr;
      }
      case "gather": {
        const idsShape = shapeIn(1);
        const id = this.value(node.inputs[1], coords.slice(0, idsShape.length));
        return this.value(node.inputs[0], [id, ...coords.slice(idsShape.length)]);
      }
      case "take": {
        const id = this.value(node.inputs[1], coords);
        return this.value(node.inputs[0], [...coords, id]);
      }
      case "put": {
        const lead = coords.slice(0, -1);
        const id = this.value(node.inputs[0], lead);
        return `(${coords[coords.length - 1]} == ${id} ? ${this.value(node.inputs[1], lead)} : 0.0)`;
      }
      case "sum":
      case "mean":
      case "max":
        return this.reduce(node, coords);
      case "matmul":
        return this.matmul(node, coords);
      case "scatter_add":
        return this.scatter(node, coords);
    }
    if (def.kind === "elementwise" && def.expr) {
      const args = node.inputs.map((input) => {
        const v = this.value(input, broadcastCoords(coords, this.shape(input)));
        // A negative literal stays one operand: neg of -2.0 is -(-2.0), not --2.0.
        return v.startsWith("-") ? `(${v})` : v;
      });
      if (node.op === "exp" && this.options.inlineExp) return this.inlineExp(args[0], coords);
      return def.expr(...args);
    }
    throw new Error(`codegen: no lowering for op '${node.op}'`);
  }

  /**
   * Emits a loop nest computing a value at `coords`; `body` returns the term to
   * fold per iteration. The loop goes in the outermost scope the coordinates
   * allow, so a reduction that does not depend on an enclosing loop is hoisted.
   */
  private loopNest(
    coords: string[],
    extents: number[],
    init: string,
    fold: (acc: string, v: string) => string,
    body: (vars: string[]) => string,
  ): string {
    const target = this.scopeFor(coords);
    const suspended = this.scopes.splice(this.scopes.indexOf(target) + 1);
    const acc = `acc${this.loop++}`;
    target.lines.push(`let ${acc} = ${init};`);
    this.owner.set(acc, target);
    const vars = extents.map(() => `r${this.loop++}`);
    for (const v of vars) {
      const scope: Scope = { lines: [], memo: new Map(), loopVar: v };
      this.owner.set(v, scope);
      this.scopes.push(scope);
    }
    const v = body(vars);
    this.scopes[this.scopes.length - 1].lines.push(`${acc} = ${fold(acc, v)};`);
    // Close the loops innermost first, nesting each scope's lines in its parent.
    for (let i = vars.length - 1; i >= 0; i--) {
      const s = this.scopes.pop()!;
      const parent = this.scopes[this.scopes.length - 1];
      parent.lines.push(
        `for (let ${vars[i]} = 0; ${vars[i]} < ${extents[i]}; ${vars[i]}++) {`,
        ...s.lines.map((l) => `  ${l}`),
        "}",
      );
    }
    this.scopes.push(...suspended);
    return acc;
  }

  /**
   * exp(x) = 2^n * e^r with n = round(x / ln 2) and r = x - n ln 2 (Cody-Waite:
   * ln 2 split so n * hi is exact), e^r by Taylor to r^7 on |r| <= 0.35.
   */
  private inlineExp(x: string, coords: string[]): string {
    const t = (e: string) => this.bind(`exp:${e}`, e, coords);
    const xc = t(`Math.min(Math.max(${x}, -87.0), 88.3)`);
    const n = t(`Math.floor(${xc} * 1.4426950408889634 + 0.5)`);
    const r = t(`${xc} - ${n} * 0.693359375 - ${n} * -0.00021219444`);
    const coef = [1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1, 1];
    const poly = coef
      .slice(1)
      .reduce((acc, c) => `(${acc} * ${r} + ${literal(c)})`, literal(coef[0]));
    const p = t(poly);
    this.constants.pow2 = POW2;
    return `(${x} < -87.0 ? 0.0 : ${p} * this.constants.pow2[${n} + 127])`;
  }

  private readonly constants: Record<string, Float32Array> = {};

  private reduce(node: Node, coords: string[]): string {
    const axes = node.attrs.axes as number[];
    const keep = node.attrs.keepdim as boolean;
    const inShape = this.shape(node.inputs[0]);
    const extents = axes.map((ax) => inShape[ax]);
    const isMax = node.op === "max";
    const acc = this.loopNest(
      coords,
      extents,
      isMax ? literal(-Infinity) : "0.0",
      (acc, v) => (isMax ? `Math.max(${acc}, ${v})` : `${acc} + ${v}`),
      (vars) => {
        const inCoords: string[] = [];
        let k = 0;
        inShape.forEach((_, ax) => {
          const r = axes.indexOf(ax);
          if (r >= 0) {
            inCoords.push(vars[r]);
            if (keep) k++;
          } else inCoords.push(coords[k++]);
        });
        return this.value(node.inputs[0], inCoords);
      },
    );
    if (node.op === "mean") return `${acc} / ${literal(extents.reduce((p, q) => p * q, 1))}`;
    return acc;
  }

  private matmul(node: Node, coords: string[]): string {
    const [aId, bId] = node.inputs;
    const aShape = this.shape(aId);
    const bShape = this.shape(bId);
    const K = aShape[aShape.length - 1];
    const batch = coords.slice(0, -2);
    const [i, j] = coords.slice(-2);
    return this.loopNest(
      coords,
      [K],
      "0.0",
      (acc, v) => `${acc} + ${v}`,
      ([k]) => {
        const aBatch = broadcastCoords(batch, aShape.slice(0, -2));
        const bBatch = broadcastCoords(batch, bShape.slice(0, -2));
        const av = this.value(aId, [...aBatch, i, k]);
        const bv = this.value(bId, [...bBatch, k, j]);
        return `${av} * ${bv}`;
      },
    );
  }

  /** out[row, ...] = sum of g[p, ...] over positions p whose id is row. */
  private scatter(node: Node, coords: string[]): string {
    const [idsId, gId] = node.inputs;
    const idsShape = this.shape(idsId);
    const positions = idsShape.reduce((p, q) => p * q, 1);
    const [row, ...rest] = coords;
    // Ids the host holds (a graph input): walk only this row's positions, via
    // index tables the runtime builds per call — O(positions + rows) work in all,
    // instead of every row scanning every position.
    if (this.g.nodes[idsId].op === "input" && this.argOf.has(idsId)) {
      const rows = this.shape(node.id)[0];
      const order = this.extra("order", idsId, rows);
      const offsets = this.extra("offsets", idsId, rows);
      const start = this.bind(`start@${row}`, `${offsets}[${row}]`, [row]);
      const count = this.bind(`count@${row}`, `${offsets}[${row} + 1] - ${start}`, [row]);
      return this.loopNest(
        coords,
        [positions],
        "0.0",
        (acc, v) => `${acc} + ${v}`,
        ([j]) => {
          this.scopes[this.scopes.length - 1].lines.push(`if (${j} >= ${count}) { break; }`);
          const p = this.bind(`p@${j}`, `${order}[${start} + ${j}]`, [j]);
          return this.value(gId, [...unravel(p, idsShape), ...rest]);
        },
      );
    }
    return this.loopNest(
      coords,
      [positions],
      "0.0",
      (acc, v) => `${acc} + ${v}`,
      ([p]) => {
        const pc = unravel(p, idsShape);
        const id = this.value(idsId, pc);
        return `(${id} == ${row} ? ${this.value(gId, [...pc, ...rest])} : 0.0)`;
      },
    );
  }

  private readonly extras: KernelSource["extras"] = [];

  /** Parameter name of a host-derived index table (declared after the inputs). */
  private extra(kind: "order" | "offsets", ids: number, rows: number): string {
    let k = this.extras.findIndex((e) => e.kind === kind && e.ids === ids);
    if (k < 0) k = this.extras.push({ kind, ids, rows }) - 1;
    return `in${this.kernel.inputs.length + k}`;
  }

  emit(): KernelSource {
    const outShape = this.shape(this.kernel.output);
    const size = outShape.reduce((p, q) => p * q, 1);
    const body = this.scopes[0];
    const twoD = this.layout === "2d" && outShape.length >= 2 && outShape[outShape.length - 1] > 1;
    const last = outShape[outShape.length - 1];
    let coords: string[];
    if (twoD) {
      body.lines.push("const x = this.thread.x;", "const y = this.thread.y;");
      coords = [...unravel("y", outShape.slice(0, -1)), "x"];
    } else {
      body.lines.push("const i = this.thread.x;");
      coords = unravel("i", outShape);
    }
    const named = coords.map((c, k) => {
      if (/^[\w]+$/.test(c)) return c;
      const name = `c${k}`;
      body.lines.push(`const ${name} = ${c};`);
      return name;
    });
    const result = this.compute(this.g.nodes[this.kernel.output], named);
    body.lines.push(`return ${result};`);
    const params = [...this.kernel.inputs, ...this.extras].map((_, k) => `in${k}`).join(", ");
    return {
      name: this.kernel.name,
      source: `function (${params}) {\n${body.lines.map((l) => `  ${l}`).join("\n")}\n}`,
      outputSize: Math.max(1, size),
      dims: twoD ? [last, size / last] : [Math.max(1, size)],
      inputs: this.kernel.inputs,
      output: this.kernel.output,
      extras: this.extras,
      inputDims: this.inputDims,
      constants: this.constants,
    };
  }
}

export function kernelSource(
  g: Graph,
  kernel: Kernel,
  bindings: Record<string, number>,
  layout: "1d" | "2d" = "1d",
  options: KernelOptions = {},
): KernelSource {
  return new Emitter(g, kernel, bindings, layout, options).emit();
}
