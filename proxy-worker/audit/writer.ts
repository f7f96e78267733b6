/**
 * The worker's audit writer: the write-ahead log (wal/log.ts) is the commit point, the shipper
 * (shipper.ts) moves events from it to PostgreSQL. `record` resolves once the event is durable by
 * the configured mode (group: written, fsync'd within milliseconds; strict: fsync'd), which takes
 * microseconds, not a database round trip; it rejects with AuditUnavailableError when the log
 * cannot take the event (disk full, I/O error, backlog beyond the hard limit, shutting down), and
 * then the proxy must not forward the request.
 *
 *   const audit = await AuditWriter.start({ databaseUrl, walDir, workerId });
 *   await audit.record({ type: "proxy.decision", actorType: "agent", ... });  // { durable, eventId, lsn }
 *   // SIGTERM: await audit.close();
 */
import { performance } from "node:perf_hooks";
import type { Logger } from "@/lib/log";
import { AuditUnavailableError } from "./errors";
import { prepareEvent, type WorkerAuditEvent } from "./event";
import { importLegacySpool } from "./legacy-spool";
import { LagSamples } from "./lock";
import { AuditShipper, type AuditShipperStats } from "./shipper";
import { AuditWal, type BacklogState, type Durability } from "./wal/log";

export type { WorkerAuditEvent } from "./event";
export type { Durability } from "./wal/log";

export interface AuditDurability {
  durable: Durability;
  eventId: string;
  lsn: number;
}

export interface AuditWriterOptions {
  databaseUrl: string;
  /** e.g. <dataDir>/audit-wal */
  walDir: string;
  /** Stable per worker process slot, so that a restarted worker ships what its predecessor logged. */
  workerId: string;
  durability?: Durability;
  fsyncIntervalMs?: number;
  segmentBytes?: number;
  memoryBytes?: number;
  softLimitBytes?: number;
  hardLimitBytes?: number;
  maxBatch?: number;
  /** Frame bytes per shipped batch at most (default 8 MiB). */
  maxBatchBytes?: number;
  foldWindowMs?: number;
  smallBatchPauseMs?: number;
  statementTimeoutMs?: number;
  /** A spool directory left by a version before the log: its events are moved into the log once. */
  legacySpoolDir?: string;
  log?: Logger;
  /** Each event's time from record() to durable, in milliseconds. */
  onFlushLag?: (ms: number) => void;
  onFsync?: (seconds: number) => void;
  onShipped?: (events: number, seconds: number) => void;
  now?: () => Date;
  /**
   * While the log's writes fail, how often (ms) it tries a write of its own (default 2,000): the
   * log says it is refusing until a write succeeds, and a worker that refuses every request, or
   * that no traffic reaches while /readyz says it is not ready, would otherwise never write again.
   */
  writeRetryMs?: number;
}

export interface AuditWriterStats extends Omit<AuditShipperStats, "shippedLsn"> {
  durability: Durability;
  /** ok | behind (over the soft limit) | refusing (over the hard limit, the last write failed, or an fsync did). */
  backlog: BacklogState;
  walBytes: number;
  segments: number;
  writtenLsn: number;
  durableLsn: number;
  shippedLsn: number;
  /** Events logged and not yet in PostgreSQL. */
  lagEvents: number;
  /** Age of the oldest event not yet in PostgreSQL. */
  lagSeconds: number;
  recorded: number;
  failed: number;
  refusedForBacklog: number;
  fsyncs: number;
  /** Why the log's last write failed, while no write has succeeded since. */
  writeFailure: string | null;
  fsyncFailure: string | null;
  truncatedAtOpen: number;
  /** Events logged again after the database's cursor, which had passed them without holding them. */
  relogged: number;
}

export class AuditWriter {
  private readonly counters = { recorded: 0, failed: 0, refusedForBacklog: 0 };
  private readonly lag = new LagSamples();
  private closing: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  private readonly now: () => Date;
  /** While the log's writes fail: since when, how many events were refused, the retry timer. */
  private outage: { since: Date; refused: number; error: string | null; timer: NodeJS.Timeout; trying: boolean } | null = null;

  private constructor(
    private readonly wal: AuditWal,
    private readonly shipper: AuditShipper,
    private readonly options: AuditWriterOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** Opens the log (taking the worker id's lock), imports a legacy spool, starts shipping. */
  static async start(options: AuditWriterOptions): Promise<AuditWriter> {
    const wal = await AuditWal.open({
      dir: options.walDir,
      workerId: options.workerId,
      durability: options.durability,
      fsyncIntervalMs: options.fsyncIntervalMs,
      segmentBytes: options.segmentBytes,
      memoryBytes: options.memoryBytes,
      softLimitBytes: options.softLimitBytes,
      hardLimitBytes: options.hardLimitBytes,
      log: options.log,
      onFsync: options.onFsync,
    });
    try {
      const legacy = options.legacySpoolDir ? await importLegacySpool(wal, options.walDir, options.legacySpoolDir, options.workerId, options.log) : null;
      const shipper = new AuditShipper(wal, {
        databaseUrl: options.databaseUrl,
        workerId: options.workerId,
        dir: options.walDir,
        maxBatch: options.maxBatch,
        maxBatchBytes: options.maxBatchBytes,
        foldWindowMs: options.foldWindowMs,
        smallBatchPauseMs: options.smallBatchPauseMs,
        statementTimeoutMs: options.statementTimeoutMs,
        dedupe: legacy,
        log: options.log,
        onBatch: options.onShipped,
      });
      const writer = new AuditWriter(wal, shipper, options);
      // Said in the chain, before anything else this log ships: what the segments held is gone.
      if (wal.segmentsMissing) {
        await writer.record({
          type: "audit.log_gap",
          actorType: "system",
          actorId: `worker:${options.workerId}`,
          outcome: "lost",
          reason: "the audit log's segments were gone when the worker started (removed, or its folder restored without them); events logged in them and not yet shipped are missing from the audit",
          data: { walId: wal.walId, from: null, to: null, problem: "segments_missing", segment: "(none)" },
        });
      }
      shipper.start();
      return writer;
    } catch (error) {
      await wal.close();
      throw error;
    }
  }

  /**
   * Appends the event to the log; resolves once it is durable by the mode. With `deferred` (an
   * event nothing waits for, such as a request's completion) it is written with the next event
   * that is waited for, or within the fsync interval (AuditWal.append); its wait is not counted
   * in the flush lag, which is what requests wait for.
   */
  record(event: WorkerAuditEvent, options?: { deferred?: boolean }): Promise<AuditDurability> {
    if (this.closing) return Promise.reject(new AuditUnavailableError("closed", "the audit writer is shutting down"));
    const row = prepareEvent(event, this.now());
    this.counters.recorded++;
    const deferred = options?.deferred === true;
    const started = deferred ? 0 : performance.now();
    // A refusal may use the reserve above the hard limit: while requests are refused for
    // backlog, the refusals themselves are still recorded for a while.
    return this.wal.append(row, event.outcome === "deny", deferred).then(
      (lsn) => {
        if (this.outage) this.endOutage();
        if (!deferred) {
          const ms = performance.now() - started;
          this.lag.add(ms);
          this.options.onFlushLag?.(ms);
        }
        return { durable: this.wal.durability, eventId: row.eventId, lsn };
      },
      (error: unknown) => {
        this.counters.failed++;
        if (error instanceof AuditUnavailableError && error.reason === "backlog") this.counters.refusedForBacklog++;
        if (error instanceof AuditUnavailableError && error.reason === "unwritable") this.noteUnwritable();
        throw error;
      },
    );
  }

  /** An event could not be written: counted, and a retry started if none runs. */
  private noteUnwritable(): void {
    if (this.closing) return;
    const error = this.wal.stats().writeFailure;
    if (this.outage) {
      this.outage.refused++;
      this.outage.error = error ?? this.outage.error;
      return;
    }
    const timer = setInterval(() => this.endOutage(), this.options.writeRetryMs ?? 2_000);
    timer.unref();
    this.outage = { since: this.now(), refused: 1, error, timer, trying: false };
  }

  /**
   * Writes what the outage was into the log itself (`audit.log_unwritable`, outcome `recovered`):
   * when it began and ended, how many events were refused (the requests they describe were not
   * forwarded), the last error. Its success is what ends the outage (the log is ready again); a
   * failure leaves it for the next try. Not tried after a failed fsync, which stops the log until
   * a restart.
   */
  private endOutage(): void {
    const outage = this.outage;
    if (!outage || outage.trying) return;
    if (this.closing) {
      clearInterval(outage.timer);
      this.outage = null;
      return;
    }
    const w = this.wal.stats();
    if (w.fsyncFailure) return;
    outage.trying = true;
    const to = this.now();
    const error = w.writeFailure ?? outage.error;
    const row = prepareEvent(
      {
        type: "audit.log_unwritable",
        actorType: "system",
        actorId: `worker:${this.options.workerId}`,
        outcome: "recovered",
        reason: `the audit log could not be written from ${outage.since.toISOString()} to ${to.toISOString()}; ${outage.refused} ${outage.refused === 1 ? "event was" : "events were"} refused (the requests they describe were not forwarded)${error ? `; last error: ${error}` : ""}`,
        data: { walId: this.wal.walId, from: outage.since.toISOString(), to: to.toISOString(), refused: outage.refused, error },
      },
      to,
    );
    this.wal.append(row, false, false).then(
      () => {
        clearInterval(outage.timer);
        if (this.outage === outage) this.outage = null;
        this.options.log?.warn({ from: outage.since.toISOString(), refused: outage.refused }, "audit log writable again; the outage is recorded as audit.log_unwritable");
      },
      () => {
        outage.trying = false;
      },
    );
  }

  stats(): AuditWriterStats {
    const w = this.wal.stats();
    const s = this.shipper.stats();
    const shipped = s.shippedLsn;
    const lagEvents = Math.max(0, w.writtenLsn - Math.max(shipped, this.wal.firstLsn() - 1));
    const oldest = lagEvents > 0 ? this.wal.timeOf(Math.max(shipped, this.wal.firstLsn() - 1) + 1) : null;
    const since = oldest ?? s.lastShippedAt?.getTime() ?? this.startedAt;
    return {
      ...s,
      durability: w.durability,
      backlog: w.backlog,
      walBytes: w.bytes,
      segments: w.segments,
      writtenLsn: w.writtenLsn,
      durableLsn: w.durableLsn,
      lagEvents,
      lagSeconds: lagEvents > 0 ? Math.max(0, (Date.now() - since) / 1000) : 0,
      ...this.counters,
      fsyncs: w.fsyncs,
      writeFailure: w.writeFailure,
      fsyncFailure: w.fsyncFailure,
      // The log's failed write is what matters most while it lasts (every request is refused).
      ...(w.writeFailure ? { lastError: `audit log write failed: ${w.writeFailure}`, lastErrorAt: w.writeFailureAt } : {}),
      truncatedAtOpen: w.truncatedAtOpen,
      relogged: w.relogged,
    };
  }

  /** Record-to-durable times (ms) since the last call, at most the latest 65,536. */
  takeFlushLagSamples(): number[] {
    return this.lag.take();
  }

  /**
   * Resolves once every event recorded so far is in PostgreSQL, and the segments that held only
   * shipped events are removed (removal runs off the event loop: on a full disk, their room is
   * what the next event needs); rejects after `timeoutMs`.
   */
  async flush(timeoutMs = 30_000): Promise<void> {
    await this.wal.syncNow();
    if (!(await this.shipper.drain(timeoutMs))) throw new AuditUnavailableError("backlog", `the audit log was not shipped to PostgreSQL within ${timeoutMs} ms`);
    await this.wal.removalsSettled();
  }

  /** The log's identity: stable for this worker slot across restarts (it names what it logged). */
  get logId(): string {
    return this.wal.walId;
  }

  /**
   * For SIGTERM: stop accepting, ship what it can within `drainMs` (the rest stays in the log for
   * the next start), stop the shipper, sync and close the log, release the lock.
   */
  close(drainMs = 5_000): Promise<void> {
    this.closing ??= (async () => {
      if (this.outage) clearInterval(this.outage.timer);
      await this.wal.syncNow().catch(() => undefined);
      await this.shipper.drain(drainMs);
      await this.shipper.stop();
      await this.wal.close();
    })();
    return this.closing;
  }
}
