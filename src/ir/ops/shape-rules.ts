// Shape rules shared by several ops, over symbolic dims.
import { dimConst, dimEq, dimValue, shapeToString, type Dim, type Shape } from "../dims.js";
import { ShapeError, type DType } from "./types.js";

/** numpy broadcasting: align from the right; equal dims or a 1 on either side. */
export function broadcastShapes(shapes: Shape[], what: string): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = dimConst(1);
    for (const s of shapes) {
      const e = s[s.length - rank + i];
      if (e === undefined || dimValue(e) === 1) continue;
      if (dimValue(d) === 1) d = e;
      else if (!dimEq(d, e))
        throw new ShapeError(
          `${what}: shapes ${shapes.map(shapeToString).join(" and ")} cannot be broadcast together`,
        );
    }
    out.push(d);
  }
  return out;
}

export function promote(a: DType, b: DType): DType {
  if (a === "f32" || b === "f32") return "f32";
  if (a === "i32" || b === "i32") return "i32";
  return "bool";
}

export function checkAxis(axis: number, rank: number, what: string): number {
  if (!Number.isInteger(axis) || axis < 0 || axis >= rank)
    throw new ShapeError(`${what}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  return axis;
}
