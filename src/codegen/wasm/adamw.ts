// The AdamW update as a WebAssembly function (four float32 lanes at a time),
// in torch's order and precision (torch.optim.AdamW's single-tensor step
// computes in float32):
//
//   p = p * decay
//   m = beta1 m + (1 - beta1) g
//   v = beta2 v + (1 - beta2) g g
//   p = p - stepSize m / (sqrt(v) / sqrt(bc2) + eps)
//
// Export `run(out, from, to, p, g, m, v, c)` in the kernel calling convention
// (runtime/gemm.ts runKernel: elements [from, to), `out` unused), addresses in
// bytes; c holds the eight float32 constants below.
import { Fn, moduleBytes, type Local } from "./bytes.js";

/** Order of the constants block. */
export const ADAMW_CONSTANTS = [
  "decay",
  "beta1",
  "oneMinusBeta1",
  "beta2",
  "oneMinusBeta2",
  "stepSize",
  "sqrtBc2",
  "eps",
] as const;

export function adamwModule(memory: {
  initial: number;
  maximum: number;
  shared: boolean;
}): Uint8Array<ArrayBuffer> {
  const f = new Fn("run", ["i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"]);
  const [, from, to, p, g, m, v, c] = f.params;
  const i = f.local("i32");
  const at = f.local("i32");
  // One local per constant, as a vector (splat) and as a scalar (the tail).
  const vec = ADAMW_CONSTANTS.map(() => f.local("v128"));
  const sc = ADAMW_CONSTANTS.map(() => f.local("f32"));
  ADAMW_CONSTANTS.forEach((_, k) => {
    f.get(c)
      .v128Load32Splat(4 * k)
      .set(vec[k]);
    f.get(c)
      .f32Load(4 * k)
      .set(sc[k]);
  });
  const [decay, b1, c1, b2, c2, step, bc2, eps] = [0, 1, 2, 3, 4, 5, 6, 7];
  const gv = f.local("v128");
  const mv = f.local("v128");
  const vv = f.local("v128");
  const gs = f.local("f32");
  const ms = f.local("f32");
  const vs = f.local("f32");
  /** Pushes the address of element i of array `base`. */
  const addr = (base: Local) => f.get(base).get(at).i32Add();

  f.get(from).set(i);
  // Four at a time while four remain.
  f.while(
    (f) => f.get(i).i32(4).i32Add().get(to).i32LeS(),
    (f) => {
      f.get(i).i32(2).i32Shl().set(at);
      addr(g).v128Load().set(gv);
      addr(m).v128Load().get(vec[b1]).f32x4Mul().get(gv).get(vec[c1]).f32x4Mul().f32x4Add().set(mv);
      addr(v).v128Load().get(vec[b2]).f32x4Mul();
      f.get(gv).get(gv).f32x4Mul().get(vec[c2]).f32x4Mul().f32x4Add().set(vv);
      addr(m).get(mv).v128Store();
      addr(v).get(vv).v128Store();
      // p * decay - stepSize * m / (sqrt(v) / sqrtBc2 + eps)
      addr(p);
      addr(p).v128Load().get(vec[decay]).f32x4Mul();
      f.get(vec[step]).get(mv).f32x4Mul();
      f.get(vv).v("f32x4.sqrt").get(vec[bc2]).v("f32x4.div").get(vec[eps]).f32x4Add();
      f.v("f32x4.div").v("f32x4.sub").v128Store();
      f.inc(i, 4);
    },
  );
  // The rest one at a time, the same arithmetic in float32.
  f.while(
    (f) => f.get(i).get(to).i32LtS(),
    (f) => {
      f.get(i).i32(2).i32Shl().set(at);
      addr(g).f32Load().set(gs);
      addr(m).f32Load().get(sc[b1]).ins("f32.mul").get(gs).get(sc[c1]).ins("f32.mul");
      f.ins("f32.add").set(ms);
      addr(v).f32Load().get(sc[b2]).ins("f32.mul");
      f.get(gs).get(gs).ins("f32.mul").get(sc[c2]).ins("f32.mul").ins("f32.add").set(vs);
      addr(m).get(ms).f32Store();
      addr(v).get(vs).f32Store();
      addr(p);
      addr(p).f32Load().get(sc[decay]).ins("f32.mul");
      f.get(sc[step]).get(ms).ins("f32.mul");
      f.get(vs).ins("f32.sqrt").get(sc[bc2]).ins("f32.div").get(sc[eps]).ins("f32.add");
      f.ins("f32.div").ins("f32.sub").f32Store();
      f.inc(i, 1);
    },
  );
  return moduleBytes([f], memory);
}
