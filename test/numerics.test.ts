// Numerics: softmax and cross-entropy stay finite and exact for huge logits
// (the stdlib subtracts the max), layernorm of a constant row gives its bias,
// and --check-numerics names the first kernel that produces NaN or infinity.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { frontend } from "../src/dsl/frontend.js";
import { specsDir } from "../src/dsl/load.js";
import { lowerProgram } from "../src/ir/lower.js";
import { compileGraphs } from "../src/ir/pipeline.js";
import { createBackend } from "../src/runtime/backend.js";
import { NumericsError } from "../src/runtime/executor.js";
import { Session } from "../src/runtime/session.js";

function compile(text: string) {
  const fe = frontend(join(specsDir, "numerics-probe.model"), text);
  if (!fe.program) throw new Error(fe.diagnostics.items.map((d) => d.message).join("\n"));
  return compileGraphs(lowerProgram(fe.program));
}

const probe = `import "std/nn.model"
model probe {
  input x: float[N, 4]
  input ids: int[N]
  output p = softmax(x)
  output lp = log_softmax(x)
  output n = layernorm(x) as ln
  loss = cross_entropy(x, ids)
}
`;

/** Reference log-softmax in float64, stable. */
function logSoftmax(row: number[]): number[] {
  const m = Math.max(...row);
  const s = row.reduce((a, v) => a + Math.exp(v - m), 0);
  return row.map((v) => v - m - Math.log(s));
}

describe.each(["cpu", "webasm"] as const)("numerics on %s", (name) => {
  it("softmax, log-softmax and cross-entropy are finite and right for logits of ±1e4", async () => {
    const graphs = compile(probe);
    const session = new Session(graphs, await createBackend(name));
    const rows = [
      [1e4, 1e4 - 1, -1e4, 0],
      [-1e4, -1e4 + 2, -1e4 + 1, -1e4],
      [5000, -5000, 3, 2],
    ];
    const x = Float32Array.from(rows.flat());
    const ids = Float32Array.of(0, 1, 3);
    const weights = new Map([
      ["ln.weight", new Float32Array(4).fill(1)],
      ["ln.bias", new Float32Array(4)],
    ]);
    const out = await session.forward(weights, { x, ids }, { N: 3, V: 4 });
    const loss = await session.evaluate(weights, { x, ids }, { N: 3, V: 4 });
    session.destroy();
    for (const v of [...out.p, ...out.lp, loss]) expect(Number.isFinite(v)).toBe(true);
    rows.forEach((row, r) => {
      const ref = logSoftmax(row.map((v) => Math.fround(v)));
      ref.forEach((v, j) => {
        expect(Math.abs(out.lp[r * 4 + j] - v)).toBeLessThan(1e-3 * Math.max(1, Math.abs(v)));
        expect(Math.abs(out.p[r * 4 + j] - Math.exp(v))).toBeLessThan(1e-6);
      });
    });
    const refLoss = -(logSoftmax(rows[0])[0] + logSoftmax(rows[1])[1] + logSoftmax(rows[2])[3]) / 3;
    expect(Math.abs(loss - refLoss)).toBeLessThan(1e-3);
  });

  it("layernorm of a constant row is its bias, and its gradient is finite", async () => {
    const graphs = compile(probe);
    const session = new Session(graphs, await createBackend(name));
    const x = Float32Array.of(7, 7, 7, 7, 1, 2, 3, 4);
    const ids = Float32Array.of(0, 1);
    const bias = Float32Array.of(0.5, -1, 2, 0);
    const weights = new Map([
      ["ln.weight", Float32Array.of(3, 3, 3, 3)],
      ["ln.bias", bias],
    ]);
    const out = await session.forward(weights, { x, ids }, { N: 2, V: 4 });
    expect(Array.from(out.n.subarray(0, 4))).toEqual(Array.from(bias));
    const { grads } = await session.lossAndGrads(weights, { x, ids }, { N: 2, V: 4 });
    session.destroy();
    for (const g of grads.values()) for (const v of g) expect(Number.isFinite(v)).toBe(true);
  });

  it("--check-numerics names the first kernel producing NaN and the source of its ops", async () => {
    const graphs = compile(probe);
    const session = new Session(graphs, await createBackend(name));
    session.checkNumerics = true;
    const weights = new Map([
      ["ln.weight", Float32Array.of(1, 1, NaN, 1)],
      ["ln.bias", new Float32Array(4)],
    ]);
    const run = session.forward(
      weights,
      { x: Float32Array.of(1, 2, 3, 4), ids: Float32Array.of(0) },
      { N: 1, V: 4 },
    );
    await expect(run).rejects.toThrow(NumericsError);
    await expect(run).rejects.toThrow(
      /kernel k\d+_\w+ produced NaN .*specs\/std\/nn\.model:\d+:\d+/,
    );
    session.destroy();
  });
});
