/**
 * Moves spooled audit events into the database: sealed segments oldest first, in chunks, each
 * chunk in one transaction that skips events already there (store.ts: insertRowsOnce); a
 * segment is deleted only after all of it is committed. A chunk the database refuses as data is
 * retried event by event, and a refused event is moved to the quarantine file (never dropped).
 */
import type pg from "pg";
import type { Logger } from "@/lib/log";
import { parseSpoolLine, type AuditRow } from "./event";
import type { AuditSpool, SpoolSegment } from "./spool";
import { insertRowsOnce, isDataError } from "./store";

export interface SpoolReplayerOptions {
  batchSize: number;
  /** Delay between attempts while the database is away. */
  intervalMs: number;
  log?: Logger;
  onError: (error: unknown) => void;
  /** Whether the writer still has events in the spool (so a pass is due). */
  needed: () => boolean;
  /**
   * Called when every sealed segment is replayed: seals the active segment and returns false
   * when it held events (another round), or switches the writer back to the database (true).
   */
  finish: () => Promise<boolean>;
}

export class SpoolReplayer {
  replayed = 0;
  duplicatesSkipped = 0;
  quarantined = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** Rows of a segment already committed, so a retry after an outage does not start over. */
  private readonly progress = new Map<number, number>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly spool: AuditSpool,
    private readonly options: SpoolReplayerOptions,
  ) {}

  /** Schedules a pass (unless one is scheduled or running; a running pass sees new events). */
  wake(delayMs = this.options.intervalMs): void {
    if (this.stopped || this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runNow();
    }, delayMs);
  }

  runNow(): Promise<void> {
    if (this.running) return this.running;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let failed = false;
    this.running = this.pass()
      .catch((error: unknown) => {
        failed = true;
        this.options.onError(error);
        this.options.log?.warn({ err: error instanceof Error ? error.message : String(error) }, "audit spool replay failed; will retry");
      })
      .finally(() => {
        this.running = null;
        if (failed || this.options.needed()) this.wake();
      });
    return this.running;
  }

  /** Stops scheduling; waits for a running pass to end. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  private async pass(): Promise<void> {
    while (!this.stopped) {
      for (const segment of await this.spool.sealedSegments()) {
        if (this.stopped) return;
        await this.replaySegment(segment);
      }
      if (this.stopped || (await this.options.finish())) return;
    }
  }

  private async replaySegment(segment: SpoolSegment): Promise<void> {
    const lines = await this.spool.readLines(segment);
    let done = this.progress.get(segment.number) ?? 0;
    while (done < lines.length) {
      // Parsed a chunk at a time, so a large segment never blocks the event loop for long.
      const chunk = lines.slice(done, done + this.options.batchSize);
      const rows = chunk.map(parseSpoolLine).filter((r): r is AuditRow => r !== null);
      if (rows.length < chunk.length) {
        // A torn last line is an append that was never acknowledged; anything else is damage.
        this.options.log?.warn({ segment: segment.file, unreadable: chunk.length - rows.length }, "audit spool segment has unreadable lines; skipping them");
      }
      try {
        if (rows.length > 0) this.count(await insertRowsOnce(this.pool, rows));
      } catch (error) {
        if (!isDataError(error)) throw error;
        await this.replayOneByOne(rows);
      }
      done += chunk.length;
      this.progress.set(segment.number, done);
    }
    await this.spool.remove(segment);
    this.progress.delete(segment.number);
  }

  private async replayOneByOne(rows: AuditRow[]): Promise<void> {
    for (const row of rows) {
      try {
        this.count(await insertRowsOnce(this.pool, [row]));
      } catch (error) {
        if (!isDataError(error)) throw error;
        const file = await this.spool.quarantine([row]);
        this.quarantined++;
        this.options.log?.error({ eventId: row.eventId, file, err: (error as Error).message }, "the database refused a spooled audit event; kept in quarantine");
      }
    }
  }

  private count(r: { inserted: number; skipped: number }): void {
    this.replayed += r.inserted;
    this.duplicatesSkipped += r.skipped;
  }
}
