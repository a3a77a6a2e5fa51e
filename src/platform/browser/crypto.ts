// node:crypto in a browser: only what data preparation uses (not run in a page).
export function createHash(_alg: string): never {
  throw new Error("hashing files is not available in a browser");
}
export function randomBytes(n: number): Uint8Array & { toString(enc?: string): string } {
  const b = crypto.getRandomValues(new Uint8Array(n));
  const hex = () => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return Object.assign(b, { toString: hex });
}
