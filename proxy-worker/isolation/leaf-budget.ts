/**
 * How many leaf certificates one sandbox may have the worker mint: a token bucket per sandbox
 * (refilled at `perMinute`, holding as many). A leaf costs a key and a signature, and the cache is
 * shared: a sandbox whose policy reaches unlisted destinations (`*`, `unlisted: hold`, report mode)
 * could otherwise name a new address or name on every handshake and push every other task's
 * leaves out. Only mints count: a name whose leaf is cached is served whatever the budget.
 */
interface Bucket {
  tokens: number;
  at: number;
}

/** Sandboxes whose buckets are remembered at most; past it, full ones are forgotten. */
const MAX_BUCKETS = 4096;

export class LeafBudget {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one mint from `sandboxId`'s budget; false when it has none left. */
  take(sandboxId: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(sandboxId);
    if (!bucket) {
      if (this.buckets.size >= MAX_BUCKETS) this.forgetFull(now);
      bucket = { tokens: this.perMinute, at: now };
      this.buckets.set(sandboxId, bucket);
    } else {
      bucket.tokens = Math.min(this.perMinute, bucket.tokens + ((now - bucket.at) / 60_000) * this.perMinute);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private forgetFull(now: number): void {
    for (const [id, b] of this.buckets) if (b.tokens + ((now - b.at) / 60_000) * this.perMinute >= this.perMinute) this.buckets.delete(id);
    if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear();
  }
}
