// gptc's matrix-multiply kernel for the CPU backends, as WebAssembly bytes.
// gpu.js computes one output element per thread, and its webasm backend turns
// each lane-varying load into four scalar loads, which caps a matmul near
// 1 GFLOP/s. This module is the classic packed GEMM instead (GotoBLAS/BLIS):
//
//   pack_a: A (any strides) -> panels of 4 rows, k-major: [k][4]
//   pack_b: B (any strides) -> panels of 8 columns, k-major: [k][8]
//           (one generator: a row of A and a column of B are both a "line")
//   gemm:   for each block of columns and depth, for each 4x8 tile of C, a
//           register-blocked micro-kernel: 8 f32x4 accumulators, per k one
//           8-wide row of B and four broadcast elements of A (multiply-adds
//           fused where relaxed SIMD is available).
//
// C is written for rows below M only (a last panel of 1-3 rows has its own
// micro-kernel) and for whole 8-column panels: the caller gives C with rows N
// apart when N is a multiple of 8 (in place), else a padded C or tile to copy
// from. Addresses are bytes, strides elements.
import { Fn, moduleBytes, splatF32, splatI32, transpose4x4, type Local } from "./bytes.js";
import { gemvCols, gemvRows } from "./gemv.js";
import { gemvInt8, quantizeRow } from "./gemv-int8.js";

export const MR = 4;
export const NR = 8;
/** Depth of one block: a 4 x KC panel of A stays in L1, KC x NC of B in L2. */
export const KC = 256;
export const NC = 256;
/**
 * Panels one row's micro-kernel runs at once (decoding's products): a
 * thread streaming one panel at a time reaches about half the memory
 * bandwidth that four streams reach (bench/gemv.ts).
 */
export const PANELS = 4;

/**
 * The element type of packed B. Weight-only quantization (runtime/quantize.ts)
 * packs a weight's panels as int8 (8 bytes per k, the output channels' scales
 * beside them: `gemm_int8` takes their address and scales each tile once, at
 * its store) or float16 (16 bytes per k, `gemm_f16`). Both widen in
 * registers. int8 comes in pairs of k, 16 bytes: byte 2c + h holds column c
 * of k 2i + h, so that one sign-extending load of 8 bytes gives the (k, k + 1)
 * int16 pairs of four columns that gemv_int8 multiplies with a row's pairs
 * (gemv-int8.ts). gemm_int8 (several rows) widens to float32 instead: one
 * swizzle per four columns of one k (constant indices: zeros, then byte
 * 2c + h, in each lane) makes each lane that byte times 2^24 as an i32,
 * converted exactly; the scales carry the 2^-24 (runtime/gemm.ts packs them
 * so). On x86 the swizzle runs on the shuffle port, which the multiply-adds
 * and conversions leave free: 8-15% faster one-row products than shifting and
 * masking, which compete with them for the same two ports. float16, which wasm
 * cannot load, by bit operations: sign-extended to i32 and shifted left 13,
 * the sign lands in bit 31 and exponent and mantissa in float32's places (bits
 * 28-30 hold copies of the sign, masked off); the value is then 2^-112 of the
 * half's, so one multiply by 2^112 makes it exact. (A subnormal half would make a
 * subnormal float32, which x86 multiplies ~100x slower: gptc's halves have
 * none, see normalHalf in runtime/quantize.ts.)
 */
export type PackedB = "f32" | "int8" | "f16";

/** K rounded up to whole int8 pairs (a panel of int8 B holds evenK(K) rows of k). */
export const evenK = (K: number) => K + (K & 1);

/**
 * Packs `lines` lines (rows of A, columns of B) into panels of W lines, k-major:
 * dst[p][k][w] = src[(p*W + w) * lineStride + k * kStride], zero lines past
 * the end. A full panel whose lines are adjacent (lineStride 1: a transposed A,
 * a row-major B) is copied W/4 vectors per k. One whose k are adjacent
 * (kStride 1: a row-major A, the transpose of a row-major B) is read four k
 * of four lines at a time and transposed in registers: element by element,
 * each line's loads and each k's stores would be scalar. Exported as
 * `name(src, lineStride, kStride, lines, K, dst)`.
 */
function packPanels(name: string, W: number): Fn {
  const f = new Fn(name, ["i32", "i32", "i32", "i32", "i32", "i32"]);
  const [src, ls, ks, lines, K, dst] = f.params;
  const p = f.local("i32");
  const w = f.local("i32");
  const k = f.local("i32");
  const s = f.local("i32");
  const d = f.local("i32");
  const at = f.local("i32");
  const padded = f.local("i32");
  const ksb = f.local("i32");
  const panelBytes = f.local("i32");
  /** lineAt[i]: the byte distance from line p to line p + i (i < W). */
  const lineAt = Array.from({ length: W }, () => f.local("i32"));
  const r = Array.from({ length: 4 }, () => f.local("v128"));
  const t = Array.from({ length: 4 }, () => f.local("v128"));
  /** Panels that one 64-byte line of adjacent lines fills. */
  const G = 16 / W;
  f.get(lines)
    .i32(W - 1)
    .i32Add()
    .i32(-W)
    .i32And()
    .set(padded);
  f.get(ks).i32(2).i32Shl().set(ksb);
  f.get(K)
    .i32(W * 4)
    .i32Mul()
    .set(panelBytes);
  for (let i = 1; i < W; i++)
    f.get(ls)
      .i32(4 * i)
      .i32Mul()
      .set(lineAt[i]);
  /** Whether lines p.. of `panels` whole panels all exist and `stride` (ls or ks) is 1. */
  const fullWith = (f: Fn, stride: Local, panels = 1) =>
    f
      .get(stride)
      .i32(1)
      .i32Eq()
      .get(p)
      .i32(panels * W)
      .i32Add()
      .get(lines)
      .i32LeS()
      .i32And();
  /** Pushes the address of line p + i's element at s (s: an element of line p). */
  const lineOf = (f: Fn, i: number) => (i ? f.get(s).get(lineAt[i]).i32Add() : f.get(s));
  /** d = the panel of line p. */
  const panelStart = (f: Fn) => f.get(dst).get(p).get(K).i32Mul().i32(2).i32Shl().i32Add().set(d);

  /**
   * Adjacent lines: W/4 vectors per k, for `panels` panels at once (k's
   * lines far apart: one whole 64-byte line of the source per k, not a
   * quarter or half of it, and a quarter of the address translations).
   */
  const copyRows = (panels: number) => (f: Fn) => {
    f.get(src).get(p).i32(2).i32Shl().i32Add().set(s);
    panelStart(f);
    f.for(k, 0, K, 1, (f) => {
      f.get(d).set(at);
      for (let q = 0; q < panels; q++) {
        if (q) f.inc(at, panelBytes);
        for (let v = 0; v < W; v += 4)
          f.get(at)
            .get(s)
            .v128Load(4 * (q * W + v))
            .v128Store(4 * v);
      }
      f.inc(s, ksb).inc(d, W * 4);
    });
  };

  /**
   * Adjacent k: for each 4 lines and 4 k, four loads (a line's 4 k each),
   * a 4 x 4 transpose (8 shuffles), four stores (a k's 4 lines each); an
   * odd end of K element by element. s walks line p's k.
   */
  const transposeBlocks = (f: Fn) => {
    f.get(src).get(p).get(ls).i32Mul().i32(2).i32Shl().i32Add().set(s);
    panelStart(f);
    f.i32(0).set(k);
    f.while(
      (f) => f.get(k).i32(4).i32Add().get(K).i32LeS(),
      (f) => {
        for (let g = 0; g < W; g += 4) {
          for (let i = 0; i < 4; i++)
            lineOf(f, g + i)
              .v128Load()
              .set(r[i]);
          // Column j: k + j of lines g..g+3.
          transpose4x4(f, r, t, (j, push) => push(f.get(d)).v128Store(4 * (j * W + g)));
        }
        f.inc(k, 4)
          .inc(s, 16)
          .inc(d, 4 * W * 4);
      },
    );
    // The last K % 4 k.
    f.while(
      (f) => f.get(k).get(K).i32LtS(),
      (f) => {
        for (let i = 0; i < W; i++) {
          f.get(d);
          lineOf(f, i)
            .f32Load()
            .f32Store(4 * i);
        }
        f.inc(k, 1)
          .inc(s, 4)
          .inc(d, W * 4);
      },
    );
  };

  /** Any strides, lines past the end as zeros: element by element. */
  const oneByOne = (f: Fn) =>
    f.for(w, 0, W, 1, (f) => {
      // d = dst + (p * K + w) * 4
      f.get(dst).get(p).get(K).i32Mul().get(w).i32Add().i32(2).i32Shl().i32Add().set(d);
      f.get(p)
        .get(w)
        .i32Add()
        .get(lines)
        .i32LtS()
        .ifElse(
          (f) => {
            // s = src + (p + w) * ls * 4
            f.get(src).get(p).get(w).i32Add().get(ls).i32Mul().i32(2).i32Shl().i32Add().set(s);
            f.for(k, 0, K, 1, (f) => {
              f.get(d).get(s).f32Load().f32Store();
              f.inc(s, ksb).inc(d, W * 4);
            });
          },
          (f) =>
            f.for(k, 0, K, 1, (f) => {
              f.get(d).f32Const0().f32Store();
              f.inc(d, W * 4);
            }),
        );
    });

  f.i32(0).set(p);
  f.while(
    (f) => f.get(p).get(padded).i32LtS(),
    (f) =>
      fullWith(f, ls, G).ifElse(
        (f) => {
          copyRows(G)(f);
          f.inc(p, G * W);
        },
        (f) => {
          fullWith(f, ls).ifElse(copyRows(1), (f) =>
            fullWith(f, ks).ifElse(transposeBlocks, oneByOne),
          );
          f.inc(p, W);
        },
      ),
  );
  return f;
}

/**
 * C[0:M, j0:j1] = Ap @ Bp with C's rows `ldc` floats apart; rows past M are
 * never written. Columns [j0, j1) only (whole panels), so threads can share
 * the work by column chunks; the depth in blocks of `depth` (KC; K for a
 * single row panel). The micro-kernel is specialized for the rows a panel
 * holds: a last panel of 1-3 rows (and decoding's single row) does only its
 * own rows' work.
 */
function gemm(fma: boolean, w: PackedB = "f32"): Fn {
  const name = w === "f32" ? "gemm" : `gemm_${w}`;
  const params = Array<"i32">(w === "f32" ? 9 : 10).fill("i32");
  const f = new Fn(name, params);
  const [ap, bp, c, M, K, ldc, j0, j1, depth, scales] = f.params;
  /** log2 of the bytes of one element of packed B. */
  const eShift = { f32: 2, f16: 1, int8: 0 }[w];
  const jc = f.local("i32");
  const jend = f.local("i32");
  const pc = f.local("i32");
  const kc = f.local("i32");
  const i = f.local("i32");
  const j = f.local("i32");
  const rows = f.local("i32");
  const a = f.local("i32");
  const b = f.local("i32");
  const aend = f.local("i32");
  const cp = f.local("i32");
  const ldcb = f.local("i32");
  const acc: Local[] = Array.from({ length: MR * 2 }, () => f.local("v128"));
  const b0 = f.local("v128");
  const b1 = f.local("v128");
  const av = f.local("v128");
  const raw = f.local("v128");
  // float16 -> float32 (see widenHalves); int8: the channel's scales at the store.
  const mask = f.local("v128");
  const pow112 = f.local("v128");
  const s0 = f.local("v128");
  const s1 = f.local("v128");
  const sp = f.local("i32");
  // int8: the second k's B and A, the panel depth (K rounded to pairs).
  const b2 = f.local("v128");
  const b3 = f.local("v128");
  const av2 = f.local("v128");
  const kPanel = f.local("i32");
  // int8: the swizzles that take column c of k 2i + h to the top of lane c % 4
  // (see PackedB), for b0..b3: k 2i columns 0-3 and 4-7, then k 2i + 1's.
  const byteAtTop: Local[] = [];
  if (w === "int8") {
    for (const [p, [c0, h]] of [
      [0, 0],
      [4, 0],
      [0, 1],
      [4, 1],
    ].entries()) {
      byteAtTop[p] = f.local("v128");
      // Lane j's bytes: 0x80 (a zero) three times, then byte 2(c0 + j) + h of raw.
      f.v128Const(Int32Array.from([0, 1, 2, 3], (j) => ((2 * (c0 + j) + h) << 24) | 0x808080)).set(
        byteAtTop[p],
      );
    }
    f.get(K).i32(1).i32Add().i32(-2).i32And().set(kPanel);
  } else f.get(K).set(kPanel);
  // Byte distances of the panels after the first, for one row's PANELS at once.
  const panelAt: Local[] = [];
  for (let t = 1; t < PANELS; t++) {
    panelAt[t] = f.local("i32");
    f.get(kPanel)
      .i32(t * NR)
      .i32Mul()
      .i32(eShift)
      .i32Shl()
      .set(panelAt[t]);
  }
  // float16, one row: A times 2^64 and B left at 2^-112 of its value, so that
  // every product is 2^-48 of the true one, exactly (both scalings are powers
  // of two; the products stay normal floats while |a| < 2^64 and |a w| >=
  // 2^-78), and C is scaled back at the store. This saves the multiply of
  // every widened vector for one per step of A (shared by PANELS panels).
  const pow64 = f.local("v128");
  const pow48 = f.local("v128");
  const powM48 = f.local("v128");
  if (w === "f16") {
    f.v128Const(splatI32(0x8fffffff | 0)).set(mask);
    f.v128Const(splatF32(2 ** 112)).set(pow112);
    f.v128Const(splatF32(2 ** 64)).set(pow64);
    f.v128Const(splatF32(2 ** 48)).set(pow48);
    f.v128Const(splatF32(2 ** -48)).set(powM48);
  }
  /**
   * float16 bits (the i32 lanes of a sign-extended i16x8 half) -> float32
   * (see the module comment); `scaled`: left at 2^-112 of the value.
   */
  const widenHalves = (
    f: Fn,
    extend: "i32x4.extend_low_i16x8_s" | "i32x4.extend_high_i16x8_s",
    scaled: boolean,
  ) => {
    f.get(raw).v(extend).i32(13).v("i32x4.shl").get(mask).v("v128.and");
    return scaled ? f : f.get(pow112).f32x4Mul();
  };

  /** Pushes the address of row r of the C tile. */
  const rowOfC = (f: Fn, r: number) => f.get(cp).get(ldcb).i32(r).i32Mul().i32Add();

  /**
   * The 4 x 8 (or R x 8) tile at (a, b) -> cp, over kc steps of depth; or,
   * for one row, P panels side by side (P x 8 columns, the panels' B read as
   * P streams at once: one stream of a single panel leaves most of the
   * memory's bandwidth unused). Tile t is row t of A with the panel, or
   * panel t with A's one row.
   */
  const micro = (f: Fn, R: number, P = 1) => {
    const T = P > 1 ? P : R;
    /** float16 products at 2^-48 of their value (see pow64). */
    const oneRowF16 = w === "f16" && P > 1;
    /** Pushes the address of B for tile t (panels panelStride bytes apart). */
    const bOf = (f: Fn, t: number) => (t && P > 1 ? f.get(b).get(panelAt[t]).i32Add() : f.get(b));
    /** A's element for tile t at byte `at` of the step, splat into `into`. */
    const aOf = (f: Fn, t: number, at: number, into: Local) => {
      f.get(a).v128Load32Splat(at + (P > 1 ? 0 : t * 4));
      if (oneRowF16) f.get(pow64).f32x4Mul();
      return f.set(into);
    };
    /** Loads (h = 0, 1) or stores the C vectors of tile t. */
    const cOf = (f: Fn, t: number, h: number) =>
      P > 1
        ? f
            .get(cp)
            .i32(32 * t + 16 * h)
            .i32Add()
        : rowOfC(f, t)
            .i32(16 * h)
            .i32Add();
    const madd = (f: Fn, t: number, h: number, bv: Local, avr: Local) =>
      f
        .get(avr)
        .get(bv)
        .f32x4MaddInto(acc[2 * t + h], fma);
    // The first depth block starts from zero, later ones add to C (int8:
    // every block from zero, added to C once scaled).
    if (w === "int8") for (let v = 0; v < 2 * T; v++) f.v128Zero().set(acc[v]);
    else
      f.get(pc)
        .i32Eqz()
        .ifElse(
          (f) => {
            for (let v = 0; v < 2 * T; v++) f.v128Zero().set(acc[v]);
          },
          (f) => {
            for (let t = 0; t < T; t++)
              for (const h of [0, 1]) {
                cOf(f, t, h).v128Load();
                if (oneRowF16) f.get(powM48).f32x4Mul();
                f.set(acc[2 * t + h]);
              }
          },
        );
    /** Byte `p` of each i32 lane of raw, times 2^24, as f32 (see PackedB). */
    const byteOf = (f: Fn, p: number) =>
      f.get(raw).get(byteAtTop[p]).v("i8x16.swizzle").v("f32x4.convert_i32x4_s");
    /** One step (an int8 pair of k, or with `single` an odd K's last k; else one k) into every tile. */
    const step = (f: Fn, single = false) => {
      const pair = w === "int8" && !single;
      if (P > 1) {
        aOf(f, 0, 0, av);
        if (pair) aOf(f, 0, MR * 4, av2);
      }
      for (let t = 0; t < T; t++) {
        if (P > 1 || t === 0) {
          if (w === "f32") {
            bOf(f, t).v128Load(0).set(b0);
            bOf(f, t).v128Load(16).set(b1);
          } else if (w === "f16") {
            bOf(f, t).v128Load(0).set(raw);
            widenHalves(f, "i32x4.extend_low_i16x8_s", oneRowF16).set(b0);
            widenHalves(f, "i32x4.extend_high_i16x8_s", oneRowF16).set(b1);
          } else {
            bOf(f, t).v128Load(0).set(raw);
            byteOf(f, 0).set(b0);
            byteOf(f, 1).set(b1);
            if (pair) byteOf(f, 2).set(b2);
            if (pair) byteOf(f, 3).set(b3);
          }
        }
        if (P === 1) {
          aOf(f, t, 0, av);
          if (pair) aOf(f, t, MR * 4, av2);
        }
        madd(f, t, 0, b0, av);
        madd(f, t, 1, b1, av);
        if (pair) madd(f, t, 0, b2, av2);
        if (pair) madd(f, t, 1, b3, av2);
      }
    };
    if (w === "int8") {
      // Pairs of k while two remain, then an odd K's last.
      f.while(
        (f) =>
          f
            .get(a)
            .i32(MR * 4)
            .i32Add()
            .get(aend)
            .i32LtU(),
        (f) => {
          step(f);
          f.inc(a, 2 * MR * 4).inc(b, 16);
        },
      );
      f.get(a)
        .get(aend)
        .i32LtU()
        .ifElse((f) => step(f, true));
    } else
      f.while(
        (f) => f.get(a).get(aend).i32LtU(),
        (f) => {
          step(f);
          f.inc(a, MR * 4).inc(b, NR << eShift);
        },
      );
    if (w === "int8")
      for (let t = 0; t < T; t++) {
        // The scales of this tile's columns.
        f.get(scales)
          .get(j)
          .i32(P > 1 ? 8 * t : 0)
          .i32Add()
          .i32(2)
          .i32Shl()
          .i32Add()
          .tee(sp)
          .v128Load(0)
          .set(s0);
        f.get(sp).v128Load(16).set(s1);
        for (const h of [0, 1]) {
          f.get(acc[2 * t + h])
            .get(h ? s1 : s0)
            .f32x4Mul()
            .set(acc[2 * t + h]);
          f.get(pc).ifElse((f) =>
            cOf(f, t, h)
              .v128Load()
              .get(acc[2 * t + h])
              .f32x4Add()
              .set(acc[2 * t + h]),
          );
        }
      }
    for (let t = 0; t < T; t++)
      for (const h of [0, 1]) {
        cOf(f, t, h).get(acc[2 * t + h]);
        if (oneRowF16) f.get(pow48).f32x4Mul();
        f.v128Store();
      }
    return f;
  };

  f.get(ldc).i32(2).i32Shl().set(ldcb);
  f.for(jc, j0, j1, NC, (f) => {
    f.get(jc).i32(NC).i32Add().set(jend);
    f.get(jend)
      .get(j1)
      .i32GtS()
      .ifElse((f) => f.get(j1).set(jend));
    f.for(pc, 0, K, depth, (f) => {
      f.get(K).get(pc).i32Sub().set(kc);
      f.get(kc)
        .get(depth)
        .i32GtS()
        .ifElse((f) => f.get(depth).set(kc));
      f.for(i, 0, M, MR, (f) => {
        f.get(M).get(i).i32Sub().set(rows);
        f.get(jc).set(j);
        f.while(
          (f) => f.get(j).get(jend).i32LtS(),
          (f) => {
            // a = ap + (i*K + pc*4)*4; b = bp + (j*K + pc*8) << eShift; cp = c + (i*ldc + j)*4
            f.get(ap).get(i).get(K).i32Mul().get(pc).i32(2).i32Shl().i32Add().i32(2).i32Shl();
            f.i32Add().set(a);
            f.get(bp)
              .get(j)
              .get(kPanel)
              .i32Mul()
              .get(pc)
              .i32(3)
              .i32Shl()
              .i32Add()
              .i32(eShift)
              .i32Shl();
            f.i32Add().set(b);
            f.get(c).get(i).get(ldc).i32Mul().get(j).i32Add().i32(2).i32Shl().i32Add().set(cp);
            f.get(a).get(kc).i32(4).i32Shl().i32Add().set(aend);
            // One row with PANELS whole panels left: those at once. Else
            // rows >= 4: the full tile; else the 1-, 2- or 3-row one.
            f.get(rows)
              .i32(1)
              .i32Eq()
              .get(j)
              .i32(NR * PANELS)
              .i32Add()
              .get(jend)
              .i32LeS()
              .i32And()
              .ifElse(
                (f) => micro(f, 1, PANELS).inc(j, NR * PANELS),
                (f) => {
                  f.get(rows)
                    .i32(MR)
                    .i32GeS()
                    .ifElse(
                      (f) => micro(f, 4),
                      (f) =>
                        f
                          .get(rows)
                          .i32(1)
                          .i32Eq()
                          .ifElse(
                            (f) => micro(f, 1),
                            (f) =>
                              f
                                .get(rows)
                                .i32(2)
                                .i32Eq()
                                .ifElse(
                                  (f) => micro(f, 2),
                                  (f) => micro(f, 3),
                                ),
                          ),
                    );
                  f.inc(j, NR);
                },
              );
          },
        );
      });
    });
  });
  return f;
}

/** Bytes of one item of gemm_items' table: five i32 addresses. */
export const ITEM_BYTES = 20;

/**
 * Items [m0, m1) of a batch of small products, each whole: pack its A and B,
 * multiply. Threads share a batch by items (attention's per-head products
 * in training), where splitting each item's packs and columns would cost
 * three hand-offs for a fraction of a millisecond of work each. Item m's
 * byte addresses are at table + m * ITEM_BYTES: A, B, packed A, packed B
 * (both its own), C (rows `ldc` floats apart; N a multiple of 8 or C
 * padded to it). `gemm_items(m0, m1, table, M, K, N, depth, aLs, aKs, bLs,
 * bKs, ldc)`; pack_a, pack_b and gemm are functions 0, 1 and 2.
 */
function gemmItems(): Fn {
  const f = new Fn("gemm_items", Array<"i32">(12).fill("i32"));
  const [m0, m1, table, M, K, N, depth, aLs, aKs, bLs, bKs, ldc] = f.params;
  const m = f.local("i32");
  const e = f.local("i32");
  f.for(m, m0, m1, 1, (f) => {
    f.get(table).get(m).i32(ITEM_BYTES).i32Mul().i32Add().set(e);
    const field = (f: Fn, k: number) => f.get(e).i32Load(4 * k);
    // pack_a(A, aLs, aKs, M, K, packed A)
    field(f, 0).get(aLs).get(aKs).get(M).get(K);
    field(f, 2).call(0);
    // pack_b(B, bLs, bKs, N, K, packed B)
    field(f, 1).get(bLs).get(bKs).get(N).get(K);
    field(f, 3).call(1);
    // gemm(packed A, packed B, C, M, K, ldc, 0, N rounded to 8, depth)
    field(f, 2);
    field(f, 3);
    field(f, 4).get(M).get(K).get(ldc).i32(0);
    f.get(N)
      .i32(NR - 1)
      .i32Add()
      .i32(-NR)
      .i32And()
      .get(depth)
      .call(2);
  });
  return f;
}

/**
 * The module: packs, products and their one-row forms over an imported memory. With `fma`
 * the micro-kernel multiply-adds with relaxed SIMD's f32x4.relaxed_madd (one
 * fused instruction where the CPU has FMA: ~20% more GFLOP/s here, and one
 * rounding instead of two).
 */
export function gemmModule(
  memory: { initial: number; maximum: number; shared: boolean },
  fma = false,
): Uint8Array<ArrayBuffer> {
  return moduleBytes(
    [
      packPanels("pack_a", MR),
      packPanels("pack_b", NR),
      gemm(fma),
      gemm(fma, "int8"),
      gemm(fma, "f16"),
      gemvRows(fma),
      gemvCols(fma),
      gemmItems(),
      quantizeRow(),
      gemvInt8(NR, PANELS),
    ],
    memory,
  );
}
