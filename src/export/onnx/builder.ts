// A small builder of ONNX graphs over the protobuf schema of `onnx-proto`:
// named values, nodes, initializers, and the sizes a graph computes at run
// time (a reshape to [B, T, 4, 8] reads B and T from an input's shape).
import onnxProto from "onnx-proto";
import type { Dim } from "../../ir/dims.js";
import type { DType } from "../../ir/ops/types.js";
import type { DimSource } from "../common.js";

export const { onnx } = onnxProto;
type onnxNS = typeof onnx;
export type NodeProto = ReturnType<onnxNS["NodeProto"]["create"]>;
export type TensorProto = ReturnType<onnxNS["TensorProto"]["create"]>;

const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

/** gptc's dtypes in ONNX: ids are int64 (what Gather, Range and most tools expect). */
export const onnxType: Record<DType, number> = { f32: T.FLOAT, i32: T.INT64, bool: T.BOOL };

export type AttrValue = number | number[] | { float: number };

function attribute(name: string, v: AttrValue) {
  if (Array.isArray(v)) return onnx.AttributeProto.create({ name, type: A.INTS, ints: v });
  if (typeof v === "object") return onnx.AttributeProto.create({ name, type: A.FLOAT, f: v.float });
  return onnx.AttributeProto.create({ name, type: A.INT, i: v });
}

function bytes(a: Float32Array | BigInt64Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Nodes and initializers of one graph, with fresh names and memoized constants and sizes. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private count = 0;
  private readonly consts = new Map<string, string>();
  private readonly dims = new Map<string, string>();

  constructor(private readonly sources: Map<string, DimSource>) {}

  /** A new value name; the leading "/" keeps it apart from gptc's names (inputs, weight keys). */
  fresh(hint: string): string {
    return `/${hint}_${this.count++}`;
  }

  /** Appends `op(inputs)`; returns the name of its (first) output. */
  node(
    op: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    output?: string,
  ): string {
    const out = output ?? this.fresh(op.toLowerCase());
    this.nodes.push(
      onnx.NodeProto.create({
        opType: op,
        input: inputs,
        output: [out],
        name: out,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return out;
  }

  /** A float32 initializer (weights; shape [] for a scalar). */
  floats(name: string, shape: number[], data: Float32Array): string {
    this.initializers.push(
      onnx.TensorProto.create({ name, dims: shape, dataType: T.FLOAT, rawData: bytes(data) }),
    );
    return name;
  }

  /** A memoized float32 scalar constant. */
  scalar(value: number): string {
    const key = `f${value}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.floats(this.fresh("const"), [], Float32Array.of(value));
      this.consts.set(key, name);
    }
    return name;
  }

  /** A memoized int64 constant: a vector, or a scalar when `shape` is []. */
  ints(values: (number | bigint)[], shape: number[] = [values.length]): string {
    const key = `i${shape.join("x")}:${values.join(",")}`;
    let name = this.consts.get(key);
    if (!name) {
      name = this.fresh("ints");
      const data = BigInt64Array.from(values, (v) => BigInt(v));
      this.initializers.push(
        onnx.TensorProto.create({ name, dims: shape, dataType: T.INT64, rawData: bytes(data) }),
      );
      this.consts.set(key, name);
    }
    return name;
  }

  /** `x` as `to`, with a Cast only where the types differ. */
  cast(x: string, from: number, to: number): string {
    return from === to ? x : this.node("Cast", [x], { to });
  }

  /** A size as an int64 tensor of shape [1], computed once per graph. */
  dim(d: Dim): string {
    const key = [...d].map(([k, c]) => `${c}${k}`).join("+");
    let name = this.dims.get(key);
    if (name) return name;
    let total: string | undefined;
    for (const [monomial, coef] of d) {
      let term =
        monomial === ""
          ? undefined
          : monomial
              .split("*")
              .reduce<string | undefined>(
                (acc, s) => (acc ? this.node("Mul", [acc, this.symbol(s)]) : this.symbol(s)),
                undefined,
              );
      if (term === undefined) term = this.ints([coef]);
      else if (coef !== 1) term = this.node("Mul", [term, this.ints([coef])]);
      total = total ? this.node("Add", [total, term]) : term;
    }
    name = total ?? this.ints([0]);
    this.dims.set(key, name);
    return name;
  }

  /** A shape as an int64 vector. */
  shape(dims: readonly Dim[]): string {
    if (dims.length === 0) return this.ints([], [0]);
    return dims.length === 1
      ? this.dim(dims[0])
      : this.node(
          "Concat",
          dims.map((d) => this.dim(d)),
          { axis: 0 },
        );
  }

  /** A size as an int64 scalar (Range's bounds). */
  dimScalar(d: Dim): string {
    return this.node("Reshape", [this.dim(d), this.ints([], [0])]);
  }

  private symbol(s: string): string {
    const key = `sym:${s}`;
    let name = this.dims.get(key);
    if (!name) {
      const src = this.sources.get(s)!;
      const shape = this.node("Shape", [src.input]);
      name = this.node("Gather", [shape, this.ints([src.axis])], { axis: 0 });
      this.dims.set(key, name);
    }
    return name;
  }
}
