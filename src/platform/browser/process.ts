// The `process` global in a browser (esbuild `inject`): what the library reads of it.
export const process = {
  pid: 1,
  env: {} as Record<string, string | undefined>,
  cwd: () => "/",
  platform: "browser",
};

/** setImmediate: a macrotask (a MessageChannel message, without setTimeout's 4 ms clamp). */
export function setImmediate(fn: () => void): void {
  const ch = new MessageChannel();
  ch.port1.onmessage = () => fn();
  ch.port2.postMessage(0);
}

/** Buffer, as far as the library uses it on a browser's paths: text to bytes for atomic writes (runtime/atomic.ts). */
export const Buffer = {
  from(text: string, _encoding?: "utf8"): Uint8Array {
    return new TextEncoder().encode(text);
  },
};
