// WebAssembly features the webasm backend uses when this Node.js has them.
//
// Relaxed SIMD (f32x4.relaxed_madd: a fused multiply-add where the CPU has FMA)
// is on by default from V8 11.4 (Node.js 22); Node.js 20's V8 has it behind
// --experimental-wasm-relaxed-simd. gptc turns that flag on before compiling
// its modules (the flag only admits the new instructions; nothing else in V8
// changes), unless GPTC_RELAXED_SIMD=0. If the instructions still do not
// validate, the GEMM uses separate multiplies and adds.
import v8 from "node:v8";

/** (func (param v128 v128 v128) (result v128) f32x4.relaxed_madd of the three) */
const probe = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b,
  0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x20, 0x00, 0x20, 0x01, 0x20,
  0x02, 0xfd, 0x85, 0x02, 0x0b,
]);

let relaxed: boolean | undefined;

/** Whether relaxed SIMD validates here (enabling it on Node.js 20 first). */
export function relaxedSimd(): boolean {
  if (relaxed !== undefined) return relaxed;
  if (process.env.GPTC_RELAXED_SIMD === "0") return (relaxed = false);
  relaxed = WebAssembly.validate(probe);
  if (!relaxed) {
    try {
      v8.setFlagsFromString("--experimental-wasm-relaxed-simd");
    } catch {
      // An engine without the flag: stay without relaxed SIMD.
    }
    relaxed = WebAssembly.validate(probe);
  }
  return relaxed;
}
