// A minimal WebAssembly binary writer: just the sections and opcodes gptc's
// own kernels use (i32 address arithmetic, f32 and f32x4 SIMD loads, stores and
// arithmetic, f64 scalar arithmetic, structured control, calls to helper
// functions). Generated code is bytes from here, never text.

export type ValType = "i32" | "i64" | "f32" | "f64" | "v128";
const valType: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/**
 * Opcodes without immediates, by their names in the WebAssembly text format
 * (for `Fn.ins`).
 */
export const OP = {
  select: 0x1b,
  drop: 0x1a,
  "i32.eqz": 0x45,
  "i32.eq": 0x46,
  "i32.ne": 0x47,
  "i32.lt_s": 0x48,
  "i32.lt_u": 0x49,
  "i32.gt_s": 0x4a,
  "i32.gt_u": 0x4b,
  "i32.le_s": 0x4c,
  "i32.le_u": 0x4d,
  "i32.ge_s": 0x4e,
  "i32.ge_u": 0x4f,
  "f64.eq": 0x61,
  "f64.ne": 0x62,
  "f64.lt": 0x63,
  "f64.gt": 0x64,
  "f64.le": 0x65,
  "f64.ge": 0x66,
  "i32.add": 0x6a,
  "i32.sub": 0x6b,
  "i32.mul": 0x6c,
  "i32.div_s": 0x6d,
  "i32.rem_s": 0x6f,
  "i32.and": 0x71,
  "i32.or": 0x72,
  "i32.xor": 0x73,
  "i32.shl": 0x74,
  "i32.shr_u": 0x76,
  "i64.and": 0x83,
  "i64.or": 0x84,
  "i64.shl": 0x86,
  "i64.shr_u": 0x88,
  "i64.add": 0x7c,
  "i64.sub": 0x7d,
  "f32.sqrt": 0x91,
  "f32.add": 0x92,
  "f32.sub": 0x93,
  "f32.mul": 0x94,
  "f32.div": 0x95,
  "f64.abs": 0x99,
  "f64.neg": 0x9a,
  "f64.ceil": 0x9b,
  "f64.floor": 0x9c,
  "f64.trunc": 0x9d,
  "f64.nearest": 0x9e,
  "f64.sqrt": 0x9f,
  "f64.add": 0xa0,
  "f64.sub": 0xa1,
  "f64.mul": 0xa2,
  "f64.div": 0xa3,
  "f64.min": 0xa4,
  "f64.max": 0xa5,
  "f64.copysign": 0xa6,
  "i32.wrap_i64": 0xa7,
  "i64.extend_i32_s": 0xac,
  "f32.demote_f64": 0xb6,
  "f64.convert_i32_s": 0xb7,
  "f64.promote_f32": 0xbb,
  "i64.reinterpret_f64": 0xbd,
  "f64.reinterpret_i64": 0xbf,
} as const;
export type OpName = keyof typeof OP;

/** SIMD instructions without immediates (prefix 0xfd), by their text-format names (for `Fn.v`). */
export const SIMD = {
  "i8x16.swizzle": 0x0e,
  "i32x4.splat": 0x11,
  "f32x4.splat": 0x13,
  "f64x2.splat": 0x14,
  "f32x4.demote_f64x2_zero": 0x5e,
  "f64x2.promote_low_f32x4": 0x5f,
  "f64x2.add": 0xf0,
  "i32x4.eq": 0x37,
  "i32x4.ne": 0x38,
  "i32x4.lt_s": 0x39,
  "i32x4.gt_s": 0x3b,
  "i32x4.le_s": 0x3d,
  "i32x4.ge_s": 0x3f,
  "f32x4.eq": 0x41,
  "f32x4.ne": 0x42,
  "f32x4.lt": 0x43,
  "f32x4.gt": 0x44,
  "f32x4.le": 0x45,
  "f32x4.ge": 0x46,
  "v128.not": 0x4d,
  "v128.and": 0x4e,
  "v128.andnot": 0x4f,
  "v128.or": 0x50,
  "v128.xor": 0x51,
  "v128.bitselect": 0x52,
  "f32x4.ceil": 0x67,
  "f32x4.floor": 0x68,
  "f32x4.trunc": 0x69,
  "f32x4.nearest": 0x6a,
  "i32x4.neg": 0xa1,
  "i16x8.narrow_i32x4_s": 0x85,
  "i32x4.extend_low_i16x8_s": 0xa7,
  "i32x4.extend_high_i16x8_s": 0xa8,
  "i32x4.shl": 0xab,
  "i32x4.shr_s": 0xac,
  "i32x4.shr_u": 0xad,
  "i32x4.add": 0xae,
  "i32x4.sub": 0xb1,
  "i32x4.mul": 0xb5,
  "i32x4.min_s": 0xb6,
  "i32x4.max_s": 0xb8,
  /** Lane j: a[2j] b[2j] + a[2j + 1] b[2j + 1], i16 lanes in, i32 out (pmaddwd on x86). */
  "i32x4.dot_i16x8_s": 0xba,
  "f32x4.abs": 0xe0,
  "f32x4.neg": 0xe1,
  "f32x4.sqrt": 0xe3,
  "f32x4.add": 0xe4,
  "f32x4.sub": 0xe5,
  "f32x4.mul": 0xe6,
  "f32x4.div": 0xe7,
  "f32x4.min": 0xe8,
  "f32x4.max": 0xe9,
  // a < b ? b : a (pmax), b < a ? b : a (pmin): one maxps/minps on x64, where
  // min/max's NaN and -0 rules take seven instructions.
  "f32x4.pmin": 0xea,
  "f32x4.pmax": 0xeb,
  "i32x4.trunc_sat_f32x4_s": 0xf8,
  "f32x4.convert_i32x4_s": 0xfa,
  "f32x4.convert_i32x4_u": 0xfb,
  /** a * b + c, fused where the CPU has FMA (relaxed SIMD; see runtime/wasm-features.ts). */
  "f32x4.relaxed_madd": 0x105,
} as const;
export type SimdName = keyof typeof SIMD;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

/**
 * `parts` one after another in one array. A module is assembled from parts
 * this way rather than by spreading arrays into arrays: a large kernel's
 * body is copied once per level instead of element by element through the
 * iterator (assembling was three quarters of making a module's bytes).
 */
function cat(parts: ArrayLike<number>[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function section(id: number, payload: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  return cat([[id], uleb(payload.length), payload]);
}

function vec(items: ArrayLike<number>[]): Uint8Array<ArrayBuffer> {
  return cat([uleb(items.length), ...items]);
}

/** Four float32 lanes of `v`, for `Fn.v128Const`. */
export const splatF32 = (v: number) => Float32Array.of(v, v, v, v);
/** Four i32 lanes of `v` (wrapped to 32 bits), for `Fn.v128Const`. */
export const splatI32 = (v: number) => Int32Array.of(v, v, v, v);

/**
 * A 4 x 4 transpose of the 32-bit lanes of `r` (four v128 locals, rows),
 * by eight shuffles through `t` (four more): `column(j, push)` is called for
 * each j with `push` pushing the vector of lane j of every row. `r` is free
 * to be overwritten from the first call on.
 */
export function transpose4x4(
  f: Fn,
  r: Local[],
  t: Local[],
  column: (j: number, push: (f: Fn) => Fn) => void,
): void {
  const lanes = (l: number[]) => l.flatMap((x) => [0, 1, 2, 3].map((b) => 4 * x + b));
  // i32 lanes of (a, b): [a0 b0 a1 b1], [a2 b2 a3 b3]; then 64-bit halves: [a.lo b.lo], [a.hi b.hi].
  const [lo, hi, low64, high64] = [
    [0, 4, 1, 5],
    [2, 6, 3, 7],
    [0, 1, 4, 5],
    [2, 3, 6, 7],
  ].map(lanes);
  f.get(r[0]).get(r[1]).shuffle(lo).set(t[0]);
  f.get(r[0]).get(r[1]).shuffle(hi).set(t[1]);
  f.get(r[2]).get(r[3]).shuffle(lo).set(t[2]);
  f.get(r[2]).get(r[3]).shuffle(hi).set(t[3]);
  // Lanes 0, 1 of the rows are in t0 / t2; lanes 2, 3 in t1 / t3.
  (
    [
      [t[0], t[2], low64],
      [t[0], t[2], high64],
      [t[1], t[3], low64],
      [t[1], t[3], high64],
    ] as const
  ).forEach(([a, b, l], j) => column(j, (f) => f.get(a).get(b).shuffle(l)));
}

/** A local variable (or parameter) of a function under construction. */
export interface Local {
  readonly index: number;
}
/** An i32 operand: a local or a constant. */
export type I32 = Local | number;

/**
 * One function body. Methods append instructions and return `this`, so code
 * reads in stack order: `f.get(a).get(b).i32Add().set(c)`.
 */
export class Fn {
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  readonly params: Local[];

  /** `exportName` "" keeps the function internal (a helper others call). */
  constructor(
    readonly exportName: string,
    readonly paramTypes: ValType[],
    readonly resultTypes: ValType[] = [],
  ) {
    this.params = paramTypes.map((_, index) => ({ index }));
  }

  /** An instruction without immediates. */
  ins(name: OpName): this {
    return this.op(OP[name]);
  }
  /** A SIMD instruction without immediates. */
  v(name: SimdName): this {
    return this.simd(SIMD[name]);
  }
  /** Lane `k` of an i32x4 / f32x4 out, or (replace) a scalar into it. */
  lane(
    op: "i32x4.extract" | "i32x4.replace" | "f32x4.extract" | "f32x4.replace" | "f64x2.extract",
    k: number,
  ): this {
    const code = {
      "f64x2.extract": 0x21,
      "i32x4.extract": 0x1b,
      "i32x4.replace": 0x1c,
      "f32x4.extract": 0x1f,
      "f32x4.replace": 0x20,
    };
    return this.simd(code[op], k);
  }
  /** i8x16.shuffle of the two vectors on the stack: byte k of the result is byte `lanes[k]` of (a, b). */
  shuffle(lanes: number[]): this {
    return this.simd(0x0d, ...lanes);
  }
  /**
   * A v128 constant of four i32 or four f32 lanes; with a `pool`, read from
   * the module's global for it (see ConstantPool).
   */
  v128Const(lanes: Int32Array | Float32Array): this {
    const bytes = [...new Uint8Array(lanes.buffer, lanes.byteOffset, 16)];
    if (!this.pool) return this.simd(0x0c, ...bytes);
    return this.op(0x23, ...uleb(this.pool.index(bytes)));
  }
  pool?: ConstantPool;
  tee(l: Local): this {
    return this.op(0x22, ...uleb(l.index));
  }
  f64(v: number): this {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    return this.op(0x44, ...b);
  }
  i64(v: bigint): this {
    const out: number[] = [];
    for (;;) {
      const b = Number(v & 0x7fn);
      v >>= 7n;
      if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
        out.push(b);
        break;
      }
      out.push(b | 0x80);
    }
    return this.op(0x42, ...out);
  }
  /** i32.trunc_sat_f64_s: NaN gives 0, out-of-range values saturate (never traps). */
  i32TruncSatF64(): this {
    return this.op(0xfc, 0x02);
  }
  call(index: number): this {
    return this.op(0x10, ...uleb(index));
  }
  /** `block` (label for a forward `br`) around `body`. */
  block(body: (f: this) => void): this {
    this.op(0x02, 0x40);
    body(this);
    return this.op(0x0b);
  }
  br(depth: number): this {
    return this.op(0x0c, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.op(0x0d, ...uleb(depth));
  }
  return(): this {
    return this.op(0x0f);
  }

  local(type: ValType): Local {
    this.locals.push(type);
    return { index: this.paramTypes.length + this.locals.length - 1 };
  }

  /** Appends raw instruction bytes (structured control the helpers below do not cover). */
  op(...bytes: number[]): this {
    this.code.push(...bytes);
    return this;
  }
  private simd(op: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(op), ...imm);
  }

  get(l: Local): this {
    return this.op(0x20, ...uleb(l.index));
  }
  set(l: Local): this {
    return this.op(0x21, ...uleb(l.index));
  }
  /** Pushes an i32 operand: a local's value or a constant. */
  val(v: I32): this {
    return typeof v === "number" ? this.i32(v) : this.get(v);
  }
  i32(v: number): this {
    return this.op(0x41, ...sleb(v | 0));
  }
  i32Add(): this {
    return this.op(0x6a);
  }
  i32Sub(): this {
    return this.op(0x6b);
  }
  i32Mul(): this {
    return this.op(0x6c);
  }
  i32Shl(): this {
    return this.op(0x74);
  }
  i32And(): this {
    return this.op(0x71);
  }
  i32Eq(): this {
    return this.op(0x46);
  }
  i32Eqz(): this {
    return this.op(0x45);
  }
  i32GeS(): this {
    return this.op(0x4e);
  }
  i32LtS(): this {
    return this.op(0x48);
  }
  i32LtU(): this {
    return this.op(0x49);
  }
  i32GtS(): this {
    return this.op(0x4a);
  }
  i32LeS(): this {
    return this.op(0x4c);
  }
  /** `local += by`. */
  inc(l: Local, by: I32): this {
    return this.get(l).val(by).i32Add().set(l);
  }
  f32Load(offset = 0): this {
    return this.op(0x2a, 2, ...uleb(offset));
  }
  i32Load(offset = 0): this {
    return this.op(0x28, 2, ...uleb(offset));
  }
  f32Store(offset = 0): this {
    return this.op(0x38, 2, ...uleb(offset));
  }
  /** i32.store16: the low 16 bits of an i32. */
  i32Store16(offset = 0): this {
    return this.op(0x3b, 1, ...uleb(offset));
  }
  f32Const0(): this {
    return this.op(0x43, 0, 0, 0, 0);
  }
  v128Load(offset = 0): this {
    return this.simd(0x00, 4, ...uleb(offset));
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b, 4, ...uleb(offset));
  }
  /** i16x8.load8x8_s: 8 signed bytes widened to 8 i16 lanes. */
  v128Load8x8S(offset = 0): this {
    return this.simd(0x01, 3, ...uleb(offset));
  }
  v128Load32Splat(offset = 0): this {
    return this.simd(0x09, 2, ...uleb(offset));
  }
  v128Zero(): this {
    return this.simd(0x0c, ...new Array(16).fill(0));
  }
  f32x4Add(): this {
    return this.simd(0xe4);
  }
  f32x4Mul(): this {
    return this.simd(0xe6);
  }
  /**
   * acc += the product of the two f32x4 on the stack: one fused multiply-add
   * with `fma` (relaxed SIMD, see runtime/wasm-features.ts), else a multiply
   * and an add (the same sum: addition commutes).
   */
  f32x4MaddInto(acc: Local, fma: boolean): this {
    if (fma) return this.get(acc).v("f32x4.relaxed_madd").set(acc);
    return this.f32x4Mul().get(acc).f32x4Add().set(acc);
  }

  /** `block { loop { if !(cond) break; body; continue } }` */
  while(cond: (f: this) => void, body: (f: this) => void): this {
    this.op(0x02, 0x40, 0x03, 0x40);
    cond(this);
    this.i32Eqz().op(0x0d, 1); // br_if to the block's end
    body(this);
    return this.op(0x0c, 0, 0x0b, 0x0b); // br to the loop's start; end loop; end block
  }

  /** `for (i = from; i < to; i += step)` over i32 locals/constants. */
  for(i: Local, from: I32, to: I32, step: I32, body: (f: this) => void): this {
    this.val(from).set(i);
    return this.while(
      (f) => f.get(i).val(to).i32LtS(),
      (f) => {
        body(f);
        f.inc(i, step);
      },
    );
  }

  /** `if` popping a condition; with `result`, both arms leave a value of that type. */
  ifElse(then: (f: this) => void, otherwise?: (f: this) => void, result?: ValType): this {
    this.op(0x04, result ? valType[result] : 0x40);
    then(this);
    if (otherwise) {
      this.op(0x05);
      otherwise(this);
    }
    return this.op(0x0b);
  }

  body(): Uint8Array {
    // One group per local: (count 1, type).
    const b = cat([vec(this.locals.map((t) => [1, valType[t]])), this.code, [0x0b]]);
    return cat([uleb(b.length), b]);
  }
}

/**
 * v128 constants kept in mutable globals of the module. V8 folds a v128.const
 * (or a local holding one) into each use and materializes it there with three
 * instructions, two of them on the shuffle port, inside loops too: exp's dozen
 * constants made it port-bound. A mutable global cannot be folded: it is one
 * load, often an operand of the instruction using it.
 */
export class ConstantPool {
  private readonly values = new Map<string, number>();
  index(bytes: number[]): number {
    const key = bytes.join(",");
    let i = this.values.get(key);
    if (i === undefined) this.values.set(key, (i = this.values.size));
    return i;
  }
  /** The global section's entries: mutable v128 globals, each set to its constant. */
  section(): number[][] {
    return [...this.values.keys()].map((key) => [
      0x7b,
      0x01,
      0xfd,
      ...uleb(0x0c),
      ...key.split(",").map(Number),
      0x0b,
    ]);
  }
}

/** A function the module imports from `env` (it takes function indices 0, 1, ... before `fns`). */
export interface FnImport {
  name: string;
  params: ValType[];
  results: ValType[];
}

const signature = (params: ValType[], results: ValType[]) => [
  0x60,
  ...vec(params.map((t) => [valType[t]])),
  ...vec(results.map((t) => [valType[t]])),
];

/**
 * A module that imports its memory (`env.memory`, shared when `shared`) and the
 * functions `imports`, and exports every function with an export name.
 */
export function moduleBytes(
  fns: Fn[],
  memory: { initial: number; maximum: number; shared: boolean },
  imported: FnImport[] = [],
  pool?: ConstantPool,
): Uint8Array<ArrayBuffer> {
  const types = vec([
    ...imported.map((f) => signature(f.params, f.results)),
    ...fns.map((f) => signature(f.paramTypes, f.resultTypes)),
  ]);
  const limits = [memory.shared ? 0x03 : 0x01, ...uleb(memory.initial), ...uleb(memory.maximum)];
  const imports = vec([
    [...name("env"), ...name("memory"), 0x02, ...limits],
    ...imported.map((f, i) => [...name("env"), ...name(f.name), 0x00, ...uleb(i)]),
  ]);
  const first = imported.length;
  const funcs = vec(fns.map((_, i) => uleb(first + i)));
  const exports = vec(
    fns.flatMap((f, i) =>
      f.exportName ? [[...name(f.exportName), 0x00, ...uleb(first + i)]] : [],
    ),
  );
  const code = vec(fns.map((f) => f.body()));
  return cat([
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    section(1, types),
    section(2, imports),
    section(3, funcs),
    pool ? section(6, vec(pool.section())) : [],
    section(7, exports),
    section(10, code),
  ]);
}
