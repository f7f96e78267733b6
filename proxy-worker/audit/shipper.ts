/**
 * Moves events from the write-ahead log to audit_events: one batch at a time, in log order, each
 * batch in one statement that also moves the log's cursor (store.ts), so every event arrives
 * exactly once and the hash chain (extended by the database's trigger) follows the log's order.
 * A batch is as large as what is waiting (up to `maxBatch`): under load batches grow, at idle an
 * event goes at once. Only fsync'd events are shipped (the log could lose the others). Behind,
 * the next batch is read, folded and made into parameters while the database stores the current
 * one, and sent once it has committed: the shipper's work and the database's overlap.
 *
 * The database away, slow or frozen only makes the shipper wait and retry (the log keeps the
 * events). Its own connection, with a statement timeout and a client-side read timeout, is
 * dropped and made again after any failure, and the cursor is read again before going on.
 */
import { appendFile, readFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import pg from "pg";
import type { Logger } from "@/lib/log";
import { minimalRow, prepareEvent, type AuditRow } from "./event";
import { assembleBatch, decisionOf, type AssembledBatch } from "./fold";
import { forgetLegacyRange, type LegacyRange } from "./legacy-spool";
import { isDataError, prepareRows, readCursor, shipRows, storedEvents, type PreparedRows } from "./store";
import type { AuditWal } from "./wal/log";
import type { WalRecord } from "./wal/frame";
import type { WalGap } from "./wal/reader";

export interface AuditShipperOptions {
  databaseUrl: string;
  workerId: string;
  /** Directory for events the database refuses even in minimal form. */
  dir: string;
  maxBatch?: number;
  /** Log frame bytes per batch at most (default 8 MiB; a larger single event goes alone). */
  maxBatchBytes?: number;
  /** How long a forwarded decision may wait for its completion to be folded in (ms). */
  foldWindowMs?: number;
  /**
   * After a small batch (the shipper is caught up), wait this long before the next (ms): caught
   * up, events become shippable a few at a time, and a statement per few rows spends PostgreSQL's
   * time on statements and commits rather than rows. A full batch (behind) goes on at once.
   */
  smallBatchPauseMs?: number;
  statementTimeoutMs?: number;
  /** LSNs of events moved in from an earlier version's spool: inserted only if not stored yet. */
  dedupe?: LegacyRange | null;
  log?: Logger;
  onBatch?: (events: number, seconds: number) => void;
}

export interface AuditShipperStats {
  /** Every event up to this LSN is in PostgreSQL (-1 until the cursor was read). */
  shippedLsn: number;
  batches: number;
  shipped: number;
  rows: number;
  folded: number;
  minimal: number;
  quarantined: number;
  gaps: number;
  /** Batches that were read and prepared while the batch before them was being stored. */
  readAhead: number;
  connected: boolean;
  lastShippedAt: Date | null;
  lastError: string | null;
  lastErrorAt: Date | null;
}

/** One batch read from the log and made ready to send: what step() ships. */
interface PreparedBatch {
  /** The LSN it was read from (the cursor + 1 it assumes). */
  from: number;
  records: WalRecord[];
  gap: WalGap | null;
  /** The last LSN read (or the cursor, when nothing was). */
  seenLsn: number;
  batch: AssembledBatch;
  /** A stretch of the log that could not be read, as an event of its own after the rows. */
  gapRow: AuditRow | null;
  /** The rows to insert (the batch's, then gapRow) and the cursor after them. */
  rows: AuditRow[];
  to: number;
  values: PreparedRows | null;
}

export class AuditShipper {
  private client: pg.Client | null = null;
  private cursor = -1;
  private running: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private readonly counters = { batches: 0, shipped: 0, rows: 0, folded: 0, minimal: 0, quarantined: 0, gaps: 0, readAhead: 0 };
  private lastShippedAt: Date | null = null;
  private lastError: { message: string; at: Date } | null = null;
  private draining = false;
  private readonly shippedWaiters: Array<() => void> = [];
  private readonly maxBatch: number;
  private readonly maxBatchBytes: number;
  private readonly foldWindowMs: number;
  private readonly smallBatchPauseMs: number;
  private dedupe: LegacyRange | null;
  /** The next batch, being prepared while the current one is stored (only while behind). */
  private ahead: { from: number; batch: Promise<PreparedBatch> } | null = null;

  constructor(
    private readonly wal: AuditWal,
    private readonly o: AuditShipperOptions,
  ) {
    // ~1,000 rows once completions fold in: PostgreSQL's cost per row is lowest at a few hundred to
    // a thousand rows per statement (docs/audit.md, "Shipping"), and a smaller batch is a shorter
    // stall of the worker's event loop while the driver serialises it.
    this.maxBatch = o.maxBatch ?? 2_000;
    this.maxBatchBytes = o.maxBatchBytes ?? 8 * 1024 * 1024;
    this.foldWindowMs = o.foldWindowMs ?? 250;
    this.smallBatchPauseMs = o.smallBatchPauseMs ?? 100;
    this.dedupe = o.dedupe ?? null;
  }

  start(): void {
    this.running ??= this.loop();
  }

  get shippedLsn(): number {
    return this.cursor;
  }

  private async loop(): Promise<void> {
    let backoff = 50;
    while (!this.stopping) {
      try {
        const step = await this.step();
        backoff = 50;
        if (!step.shipped && !this.stopping) await this.idle(step.waitMs, step.seenLsn);
        else if (step.small && !this.draining && !this.stopping && this.smallBatchPauseMs > 0) await this.idle(this.smallBatchPauseMs, null);
      } catch (error) {
        this.noteError(error);
        await this.dropConnection();
        if (!this.stopping) await this.idle(backoff, null);
        backoff = Math.min(backoff * 2, 2_000);
      }
    }
  }

  /** Waits for events past `seenLsn` to be durable (when given), a timer (when given), or stop(). */
  private async idle(ms: number | null, seenLsn: number | null): Promise<void> {
    await new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const done = () => {
        if (timer) clearTimeout(timer);
        // A late call (the other trigger) must not clear a later wait's wake.
        if (this.wake === done) this.wake = null;
        resolve();
      };
      this.wake = done;
      if (ms !== null) timer = setTimeout(done, ms);
      if (seenLsn !== null) void this.wal.waitForDurable(seenLsn).then(done);
    });
  }

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const timeout = this.o.statementTimeoutMs ?? 30_000;
    const client = new pg.Client({
      connectionString: this.o.databaseUrl,
      connectionTimeoutMillis: 5_000,
      statement_timeout: timeout,
      query_timeout: timeout + 5_000,
      keepAlive: true,
      application_name: `bulkhead-audit-shipper-${this.o.workerId}`,
    });
    // A connection cut while idle is the next query's problem, not a crash.
    client.on("error", (error) => this.noteError(error));
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    // Read after every (re)connection: a batch whose answer was lost may have committed.
    // The log learns the cursor (and logs again what it finds below it) before the shipper goes by it.
    const cursor = await readCursor(client, this.wal.walId, this.o.workerId);
    const through = await this.wal.advancePast(cursor);
    await this.checkPassed(client, this.cursor + 1, Math.min(cursor, through));
    this.cursor = cursor;
    this.wal.release(this.cursor);
    this.client = client;
    this.progressed();
    return client;
  }

  private async dropConnection(): Promise<void> {
    const client = this.client;
    this.client = null;
    if (!client) return;
    // Never wait for a frozen server to say goodbye.
    (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    await client.end().catch(() => undefined);
  }

  /** Ships one batch if one is ready; otherwise says what to wait for. */
  private async step(): Promise<{ shipped: boolean; small?: boolean; waitMs: number | null; seenLsn: number }> {
    const client = await this.connect();
    // Read ahead while the batch before was stored, if it starts where the cursor now is (a batch
    // that failed or a cursor moved elsewhere leaves it unused).
    const ahead = this.ahead;
    this.ahead = null;
    const readAhead = ahead !== null && ahead.from === this.cursor + 1;
    const p = readAhead ? await ahead.batch : await this.prepare(this.cursor + 1);
    const { records, gap, batch, gapRow } = p;
    if (records.length === 0 && !gap) return { shipped: false, waitMs: null, seenLsn: p.seenLsn };
    if (p.rows.length === 0) return { shipped: false, waitMs: batch.waitMs || null, seenLsn: p.seenLsn };
    const started = performance.now();
    // Under a quarter of the maximum: caught up, and the loop pauses before the next batch.
    const small = records.length < this.maxBatch / 4;
    try {
      // The driver sends the statement within this call; then, while the database stores it, the
      // next batch is prepared, when behind (a batch this size and more durable already). Caught
      // up, the next step comes after a pause and reads then: a batch read now would hold only
      // what is durable now, a smaller statement than the pause would gather.
      const shipping = this.ship(client, p.to, p.rows, p.values);
      if (!small && this.wal.durableLsn > p.to && !this.stopping) {
        const next = this.prepare(p.to + 1);
        next.catch(() => undefined); // read again by the next step if it failed
        this.ahead = { from: p.to + 1, batch: next };
      }
      await shipping;
    } catch (error) {
      this.ahead = null;
      if (!isDataError(error)) throw error;
      await this.shipCarefully(client, records.filter((r) => r.lsn <= batch.last), error);
      if (gapRow) await this.ship(client, gap!.to, [gapRow]);
    }
    if (gapRow) {
      this.counters.gaps++;
      this.o.log?.error({ ...gap }, "audit log: events could not be read back; recorded as a gap in the audit");
    }
    this.counters.batches++;
    if (readAhead) this.counters.readAhead++;
    this.counters.folded += batch.folded;
    this.o.onBatch?.(batch.rows.length + batch.folded, (performance.now() - started) / 1000);
    this.progressed();
    return { shipped: true, small, waitMs: null, seenLsn: p.seenLsn };
  }

  /** Reads durable records from `from` on and makes the batch that ships them (nothing sent). */
  private async prepare(from: number): Promise<PreparedBatch> {
    const read = await this.wal.read(from, this.maxBatch);
    // At most maxBatchBytes of log frames per statement (always at least one record): events of
    // up to 256 KiB each would otherwise make a 2,000-event statement of hundreds of MiB, beyond
    // what one JavaScript string or the server's parameter may hold. A batch cut short leaves its
    // gap, if any, to a later read.
    let { records, gap } = read;
    let bytes = 0;
    const cut = records.findIndex((r, i) => (bytes += r.bytes) > this.maxBatchBytes && i > 0);
    if (cut > 0) {
      records = records.slice(0, cut);
      gap = null;
    }
    const seenLsn = records.at(-1)?.lsn ?? from - 1;
    const batch = records.length > 0 ? assembleBatch(records, { foldWindowMs: this.foldWindowMs, now: Date.now(), wait: !this.draining }) : { rows: [], last: from - 1, folded: 0, waitMs: 0 };
    // A stretch of the log that cannot be read goes in as an event of its own, where it was.
    const gapRow = gap && batch.last === seenLsn ? gapEvent(gap, this.o.workerId, this.wal.walId) : null;
    const rows = gapRow ? [...batch.rows, gapRow] : batch.rows;
    return { from, records, gap, seenLsn, batch, gapRow, rows, to: gapRow ? gap!.to : batch.last, values: rows.length > 0 ? prepareRows(rows) : null };
  }

  /**
   * Inserts rows (sent as `values` when given: the same rows made into parameters) and moves the
   * cursor to `last`; a moved cursor (another shipper?) is re-read.
   */
  private async ship(client: pg.Client, last: number, rows: AuditRow[], values: PreparedRows | null = null): Promise<void> {
    const legacy = this.dedupe !== null && this.cursor < this.dedupe.to && last >= this.dedupe.from;
    if (legacy) {
      const seen = new Set<string>();
      rows = rows.filter((r) => !seen.has(r.eventId) && (seen.add(r.eventId), true));
    }
    const ok = await shipRows(client, this.wal.walId, this.cursor, last, legacy || !values ? rows : values, legacy);
    if (!ok) {
      const was = this.cursor;
      const found = await readCursor(client, this.wal.walId, this.o.workerId);
      await this.checkPassed(client, was + 1, found);
      this.cursor = found;
      this.o.log?.warn({ expected: was, found: this.cursor }, "audit log cursor moved elsewhere; continuing from the database's cursor");
      this.wal.release(this.cursor);
      return;
    }
    this.counters.shipped += last - this.cursor;
    this.counters.rows += rows.length;
    this.cursor = last;
    this.lastShippedAt = new Date();
    this.wal.release(last);
    if (this.dedupe && last >= this.dedupe.to) {
      await forgetLegacyRange(this.dedupe);
      this.dedupe = null;
    }
  }

  /**
   * The cursor says LSNs [from, to] are in PostgreSQL, but this shipper did not ship them (a
   * restart, a lost answer, or someone holding the workers' role moved it on): the events of that
   * stretch the log still holds are looked up, and any PostgreSQL does not hold is logged again
   * after the cursor, after an `audit.log_cursor_moved` event saying so. A completion counts as
   * stored when its decision is (it may have been folded into the decision's row).
   */
  private async checkPassed(client: pg.Client, from: number, to: number): Promise<void> {
    from = Math.max(from, this.wal.firstLsn());
    to = Math.min(to, this.wal.durableLsn);
    const records: WalRecord[] = [];
    while (from <= to) {
      const { records: got, gap } = await this.wal.read(from, Math.min(2_000, to - from + 1));
      records.push(...got.filter((r) => r.lsn <= to));
      if (got.length > 0) from = got.at(-1)!.lsn + 1;
      else if (gap) from = gap.to + 1;
      else break;
    }
    if (records.length === 0) return;
    const present = await storedEvents(client, records.map((r) => r.row));
    const ids = new Map(records.map((r, i) => [r.row.eventId, i]));
    const missing = records.filter((r, i) => {
      if (present.has(i)) return false;
      const of = decisionOf(r.row);
      if (of === null) return true;
      const decision = ids.get(of);
      return decision !== undefined && !present.has(decision);
    });
    // Events the database refused even in minimal form were passed on purpose (kept in a file).
    if (missing.length > 0) {
      const kept = await readFile(path.join(this.o.dir, `${this.o.workerId}.rejected.jsonl`), "utf8").catch(() => "");
      for (let i = missing.length - 1; i >= 0; i--) if (kept.includes(`"eventId":${JSON.stringify(missing[i]!.row.eventId)}`)) missing.splice(i, 1);
    }
    if (missing.length === 0) return;
    const lsns = { from: missing[0]!.lsn, to: missing.at(-1)!.lsn };
    this.o.log?.error({ walId: this.wal.walId, ...lsns, missing: missing.length }, "audit log: the cursor in PostgreSQL passed events it does not hold; they are logged again after it");
    const notice = prepareEvent(
      {
        type: "audit.log_cursor_moved",
        actorType: "system",
        actorId: `worker:${this.o.workerId}`,
        outcome: "recovered",
        reason: `the audit log's cursor in PostgreSQL passed ${missing.length} of its events that PostgreSQL does not hold (LSNs ${lsns.from}-${lsns.to}); they are logged again after it`,
        data: { walId: this.wal.walId, ...lsns, relogged: missing.length, eventIds: missing.slice(0, 100).map((r) => r.row.eventId) },
      },
      new Date(),
    );
    this.wal.logAgain(missing.map((r) => r.row), notice);
  }

  /** One record per statement; a refused one as a minimal event; if even that is refused, kept in a file. */
  private async shipCarefully(client: pg.Client, records: Array<{ lsn: number; row: AuditRow }>, cause: unknown): Promise<void> {
    this.o.log?.warn({ err: (cause as Error).message, events: records.length }, "the database refused an audit batch as data; shipping it event by event");
    for (const r of records) {
      if (r.lsn <= this.cursor) continue;
      try {
        await this.ship(client, r.lsn, [r.row]);
        continue;
      } catch (error) {
        if (!isDataError(error)) throw error;
        this.noteError(error);
      }
      const minimal = minimalRow({ ...r.row, actorType: r.row.actorType as "system", data: { eventId: r.row.eventId } }, new Date(r.row.at), "the database refused the event as written");
      try {
        await this.ship(client, r.lsn, [minimal]);
        this.counters.minimal++;
        continue;
      } catch (error) {
        if (!isDataError(error)) throw error;
      }
      const file = path.join(this.o.dir, `${this.o.workerId}.rejected.jsonl`);
      await appendFile(file, `${JSON.stringify({ lsn: r.lsn, ...r.row })}\n`, { mode: 0o600 });
      await this.ship(client, r.lsn, []);
      this.counters.quarantined++;
      this.o.log?.error({ eventId: r.row.eventId, file }, "the database refused an audit event even in minimal form; kept in a file");
    }
  }

  /** The cursor moved (or was read): wake whoever waits in drain(). */
  private progressed(): void {
    for (const w of this.shippedWaiters.splice(0)) w();
  }

  private noteError(error: unknown): void {
    this.lastError = { message: error instanceof Error ? error.message : String(error), at: new Date() };
  }

  stats(): AuditShipperStats {
    return {
      shippedLsn: this.cursor,
      ...this.counters,
      connected: this.client !== null,
      lastShippedAt: this.lastShippedAt,
      lastError: this.lastError?.message ?? null,
      lastErrorAt: this.lastError?.at ?? null,
    };
  }

  /**
   * Ships everything durable now without waiting for completions (for shutdown and tests);
   * false when that did not finish within `timeoutMs` (the rest stays in the log).
   */
  async drain(timeoutMs: number): Promise<boolean> {
    const target = this.wal.durableLsn;
    const deadline = Date.now() + timeoutMs;
    this.draining = true;
    try {
      // Events logged again after the cursor (AuditWal.advancePast) were recorded before this call.
      while (this.cursor < Math.max(target, this.wal.reloggedThrough) && this.running && !this.stopping && Date.now() < deadline) {
        this.wake?.();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
          this.shippedWaiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return this.cursor >= Math.max(target, this.wal.reloggedThrough);
    } finally {
      this.draining = false;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    // A batch waiting on a frozen or vanished server is abandoned (its cursor decides, next time).
    const stuck = setTimeout(() => void this.dropConnection(), 1_000);
    await this.running;
    clearTimeout(stuck);
    this.running = null;
    await this.dropConnection();
  }
}

function gapEvent(gap: WalGap, workerId: string, walId: string): AuditRow {
  return prepareEvent(
    {
      type: "audit.log_gap",
      actorType: "system",
      actorId: `worker:${workerId}`,
      outcome: "lost",
      reason: `audit log records ${gap.from}-${gap.to} could not be read back (${gap.problem}${gap.bytes === undefined ? "" : `, ${gap.bytes} bytes damaged`}); they are missing from the audit`,
      data: { walId, from: gap.from, to: gap.to, problem: gap.problem, segment: path.basename(gap.segment), ...(gap.bytes === undefined ? {} : { bytes: gap.bytes }) },
    },
    new Date(),
  );
}
