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
