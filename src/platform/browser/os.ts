// node:os in a browser. The WebAssembly engine's helper thread (see
// worker_threads.ts) shares memory with it: only a cross-origin isolated page
// (COOP/COEP headers) has SharedArrayBuffer, so without them it runs one thread.
export function availableParallelism(): number {
  const g = globalThis as {
    crossOriginIsolated?: boolean;
    navigator?: { hardwareConcurrency?: number };
  };
  return g.crossOriginIsolated ? (g.navigator?.hardwareConcurrency ?? 1) : 1;
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
