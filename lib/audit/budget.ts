import type { Db } from "@/lib/db/client";

/**
 * An audit budget for events an unauthenticated client can cause (failed sign-ins, API key
 * locks). Every audit insert takes the hash chain's head lock, so one insert per attempt would let
 * anyone stall every audited change, the proxy's decisions included. Per process at most
 * `perMinute` such events are written a minute; the rest are counted ("folded"), and `summarise`
 * runs once a minute, from the first event on, to write one event that reports them. The timer
 * never keeps the process alive.
 */
export class AuditBudget {
  private windowStart = 0;
  private used = 0;
  private folded = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly perMinute: number,
    private readonly summarise: () => Promise<void>,
    /** What the summary is, for the log line when writing it fails. */
    private readonly what: string,
  ) {}

  /** True: record this event now. False: it was counted for the next summary. */
  take(now = Date.now()): boolean {
    this.startTimer();
    if (now - this.windowStart >= 60_000) {
      this.windowStart = now;
      this.used = 0;
    }
    if (this.used >= this.perMinute) {
      this.folded += 1;
      return false;
    }
    this.used += 1;
    return true;
  }

  /** The events folded since the last call (counted again from zero). */
  takeFolded(): number {
    const folded = this.folded;
    this.folded = 0;
    return folded;
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.summarise().catch((error: unknown) => console.error(`Could not write ${this.what}`, error));
    }, 60_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** One instance per database client, made on first use with the arguments of that call. */
export function perDatabase<A extends unknown[], T>(create: (db: Db, ...args: A) => T): (db: Db, ...args: A) => T {
  const instances = new WeakMap<Db, T>();
  return (db, ...args) => {
    let instance = instances.get(db);
    if (!instance) {
      instance = create(db, ...args);
      instances.set(db, instance);
    }
    return instance;
  };
}
