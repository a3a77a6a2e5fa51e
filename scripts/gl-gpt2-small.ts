// gpt2-small (124M parameters, random init) on headlessgl against webasm: the
// forward pass at B=1, T=32, the prompt pass plus 8 cached decode steps, and
// one training step at B=1, T=16, each within the fixture tolerances. Too slow
// for CI on a software renderer (Mesa llvmpipe); test/gpu-split.gl.ts runs the
// same checks on a GPT-2 with a 16.8M-element embedding there. By hand:
//
//   xvfb-run -a node --import tsx scripts/gl-gpt2-small.ts [backend]
//
// Exits 1 when any check is outside its tolerance.
import { createBackend, type BackendName } from "../src/runtime/backend.js";
import { gpuParity } from "../test/helpers/gpu-parity.js";
import { model } from "../test/helpers/train.js";

const name = (process.argv[2] ?? "headlessgl") as BackendName;
const gpu = await createBackend(name);
const ref = await createBackend("webasm");
console.log(`${gpu.describe} against ${ref.describe}; limits ${JSON.stringify(gpu.limits)}`);
// No dropout (as scripts/browser-gpt2-small.ts): the training step then needs no
// rng_key and is the same step on both backends.
const m = model("gpt2-small", { embd_pdrop: "0", attn_pdrop: "0", resid_pdrop: "0" });
let failed = 0;
const started = performance.now();
await gpuParity(m, gpu, ref, {
  forwardT: 32,
  prompt: 4,
  decodeSteps: 8,
  trainT: 16,
  seed: 1,
  onCheck: (c) => {
    const ok = c.err <= c.tol;
    if (!ok) failed++;
    console.log(
      `${ok ? "PASS" : "FAIL"}  ${c.name.padEnd(34)} err ${c.err.toExponential(2)} (<= ${c.tol.toExponential(0)})${c.ms ? `  ${name} ${(c.ms / 1000).toFixed(1)} s` : ""}`,
    );
  },
});
console.log(
  `${failed ? `${failed} FAILED` : "all passed"} in ${((performance.now() - started) / 1000).toFixed(0)} s`,
);
process.exit(failed ? 1 : 0);
