/**
 * The worker's audit writer. `record` resolves only once the event is durable: committed to
 * Postgres (batched: one multi-row INSERT per flush, at 500 queued events or after 5 ms), or,
 * when the database is away, appended to the local spool and fdatasync'd. If neither works the
 * promise rejects with AuditUnavailableError and the proxy must not forward the request.
 *
 * Order: once anything is spooled, every later event is spooled too until the replayer has
 * committed all of it (oldest segment first); only then do events go to the database directly
 * again. So one writer's events enter the chain in the order they were recorded.
 */
import { performance } from "node:perf_hooks";
import pg from "pg";
import type { Logger } from "@/lib/log";
import { AuditEventError, AuditUnavailableError } from "./errors";
import { prepareEvent, type AuditRow, type WorkerAuditEvent } from "./event";
import { LagSamples, Lock } from "./lock";
import { AuditSpool } from "./spool";
import { insertRows, isDataError } from "./store";
import { SpoolReplayer } from "./replay";

export type { WorkerAuditEvent } from "./event";

export interface AuditDurability {
  durable: "database" | "spool";
  eventId: string;
}

export interface AuditWriterOptions {
  /** A dedicated pool is created from this URL unless `pool` is given. */
  databaseUrl?: string;
  pool?: pg.Pool;
  /** e.g. <dataDir>/audit-spool */
  spoolDir: string;
  /** Stable per worker process slot, so that a restarted worker replays its predecessor's spool. */
  workerId: string;
  maxBatchSize?: number;
  maxDelayMs?: number;
  /**
   * Batches written at the same time (each on its own connection). With more than one, the
   * next batch is sent while the previous one commits; two such batches may enter the chain in
   * either order. 1 keeps one writer's events in record order.
   */
  maxInFlight?: number;
  replayIntervalMs?: number;
  replayBatchSize?: number;
  maxSegmentBytes?: number;
  /** Server-side statement_timeout for audit inserts; a slower database counts as away. */
  statementTimeoutMs?: number;
  log?: Logger;
  /** Called with each event's flush lag (record -> durable), in milliseconds. */
  onFlushLag?: (ms: number) => void;
  now?: () => Date;
}

export interface AuditWriterStats {
  mode: "database" | "spool";
  /** Waiting for a flush. */
  queued: number;
  /** Accepted by record(). */
  recorded: number;
  /** Multi-row INSERTs committed. */
  batches: number;
  /** Events committed directly. */
  flushed: number;
  spooled: number;
  replayed: number;
  duplicatesSkipped: number;
  quarantined: number;
  failed: number;
  spoolSyncs: number;
  lastError: string | null;
  lastErrorAt: Date | null;
}

interface Pending {
  row: AuditRow;
  enqueued: number;
  resolve: (d: AuditDurability) => void;
  reject: (e: Error) => void;
}

export class AuditWriter {
  private mode: "database" | "spool" = "database";
  private readonly counters = { recorded: 0, batches: 0, flushed: 0, spooled: 0, failed: 0 };
  private queue: Pending[] = [];
  private inFlight = 0;
  private readonly flushes = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private closing: Promise<void> | null = null;
  private readonly writeLock = new Lock();
  private readonly lag = new LagSamples();
  private lastError: { message: string; at: Date } | null = null;
  private readonly maxBatchSize: number;
  private readonly maxDelayMs: number;
  private readonly maxInFlight: number;
  private immediate: NodeJS.Immediate | null = null;
  private readonly now: () => Date;
  private readonly replayer: SpoolReplayer;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly ownsPool: boolean,
    private readonly spool: AuditSpool,
    private readonly options: AuditWriterOptions,
  ) {
    this.maxBatchSize = options.maxBatchSize ?? 500;
    this.maxDelayMs = options.maxDelayMs ?? 5;
    this.maxInFlight = options.maxInFlight ?? 2;
    this.now = options.now ?? (() => new Date());
    this.replayer = new SpoolReplayer(pool, spool, {
      batchSize: options.replayBatchSize ?? 1000,
      intervalMs: options.replayIntervalMs ?? 250,
      log: options.log,
      onError: (e) => this.noteError(e),
      needed: () => this.mode === "spool",
      // The last step, under the write lock: seal what was appended meanwhile, or go direct.
      finish: () => this.writeLock.run(async () => {
        if (await this.spool.seal()) return false;
        this.mode = "database";
        this.options.log?.info("audit spool replayed; writing to the database again");
        return true;
      }),
    });
  }

  /** Opens the spool (taking the worker id's lock) and replays anything a previous run left. */
  static async start(options: AuditWriterOptions): Promise<AuditWriter> {
    if (!options.pool && !options.databaseUrl) throw new TypeError("AuditWriter needs databaseUrl or pool");
    const spool = await AuditSpool.open(options.spoolDir, options.workerId, options.maxSegmentBytes);
    const pool =
      options.pool ??
      new pg.Pool({
        connectionString: options.databaseUrl,
        max: 3,
        connectionTimeoutMillis: 2_000,
        idleTimeoutMillis: 30_000,
        statement_timeout: options.statementTimeoutMs ?? 5_000,
        query_timeout: (options.statementTimeoutMs ?? 5_000) + 2_000,
        application_name: `bulkhead-audit-${options.workerId}`,
      });
    // Idle clients cut by the server emit errors; they are the next query's problem, not a crash.
    if (!options.pool) pool.on("error", (error) => options.log?.warn({ err: error.message }, "audit database connection lost"));
    const writer = new AuditWriter(pool, !options.pool, spool, options);
    if ((await spool.segments()).length > 0) {
      writer.mode = "spool";
      options.log?.warn({ spoolDir: spool.dir }, "audit spool from a previous run found; replaying it");
      writer.replayer.wake(0);
    }
    return writer;
  }

  record(event: WorkerAuditEvent): Promise<AuditDurability> {
    if (this.closing) return Promise.reject(new AuditUnavailableError("closed", "the audit writer is shutting down"));
    let row: AuditRow;
    try {
      row = prepareEvent(event, this.now());
    } catch (error) {
      return Promise.reject(error instanceof AuditEventError ? error : new AuditEventError(String(error), error));
    }
    this.counters.recorded++;
    return new Promise((resolve, reject) => {
      this.queue.push({ row, enqueued: performance.now(), resolve, reject });
      this.schedule();
    });
  }

  /**
   * Flush policy: a full batch goes at once; with nothing in flight, the events of this turn of
   * the event loop go at once; otherwise a partial batch goes once its oldest event has waited
   * maxDelayMs or as soon as the last flush ends; at most maxInFlight batches at a time.
   */
  private schedule(afterFlush = false): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const full = this.queue.length >= this.maxBatchSize;
      const waited = performance.now() - this.queue[0]!.enqueued >= this.maxDelayMs;
      const idle = this.inFlight === 0;
      // Group commit: with nothing in flight nobody gains from waiting, so write as soon as this
      // turn of the event loop has queued what it will (one round trip at low load); while a
      // batch is in flight, events gather for the next one (batching under load).
      if (idle && !full && !waited && !afterFlush) {
        this.immediate ??= setImmediate(() => {
          this.immediate = null;
          this.schedule(true);
        });
        break;
      }
      if (!full && !waited && !(afterFlush && idle)) break;
      this.launch();
    }
    // With every slot busy, the next flush's end calls back here instead of a timer.
    if (this.queue.length > 0 && this.inFlight < this.maxInFlight && !this.timer) {
      const wait = Math.max(0, this.maxDelayMs - (performance.now() - this.queue[0]!.enqueued));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.schedule();
      }, wait);
    }
  }

  private launch(): void {
    this.inFlight++;
    const batch = this.queue.splice(0, this.maxBatchSize);
    const flush = this.writeBatch(batch)
      .catch((error: unknown) => {
        // A bug, not an outage: never leave an event pending.
        this.noteError(error);
        const failure = new AuditUnavailableError("unwritable", `audit flush failed: ${errorMessage(error)}`, error);
        for (const p of batch) p.reject(failure);
      })
      .finally(() => {
        this.inFlight--;
        this.flushes.delete(flush);
        this.schedule(true);
      });
    this.flushes.add(flush);
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    let rest = this.mode === "database" ? await this.tryDatabase(batch) : batch;
    if (rest.length === 0) return;
    await this.writeLock.run(async () => {
      // The replayer may have switched back to the database while this batch waited.
      if (this.mode === "database") rest = await this.tryDatabase(rest);
      if (rest.length > 0) await this.spoolBatch(rest);
    });
  }

  /**
   * Writes the batch to the database. Returns the events still to be made durable: all of them
   * when the database is unavailable (the writer is then in spool mode), none otherwise. Events
   * the database refuses as data are rejected one by one; the rest of their batch is written.
   */
  private async tryDatabase(batch: Pending[]): Promise<Pending[]> {
    try {
      await insertRows(this.pool, batch.map((p) => p.row));
      this.counters.batches++;
      this.settle(batch, "database");
      return [];
    } catch (error) {
      if (!isDataError(error)) {
        this.noteError(error);
        if (this.mode === "database") this.options.log?.error({ err: errorMessage(error) }, "audit database unavailable; spooling events locally");
        this.mode = "spool";
        return batch;
      }
      if (batch.length === 1) {
        this.refuse(batch, error);
        return [];
      }
      for (let i = 0; i < batch.length; i++) {
        if ((await this.tryDatabase([batch[i]!])).length > 0) return batch.slice(i);
      }
      return [];
    }
  }

  /** Appends to the spool under the write lock; the database is the last resort. */
  private async spoolBatch(batch: Pending[]): Promise<void> {
    try {
      await this.spool.append(batch.map((p) => p.row));
      this.settle(batch, "spool");
      this.replayer.wake();
    } catch (spoolError) {
      this.noteError(spoolError);
      try {
        // Out of order (older events may still be spooled), but durable.
        await insertRows(this.pool, batch.map((p) => p.row));
        this.settle(batch, "database");
      } catch (dbError) {
        this.options.log?.error({ spool: errorMessage(spoolError), database: errorMessage(dbError) }, "audit events could be neither written nor spooled");
        this.counters.failed += batch.length;
        const error = new AuditUnavailableError("unwritable", `audit events could be neither written to the database nor spooled: ${errorMessage(spoolError)}`, spoolError);
        for (const p of batch) p.reject(error);
      }
    }
  }

  private refuse(batch: Pending[], error: unknown): void {
    this.noteError(error);
    this.counters.failed += batch.length;
    for (const p of batch) p.reject(new AuditEventError(`the database refused the audit event: ${errorMessage(error)}`, error));
  }

  private settle(batch: Pending[], durable: "database" | "spool"): void {
    const now = performance.now();
    this.counters[durable === "database" ? "flushed" : "spooled"] += batch.length;
    for (const p of batch) {
      const ms = now - p.enqueued;
      this.lag.add(ms);
      this.options.onFlushLag?.(ms);
      p.resolve({ durable, eventId: p.row.eventId });
    }
  }

  private noteError(error: unknown): void {
    this.lastError = { message: errorMessage(error), at: this.now() };
  }

  stats(): AuditWriterStats {
    return {
      mode: this.mode,
      queued: this.queue.length,
      ...this.counters,
      replayed: this.replayer.replayed,
      duplicatesSkipped: this.replayer.duplicatesSkipped,
      quarantined: this.replayer.quarantined,
      spoolSyncs: this.spool.syncs,
      lastError: this.lastError?.message ?? null,
      lastErrorAt: this.lastError?.at ?? null,
    };
  }

  /** Flush lags (ms) since the last call, at most the latest 65,536. */
  takeFlushLagSamples(): number[] {
    return this.lag.take();
  }

  /** Resolves when every event queued so far is settled (durable, or rejected). */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.flushes.size > 0) {
      if (this.queue.length > 0 && this.inFlight < this.maxInFlight) this.launch();
      else await Promise.race(this.flushes);
    }
  }

  /** For SIGTERM: stop accepting, make everything queued durable, stop replaying, release. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.flush();
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      if (this.immediate) clearImmediate(this.immediate);
      this.immediate = null;
      await this.replayer.stop();
      await this.writeLock.run(() => this.spool.close());
      if (this.ownsPool) await this.pool.end().catch(() => undefined);
    })();
    return this.closing;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
