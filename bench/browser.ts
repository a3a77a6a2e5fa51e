// `npm run bench:browser`: what the playground reaches in headless Chromium on
// this machine, per backend: training tokens/s of the page's starter model
// (a 2-layer, d=32 GPT-2 on Brown characters) and generated tokens/s with the
// KV cache. Chromium's GPU here is SwiftShader (software, on the CPU): the
// webgl2/webgpu numbers are not GPU numbers. Writes bench/browser-results.md.
import { cpus } from "node:os";
import { writeFileSync } from "node:fs";
import { openPlayground } from "../test/helpers/browser.js";

const steps = Number(process.env.STEPS ?? 8);
const batch = 8;
const seq = 64;
const backends = (process.env.BACKENDS ?? "webasm,webgpu,webgl2,cpu").split(",");

const pg = await openPlayground();
const env = await pg.page.textContent("#env");
const { text } = await pg.request<{ text: string }>({ kind: "brown" });
const spec = await pg.page.evaluate(() => (window as any).playground.specText());
const rows: string[] = [];
for (const backend of backends) {
  try {
    // Two steps first (compiling the kernels, starting threads), then the timed ones (a resume).
    const warm = await pg.request<any>({
      kind: "train",
      req: { spec, backend, batch, seq, steps: 2, lr: 0.01, text },
    });
    const t = await pg.request<any>({
      kind: "train",
      req: { spec, backend, batch, seq, steps: 2 + steps, lr: 0.01, text, resume: true },
    });
    t.first = warm.first;
    // A short generation first compiles the decode kernels; the second is timed.
    await pg.request({ kind: "generate", prompt: "The", maxNewTokens: 2, temperature: 0.8 });
    const started = performance.now();
    const g = await pg.request<any>({
      kind: "generate",
      prompt: "The jury",
      maxNewTokens: 32,
      temperature: 0.8,
    });
    const genSeconds = (performance.now() - started) / 1000;
    const tps = (steps * batch * seq) / t.seconds;
    rows.push(
      `| ${t.backend} | ${tps.toFixed(0)} | ${(t.seconds / steps).toFixed(2)} | ${t.first.toFixed(3)} -> ${t.loss.toFixed(3)} | ${(g.tokens / genSeconds).toFixed(1)} |`,
    );
  } catch (e) {
    rows.push(`| ${backend} | failed: ${(e as Error).message.split("\n")[0]} | | | |`);
  }
  console.log(rows.at(-1));
}
await pg.close();

const md = `# The playground in Chromium

\`npm run bench:browser\` (bench/browser.ts), ${new Date().toISOString().slice(0, 10)}: headless Chromium
(Debian's, through playwright-core) on this machine (${cpus().length} × ${cpus()[0]?.model ?? "CPU"}),
the page's starter model (GPT-2 architecture, 2 layers, d = 32, 2 heads, character vocabulary of the
Brown sample), batch ${batch}, sequence ${seq}: 2 steps to compile the kernels, then ${steps} timed steps
(a resume of the same run), then 32 generated tokens with the KV cache (after a\nshort generation that compiles the decode kernels).

**Chromium's GPU here is SwiftShader, a software renderer on the CPU: the webgl2 and webgpu rows are
not GPU numbers**, they show that the paths run and what a machine without a GPU gets. The page is
cross-origin isolated (COOP/COEP), so the WebAssembly engine runs its helper thread (a Web Worker)
where two cores exist; the backend column says which ran. The machine is shared (2 vCPUs, other jobs
running): read the numbers as orders of magnitude.

Page: ${env}

| backend | train tokens/s | s/step | loss first -> last | generated tokens/s |
| --- | ---: | ---: | --- | ---: |
${rows.join("\n")}
`;
writeFileSync("bench/browser-results.md", md);
console.log(md);
