// Progress of prepare (scan, vocabulary, encode): bytes done of the phase's
// total, tokens written, rates and ETA, reported through a callback so the CLI
// (or a library caller) decides how to show it.

export interface PrepareProgress {
  phase: "scan" | "vocab" | "encode";
  bytesDone: number;
  bytesTotal: number;
  /** Tokens written so far (encode phase). */
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  /** Seconds left in this phase at the current rate (undefined before there is a rate). */
  etaSeconds: number | undefined;
}

/** Progress of one phase at a time, reported at most every 100 ms. */
export class Progress {
  done = 0;
  private name: PrepareProgress["phase"] = "scan";
  private total = 0;
  private tokens = 0;
  private started = performance.now();
  private lastReport = 0;

  constructor(private readonly report?: (p: PrepareProgress) => void) {}

  phase(name: PrepareProgress["phase"], total: number): void {
    this.name = name;
    this.total = total;
    this.done = 0;
    this.started = performance.now();
    this.lastReport = 0;
    this.emit(true);
  }

  bytes(done: number, tokens = this.tokens): void {
    this.done = done;
    this.tokens = tokens;
    this.emit(false);
  }

  finish(tokens: number): void {
    this.done = this.total;
    this.tokens = tokens;
    this.emit(true);
  }

  private emit(force: boolean): void {
    if (!this.report) return;
    const now = performance.now();
    if (!force && now - this.lastReport < 100) return;
    this.lastReport = now;
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    this.report({
      phase: this.name,
      bytesDone: this.done,
      bytesTotal: this.total,
      tokens: this.tokens,
      seconds,
      tokensPerSecond: seconds > 0 ? this.tokens / seconds : 0,
      etaSeconds: rate > 0 ? (this.total - this.done) / rate : undefined,
    });
  }
}
