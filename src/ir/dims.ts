// Symbolic dimensions. A dimension is an integer polynomial over named sizes
// (B, T, ...) — usually a single symbol or a constant, but reshapes and KV caches
// need products and sums (B*T, T+1). Polynomials in canonical form compare by value.

/** Canonical polynomial: monomial key ("" for the constant term, "B*T" sorted) -> coefficient. */
export type Dim = ReadonlyMap<string, number>;

function make(terms: Map<string, number>): Dim {
  for (const [k, c] of terms) if (c === 0) terms.delete(k);
  return new Map([...terms].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function dimConst(n: number): Dim {
  return make(new Map([["", n]]));
}

export function dimSym(name: string): Dim {
  return make(new Map([[name, 1]]));
}

export function dimAdd(a: Dim, b: Dim, sign = 1): Dim {
  const out = new Map(a);
  for (const [k, c] of b) out.set(k, (out.get(k) ?? 0) + sign * c);
  return make(out);
}

export function dimSub(a: Dim, b: Dim): Dim {
  return dimAdd(a, b, -1);
}

function mulKeys(a: string, b: string): string {
  const syms = [...(a ? a.split("*") : []), ...(b ? b.split("*") : [])].sort();
  return syms.join("*");
}

export function dimMul(a: Dim, b: Dim): Dim {
  const out = new Map<string, number>();
  for (const [ka, ca] of a)
    for (const [kb, cb] of b) {
      const k = mulKeys(ka, kb);
      out.set(k, (out.get(k) ?? 0) + ca * cb);
    }
  return make(out);
}

/** Exact division, or undefined when the quotient is not a polynomial with integer coefficients. */
export function dimDiv(a: Dim, b: Dim): Dim | undefined {
  if (b.size !== 1) return dimEq(a, b) ? dimConst(1) : undefined;
  const [[kb, cb]] = [...b];
  const divisor = kb ? kb.split("*") : [];
  const out = new Map<string, number>();
  for (const [ka, ca] of a) {
    const syms = ka ? ka.split("*") : [];
    for (const s of divisor) {
      const i = syms.indexOf(s);
      if (i < 0) return undefined;
      syms.splice(i, 1);
    }
    if (ca % cb !== 0) return undefined;
    out.set(syms.join("*"), ca / cb);
  }
  return make(out);
}

export function dimEq(a: Dim, b: Dim): boolean {
  if (a.size !== b.size) return false;
  for (const [k, c] of a) if (b.get(k) !== c) return false;
  return true;
}

/** The value of a constant dimension, or undefined if it has symbols. */
export function dimValue(d: Dim): number | undefined {
  if (d.size === 0) return 0;
  if (d.size === 1 && d.has("")) return d.get("");
  return undefined;
}

export function dimEval(d: Dim, bindings: Readonly<Record<string, number>>): number {
  let total = 0;
  for (const [k, c] of d) {
    let term = c;
    if (k)
      for (const s of k.split("*")) {
        // Own keys only: a dim named `constructor` must not find Object.prototype's.
        const v = Object.hasOwn(bindings, s) ? bindings[s] : undefined;
        if (v === undefined) throw new Error(`dimension ${s} is not bound`);
        term *= v;
      }
    total += term;
  }
  return total;
}

export function dimToString(d: Dim): string {
  if (d.size === 0) return "0";
  const parts: string[] = [];
  // Symbolic terms first (T+1, not 1+T).
  const terms = [...d].sort(([a], [b]) => (a === "" ? 1 : b === "" ? -1 : a < b ? -1 : 1));
  for (const [k, c] of terms) {
    const mag = Math.abs(c);
    const body = k === "" ? String(mag) : mag === 1 ? k : `${mag}*${k}`;
    if (parts.length === 0) parts.push(c < 0 ? `-${body}` : body);
    else parts.push(c < 0 ? `-${body}` : `+${body}`);
  }
  return parts.join("");
}

export type Shape = readonly Dim[];

export function shapeToString(s: Shape): string {
  return `[${s.map(dimToString).join(", ")}]`;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i]));
}

export function shapeOf(...dims: (number | string | Dim)[]): Dim[] {
  return dims.map((d) =>
    typeof d === "number" ? dimConst(d) : typeof d === "string" ? dimSym(d) : d,
  );
}

/** Product of all dims (the element count). */
export function shapeSize(s: Shape): Dim {
  return s.reduce((acc, d) => dimMul(acc, d), dimConst(1));
}

/** Concrete element counts of a shape under bindings. */
export function shapeEval(s: Shape, bindings: Readonly<Record<string, number>>): number[] {
  return s.map((d) => dimEval(d, bindings));
}

/** Parses what dimToString prints: sums of products of integers and names. */
export function parseDim(text: string): Dim | undefined {
  const src = text.replace(/\s+/g, "");
  if (!/^-?[A-Za-z0-9_*]+([+-][A-Za-z0-9_*]+)*$/.test(src)) return undefined;
  let out = dimConst(0);
  for (const m of src.matchAll(/([+-]?)([A-Za-z0-9_*]+)/g)) {
    let term = dimConst(m[1] === "-" ? -1 : 1);
    for (const f of m[2].split("*")) {
      if (f === "") return undefined;
      term = dimMul(term, /^\d+$/.test(f) ? dimConst(Number(f)) : dimSym(f));
    }
    out = dimAdd(out, term);
  }
  return out;
}
