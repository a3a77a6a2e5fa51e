// gptc's IR graphs as ONNX models: inputs keep their names (tokens, cache_len,
// cache.*), weights become initializers under their checkpoint keys, outputs
// keep theirs except the updated caches, which ONNX needs named apart from the
// caches read: `cache.X` in, `cache.X.next` out.
import { dimToString, dimValue, type Dim } from "../../ir/dims.js";
import type { Graph } from "../../ir/graph.js";
import { isCacheName } from "../../ir/lower.js";
import { checkMapped, dimSources, ExportError } from "../common.js";
import { GraphBuilder, onnx, onnxType } from "./builder.js";
import { emitNodes, onnxOps } from "./ops.js";

/** The opset written: current enough for every operator used, and read by onnx >= 1.12 and ONNX Runtime. */
export const onnxOpset = 17;
/** ONNX IR version 8 (onnx 1.12 writes and checks it). */
export const onnxIrVersion = 8;

/** The name an output has in the ONNX graph. */
export function onnxOutputName(name: string): string {
  return isCacheName(name) ? `${name}.next` : name;
}

function valueInfo(name: string, dtype: number, shape: readonly Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: dtype,
        shape: {
          dim: shape.map((d) => {
            const v = dimValue(d);
            return v === undefined ? { dimParam: dimToString(d) } : { dimValue: v };
          }),
        },
      },
    },
  });
}

/**
 * One IR graph as an ONNX model, weights included. `weights` must hold every
 * weight of the graph, with its shape's element count.
 */
export function graphToOnnx(
  graph: Graph,
  weights: ReadonlyMap<string, Float32Array>,
  docString: string,
): Uint8Array {
  checkMapped(graph, onnxOps, "ONNX");
  const b = new GraphBuilder(dimSources(graph));
  const names = new Map<number, string>();
  const inputs = [];
  for (const n of graph.nodes) {
    if (n.op === "input") {
      const name = n.attrs.name as string;
      inputs.push(valueInfo(name, onnxType[n.type.dtype], n.type.shape));
      names.set(n.id, name);
    } else if (n.op === "weight") {
      const key = n.attrs.name as string;
      const data = weights.get(key);
      const shape = n.type.shape.map((d) => dimValue(d)!);
      if (!data || data.length !== shape.reduce((p, q) => p * q, 1))
        throw new ExportError(`weight ${key} is missing or has the wrong size`);
      names.set(n.id, b.floats(key, shape, data));
    }
  }
  emitNodes(graph, b, names);
  const outputs = graph.outputs.map((o) => {
    const name = onnxOutputName(o.name);
    b.node("Identity", [names.get(o.id)!], {}, name);
    const t = graph.type(o.id);
    return valueInfo(name, onnxType[t.dtype], t.shape);
  });
  const model = onnx.ModelProto.create({
    irVersion: onnxIrVersion,
    opsetImport: [{ domain: "", version: onnxOpset }],
    producerName: "gptc",
    docString,
    graph: {
      name: graph.name,
      node: b.nodes,
      initializer: b.initializers,
      input: inputs,
      output: outputs,
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
