// Embedding lookups on the host: a kernel gathering few rows of a large table
// by host-held ids gets the rows as a buffer instead of the whole table.
import { describe, expect, it } from "vitest";
import { shapeOf } from "../src/ir/dims.js";
import { Graph } from "../src/ir/graph.js";
import { fuse } from "../src/ir/passes/fuse.js";
import { Executor } from "../src/runtime/executor.js";
import { backend, cpuBackends, reference } from "./helpers/backend.js";

function embedding() {
  const g = new Graph("embed");
  const table = g.op("weight", [], { name: "wte", shape: shapeOf(1000, 8) });
  const pos = g.op("weight", [], { name: "wpe", shape: shapeOf(3, 8) });
  const ids = g.op("input", [], { name: "ids", shape: shapeOf(2, 3), dtype: "i32" });
  g.output("x", g.op("add", [g.op("gather", [table, ids]), pos]));
  return { g, table, pos, ids };
}

describe("gathers on the host", () => {
  for (const name of cpuBackends)
    it(`${name}: the kernel reads the gathered rows, not the table, and computes the same`, async () => {
      const { g, table, pos, ids } = embedding();
      const ex = new Executor(fuse(g), {}, await backend(name));
      const k = ex.kernels.find((c) => c.gathers?.length)!;
      expect(k.ir!.buffers.map((b) => b.node)).not.toContain(table);
      const wte = Float32Array.from({ length: 8000 }, (_, i) => Math.sin(i));
      const wpe = Float32Array.from({ length: 24 }, (_, i) => i / 7);
      const idv = Float32Array.of(5, 999, 0, 5, 17, 400);
      const got = (
        await ex.run(
          new Map([
            [table, wte],
            [pos, wpe],
            [ids, idv],
          ]),
        )
      ).get(g.outputs[0].id)!;
      const ref = reference(g, {
        inputs: { ids: { shape: [2, 3], data: Float64Array.from(idv) } },
        weights: {
          wte: { shape: [1000, 8], data: Float64Array.from(wte) },
          wpe: { shape: [3, 8], data: Float64Array.from(wpe) },
        },
      }).x;
      expect([...got]).toEqual([...Float32Array.from(ref.data)]);
      await expect(
        ex.run(
          new Map([
            [table, wte],
            [pos, wpe],
            [ids, Float32Array.of(1, 2, 3, 4, 5, 1000)],
          ]),
        ),
      ).rejects.toThrow(/id 1000 is outside the 1000 rows/);
      ex.destroy();
    });
});
