// One fused kernel -> its kernel IR. Every size is a constant; each thread
// computes one element of the output; movement ops are coordinate remappings;
// matmuls and reductions are loops with constant extents. A value is bound to
// a let in the outermost scope its operands allow (so what does not depend on
// a loop's variable is computed outside it) and computed once per scope.
// Names are generated (t12, in3, r0): nothing a user wrote reaches a kernel.
import { shapeEval } from "../../ir/dims.js";
import type { Graph } from "../../ir/graph.js";
import { getOp } from "../../ir/ops/registry.js";
import type { ScalarExpr } from "../../ir/ops/scalar.js";
import type { Node } from "../../ir/ops/types.js";
import type { Kernel } from "../../ir/passes/fuse.js";
import { hostMasks } from "../host-random.js";
import {
  add,
  as,
  broadcastCoords,
  clamp,
  f32,
  freeVars,
  i32,
  join,
  op,
  ref,
  reshapeCoords,
  select,
  sub,
  unravel,
} from "./expr.js";
import { exprText } from "./print.js";
import type { AluOp, Buffer, Expr, Grid, KernelIR, Loop, Stmt } from "./types.js";

interface Scope {
  stmts: Stmt[];
  memo: Map<string, Expr>;
}

/** The type an ALU operation gives its operands and result (undefined: the operands' join). */
const floatOps = new Set<AluOp>([
  "exp",
  "log",
  "tanh",
  "sqrt",
  "abs",
  "sin",
  "cos",
  "mul",
  "div",
  "pow",
]);
const compareOps = new Set<AluOp>(["lt", "le", "gt", "ge", "eq", "ne"]);

class Builder {
  private readonly scopes: Scope[] = [{ stmts: [], memo: new Map() }];
  private temp = 0;
  private loop = 0;
  private readonly bufferOf = new Map<number, number>();
  /** The scope declaring each loop variable, accumulator and let. */
  private readonly owner = new Map<string, Scope>();
  private readonly buffers: Buffer[] = [];

  constructor(
    private readonly g: Graph,
    private readonly kernel: Kernel,
    private readonly bindings: Record<string, number>,
  ) {
    kernel.inputs.forEach((id, k) => {
      this.bufferOf.set(id, k);
      this.buffers.push({ name: `in${k}`, shape: this.shape(id), node: id, kind: "input" });
    });
  }

  shape(id: number): number[] {
    return shapeEval(this.g.nodes[id].type.shape, this.bindings);
  }

  /** The innermost open scope declaring a name `exprs` read (the kernel body if none). */
  private scopeFor(exprs: Expr[]): Scope {
    let best = 0;
    for (const e of exprs)
      for (const name of freeVars(e)) {
        const s = this.owner.get(name);
        const k = s ? this.scopes.indexOf(s) : -1;
        if (k > best) best = k;
      }
    return this.scopes[best];
  }

  /** `e` bound to a fresh let in the scope its operands need (constants and names stay as they are). */
  private bind(key: string, e: Expr): Expr {
    const scope = this.scopeFor([e]);
    const known = scope.memo.get(key);
    if (known) return known;
    let v = e;
    if (e.k !== "var" && e.k !== "const") {
      const name = `t${this.temp++}`;
      scope.stmts.push({ k: "let", name, value: e });
      this.owner.set(name, scope);
      v = ref(name, e.ty);
    }
    scope.memo.set(key, v);
    return v;
  }

  /** A value computed earlier in the scope `coords` need or an enclosing one. */
  private lookup(key: string, coords: Expr[]): Expr | undefined {
    for (let s = this.scopes.indexOf(this.scopeFor(coords)); s >= 0; s--) {
      const hit = this.scopes[s].memo.get(key);
      if (hit) return hit;
    }
    return undefined;
  }

  /** Node `id` at output coordinates `coords`. */
  value(id: number, coords: Expr[]): Expr {
    const key = `${id}@${coords.map((c) => exprText(c)).join(",")}`;
    const hit = this.lookup(key, coords);
    if (hit) return hit;
    const buf = this.bufferOf.get(id);
    const e: Expr =
      buf !== undefined
        ? { k: "load", ty: "f32", buf, coords }
        : this.compute(this.g.nodes[id], coords);
    return this.bind(key, e);
  }

  /** A value used as a coordinate (an id read from a buffer). */
  private index(id: number, coords: Expr[]): Expr {
    return as(this.value(id, coords), "i32");
  }

  private compute(node: Node, coords: Expr[]): Expr {
    const a = node.attrs;
    const shapeIn = (k: number) => this.shape(node.inputs[k]);
    const lt = (x: Expr, y: Expr) => op("lt", "bool", x, y);
    const ge = (x: Expr, y: Expr) => op("ge", "bool", x, y);
    switch (node.op) {
      case "const":
        return f32(a.value as number);
      case "dim":
        return f32(shapeEval([a.dim as never], this.bindings)[0]);
      case "arange":
        return coords[0];
      case "causal_mask": {
        const [q, k] = this.shape(node.id);
        return select(
          op("le", "bool", coords[1], add(coords[0], i32(k - q))),
          f32(0),
          f32(-Infinity),
        );
      }
      case "causal_mask_at": {
        const len = this.index(node.inputs[0], []);
        return select(op("le", "bool", coords[1], add(coords[0], len)), f32(0), f32(-Infinity));
      }
      case "cache_write": {
        const axis = a.axis as number;
        const len = this.index(node.inputs[2], []);
        const T = shapeIn(1)[axis];
        const c = [...coords];
        c[axis] = clamp(sub(coords[axis], len), T);
        const inside = op("and", "bool", ge(coords[axis], len), lt(coords[axis], add(len, i32(T))));
        return select(inside, this.value(node.inputs[1], c), this.value(node.inputs[0], coords));
      }
      case "reshape":
        return this.value(node.inputs[0], reshapeCoords(coords, this.shape(node.id), shapeIn(0)));
      case "permute": {
        const perm = a.perm as number[];
        const inCoords = new Array<Expr>(perm.length);
        perm.forEach((p, i) => (inCoords[p] = coords[i]));
        return this.value(node.inputs[0], inCoords);
      }
      case "expand":
        return this.value(node.inputs[0], broadcastCoords(coords, shapeIn(0)));
      case "slice": {
        const c = [...coords];
        const axis = a.axis as number;
        c[axis] = add(c[axis], i32(a.start as number));
        return this.value(node.inputs[0], c);
      }
      case "pad": {
        const axis = a.axis as number;
        const before = a.before as number;
        const len = shapeIn(0)[axis];
        const c = [...coords];
        c[axis] = clamp(sub(c[axis], i32(before)), len);
        const inside = op(
          "and",
          "bool",
          ge(coords[axis], i32(before)),
          lt(coords[axis], i32(before + len)),
        );
        return select(inside, this.value(node.inputs[0], c), f32(0));
      }
      case "concat": {
        const axis = a.axis as number;
        let offset = 0;
        const parts = node.inputs.map((input, k) => {
          const c = [...coords];
          const len = shapeIn(k)[axis];
          c[axis] = clamp(sub(c[axis], i32(offset)), len);
          offset += len;
          return { end: offset, c, input };
        });
        // Nested selects, the last part as the fallback.
        const last = parts[parts.length - 1];
        let e = this.value(last.input, last.c);
        for (let k = parts.length - 2; k >= 0; k--)
          e = select(
            lt(coords[axis], i32(parts[k].end)),
            this.value(parts[k].input, parts[k].c),
            e,
          );
        return e;
      }
      case "gather": {
        const idsShape = shapeIn(1);
        const id = this.index(node.inputs[1], coords.slice(0, idsShape.length));
        return this.value(node.inputs[0], [id, ...coords.slice(idsShape.length)]);
      }
      case "take": {
        const id = this.index(node.inputs[1], coords);
        return this.value(node.inputs[0], [...coords, id]);
      }
      case "put": {
        const lead = coords.slice(0, -1);
        const id = this.index(node.inputs[0], lead);
        const hit = op("eq", "bool", coords[coords.length - 1], id);
        return select(hit, this.value(node.inputs[1], lead), f32(0));
      }
      case "sum":
      case "mean":
      case "max":
        return this.reduce(node, coords);
      case "matmul":
        return this.matmul(node, coords);
      case "scatter_add":
        return this.scatter(node, coords);
    }
    const def = getOp(node.op);
    if (def.kind === "elementwise" && def.alu) {
      const args = node.inputs.map((input) =>
        this.value(input, broadcastCoords(coords, this.shape(input))),
      );
      return this.scalar(def.alu, args);
    }
    throw new Error(`codegen: no lowering for op '${node.op}'`);
  }

  /** An op's ALU expression (the registry's) over its operands' values, typed. */
  private scalar(s: ScalarExpr, args: Expr[]): Expr {
    if ("arg" in s) return args[s.arg];
    if ("value" in s) return s.int ? i32(s.value) : f32(s.value);
    const xs = s.args.map((x) => this.scalar(x, args));
    if (s.op === "select") return select(xs[0], xs[1], xs[2]);
    if (compareOps.has(s.op)) {
      const t = join(xs[0], xs[1]);
      return op(s.op, "bool", as(xs[0], t), as(xs[1], t));
    }
    // Float results for math and for products (a product of two integer values could wrap).
    const ty = floatOps.has(s.op)
      ? "f32"
      : xs.reduce<"i32" | "f32">((t, x) => (x.ty === "i32" ? t : "f32"), "i32");
    return op(s.op, ty, ...xs.map((x) => as(x, ty)));
  }

  /**
   * A reduction at `coords`: loops over `extents` folding `body`'s term into an
   * accumulator, in the outermost scope the coordinates allow (a reduction that
   * does not depend on an enclosing loop is computed outside it).
   */
  private loopNest(
    coords: Expr[],
    extents: number[],
    fold: "sum" | "max",
    body: (vars: Expr[]) => Expr,
    until?: Expr,
  ): Expr {
    const target = this.scopeFor(until ? [...coords, until] : coords);
    const suspended = this.scopes.splice(this.scopes.indexOf(target) + 1);
    const acc = `acc${this.loop++}`;
    const vars = extents.map(() => `r${this.loop++}`);
    const scopes = vars.map((v) => {
      const scope: Scope = { stmts: [], memo: new Map() };
      this.owner.set(v, scope);
      this.scopes.push(scope);
      return scope;
    });
    const term = as(body(vars.map((v) => ref(v, "i32"))), "f32");
    this.scopes.splice(this.scopes.length - vars.length);
    const loops: Loop[] = vars.map((v, i) => ({ v, extent: extents[i], body: scopes[i].stmts }));
    target.stmts.push({ k: "reduce", acc, op: fold, loops, term, until });
    this.owner.set(acc, target);
    this.scopes.push(...suspended);
    return ref(acc, "f32");
  }

  private reduce(node: Node, coords: Expr[]): Expr {
    const axes = node.attrs.axes as number[];
    const keep = node.attrs.keepdim as boolean;
    const inShape = this.shape(node.inputs[0]);
    const extents = axes.map((ax) => inShape[ax]);
    const acc = this.loopNest(coords, extents, node.op === "max" ? "max" : "sum", (vars) => {
      const inCoords: Expr[] = [];
      let k = 0;
      inShape.forEach((_, ax) => {
        const r = axes.indexOf(ax);
        if (r >= 0) {
          inCoords.push(vars[r]);
          if (keep) k++;
        } else inCoords.push(coords[k++]);
      });
      return this.value(node.inputs[0], inCoords);
    });
    if (node.op !== "mean") return acc;
    return op("div", "f32", acc, f32(extents.reduce((p, q) => p * q, 1)));
  }

  private matmul(node: Node, coords: Expr[]): Expr {
    const [aId, bId] = node.inputs;
    const aShape = this.shape(aId);
    const bShape = this.shape(bId);
    const K = aShape[aShape.length - 1];
    const batch = coords.slice(0, -2);
    const [i, j] = coords.slice(-2);
    return this.loopNest(coords, [K], "sum", ([k]) => {
      const av = this.value(aId, [...broadcastCoords(batch, aShape.slice(0, -2)), i, k]);
      const bv = this.value(bId, [...broadcastCoords(batch, bShape.slice(0, -2)), k, j]);
      return op("mul", "f32", as(av, "f32"), as(bv, "f32"));
    });
  }

  /** out[row, ...] = sum of g[p, ...] over positions p whose id is row. */
  private scatter(node: Node, coords: Expr[]): Expr {
    const [idsId, gId] = node.inputs;
    const idsShape = this.shape(idsId);
    const positions = idsShape.reduce((p, q) => p * q, 1);
    const [row, ...rest] = coords;
    // Ids 0 .. P-1 (the gradient of a position table's gather): row r sums the
    // one position r, so it is that row of g below P and zero after.
    if (this.g.nodes[idsId].op === "arange" && idsShape.length === 1) {
      const P = idsShape[0];
      const hit = op("lt", "bool", row, i32(P));
      return select(hit, this.value(gId, [clamp(row, P), ...rest]), f32(0));
    }
    // Ids the host holds (a graph input): walk only this row's positions, via
    // index tables the runtime builds per call — O(positions + rows) work in all,
    // instead of every row scanning every position.
    if (this.g.nodes[idsId].op === "input" && this.bufferOf.has(idsId)) {
      const rows = this.shape(node.id)[0];
      const order = this.table("order", idsId, [positions], rows);
      const offsets = this.table("offsets", idsId, [rows + 1], rows);
      const start = this.bind(`start@${exprText(row)}`, as(this.load(offsets, [row]), "i32"));
      const end = as(this.load(offsets, [add(row, i32(1))]), "i32");
      const count = this.bind(`count@${exprText(row)}`, sub(end, start));
      return this.loopNest(
        coords,
        [positions],
        "sum",
        ([j]) => {
          const p = this.bind(`p@${exprText(j)}`, as(this.load(order, [add(start, j)]), "i32"));
          return this.value(gId, [...unravel(p, idsShape), ...rest]);
        },
        count,
      );
    }
    return this.loopNest(coords, [positions], "sum", ([p]) => {
      const pc = unravel(p, idsShape);
      const id = this.index(idsId, pc);
      return select(op("eq", "bool", id, row), this.value(gId, [...pc, ...rest]), f32(0));
    });
  }

  private load(buf: number, coords: Expr[]): Expr {
    return { k: "load", ty: "f32", buf, coords };
  }

  /** A host-derived index table, passed after the inputs. */
  private table(kind: "order" | "offsets", ids: number, shape: number[], rows: number): number {
    let k = this.buffers.findIndex((b) => b.kind === kind && b.node === ids);
    if (k < 0)
      k = this.buffers.push({ name: `in${this.buffers.length}`, shape, node: ids, kind, rows }) - 1;
    return k;
  }

  build(grid: "flat" | "rows"): KernelIR {
    const outShape = this.shape(this.kernel.output);
    const size = outShape.reduce((p, q) => p * q, 1);
    const last = outShape[outShape.length - 1];
    const rows = grid === "rows" && outShape.length >= 2 && last > 1;
    const g: Grid = rows
      ? { kind: "rows", cols: last, rows: size / last }
      : { kind: "flat", size: Math.max(1, size) };
    const coords = rows
      ? [...unravel(ref("y", "i32"), outShape.slice(0, -1)), ref("x", "i32")]
      : unravel(ref("i", "i32"), outShape);
    const body = this.scopes[0];
    const named = coords.map((c, k) => {
      if (c.k === "var" || c.k === "const") return c;
      body.stmts.push({ k: "let", name: `c${k}`, value: c });
      return ref(`c${k}`, "i32");
    });
    const result = as(this.compute(this.g.nodes[this.kernel.output], named), "f32");
    return {
      name: this.kernel.name,
      grid: g,
      buffers: this.buffers,
      output: this.kernel.output,
      outShape,
      body: body.stmts,
      result,
    };
  }
}

/**
 * The kernel IR of a fused kernel at concrete sizes. `grid`: "rows" puts the
 * output's last axis on its own thread index (a target can run it in SIMD
 * lanes); "flat" numbers the output's elements.
 */
export function buildKernel(
  g: Graph,
  kernel: Kernel,
  bindings: Record<string, number>,
  grid: "flat" | "rows",
): KernelIR {
  // Dropout masks are read from buffers the host fills (codegen/host-random.ts).
  const k = hostMasks(g, kernel, bindings)?.kernel ?? kernel;
  return new Builder(g, k, bindings).build(grid);
}
