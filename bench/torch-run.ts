// PyTorch's side of `npm run bench`, where a Python with torch exists: exports
// gptc's own model as model.py (`exportModel`, the bench's shapes) into a
// temporary folder and runs bench/torch_bench.py on it, which prints one JSON
// line; this prints it again with the interpreter used, or `{ skipped }`
// saying why PyTorch is not measured.
//   npx tsx bench/torch-run.ts train|generate|train124m|check [--quick] [--steps n] [--rounds n] [--threads 1,2]
// The interpreter: $GPTC_TORCH_PYTHON, else the first of /usr/bin/python3 and
// python3 on PATH that imports torch (Debian's python3-torch is the system
// Python's, not a pyenv's).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile, exportModel } from "../src/index.js";

type Json = Record<string, unknown>;

/** The first interpreter that imports torch, or why there is none. */
function torchPython(): { python: string; version: string } | { skipped: string } {
  const env = process.env.GPTC_TORCH_PYTHON;
  const candidates = env ? [env] : ["/usr/bin/python3", "python3"];
  const tried: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ["-c", "import torch; print(torch.__version__)"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    if (r.status === 0) return { python, version: r.stdout.trim() };
    const why = r.error
      ? r.error.message
      : ((r.stderr ?? "").trim().split("\n").pop() ?? `exit ${r.status}`);
    tried.push(`${python}: ${why}`);
  }
  return { skipped: `no Python imports torch (${tried.join("; ")})` };
}

/** gptc-run.ts's shapes (GPT-2, no dropout): the bench model, and the quick smoke sizes. */
const noDropout = { embd_pdrop: "0", attn_pdrop: "0", resid_pdrop: "0" };
const quickSets = { vocab: "512", layers: "2", heads: "2", d: "64", ctx: "64", ...noDropout };
const benchSets = { vocab: "50257", layers: "4", heads: "4", d: "256", ctx: "1024", ...noDropout };

async function main(argv: string[]): Promise<Json> {
  const [workload] = argv;
  const quick = argv.includes("--quick");
  const found = torchPython();
  if ("skipped" in found) return { workload, ...found };
  // model.py for the workloads that run gptc's export: train (the bench shapes) and check (quick).
  const set = workload === "check" || quick ? quickSets : workload === "train" ? benchSets : null;
  const dir = mkdtempSync(join(tmpdir(), "gptc-torch-"));
  try {
    if (set)
      await exportModel(compile({ file: "specs/gpt2-small.model" }, { set }), {
        format: "pytorch",
        out: dir,
      });
    const r = spawnSync(
      found.python,
      ["bench/torch_bench.py", ...argv, ...(set ? ["--export", dir] : [])],
      { encoding: "utf8", maxBuffer: 64 * 2 ** 20, timeout: 3600_000 },
    );
    const last = (r.stdout ?? "").trim().split("\n").pop() ?? "";
    if (r.status === 0 && last.startsWith("{")) return JSON.parse(last) as Json;
    const why = r.error
      ? r.error.message
      : (r.stderr ?? "").trim().split("\n").slice(-3).join(" | ");
    return { workload, failed: `${found.python} exit ${r.status}: ${why}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

process.stdout.write(JSON.stringify(await main(process.argv.slice(2))) + "\n");
