// A real Chromium on the built playground, for tests and by hand
// (scripts/browser-check.ts): builds and serves build/web with COOP/COEP
// (web/serve.mjs), launches Debian's Chromium through playwright-core (nothing
// downloads a browser), and hands back the page plus `request`, which sends a
// request to the page's gptc worker (web/protocol.ts), e.g.
// `{ kind: "verify", backend: "webgl2", files }`. Chromium's software GPU
// (SwiftShader) gives WebGL2 and a WebGPU fallback adapter.
import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
// @ts-expect-error: a plain ES module without types
import { serve } from "../../web/serve.mjs";

/** Where Chromium is: $CHROMIUM, else Debian's paths. */
export function chromiumPath(): string {
  const candidates = process.env.CHROMIUM
    ? [process.env.CHROMIUM]
    : ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"];
  const found = candidates.find((p) => existsSync(p));
  if (!found)
    throw new Error(
      `Chromium not found (looked at ${candidates.join(", ")}): install it (apt-get install chromium) or set CHROMIUM=/path/to/chromium`,
    );
  return found;
}

/** Flags giving headless Chromium WebGL2 and WebGPU on SwiftShader, and no network chatter. */
export const chromiumArgs = [
  "--no-sandbox",
  "--enable-unsafe-swiftshader",
  "--enable-unsafe-webgpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--disable-quic",
];

export interface Playground {
  browser: Browser;
  page: Page;
  url: string;
  /** Messages the page logged (console and page errors), for failure reports. */
  log: string[];
  /** Sends a request to the page's worker and resolves with its result (web/protocol.ts). */
  request<T = any>(body: Record<string, unknown>): Promise<T>;
  /**
   * Runs `fn` in the page's worker with `gptc` (the library, as src/index.ts
   * exports it), `fs` (the worker's in-memory file system: mount(), readFileSync())
   * and `args`; resolves with its (structured-cloneable) result. `fn` is sent
   * as source text: it cannot use variables from the test's scope, only `args`.
   * E.g. `evalInWorker(async (gptc, fs, n) => (await gptc.createBackend("webgl2")).describe, 0)`.
   */
  evalInWorker<T, A = unknown>(
    fn: (gptc: any, fs: any, args: A) => T | Promise<T>,
    args?: A,
  ): Promise<T>;
  close(): Promise<void>;
}

/**
 * Builds (unless `build: false`) and serves the playground (with COOP/COEP
 * unless `isolate: false`; or opens `url`), opens it in Chromium, waits until it is ready.
 */
export async function openPlayground(
  o: { build?: boolean; url?: string; isolate?: boolean } = {},
): Promise<Playground> {
  const executablePath = chromiumPath();
  const server = o.url
    ? undefined
    : await serve({ build: o.build ?? true, isolate: o.isolate ?? true });
  const url: string = o.url ?? server.url;
  const browser = await chromium.launch({ executablePath, args: chromiumArgs, headless: true });
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  const log: string[] = [];
  page.on("console", (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector("body[data-ready]", { timeout: 60_000 });
  return {
    browser,
    page,
    url,
    log,
    request: (body) =>
      page.evaluate((b) => (window as any).playground.request(b), body as Record<string, unknown>),
    evalInWorker: (fn, args) =>
      page.evaluate(
        ({ source, args }) => (window as any).playground.request({ kind: "eval", source, args }),
        {
          // tsx (esbuild's keepNames) wraps named functions in __name(): define it in the page too.
          source: `const __name = (f) => f; return (${fn.toString()})(gptc, fs, args);`,
          args: args as any,
        },
      ),
    close: async () => {
      await browser.close();
      await server?.close();
    },
  };
}
