// Facts about kernel sources (the JavaScript subset kernel-source.ts emits)
// that the WebAssembly compiler (kernel.ts) decides by: which Math functions a
// kernel calls, which names a statement reads and writes, whether it depends
// on the output column (this.thread.x), and how an index moves along a loop.
import type {
  CallExpression,
  Expression,
  MemberExpression,
  Node as JsNode,
  Statement,
} from "acorn";

export function mathCalls(n: unknown, out: string[] = []): string[] {
  if (!n || typeof n !== "object") return out;
  const node = n as JsNode & Record<string, unknown>;
  if (node.type === "CallExpression") {
    const callee = (node as unknown as CallExpression).callee;
    if (isMath(callee)) out.push(((callee as MemberExpression).property as { name: string }).name);
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === "loc" || k === "start" || k === "end") continue;
    if (Array.isArray(v)) v.forEach((e) => mathCalls(e, out));
    else if (v && typeof v === "object") mathCalls(v, out);
  }
  return out;
}

export function isMath(e: JsNode): boolean {
  return (
    e.type === "MemberExpression" &&
    !(e as MemberExpression).computed &&
    (e as MemberExpression).object.type === "Identifier" &&
    ((e as MemberExpression).object as { name: string }).name === "Math"
  );
}

export function isThreadX(n: JsNode): boolean {
  const m = n as MemberExpression;
  return (
    m.type === "MemberExpression" &&
    !m.computed &&
    (m.property as { name: string }).name === "x" &&
    m.object.type === "MemberExpression" &&
    m.object.object.type === "ThisExpression" &&
    (m.object.property as { name: string }).name === "thread"
  );
}

export function mentionsThreadX(n: unknown): boolean {
  if (!n || typeof n !== "object") return false;
  if (isThreadX(n as JsNode)) return true;
  return Object.values(n).some((v) =>
    Array.isArray(v) ? v.some(mentionsThreadX) : v && typeof v === "object" && mentionsThreadX(v),
  );
}

/** An integer literal as index arithmetic writes it (no "." or exponent; values are written 2.0). */
export function integerLiteral(e: JsNode): boolean {
  const l = e as { type: string; value?: unknown; raw?: string };
  return (
    l.type === "Literal" &&
    typeof l.value === "number" &&
    Number.isInteger(l.value) &&
    Math.abs(l.value) < 2 ** 31 &&
    !/[.eE]/.test(l.raw ?? "")
  );
}

/** A positive integer literal (a divisor wasm's i32 division takes without trapping). */
export function nonzeroLiteral(e: JsNode): boolean {
  const l = e as { type: string; value?: unknown };
  return (
    l.type === "Literal" &&
    typeof l.value === "number" &&
    Number.isInteger(l.value) &&
    l.value > 0 &&
    l.value < 2 ** 31 &&
    !/[.eE]/.test((e as { raw?: string }).raw ?? "")
  );
}

/** `const` initializers of a kernel body's top level, by name. */
export function constInits(stmts: Statement[]): Map<string, Expression> {
  const m = new Map<string, Expression>();
  for (const s of stmts)
    if (s.type === "VariableDeclaration" && s.kind === "const")
      for (const d of s.declarations)
        if (d.id.type === "Identifier" && d.init) m.set(d.id.name, d.init);
  return m;
}

/**
 * The coefficient of `v` in `e` when `e` is linear in it (other names are
 * constants; consts are looked through), else NaN.
 */
export function coefficient(e: JsNode, v: string, consts: Map<string, Expression>): number {
  const n = e as Expression;
  if (n.type === "Identifier") {
    if (n.name === v) return 1;
    const init = consts.get(n.name);
    return init ? coefficient(init, v, consts) : 0;
  }
  if (n.type === "Literal") return 0;
  if (n.type === "BinaryExpression" && (n.operator === "+" || n.operator === "-")) {
    const a = coefficient(n.left, v, consts);
    const b = coefficient(n.right, v, consts);
    return n.operator === "+" ? a + b : a - b;
  }
  if (n.type === "BinaryExpression" && n.operator === "*") {
    const a = coefficient(n.left, v, consts);
    const b = coefficient(n.right, v, consts);
    if (a === 0 && b === 0) return 0;
    if (b === 0 && n.right.type === "Literal") return a * (n.right.value as number);
    if (a === 0 && n.left.type === "Literal") return b * (n.left.value as number);
    return NaN;
  }
  const used = new Set<string>();
  names(n, used, new Set());
  return [...used].some(
    (u) => u === v || (consts.has(u) && coefficient(consts.get(u)!, v, consts) !== 0),
  )
    ? NaN
    : 0;
}

/** Whether `s` is a loop with a buffer read whose index steps by one along the loop variable. */
export function contiguousLoop(s: Statement, body: Statement[]): boolean {
  if (s.type !== "ForStatement" || s.init?.type !== "VariableDeclaration") return false;
  const id = s.init.declarations[0]?.id;
  if (id?.type !== "Identifier") return false;
  const consts = constInits([...body, ...(s.body.type === "BlockStatement" ? s.body.body : [])]);
  let found = false;
  (function walk(n: unknown) {
    if (!n || typeof n !== "object" || found) return;
    const m = n as MemberExpression;
    if (
      m.type === "MemberExpression" &&
      m.computed &&
      coefficient(m.property, id.name, consts) === 1
    )
      found = true;
    for (const c of Object.values(n))
      if (Array.isArray(c)) c.forEach(walk);
      else if (c && typeof c === "object") walk(c);
  })(s.body);
  return found;
}

/**
 * The names that depend on `seeds` (returned with them): a statement that reads
 * one, or that `touches` accepts, makes every name it assigns depend (every
 * name a statement assigns is taken to depend on everything it reads).
 */
export function dependents(
  stmts: Statement[],
  seeds: Set<string>,
  touches: (s: Statement) => boolean = () => false,
): Set<string> {
  const info = stmts.map((s) => {
    const used = new Set<string>();
    const set = new Set<string>();
    names(s, used, set);
    return { used, set, touched: touches(s) };
  });
  const dep = new Set(seeds);
  let grew = true;
  while (grew) {
    grew = false;
    for (const { used, set, touched } of info)
      if (touched || [...used].some((n) => dep.has(n)))
        for (const n of set)
          if (!dep.has(n)) {
            dep.add(n);
            grew = true;
          }
  }
  return dep;
}

/** Identifiers a statement reads and the names it declares or assigns. */
export function names(n: unknown, used: Set<string>, set: Set<string>): void {
  if (!n || typeof n !== "object") return;
  const node = n as Record<string, unknown> & { type?: string };
  if (node.type === "Identifier") used.add(node.name as string);
  if (node.type === "VariableDeclarator") set.add((node.id as { name: string }).name);
  if (node.type === "AssignmentExpression" || node.type === "UpdateExpression") {
    const target = (node.left ?? node.argument) as { type: string; name: string };
    if (target.type === "Identifier") set.add(target.name);
  }
  if (node.type === "MemberExpression" && !node.computed) {
    names(node.object, used, set);
    return;
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === "loc" || k === "start" || k === "end") continue;
    if (Array.isArray(v)) v.forEach((e) => names(e, used, set));
    else if (v && typeof v === "object") names(v, used, set);
  }
}
