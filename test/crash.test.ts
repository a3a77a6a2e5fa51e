// Crash safety of training. A run saving a checkpoint every step is killed with SIGKILL at
// seeded random moments and resumed each time: the checkpoint always loads, its step never
// goes back, nothing left behind confuses loading, and a last resumed run finishes. A
// checkpoint write that fails (full disk, no permission, a folder in the way) is an error,
// reported as one, and the previous checkpoint stays byte for byte as it was.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { CheckpointError, loadCheckpoint, readCheckpointState } from "../src/runtime/checkpoint.js";
import { createBackend } from "../src/runtime/backend.js";
import { readSafetensors, serializeSafetensors } from "../src/runtime/safetensors.js";
import { charTokenizer } from "../src/runtime/tokenizer.js";
import { WriteError } from "../src/runtime/atomic.js";
import { faults } from "./helpers/fs-faults.js";
import { rng, sleep, startGptc, type CliRun } from "./helpers/hardening.js";
import { dataset, freshTrainer, model, tempDir, trainOptions } from "./helpers/train.js";

// Failure injection (writeSync / renameSync) through test/helpers/fs-faults.ts.
vi.mock("node:fs", async (importOriginal) =>
  (await import("./helpers/fs-faults.js")).faultyFs(await importOriginal()),
);

const dir = tempDir("gptc-crash-");
// Runs still going when a test fails are killed, not left training.
const running = new Set<ChildProcess>();
afterAll(() => {
  for (const c of running) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});
const cache = join(dir, "cache");
process.env.GPTC_CACHE_DIR = cache;
const textFile = join(dir, "text.txt");
writeFileSync(
  textFile,
  "the cat sat on the mat and the dog ran to the hat with a bat. ".repeat(30),
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a run folder may hold: the run's files, and temporary files of interrupted writes. */
const RUN_FILES = new Set([
  "checkpoint.safetensors",
  "model.safetensors",
  "tokenizer.json",
  "config.json",
  "log.jsonl",
  "loss.svg",
]);
const TEMP_FILE =
  /^\.(checkpoint\.safetensors|model\.safetensors|tokenizer\.json|config\.json|loss\.svg)\.tmp-\d+-[0-9a-z]+$/;

const trainArgs = (out: string) => [
  "train",
  "specs/gpt2-tiny.model",
  "--tokenizer",
  "char",
  "--data",
  textFile,
  "--steps",
  "100000",
  "--batch",
  "2",
  "--seq",
  "8",
  "--save-every",
  "1",
  "--eval-every",
  "0",
  "--samples",
  "0",
  "--backend",
  "cpu",
  "--out",
  out,
];
const resumeArgs = (out: string, extra: string[] = []) => [
  "train",
  "--resume",
  out,
  "--backend",
  "cpu",
  "--samples",
  "0",
  ...extra,
];

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function logSteps(out: string): number[] {
  return readFileSync(join(out, "log.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .flatMap((l) => {
      try {
        return [(JSON.parse(l) as { step: number }).step];
      } catch {
        return []; // a line cut by the kill
      }
    });
}

/** Everything a resume or `gptc generate` reads is whole; returns the checkpoint's step. */
function checkRunFolder(out: string): { step: number; temps: string[] } {
  const ck = loadCheckpoint(out);
  expect(ck.state.format).toBe("gptc-checkpoint-1");
  expect(ck.adam.step).toBe(ck.state.step);
  expect(readCheckpointState(out).step).toBe(ck.state.step);
  for (const w of ck.weights.values()) expect(w.every(Number.isFinite)).toBe(true);
  const names = readdirSync(out);
  const temps = names.filter((n) => !RUN_FILES.has(n));
  for (const t of temps) expect(t, `unexpected file ${t}`).toMatch(TEMP_FILE);
  // The files next to the checkpoint are each whole (an older step at worst).
  if (names.includes("model.safetensors")) {
    const m = readSafetensors(join(out, "model.safetensors"));
    expect([...m.tensors.keys()].sort()).toEqual([...ck.weights.keys()].sort());
  }
  for (const f of ["tokenizer.json", "config.json"])
    if (names.includes(f)) JSON.parse(readFileSync(join(out, f), "utf8"));
  return { step: ck.state.step, temps };
}

describe("kill -9 during training", () => {
  it("6 seeded SIGKILLs, each followed by a resume; the last resume finishes", async () => {
    const out = join(dir, "killed");
    const r = rng(0x6b696c6c);
    const kills: { delayMs: number; step: number; temps: number }[] = [];
    let previous = 0;
    for (let k = 0; k < 6; k++) {
      const run = startGptc(k === 0 ? trainArgs(out) : resumeArgs(out), { GPTC_CACHE_DIR: cache });
      running.add(run.child);
      // A fresh run: after its first checkpoint.
      if (k === 0)
        await until(
          "the first checkpoint",
          () => existsSync(join(out, "checkpoint.safetensors")) || run.child.exitCode !== null,
        );
      // A resumed one: once it trains again (a new step logged), so the kill lands in the loop
      // of steps and saves rather than in start-up.
      else
        await until(
          "a step of the resumed run",
          () =>
            (run.output().stderr.includes("resuming") && logSteps(out).length > previous) ||
            run.child.exitCode !== null,
        );
      expect(run.child.exitCode, run.output().stderr).toBeNull();
      const delayMs = Math.round(r() * 1500);
      await sleep(delayMs);
      run.child.kill("SIGKILL");
      const res: CliRun = await run.done;
      expect(res.signal, res.stderr).toBe("SIGKILL");
      const { step, temps } = checkRunFolder(out);
      expect(step).toBeGreaterThanOrEqual(previous);
      expect(step).toBeGreaterThanOrEqual(1);
      previous = step;
      kills.push({ delayMs, step, temps: temps.length });
      // The log holds whole lines for every step the checkpoint has seen (and maybe a few more).
      const steps = logSteps(out);
      expect(steps.slice(0, step)).toEqual(Array.from({ length: step }, (_, i) => i + 1));
    }
    // The resumed runs trained and saved between the kills.
    expect(kills.at(-1)!.step).toBeGreaterThan(kills[0].step);

    const end = previous + 3;
    const last = await startGptc(resumeArgs(out, ["--steps", String(end)]), {
      GPTC_CACHE_DIR: cache,
    }).done;
    expect(last.status, last.stderr).toBe(0);
    expect(last.stderr).toContain(`resuming ${out} at step ${previous}`);
    const { step } = checkRunFolder(out);
    expect(step).toBe(end);
    // Steps resumed from the checkpoint: the log has each step once, in order.
    expect(logSteps(out)).toEqual(Array.from({ length: end }, (_, i) => i + 1));
    // Temp files the killed writers left are cleared by the next checkpoint write.
    expect(readdirSync(out).filter((n) => TEMP_FILE.test(n))).toEqual([]);
    console.log(
      `kills (delay ms -> checkpoint step, stale temp files): ${kills
        .map((x) => `${x.delayMs} -> ${x.step} (${x.temps})`)
        .join(", ")}; finished at step ${end}`,
    );
  }, 180_000);
});

describe("a checkpoint write that fails", () => {
  afterEach(() => {
    faults.write = null;
    faults.rename = null;
  });

  async function trainedOnce() {
    const tok = charTokenizer([..."abcdefgh "]);
    const m = model("gpt2-tiny", { layers: "1" }, tok.vocabSize);
    const data = dataset(
      tok,
      Array.from({ length: 200 }, (_, i) => (i * 5) % tok.vocabSize),
    );
    const out = tempDir("gptc-crash-save-");
    const backend = await createBackend("cpu");
    const t = freshTrainer(m, backend, data, trainOptions({ steps: 10 }), out);
    await t.trainer.trainStep();
    t.trainer.save();
    return { ...t, out, file: join(out, "checkpoint.safetensors") };
  }

  it.each([
    [
      "the disk fills up mid-write (ENOSPC)",
      (): void => {
        faults.write = { code: "ENOSPC", afterBytes: 4096 };
      },
      "ENOSPC",
    ],
    [
      "the rename is refused (EACCES)",
      (): void => {
        faults.rename = "EACCES";
      },
      "EACCES",
    ],
  ] as const)(
    "%s: an error, and the previous checkpoint stays byte-identical and loadable",
    async (_what, fail, code) => {
      const { trainer, session, out, file } = await trainedOnce();
      try {
        const before = readFileSync(file);
        await trainer.trainStep();
        fail();
        let err: unknown;
        try {
          trainer.save();
        } catch (e) {
          err = e;
        }
        faults.write = null;
        faults.rename = null;
        expect(err).toBeInstanceOf(WriteError);
        expect((err as Error).message).toContain(file);
        expect((err as Error).message).toContain(code);
        expect(Buffer.compare(readFileSync(file), before)).toBe(0);
        expect(loadCheckpoint(out).state.step).toBe(1);
        expect(readdirSync(out).filter((n) => !RUN_FILES.has(n))).toEqual([]);
        // Once the disk has room again, the next save goes through.
        trainer.save();
        expect(loadCheckpoint(out).state.step).toBe(2);
      } finally {
        session.destroy();
        rmSync(out, { recursive: true, force: true });
      }
    },
  );

  it("a failed write of the files next to it (tokenizer.json, loss.svg) is a WriteError", async () => {
    const { trainer, session, out, file } = await trainedOnce();
    try {
      await trainer.trainStep();
      // A folder where tokenizer.json goes: the checkpoint and model files are written first,
      // then the rename of tokenizer.json fails for real (EISDIR), also as root.
      rmSync(join(out, "tokenizer.json"));
      mkdirSync(join(out, "tokenizer.json", "sub"), { recursive: true });
      let err: unknown;
      try {
        trainer.save();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WriteError);
      expect((err as Error).message).toMatch(
        /cannot write .*tokenizer\.json: (EISDIR|ENOTEMPTY|EEXIST)/,
      );
      // The checkpoint itself was saved before: the run can continue from step 2.
      expect(loadCheckpoint(out).state.step).toBe(2);
      expect(existsSync(file)).toBe(true);
    } finally {
      session.destroy();
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("gptc train reports a failed write as one clear error (exit 1), never as an internal error", async () => {
    const runs = await Promise.all(
      ["model.safetensors", "loss.svg"].map(async (blocked) => {
        const out = join(dir, `blocked-${blocked}`);
        mkdirSync(join(out, blocked, "sub"), { recursive: true });
        const args = trainArgs(out).map((a) => (a === "100000" ? "3" : a));
        return { out, blocked, run: await startGptc(args, { GPTC_CACHE_DIR: cache }).done };
      }),
    );
    for (const { out, blocked, run } of runs) {
      expect(run.status, run.stderr).toBe(1);
      expect(run.stderr).not.toContain("internal error");
      expect(run.stderr).toMatch(
        new RegExp(`^gptc: error: cannot write .*${blocked.replace(".", "\\.")}: E`, "m"),
      );
      // The checkpoint was written first: the run can be resumed.
      expect(loadCheckpoint(out).state.step).toBe(1);
    }
  }, 120_000);

  it("a checkpoint that is not whole is refused with a CheckpointError, not loaded", () => {
    const out = join(dir, "torn");
    mkdirSync(out, { recursive: true });
    writeFileSync(
      join(out, "checkpoint.safetensors"),
      Buffer.from('\x10\x00\x00\x00\x00\x00\x00\x00{"a":'),
    );
    expect(() => loadCheckpoint(out)).toThrow(CheckpointError);
    expect(() => readCheckpointState(out)).toThrow(CheckpointError);
  });

  it("a checkpoint whose state is of another format is refused by both readers", () => {
    const out = join(dir, "foreign");
    mkdirSync(out, { recursive: true });
    const state = { format: "other", tokenizer: { kind: "char", chars: ["a"] } };
    writeFileSync(
      join(out, "checkpoint.safetensors"),
      serializeSafetensors([["w", { shape: [1], data: new Float32Array(1) }]], {
        gptc_state: JSON.stringify(state),
      }),
    );
    expect(() => loadCheckpoint(out)).toThrow(/is not a gptc checkpoint \(format "other"\)/);
    // What `gptc generate DIR` reads: once used unchecked (an internal error on state.model).
    expect(() => readCheckpointState(out)).toThrow(/is not a gptc checkpoint \(format "other"\)/);
  });

  it.each([
    ["model.set null", { set: null }],
    ["model.set an array", { set: ["layers=2"] }],
    ["a --set value that is not text", { set: { layers: 2 } }],
    ["model.config null", { set: {}, config: null }],
    ["model.source a number", { set: {}, source: 7 }],
  ])("a state with %s is refused as damaged by both readers", (_what, model) => {
    const out = join(dir, `damaged-${Math.random().toString(36).slice(2)}`);
    mkdirSync(out, { recursive: true });
    const state = {
      format: "gptc-checkpoint-1",
      step: 1,
      batchRng: 1,
      tokensSeen: 0,
      model: { spec: "/x.model", ...model },
      tokenizer: { kind: "gpt2" },
      options: {},
    };
    writeFileSync(
      join(out, "checkpoint.safetensors"),
      serializeSafetensors([["w", { shape: [1], data: new Float32Array(1) }]], {
        gptc_state: JSON.stringify(state),
      }),
    );
    expect(() => loadCheckpoint(out)).toThrow(/has a damaged gptc state/);
    expect(() => readCheckpointState(out)).toThrow(/has a damaged gptc state/);
  });
});
