/** A promise chain used as a mutex: each `run` starts after the previous one settled. */
export class Lock {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/** The latest flush lags (a ring of 65,536), drained by `take`. */
export class LagSamples {
  private static readonly SIZE = 1 << 16;
  private readonly ring = new Float64Array(LagSamples.SIZE);
  private count = 0;

  add(ms: number): void {
    this.ring[this.count++ % LagSamples.SIZE] = ms;
  }

  take(): number[] {
    const n = Math.min(this.count, LagSamples.SIZE);
    const start = this.count - n;
    const out = Array.from({ length: n }, (_, i) => this.ring[(start + i) % LagSamples.SIZE]!);
    this.count = 0;
    return out;
  }
}
