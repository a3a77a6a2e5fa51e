// The playground page: a CodeMirror editor for the .model language with gptc's
// diagnostics as you type, the Mermaid diagram and compile summary, training
// with a live uPlot loss chart, streamed generation, and weights in and out.
// All of gptc runs in worker.ts; this file only draws and forwards.
import { EditorView, basicSetup } from "codemirror";
import { linter, lintGutter, type Diagnostic } from "@codemirror/lint";
import mermaid from "mermaid";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { modelLanguage } from "./model-language.js";
import type { EditorDiagnostic, Reply, Request, StepEvent, TrainRequest } from "./protocol.js";

type Body<R> = R extends unknown ? Omit<R, "id"> : never;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const num = (id: string) => Number($<HTMLInputElement>(id).value);

// --- The worker, as promises (plus events per request: steps, tokens).
const worker = new Worker("worker.js", { type: "module" });
let nextId = 1;
const pending = new Map<
  number,
  { resolve: (v: any) => void; reject: (e: Error) => void; onEvent?: (r: Reply) => void }
>();
const ready = new Promise<{ threads: boolean }>((resolve) =>
  pending.set(0, { resolve, reject: () => {} }),
);
worker.onmessage = (e: MessageEvent<Reply>) => {
  const r = e.data;
  const p = pending.get(r.id);
  if (!p) return;
  if (r.kind === "done") {
    pending.delete(r.id);
    p.resolve(r.result);
  } else if (r.kind === "error") {
    pending.delete(r.id);
    p.reject(Object.assign(new Error(r.message), { code: r.code }));
  } else p.onEvent?.(r);
};
worker.onerror = (e) => setStatus("trainstatus", `worker failed: ${e.message}`);

/** Sends a request to the worker; resolves with its result. Also the tests' entry (window.playground). */
function request<T = any>(body: Body<Request>, onEvent?: (r: Reply) => void): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve, reject, onEvent });
    worker.postMessage({ ...body, id });
  });
}

function setStatus(id: string, text: string) {
  $(id).textContent = text;
}

// --- Editor with diagnostics as you type.
let lastDiagnostics: EditorDiagnostic[] = [];
const modelLint = linter(
  async (view): Promise<Diagnostic[]> => {
    const spec = view.state.doc.toString();
    const { diagnostics } = await request<{ diagnostics: EditorDiagnostic[] }>({
      kind: "check",
      spec,
    });
    lastDiagnostics = diagnostics;
    showDiagnostics(diagnostics);
    if (diagnostics.length === 0) scheduleCompile();
    const len = view.state.doc.length;
    return diagnostics.map((d) => ({
      from: Math.min(d.from, len),
      to: Math.min(Math.max(d.to, d.from), len),
      severity: d.severity,
      message: d.message,
      source: "gptc",
    }));
  },
  { delay: 300 },
);

function showDiagnostics(ds: EditorDiagnostic[]) {
  const el = $("diagnostics");
  el.className = ds.length ? "" : "ok";
  el.textContent = ds.length
    ? ds.map((d) => `playground.model:${d.line}:${d.col}: ${d.severity}: ${d.message}`).join("\n")
    : "no problems";
}

const editor = new EditorView({
  parent: $("editor"),
  doc: "",
  extensions: [basicSetup, modelLanguage, lintGutter(), modelLint],
});
const specText = () => editor.state.doc.toString();
function setSpec(text: string) {
  editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: text } });
}

const starter = `// A small GPT-2 to train in the page; its vocabulary is the training text's characters.
// Edit it: the diagnostics, the diagram and the summary follow as you type.
import "gpt2-small.model"

model playground = gpt2 { ctx = 64, d = 32, layers = 2, heads = 2 }
`;

// --- Diagram and summary, recompiled after a quiet moment of editing.
mermaid.initialize({ startOnLoad: false, securityLevel: "strict", theme: "neutral" });
let compileTimer: ReturnType<typeof setTimeout> | undefined;
let diagramCount = 0;
function scheduleCompile() {
  clearTimeout(compileTimer);
  compileTimer = setTimeout(drawModel, 200);
}
async function drawModel() {
  const spec = specText();
  try {
    const r = await request<{ mermaid?: string; summary?: string }>({
      kind: "compile",
      spec,
      batch: num("batch"),
      seq: num("seq"),
    });
    if (!r.mermaid || spec !== specText()) return;
    $("summary").textContent = r.summary ?? "";
    const { svg } = await mermaid.render(`diagram${++diagramCount}`, r.mermaid);
    $("diagram").innerHTML = svg;
  } catch (e) {
    $("summary").textContent = (e as Error).message;
  }
}

// --- Training text.
const textArea = $<HTMLTextAreaElement>("text");
function describeText() {
  setStatus("textinfo", `${textArea.value.length.toLocaleString("en-US")} characters`);
}
textArea.addEventListener("input", describeText);
$("brown").onclick = async () => {
  textArea.value = (await request<{ text: string }>({ kind: "brown" })).text;
  describeText();
  scheduleCompile(); // the summary at the text's vocabulary
};
$<HTMLInputElement>("textfile").onchange = async (e) => {
  const f = (e.target as HTMLInputElement).files?.[0];
  if (f) textArea.value = await f.text();
  describeText();
};

// --- Training, the chart, progress.
const series: [number[], (number | null)[], (number | null)[]] = [[], [], []];
const chart = new uPlot(
  {
    width: 560,
    height: 220,
    title: "loss",
    scales: { x: { time: false } },
    series: [
      { label: "step" },
      { label: "train", stroke: "#2f6fde", width: 1.5 },
      { label: "validation", stroke: "#d9541e", width: 2, points: { show: true }, spanGaps: true },
    ],
    axes: [{ label: "step" }, {}],
  },
  series,
  $("chart"),
);

let trained = false;
let running = false;
function buttons() {
  $<HTMLButtonElement>("trainbtn").disabled = running;
  $<HTMLButtonElement>("stopbtn").disabled = !running;
  $<HTMLButtonElement>("resumebtn").disabled = running || !trained;
  $<HTMLButtonElement>("downloadbtn").disabled = running || !trained;
  $<HTMLButtonElement>("generatebtn").disabled = running || !trained;
}

async function runTraining(resume: boolean) {
  const req: TrainRequest = {
    spec: specText(),
    backend: $<HTMLSelectElement>("backend").value as TrainRequest["backend"],
    batch: num("batch"),
    seq: num("seq"),
    steps: num("steps"),
    lr: num("lr"),
    text: textArea.value,
    resume,
  };
  if (!req.text) {
    textArea.value = (await request<{ text: string }>({ kind: "brown" })).text;
    req.text = textArea.value;
    describeText();
  }
  if (!resume) {
    for (const s of series) s.length = 0;
    chart.setData(series);
    $<HTMLProgressElement>("progress").value = 0;
  }
  running = true;
  buttons();
  const started = performance.now();
  let firstStep: number | undefined;
  setStatus("trainstatus", `compiling and starting on ${req.backend}...`);
  try {
    const r = await request<any>({ kind: "train", req }, (ev) => {
      if (ev.kind !== "step") return;
      const s: StepEvent = ev.step;
      firstStep ??= s.step - 1;
      series[0].push(s.step);
      series[1].push(s.loss);
      series[2].push(s.valLoss ?? null);
      chart.setData(series);
      const done = s.step - firstStep;
      const left = s.totalSteps - s.step;
      const eta = ((performance.now() - started) / 1000 / done) * left;
      const p = $<HTMLProgressElement>("progress");
      p.max = s.totalSteps;
      p.value = s.step;
      setStatus(
        "trainstatus",
        `step ${s.step}/${s.totalSteps}  loss ${s.loss.toFixed(4)}` +
          (s.valLoss !== undefined ? `  val ${s.valLoss.toFixed(4)}` : "") +
          `  ${Math.round(s.averageTokensPerSec).toLocaleString("en-US")} tokens/s  ETA ${eta.toFixed(0)} s`,
      );
    });
    trained = true;
    setStatus(
      "trainstatus",
      `${r.stopped ? "stopped" : "done"} at step ${r.steps} on ${r.backend}: loss ${r.first?.toFixed(4)} -> ${r.loss?.toFixed(4)}` +
        (r.valLoss !== undefined ? `, validation ${r.valLoss.toFixed(4)}` : "") +
        ` in ${r.seconds.toFixed(1)} s`,
    );
    document.body.dataset.trained = String(r.steps);
    scheduleCompile(); // the summary at the trained text's vocabulary
    return r;
  } catch (e) {
    setStatus("trainstatus", `error: ${(e as Error).message}`);
    throw e;
  } finally {
    running = false;
    buttons();
  }
}
$("trainbtn").onclick = () => runTraining(false).catch(() => {});
$("resumebtn").onclick = () => runTraining(true).catch(() => {});
$("stopbtn").onclick = () => request({ kind: "stop" });

function download(bytes: Uint8Array, name: string, type = "application/octet-stream") {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
$("downloadbtn").onclick = async () => {
  // The run folder's files (checkpoint, weights, tokenizer, config): put them in one folder for `gptc generate`.
  const r = await request<{ files: Record<string, Uint8Array> }>({ kind: "download" });
  for (const [name, bytes] of Object.entries(r.files)) download(bytes, name);
};

// --- Generation, streamed.
async function runGenerate() {
  const out = $("output");
  out.textContent = $<HTMLInputElement>("prompt").value;
  running = true;
  buttons();
  try {
    return await request<any>(
      {
        kind: "generate",
        prompt: $<HTMLInputElement>("prompt").value,
        maxNewTokens: num("maxtokens"),
        temperature: num("temperature"),
        topK: num("topk") > 0 ? num("topk") : undefined,
        topP: num("topp") < 1 ? num("topp") : undefined,
      },
      (ev) => {
        if (ev.kind === "token") out.textContent += ev.text;
      },
    );
  } catch (e) {
    out.textContent += `\n[error: ${(e as Error).message}]`;
  } finally {
    running = false;
    buttons();
  }
}
$("generatebtn").onclick = () => runGenerate();

// --- Files: Hugging Face weights, fixtures.
async function filesOf(input: HTMLInputElement): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const f of input.files ?? []) out[f.name] = new Uint8Array(await f.arrayBuffer());
  return out;
}
$<HTMLInputElement>("hffiles").onchange = async (e) => {
  try {
    const r = await request<any>({
      kind: "weights",
      backend: $<HTMLSelectElement>("backend").value as TrainRequest["backend"],
      files: await filesOf(e.target as HTMLInputElement),
    });
    trained = true;
    buttons();
    setStatus(
      "moreout",
      `loaded ${r.name} (${r.kind}) ${r.parameters.toLocaleString("en-US")} parameters, on ${r.backend}`,
    );
  } catch (err) {
    setStatus("moreout", `error: ${(err as Error).message}`);
  }
};
$<HTMLInputElement>("fixturefiles").onchange = async (e) => {
  const backend = $<HTMLSelectElement>("verifybackend").value as TrainRequest["backend"];
  setStatus("moreout", `verifying on ${backend}...`);
  try {
    const r = await request<any>({
      kind: "verify",
      backend,
      files: await filesOf(e.target as HTMLInputElement),
    });
    setStatus(
      "moreout",
      `${r.pass ? "PASS" : "FAIL"} on ${r.backend}\n` +
        r.checks
          .map(
            (c: any) =>
              `${c.pass ? "ok  " : "FAIL"} ${c.name}  max|d| ${c.maxAbs.toExponential(2)}  rel ${c.rel.toExponential(2)}  (${c.tolerance})${c.note ? "  " + c.note : ""}`,
          )
          .join("\n"),
    );
    document.body.dataset.verified = r.pass ? "pass" : "fail";
  } catch (err) {
    setStatus("moreout", `error: ${(err as Error).message}`);
  }
};

// --- Start: the shipped specs to pick from, and what this browser offers.
(async () => {
  const { threads } = await ready;
  const { specs } = await request<{ specs: Record<string, string> }>({ kind: "specs" });
  const select = $<HTMLSelectElement>("spec");
  const choices: Record<string, string> = { "playground (tiny GPT-2)": starter };
  for (const [path, text] of Object.entries(specs)) choices[path.replace("/specs/", "")] = text;
  for (const name of Object.keys(choices)) select.add(new Option(name, name));
  select.onchange = () => setSpec(choices[select.value]);
  setSpec(starter);
  const gpu = "gpu" in navigator ? "WebGPU" : "no WebGPU";
  const gl = document.createElement("canvas").getContext("webgl2") ? "WebGL2" : "no WebGL2";
  setStatus(
    "env",
    `${gl}, ${gpu}; ${threads ? "cross-origin isolated: the WebAssembly engine may use 2 threads" : "not cross-origin isolated: the WebAssembly engine runs 1 thread"}`,
  );
  buttons();
  document.body.dataset.ready = "1";
})();

// For tests and the console: the worker's requests, and the editor.
Object.assign(window, {
  playground: {
    request,
    chartSteps: () => [...series[0]],
    setSpec,
    specText,
    runTraining,
    runGenerate,
    diagnostics: () => lastDiagnostics,
  },
});
