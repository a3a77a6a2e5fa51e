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
import { Fn, transpose4x4, type Local } from "./bytes.js";

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
  const ldbBytes = f.local("i32");
  const av = f.local("v128");
  const acc = Array.from({ length: 4 }, () => f.local("v128"));
  const t = Array.from({ length: 4 }, () => f.local("v128"));
  const K4 = f.local("i32");
  f.get(K).i32(-4).i32And().set(K4);
  f.get(ldb).i32(2).i32Shl().set(ldbBytes);
  /** Pushes the address of element k of column n + j. */
  const colAt = (f: Fn, j: number) => {
    at(f, col, k);
    return j ? f.get(ldbBytes).i32(j).i32Mul().i32Add() : f;
  };
  /**
   * Columns [n, n + width) (width 4 or 1): four lanes along k per column,
   * then each column's lanes summed as ((l0 + l1) + l2) + l3 and k's tail
   * added in order. Four columns at once share the loads of a and sum their
   * lanes through a 4 x 4 transpose: one vector store instead of four
   * extract-and-add chains.
   */
  const columns = (width: number) => {
    f.get(b).get(n).get(ldb).i32Mul().i32(2).i32Shl().i32Add().set(col);
    for (let j = 0; j < width; j++) f.v128Zero().set(acc[j]);
    f.for(k, 0, K4, 4, (f) => {
      at(f, a, k).v128Load().set(av);
      for (let j = 0; j < width; j++) colAt(f, j).v128Load().get(av).f32x4MaddInto(acc[j], fma);
    });
    if (width === 4) {
      // Lane l of the four columns' sums into acc[l], then ((l0 + l1) + l2) + l3.
      transpose4x4(f, acc, t, (l, push) => push(f).set(acc[l]));
      at(f, c, n).get(acc[0]).get(acc[1]).f32x4Add().get(acc[2]).f32x4Add();
      f.get(acc[3]).f32x4Add().v128Store();
    } else {
      at(f, c, n).get(acc[0]).lane("f32x4.extract", 0);
      for (let l = 1; l < 4; l++) f.get(acc[0]).lane("f32x4.extract", l).ins("f32.add");
      f.f32Store();
    }
    // k's tail: c[n + j] += a[k] b[k of column n + j], in order.
    for (let j = 0; j < width; j++)
      f.for(k, K4, K, 1, (f) => {
        at(f, c, n);
        at(f, c, n)
          .f32Load(4 * j)
          .get(a)
          .get(k)
          .i32(2)
          .i32Shl()
          .i32Add()
          .f32Load();
        colAt(f, j)
          .f32Load()
          .ins("f32.mul")
          .ins("f32.add")
          .f32Store(4 * j);
      });
    f.inc(n, width);
  };
  for (const width of [4, 1])
    f.while(
      (f) => f.get(n).i32(width).i32Add().get(N).i32LeS(),
      () => columns(width),
    );
  return f;
}
