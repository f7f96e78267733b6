/**
 * Reads every event matching a filter in chain order through a server-side cursor, one batch at
 * a time and only as fast as the consumer takes them: the next batch is fetched while the
 * consumer handles the current one, never further ahead, so memory stays constant whatever the
 * size of the result. All of it is one read-only REPEATABLE READ snapshot. Stopping early (the
 * consumer's `return()`, e.g. a client that went away) closes the cursor, ends the transaction
 * and releases the connection before `return()` resolves.
 */
import type { WhereClause } from "./search";
import { pageQuery, type AuditRow } from "./search";
import { withAuditSnapshot, type AuditDb } from "./sql";

export class StreamStopped extends Error {
  constructor() {
    super("the reader stopped");
    this.name = "StreamStopped";
  }
}

/** One-slot handoff: `put` resolves when the consumer has taken the value. */
class Handoff<T> {
  private offer: { value: T; taken: () => void; stopped: (e: Error) => void } | null = null;
  private waiting: ((r: IteratorResult<T>) => void) | null = null;
  private failWaiting: ((e: unknown) => void) | null = null;
  private end: { error?: unknown } | null = null;
  private stopped = false;

  put(value: T): Promise<void> {
    if (this.stopped) return Promise.reject(new StreamStopped());
    return new Promise<void>((taken, stopped) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = this.failWaiting = null;
        w({ value, done: false });
        taken();
      } else this.offer = { value, taken, stopped };
    });
  }

  /** The producer is done (error: it failed). */
  finish(error?: unknown): void {
    this.end = error === undefined ? {} : { error };
    if (this.waiting) {
      const [w, f] = [this.waiting, this.failWaiting];
      this.waiting = this.failWaiting = null;
      if (error === undefined) w({ value: undefined, done: true });
      else f?.(error);
    }
  }

  take(): Promise<IteratorResult<T>> {
    if (this.offer) {
      const o = this.offer;
      this.offer = null;
      o.taken();
      return Promise.resolve({ value: o.value, done: false });
    }
    if (this.end) return this.end.error === undefined ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(this.end.error);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  /** The consumer stops: a pending or later put rejects with StreamStopped. */
  stop(): void {
    this.stopped = true;
    this.offer?.stopped(new StreamStopped());
    this.offer = null;
  }
}

export interface StreamOptions {
  /** Rows per FETCH (default 1000). */
  batchSize?: number;
}

/** Batches of events matching `where`, oldest first. */
export function streamAuditRows(db: AuditDb, where: WhereClause, options: StreamOptions = {}): AsyncIterableIterator<AuditRow[]> {
  const batchSize = Math.max(1, Math.min(10_000, Math.trunc(options.batchSize ?? 1000)));
  const handoff = new Handoff<AuditRow[]>();
  let producer: Promise<void> | null = null;
  const start = () => {
    producer ??= withAuditSnapshot(db, async (sql) => {
      const q = pageQuery(where, "asc", null);
      await sql.query(`DECLARE bulkhead_audit_export NO SCROLL CURSOR FOR ${q.text}`, q.values);
      for (;;) {
        const rows = await sql.query<AuditRow>(`FETCH FORWARD ${batchSize} FROM bulkhead_audit_export`);
        if (rows.length === 0) break;
        await handoff.put(rows);
        if (rows.length < batchSize) break;
      }
      await sql.query("CLOSE bulkhead_audit_export");
    }).then(
      () => handoff.finish(),
      (error: unknown) => handoff.finish(error instanceof StreamStopped ? undefined : error),
    );
  };
  const iterator: AsyncIterableIterator<AuditRow[]> = {
    next: () => {
      start();
      return handoff.take();
    },
    return: async () => {
      handoff.stop();
      // Wait for the transaction to end, so the connection is back in its pool when this resolves.
      await producer;
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
