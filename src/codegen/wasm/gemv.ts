// One row times a matrix that is no weight (decoding's attention: a query
// times the cached keys, the scores times the cached values), straight from
// where the matrix lies. The packed GEMM would first copy the matrix into
// panels, which for a single row is most of the work: the caches grow with
// the context, and change every step, so no pack is ever reused.
//
//   gemv_rows(a, b, c, K, N, ldb): c[n] = sum_k a[k] b[k ldb + n]  (B's rows contiguous)
//   gemv_cols(a, b, c, K, N, ldb): c[n] = sum_k a[k] b[n ldb + k]  (B's columns contiguous)
//
// Addresses are bytes, ldb elements; a and c are contiguous.
import { Fn, type Local } from "./bytes.js";

/** Lanes of C per step of gemv_rows (four vectors of accumulators). */
const ROW_BLOCK = 16;

/** Pushes the address of float `i` of the floats at byte address `base`. */
const at = (f: Fn, base: Local, i: Local) => f.get(base).get(i).i32(2).i32Shl().i32Add();

/** s += x * y, scalars, x and y pushed by the callbacks. */
const scalarMadd = (f: Fn, s: Local, x: (f: Fn) => Fn, y: (f: Fn) => Fn) =>
  y(x(f.get(s)))
    .ins("f32.mul")
    .ins("f32.add")
    .set(s);

export function gemvRows(fma: boolean): Fn {
  const f = new Fn("gemv_rows", ["i32", "i32", "i32", "i32", "i32", "i32"]);
  const [a, b, c, K, N, ldb] = f.params;
  const n = f.local("i32");
  const k = f.local("i32");
  const p = f.local("i32");
  const av = f.local("v128");
  const acc = Array.from({ length: ROW_BLOCK / 4 }, () => f.local("v128"));
  const s = f.local("f32");
  /** Columns [n, n + width) of C, `width` a multiple of 4 (or 1: scalar). */
  const block = (width: number) => {
    const vectors = Math.floor(width / 4);
    for (let v = 0; v < vectors; v++) f.v128Zero().set(acc[v]);
    if (width === 1) f.f32Const0().set(s);
    // p walks B's column n down the rows.
    at(f, b, n).set(p);
    f.for(k, 0, K, 1, (f) => {
      if (width === 1)
        scalarMadd(
          f,
          s,
          (f) => at(f, a, k).f32Load(),
          (f) => f.get(p).f32Load(),
        );
      else {
        at(f, a, k).v128Load32Splat().set(av);
        for (let v = 0; v < vectors; v++)
          f.get(av)
            .get(p)
            .v128Load(16 * v)
            .f32x4MaddInto(acc[v], fma);
      }
      f.get(p).get(ldb).i32(2).i32Shl().i32Add().set(p);
    });
    if (width === 1) at(f, c, n).get(s).f32Store();
    for (let v = 0; v < vectors; v++)
      at(f, c, n)
        .get(acc[v])
        .v128Store(16 * v);
    f.inc(n, width);
  };
  for (const width of [ROW_BLOCK, 4, 1])
    f.while(
      (f) => f.get(n).i32(width).i32Add().get(N).i32LeS(),
      () => block(width),
    );
  return f;
}

export function gemvCols(fma: boolean): Fn {
  const f = new Fn("gemv_cols", ["i32", "i32", "i32", "i32", "i32", "i32"]);
  const [a, b, c, K, N, ldb] = f.params;
  const n = f.local("i32");
  const k = f.local("i32");
  const col = f.local("i32");
  const acc = f.local("v128");
  const s = f.local("f32");
  const K4 = f.local("i32");
  f.get(K).i32(-4).i32And().set(K4);
  // One column at a time: four lanes along k, summed at the end, then k's tail.
  f.for(n, 0, N, 1, (f) => {
    f.get(b).get(n).get(ldb).i32Mul().i32(2).i32Shl().i32Add().set(col);
    f.v128Zero().set(acc);
    f.for(k, 0, K4, 4, (f) => {
      at(f, a, k).v128Load();
      at(f, col, k).v128Load().f32x4MaddInto(acc, fma);
    });
    f.get(acc).lane("f32x4.extract", 0);
    for (let l = 1; l < 4; l++) f.get(acc).lane("f32x4.extract", l).ins("f32.add");
    f.set(s);
    f.for(k, K4, K, 1, (f) =>
      scalarMadd(
        f,
        s,
        (f) => at(f, a, k).f32Load(),
        (f) => at(f, col, k).f32Load(),
      ),
    );
    at(f, c, n).get(s).f32Store();
  });
  return f;
}
