// node:os in a browser. One core for the WebAssembly engine: its helper thread
// is a Node worker thread (src/runtime/gemm.ts), which browsers do not have.
export function availableParallelism(): number {
  return 1;
}
/** navigator.deviceMemory (GiB, capped at 8 by browsers) where known, else 4 GiB. */
export function totalmem(): number {
  const gib = (globalThis as { navigator?: { deviceMemory?: number } }).navigator?.deviceMemory;
  return (gib ?? 4) * 2 ** 30;
}
export function endianness(): "LE" | "BE" {
  return new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? "LE" : "BE";
}
export function homedir(): string {
  return "/home";
}
