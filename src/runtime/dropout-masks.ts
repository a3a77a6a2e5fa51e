// Dropout masks for the executor, computed by a small WebAssembly module: the
// same Philox 4x32-10 as ops/random.ts (the reference interpreter's), with
// exact 64-bit products (i64.mul) instead of float64 arithmetic, about ten
// times faster than JavaScript (a bench training step fills 5.8 million mask
// elements: its forward and backward kernels each recompute theirs).
// test/random.test.ts checks it against the JavaScript generator bit for bit.
import type { HostMask } from "../codegen/host-random.js";
import { Fn, moduleBytes, type Local } from "../codegen/wasm/bytes.js";
import { dropoutMask, keepScale } from "../ir/ops/random.js";

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

// Opcodes the shared writer's table does not name (WebAssembly core spec numbers).
const I64_MUL = 0x7e;
const I64_EXTEND_I32_U = 0xad;
const I32_SHR_U = 0x76;
const I32_XOR = 0x73;
const I64_SHR_U = 0x88;
const I32_WRAP_I64 = 0xa7;

/**
 * fill(out, blocks, seed, step, micro, stream, cut, scale): for each block b,
 * Philox at counter (b, step, micro, 0) and key (seed, stream); lane k of the
 * result decides element 4b + k (0 where word >> 8 < cut, else scale), stored
 * as f32 at out + 16 b + 4 k.
 */
function fillFunction(): Fn {
  const f = new Fn("fill", ["i32", "i32", "i32", "i32", "i32", "i32", "i32", "f32"]);
  const [out, blocks, seed, step, micro, stream, cut, scale] = f.params;
  const b = f.local("i32");
  const c = [f.local("i32"), f.local("i32"), f.local("i32"), f.local("i32")];
  const k0 = f.local("i32");
  const k1 = f.local("i32");
  const p0 = f.local("i64");
  const p1 = f.local("i64");
  const t = f.local("i32");
  /** The 64-bit product of the constant m and local x. */
  const product = (m: number, x: Local, into: Local) =>
    f.i64(BigInt(m)).get(x).op(I64_EXTEND_I32_U, I64_MUL).set(into);
  const high = (p: Local) => f.get(p).i64(32n).op(I64_SHR_U, I32_WRAP_I64);
  f.for(b, 0, blocks, 1, () => {
    f.get(b).set(c[0]).get(step).set(c[1]).get(micro).set(c[2]).i32(0).set(c[3]);
    f.get(seed).set(k0).get(stream).set(k1);
    for (let r = 0; r < 10; r++) {
      if (r > 0) {
        f.get(k0)
          .i32(W0 | 0)
          .i32Add()
          .set(k0);
        f.get(k1)
          .i32(W1 | 0)
          .i32Add()
          .set(k1);
      }
      product(M0, c[0], p0);
      product(M1, c[2], p1);
      // c0 = hi1 ^ c1 ^ k0 (t keeps it: c1 is overwritten next); c1 = lo1
      high(p1).get(c[1]).op(I32_XOR).get(k0).op(I32_XOR).set(t);
      f.get(p1).op(I32_WRAP_I64).set(c[1]);
      // c2 = hi0 ^ c3 ^ k1; c3 = lo0
      high(p0).get(c[3]).op(I32_XOR).get(k1).op(I32_XOR).set(c[2]);
      f.get(p0).op(I32_WRAP_I64).set(c[3]);
      f.get(t).set(c[0]);
    }
    for (let lane = 0; lane < 4; lane++) {
      // address out + 16 b; the store's offset picks the lane
      f.get(out).get(b).i32(4).i32Shl().i32Add();
      f.f32Const0().get(scale);
      f.get(c[lane]).i32(8).op(I32_SHR_U).get(cut).i32LtU();
      f.ins("select").f32Store(4 * lane);
    }
  });
  return f;
}

interface Engine {
  memory: WebAssembly.Memory;
  fill: (...args: number[]) => void;
}
let engine: Engine | undefined;

function instantiate(): Engine {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536 });
  const bytes = moduleBytes([fillFunction()], { initial: 1, maximum: 65536, shared: false });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
  return { memory, fill: inst.exports.fill as Engine["fill"] };
}

/**
 * The mask of op `stream` for a key (as ops/random.ts dropoutMask computes it).
 * Masks past what one WebAssembly memory holds are computed in JavaScript.
 */
export function fastDropoutMask(
  key: ArrayLike<number>,
  stream: number,
  p: number,
  n: number,
): Float32Array {
  const blocks = Math.ceil(n / 4);
  const bytes = blocks * 16;
  if (bytes > 2 ** 31) return dropoutMask(key, stream, p, n);
  engine ??= instantiate();
  const have = engine.memory.buffer.byteLength;
  if (bytes > have) engine.memory.grow(Math.ceil((bytes - have) / 65536));
  const word = (k: number) => (key[2 * k] & 0xffff) | ((key[2 * k + 1] & 0xffff) << 16) | 0;
  const cut = Math.ceil(p * 2 ** 24);
  engine.fill(0, blocks, word(0), word(1), word(2), stream | 0, cut, keepScale(p));
  return new Float32Array(engine.memory.buffer, 0, n).slice();
}

/** A kernel's mask for this run's key. */
export function fillMask(key: Float32Array, m: HostMask): Float32Array {
  return fastDropoutMask(key, m.stream, m.p, m.size);
}
