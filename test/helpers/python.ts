// Python for the export tests: the interpreter with PyTorch (Debian's
// python3-torch; CI installs it) and torchrun. GPTC_PYTHON / GPTC_TORCHRUN
// override; otherwise the system's /usr/bin ones are preferred over a PATH
// python3 (a pyenv shim, say) that may lack torch. A missing tool fails the
// test that needs it with a message saying what to install.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

function pick(env: string | undefined, system: string, fallback: string): string {
  return env ?? (existsSync(system) ? system : fallback);
}

export const python = pick(process.env.GPTC_PYTHON, "/usr/bin/python3", "python3");
export const torchrun = pick(process.env.GPTC_TORCHRUN, "/usr/bin/torchrun", "torchrun");

/** Runs `python args`; throws with its output when it fails. */
export function runPython(args: string[], o: { cwd?: string; timeout?: number } = {}): string {
  const r = spawnSync(python, args, {
    cwd: o.cwd,
    encoding: "utf8",
    timeout: o.timeout ?? 120_000,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  if (r.error || r.status !== 0)
    throw new Error(
      `${python} ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}); ` +
        `the export tests need Python 3 with torch, numpy and onnx (Debian: python3-torch python3-numpy python3-onnx)\n${r.stdout}\n${r.stderr}`,
    );
  return r.stdout;
}
