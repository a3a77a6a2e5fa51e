// A minimal WebAssembly binary writer: just the sections and opcodes gptc's
// own kernels use (i32 address arithmetic, f32 and f32x4 SIMD loads, stores and
// arithmetic, structured loops). Generated code is bytes from here, never text.

export type ValType = "i32" | "f32" | "v128";
const valType: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };

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

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
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

  constructor(
    readonly exportName: string,
    readonly paramTypes: ValType[],
  ) {
    this.params = paramTypes.map((_, index) => ({ index }));
  }

  local(type: ValType): Local {
    this.locals.push(type);
    return { index: this.paramTypes.length + this.locals.length - 1 };
  }

  private op(...bytes: number[]): this {
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
  f32Store(offset = 0): this {
    return this.op(0x38, 2, ...uleb(offset));
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

  /** `block { loop { if !(cond) break; body; continue } }` */
  while(cond: (f: this) => void, body: (f: this) => void): this {
    this.op(0x02, 0x40, 0x03, 0x40);
    cond(this);
    this.i32Eqz().op(0x0d, 1); // br_if to the block's end
    body(this);
    return this.op(0x0c, 0, 0x0b, 0x0b); // br to the loop's start; end loop; end block
  }

  /** `for (i = from; i < to; i += step)` over i32 locals/constants. */
  for(i: Local, from: I32, to: I32, step: number, body: (f: this) => void): this {
    this.val(from).set(i);
    return this.while(
      (f) => f.get(i).val(to).i32LtS(),
      (f) => {
        body(f);
        f.inc(i, step);
      },
    );
  }

  ifElse(then: (f: this) => void, otherwise?: (f: this) => void): this {
    this.op(0x04, 0x40);
    then(this);
    if (otherwise) {
      this.op(0x05);
      otherwise(this);
    }
    return this.op(0x0b);
  }

  body(): number[] {
    const groups: number[][] = [];
    for (const t of this.locals) groups.push([...uleb(1), valType[t]]);
    const b = [...vec(groups), ...this.code, 0x0b];
    return [...uleb(b.length), ...b];
  }
}

/**
 * A module that imports its memory (`env.memory`, shared when `shared`) and
 * exports every function. Functions return nothing.
 */
export function moduleBytes(
  fns: Fn[],
  memory: { initial: number; maximum: number; shared: boolean },
): Uint8Array<ArrayBuffer> {
  const types = vec(fns.map((f) => [0x60, ...vec(f.paramTypes.map((t) => [valType[t]])), 0]));
  const limits = [memory.shared ? 0x03 : 0x01, ...uleb(memory.initial), ...uleb(memory.maximum)];
  const imports = vec([[...name("env"), ...name("memory"), 0x02, ...limits]]);
  const funcs = vec(fns.map((_, i) => uleb(i)));
  const exports = vec(fns.map((f, i) => [...name(f.exportName), 0x00, ...uleb(i)]));
  const code = vec(fns.map((f) => f.body()));
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, code),
  ]);
}
