// One row of activations times an int8 weight (decoding's products with
// `--weights-dtype int8`), in integers. Widening every weight to float32
// costs a swizzle and a conversion per four weights besides the multiply-add,
// which makes int8 rows compute-bound at about a third of the memory's
// bandwidth. Here the row is rounded to int16 once per product (one scale:
// max |x| / 32767, so each element moves by at most 2^-16 of the row's largest,
// far below the weights' own 8-bit rounding), and the weights widen by a
// sign-extending load into int16 pairs that `i32x4.dot_i16x8_s` (one pmaddwd
// on x86) multiplies and sums with the row's pairs: per 16 weights two loads,
// two dots and two adds, where the float path takes thirteen instructions.
//
//   quantize_row(src, K, dst): the f32 at dst is the row's scale times 2^24
//     (the packed columns' scales carry 2^-24, see PackedB in gemm.ts); the
//     int16 from dst + 16, K rounded up to pairs (an odd K's last is zero).
//   gemv_int8(aq, bp, c, K, j0, j1, scales): c[j] for columns [j0, j1)
//     (whole panels) of the row at aq (quantize_row's) times B packed as int8
//     pairs (bp; see PackedB), the columns' scales at `scales`.
//
// Exact integer sums overflow int32 past ~258 pairs (|127 x 32767| x 2 per
// pair), so the sums are converted to float32 and added to C every BLOCK
// pairs. A row that holds NaN or infinity has no int16 form: its scale is
// not finite and the caller multiplies it in floats instead.
import { Fn, splatF32, type Local } from "./bytes.js";

/** Pairs of k summed in int32 before they are added to C in float32. */
export const BLOCK = 128;
/** The largest int16 a row's element becomes (its max |x|). */
export const ROW_MAX = 32767;

export function quantizeRow(): Fn {
  const f = new Fn("quantize_row", ["i32", "i32", "i32"]);
  const [src, K, dst] = f.params;
  const k = f.local("i32");
  const m = f.local("v128");
  const inv = f.local("v128");
  /** Pushes the four floats from element k, `at` bytes on. */
  const x = (f: Fn, at: number) => f.get(src).get(k).i32(2).i32Shl().i32Add().v128Load(at);
  /** Pushes `load`'s four floats times inv, rounded to integers (ties to even). */
  const rounded = (f: Fn, load: (f: Fn) => Fn) =>
    load(f).get(inv).f32x4Mul().v("f32x4.nearest").v("i32x4.trunc_sat_f32x4_s");
  // m: max |x| in every lane (NaN if any is NaN: f32x4.max propagates it).
  f.v128Zero().set(m);
  f.while(
    (f) => f.get(k).i32(4).i32Add().get(K).i32LeS(),
    (f) => {
      f.get(m);
      x(f, 0).v("f32x4.abs").v("f32x4.max").set(m);
      f.inc(k, 4);
    },
  );
  f.for(k, k, K, 1, (f) =>
    f
      .get(m)
      .get(src)
      .get(k)
      .i32(2)
      .i32Shl()
      .i32Add()
      .v128Load32Splat()
      .v("f32x4.abs")
      .v("f32x4.max")
      .set(m),
  );
  const lanes = (shift: number) => Array.from({ length: 16 }, (_, i) => (i + shift * 4) % 16);
  for (const shift of [2, 1]) f.get(m).get(m).shuffle(lanes(shift)).get(m).v("f32x4.max").set(m);
  // The scale (m / 32767, times 2^24 exactly) for gemv_int8; inv rounds x to int16.
  f.get(dst)
    .get(m)
    .v128Const(splatF32(ROW_MAX))
    .v("f32x4.div")
    .v128Const(splatF32(2 ** 24))
    .f32x4Mul()
    .lane("f32x4.extract", 0)
    .f32Store();
  f.v128Const(splatF32(ROW_MAX)).get(m).v("f32x4.div").set(inv);
  /** Pushes the address of int16 k. */
  const out = (f: Fn) => f.get(dst).get(k).i32(1).i32Shl().i32Add();
  f.i32(0).set(k);
  f.while(
    (f) => f.get(k).i32(8).i32Add().get(K).i32LeS(),
    (f) => {
      out(f);
      rounded(f, (f) => x(f, 0));
      rounded(f, (f) => x(f, 16));
      f.v("i16x8.narrow_i32x4_s").v128Store(16);
      f.inc(k, 8);
    },
  );
  f.for(k, k, K, 1, (f) => {
    out(f);
    rounded(f, (f) => f.get(src).get(k).i32(2).i32Shl().i32Add().v128Load32Splat());
    f.lane("i32x4.extract", 0).i32Store16(16);
  });
  // An odd K's pair ends in zero.
  f.get(K)
    .i32(1)
    .i32And()
    .ifElse((f) => out(f).i32(0).i32Store16(16));
  return f;
}

/** `NR`-column panels (8: a pair's 16 bytes), `PANELS` of them at once (see gemm.ts). */
export function gemvInt8(NR: number, PANELS: number): Fn {
  const f = new Fn("gemv_int8", Array<"i32">(7).fill("i32"));
  const [aq, bp, c, K, j0, j1, scales] = f.params;
  const pairs = f.local("i32");
  const j = f.local("i32");
  const kb = f.local("i32");
  const kend = f.local("i32");
  const a = f.local("i32");
  const aend = f.local("i32");
  const b = f.local("i32");
  const cp = f.local("i32");
  const av = f.local("v128");
  const sum = f.local("v128");
  const rowScale = f.local("v128");
  const acc: Local[] = Array.from({ length: 2 * PANELS }, () => f.local("v128"));
  /** Byte distances from panel j's B to the next PANELS - 1 panels'. */
  const panelAt: Local[] = [];
  f.get(K).i32(1).i32Add().i32(1).ins("i32.shr_u").set(pairs);
  for (let t = 1; t < PANELS; t++) {
    panelAt[t] = f.local("i32");
    f.get(pairs)
      .i32(16 * t)
      .i32Mul()
      .set(panelAt[t]);
  }
  f.get(aq).v128Load32Splat().set(rowScale);

  /** P panels from column j: every block of pairs summed into C, then C scaled. */
  const panels = (f: Fn, P: number) => {
    const cOf = (f: Fn, t: number, h: number) =>
      f
        .get(cp)
        .i32(32 * t + 16 * h)
        .i32Add();
    // b = bp + (panel j's first byte: j columns of `pairs` 2-byte pairs).
    f.get(bp).get(j).get(pairs).i32Mul().i32(1).i32Shl().i32Add().set(b);
    f.get(c).get(j).i32(2).i32Shl().i32Add().set(cp);
    f.for(kb, 0, pairs, BLOCK, (f) => {
      f.get(kb).i32(BLOCK).i32Add().set(kend);
      f.get(kend)
        .get(pairs)
        .i32GtS()
        .ifElse((f) => f.get(pairs).set(kend));
      for (let v = 0; v < 2 * P; v++) f.v128Zero().set(acc[v]);
      f.get(aq)
        .i32(16)
        .i32Add()
        .get(kb)
        .i32(2)
        .i32Shl()
        .i32Add()
        .tee(a)
        .get(kend)
        .get(kb)
        .i32Sub()
        .i32(2)
        .i32Shl()
        .i32Add()
        .set(aend);
      f.while(
        (f) => f.get(a).get(aend).i32LtU(),
        (f) => {
          f.get(a).v128Load32Splat().set(av);
          for (let t = 0; t < P; t++)
            for (const h of [0, 1]) {
              f.get(acc[2 * t + h]);
              (t ? f.get(b).get(panelAt[t]).i32Add() : f.get(b)).v128Load8x8S(8 * h);
              f.get(av)
                .v("i32x4.dot_i16x8_s")
                .v("i32x4.add")
                .set(acc[2 * t + h]);
            }
          f.inc(a, 4).inc(b, 16);
        },
      );
      // C = (C +) the block's sums as floats.
      for (let t = 0; t < P; t++)
        for (const h of [0, 1]) {
          f.get(acc[2 * t + h])
            .v("f32x4.convert_i32x4_s")
            .set(sum);
          cOf(f, t, h);
          f.get(kb).ifElse(
            (f) => cOf(f, t, h).v128Load().get(sum).f32x4Add(),
            (f) => f.get(sum),
            "v128",
          );
          f.v128Store();
        }
    });
    // C *= the columns' scales times the row's.
    for (let t = 0; t < P; t++)
      for (const h of [0, 1]) {
        cOf(f, t, h);
        cOf(f, t, h).v128Load();
        f.get(scales)
          .get(j)
          .i32(8 * t + 4 * h)
          .i32Add()
          .i32(2)
          .i32Shl()
          .i32Add()
          .v128Load()
          .get(rowScale)
          .f32x4Mul()
          .f32x4Mul()
          .v128Store();
      }
    f.inc(j, NR * P);
  };
  f.get(j0).set(j);
  f.while(
    (f) => f.get(j).get(j1).i32LtS(),
    (f) =>
      f
        .get(j)
        .i32(NR * PANELS)
        .i32Add()
        .get(j1)
        .i32LeS()
        .ifElse(
          (f) => panels(f, PANELS),
          (f) => panels(f, 1),
        ),
  );
  return f;
}
