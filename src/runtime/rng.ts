// A small seeded generator (splitmix32), so initialization and sampling are
// reproducible from a seed and its state can be checkpointed. Normal samples
// for initialization come from the same stream in runtime/normals.ts.

/** splitmix32's state step (the golden ratio) and the multipliers of its output mix. */
export const SPLITMIX = { step: 0x9e3779b9 | 0, mul1: 0x85ebca6b | 0, mul2: 0xc2b2ae35 | 0 };

/** splitmix32's output for state `z`, as an unsigned 32-bit integer. */
export function splitmix32(z: number): number {
  z = Math.imul(z ^ (z >>> 16), SPLITMIX.mul1);
  z = Math.imul(z ^ (z >>> 13), SPLITMIX.mul2);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + SPLITMIX.step) >>> 0;
    return splitmix32(this.state) / 4294967296;
  }
}
