/**
 * The audit write-ahead log: the commit point of the worker's audit. `append` resolves once the
 * event is durable by the configured mode:
 * - `group` (default): written to the segment file (in the kernel, so a crash of the process,
 *   SIGKILL included, loses nothing); fdatasync follows within `fsyncIntervalMs`, for many
 *   events at once. A power loss can take the last interval's events.
 * - `strict`: written and fdatasync'd (one fsync covers every event written before it started).
 * Events written in one turn of the event loop go to disk with one write. Only fsync'd events
 * are offered to the shipper, so Postgres never holds an event the log could lose.
 *
 * If the log cannot be written, `append` rejects (the proxy then refuses the request) and the log
 * says it is refusing until a later write succeeds; a failed fsync stops the log for good (until
 * a restart re-reads it), because the kernel may have dropped data it could not write.
 */
import { closeSync, fdatasync, ftruncateSync, openSync, unlinkSync, writevSync, writeSync } from "node:fs";
import { access, unlink } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import type { Logger } from "@/lib/log";
import { AuditUnavailableError } from "../errors";
import type { AuditRow } from "../event";
import { encodeFrame, logTag, SEGMENT_HEADER_BYTES, segmentHeader, type WalRecord } from "./frame";
import { WalDiskReader, type WalGap } from "./reader";
import { checkSegmentsBelong, listSegments, recoverTail, segmentFile, syncDir, takeLock, walIdentity, type WalDamage } from "./segments";

/**
 * fdatasync through libuv's thread pool: the event loop keeps serving requests while the disk
 * syncs (a synchronous call would stall every request in flight for the length of the sync).
 */
const fdatasyncAsync: (fd: number) => Promise<void> = promisify(fdatasync);
/** What a slot of the in-memory tail holds once its record is forgotten (never read: it is below `tailHead`). */
const FORGOTTEN: WalRecord = Object.freeze({ lsn: -1, row: null as unknown as AuditRow, bytes: 0 });

export type Durability = "group" | "strict";
export type BacklogState = "ok" | "behind" | "refusing";

export interface AuditWalOptions {
  dir: string;
  workerId: string;
  durability?: Durability;
  /** Group mode: how long a written event may wait for its fsync. */
  fsyncIntervalMs?: number;
  segmentBytes?: number;
  /** Unshipped events kept in memory too (so the shipper need not read them back). */
  memoryBytes?: number;
  /** Above this much log on disk the worker says it is behind (health, metrics). */
  softLimitBytes?: number;
  /** Above this, new events are refused; refusals may still use `refusalReserveBytes` more. */
  hardLimitBytes?: number;
  log?: Logger;
  onFsync?: (seconds: number) => void;
  /** How a segment's data is synced: `fs.fdatasync`, off the event loop (tests instrument it). */
  syncData?: (fd: number) => Promise<void>;
  /**
   * How a shipped segment's file is removed: `fs.promises.unlink`, off the event loop (removing a
   * 16 MiB segment took up to 9 ms at 1,000 requests/s, and every request in flight waited).
   */
  removeFile?: (file: string) => Promise<void>;
}

interface Segment {
  first: number;
  file: string;
  size: number;
  fd: number | null;
}

interface Pending {
  row: AuditRow;
  refusal: boolean;
  resolve: (lsn: number) => void;
  reject: (error: Error) => void;
}

export interface AuditWalStats {
  walId: string;
  durability: Durability;
  segments: number;
  bytes: number;
  writtenLsn: number;
  durableLsn: number;
  appended: number;
  /** Events logged again after the database's cursor, found to have passed them (advancePast). */
  relogged: number;
  writeFailures: number;
  /** Why the last write failed, while no write has succeeded since (the log refuses events meanwhile). */
  writeFailure: string | null;
  writeFailureAt: Date | null;
  fsyncs: number;
  fsyncFailure: string | null;
  truncatedAtOpen: number;
  backlog: BacklogState;
}

export class AuditWal {
  private readonly segments: Segment[] = [];
  private nextLsn: number;
  private writtenLsn: number;
  private durableLsnValue: number;
  private readonly tail: WalRecord[] = [];
  private tailHead = 0;
  private tailBytes = 0;
  private pending: Pending[] = [];
  private writeScheduled = false;
  /** Set while only deferred events are pending: writes them within fsyncIntervalMs. */
  private deferredTimer: NodeJS.Timeout | null = null;
  private readonly awaitingSync: Array<{ lsn: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly toClose: number[] = [];
  private dirDirty = false;
  private syncing: Promise<void> | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  private durableWaiters: Array<() => void> = [];
  private failure: Error | null = null;
  /** The last write's failure, until a write succeeds again (disk full, I/O error). */
  private writeFailure: { error: Error; at: Date } | null = null;
  private closed = false;
  private readonly reader = new WalDiskReader();
  /** Removals of shipped segments still under way (close waits for them). */
  private readonly removals = new Set<Promise<void>>();
  private readonly counters = { appended: 0, writeFailures: 0, fsyncs: 0, relogged: 0 };
  /**
   * The last LSN the log held when it was opened, until the database's cursor is first read:
   * every LSN above it was given out by this process, so none of those events can be in
   * PostgreSQL yet, whatever the cursor says.
   */
  private openedLastLsn: number;
  /** Damage found in the newest segment at open: names the problem of the gap the shipper finds there. */
  private damagedAtOpen: WalDamage[] = [];
  /** The last LSN of the events logged again by advancePast (0: none). */
  reloggedThrough = 0;
  readonly durability: Durability;
  /** The log identity's tag, in every segment header it writes. */
  private readonly tag: number;
  private readonly o: Required<Omit<AuditWalOptions, "log" | "onFsync">> & Pick<AuditWalOptions, "log" | "onFsync">;

  private constructor(
    readonly walId: string,
    private readonly unlock: () => Promise<void>,
    lastLsn: number,
    private readonly truncatedAtOpen: number,
    options: AuditWalOptions,
    /** The log had an identity but no segment at all: whatever it held (shipped or not) is gone. */
    readonly segmentsMissing = false,
  ) {
    this.o = {
      durability: "group",
      fsyncIntervalMs: 10,
      segmentBytes: 16 * 1024 * 1024,
      memoryBytes: 32 * 1024 * 1024,
      softLimitBytes: 64 * 1024 * 1024,
      hardLimitBytes: 2048 * 1024 * 1024,
      syncData: fdatasyncAsync,
      removeFile: unlink,
      // An option given as undefined keeps its default.
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    } as AuditWal["o"];
    this.durability = this.o.durability;
    this.tag = logTag(walId);
    this.nextLsn = lastLsn + 1;
    this.openedLastLsn = lastLsn;
    this.writtenLsn = lastLsn;
    this.durableLsnValue = lastLsn;
  }

  /**
   * Takes the worker id's lock, recovers the newest segment (cutting a torn record, setting the
   * valid records after damage apart: segments.ts recoverTail) and starts a new one.
   */
  static async open(options: AuditWalOptions): Promise<AuditWal> {
    const unlock = await takeLock(options.dir, options.workerId);
    try {
      const found = await listSegments(options.dir, options.workerId);
      // Every log keeps at least its active segment (shipped segments go only once a newer one
      // exists), so an identity without any segment means they were removed.
      const hadIdentity = await access(path.join(options.dir, `${options.workerId}.wal-id`)).then(() => true, () => false);
      const walId = await walIdentity(options.dir, options.workerId, found.length > 0);
      await checkSegmentsBelong(found, walId);
      // Judged on what is on disk, before an empty newest segment is set aside below: a run that
      // logged nothing (started and stopped, or killed, before any request) leaves exactly that.
      const segmentsMissing = hadIdentity && found.length === 0;
      let lastLsn = 0;
      let truncated = 0;
      let damage: WalDamage[] = [];
      const newest = found.at(-1);
      if (newest) {
        const tail = recoverTail(newest, logTag(walId));
        newest.size = tail.size;
        lastLsn = tail.lastLsn;
        truncated = tail.truncatedBytes;
        damage = tail.damage;
        if (truncated > 0) options.log?.warn({ segment: newest.file, bytes: truncated, problem: tail.problem }, "audit log: cut a torn record off the end (an append that never completed)");
        for (const d of damage) {
          options.log?.error(
            { segment: newest.file, from: d.from, to: d.to, offset: d.offset, bytes: d.bytes, problem: d.problem },
            "audit log: damage in the newest segment with valid records after it; the records after it are kept, the ones lost to it are recorded as a gap when shipped",
          );
        }
        // An empty newest segment is started again below, under the same name.
        if (tail.lastLsn < newest.first) found.pop();
        found.push(...tail.split);
      }
      if (segmentsMissing) options.log?.error({ walId, dir: options.dir }, "audit log: its identity is here but every segment is gone (removed, or a folder restored without them); events in them that were not shipped are missing from the audit");
      const wal = new AuditWal(walId, unlock, lastLsn, truncated, options, segmentsMissing);
      wal.damagedAtOpen = damage.filter((d) => d.from <= d.to);
      for (const s of found) wal.segments.push({ ...s, fd: null });
      wal.startSegment();
      await syncDir(options.dir);
      return wal;
    } catch (error) {
      await unlock();
      throw error;
    }
  }

  get durableLsn(): number {
    return this.durableLsnValue;
  }

  get lastLsn(): number {
    return this.writtenLsn;
  }

  private get active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private startSegment(): void {
    const first = this.nextLsn;
    const file = segmentFile(this.o.dir, this.o.workerId, first);
    const fd = openSync(file, "w", 0o600);
    try {
      writeSync(fd, segmentHeader(this.tag), 0, SEGMENT_HEADER_BYTES, 0);
    } catch (error) {
      closeSync(fd);
      try {
        unlinkSync(file);
      } catch {
        // nothing to remove
      }
      throw error;
    }
    const previous = this.segments.at(-1);
    if (previous?.fd != null) this.toClose.push(previous.fd);
    if (previous) previous.fd = null;
    this.segments.push({ first, file, size: SEGMENT_HEADER_BYTES, fd });
    this.dirDirty = true;
  }

  /** Bytes of log on disk: what the shipper has not yet moved (within a segment). */
  bytes(): number {
    let total = 0;
    for (const s of this.segments) total += s.size;
    return total;
  }

  backlog(): BacklogState {
    const bytes = this.bytes();
    return bytes > this.o.hardLimitBytes ? "refusing" : bytes > this.o.softLimitBytes ? "behind" : "ok";
  }

  /**
   * Appends one event; resolves with its LSN once durable by the mode. Refusals may use a reserve
   * above the hard limit, so that while requests are refused for backlog the refusals themselves
   * are still recorded for a while.
   *
   * A `deferred` event (one nothing waits for, such as a request's completion) does not make a
   * write of its own: it goes with the next write of an event that is waited for, or within
   * `fsyncIntervalMs` if none comes. Its place in the log is still its place in the calls to
   * append. Until then a crash of the process can lose it (never an event appended before it).
   */
  append(row: AuditRow, refusal = false, deferred = false): Promise<number> {
    if (this.closed) return Promise.reject(new AuditUnavailableError("closed", "the audit log is closed"));
    if (this.failure) return Promise.reject(new AuditUnavailableError("unwritable", `the audit log failed and refuses events until the worker restarts: ${this.failure.message}`, this.failure));
    const limit = this.o.hardLimitBytes + (refusal ? Math.max(4 * 1024 * 1024, this.o.hardLimitBytes / 10) : 0);
    if (this.bytes() > limit) {
      return Promise.reject(new AuditUnavailableError("backlog", "the audit log holds more unshipped events than BULKHEAD_AUDIT_WAL_HARD_LIMIT_MB allows (PostgreSQL is away or too slow)"));
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ row, refusal, resolve, reject });
      if (this.writeScheduled) return;
      if (deferred) {
        this.deferredTimer ??= setTimeout(() => {
          this.deferredTimer = null;
          if (!this.writeScheduled) this.writePending();
        }, this.o.fsyncIntervalMs);
        return;
      }
      this.writeScheduled = true;
      setImmediate(() => this.writePending());
    });
  }

  /** One write for every event appended in this turn of the event loop. */
  private writePending(): void {
    this.writeScheduled = false;
    if (this.deferredTimer) {
      clearTimeout(this.deferredTimer);
      this.deferredTimer = null;
    }
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    let lsn = this.nextLsn;
    const frames = batch.map((p) => encodeFrame(lsn++, p.row));
    // Written segment by segment: a segment ends before the frame that would take it past its size.
    let written = 0;
    try {
      if (this.failure) throw this.failure;
      while (written < frames.length) {
        let end = written;
        let bytes = 0;
        const room = this.o.segmentBytes - this.active.size;
        while (end < frames.length && (bytes + frames[end]!.length <= room || (end === written && this.active.size === SEGMENT_HEADER_BYTES))) bytes += frames[end++]!.length;
        if (end === written) {
          this.startSegment();
          continue;
        }
        this.writeFrames(frames.slice(written, end), bytes);
        this.acknowledge(batch.slice(written, end), frames.slice(written, end));
        written = end;
      }
    } catch (error) {
      this.counters.writeFailures++;
      this.writeFailure = { error: error instanceof Error ? error : new Error(String(error)), at: new Date() };
      this.o.log?.error({ err: (error as Error).message, events: batch.length - written }, "audit log write failed; the requests are refused");
      const failure = new AuditUnavailableError("unwritable", `the audit log could not be written: ${(error as Error).message}`, error);
      for (const p of batch.slice(written)) p.reject(failure);
    }
  }

  /** Writes frames at the end of the active segment, all or (cut back to where it was) nothing. */
  private writeFrames(frames: Buffer[], bytes: number): void {
    const active = this.active;
    try {
      for (let done = 0; done < bytes; ) done += writevSync(active.fd!, done === 0 ? frames : [Buffer.concat(frames).subarray(done)], active.size + done);
    } catch (error) {
      // Cut off what may have been written, so that nothing follows a torn record.
      try {
        ftruncateSync(active.fd!, active.size);
      } catch {
        this.startSegment(); // the torn end stays behind; the reader stops there and goes on
      }
      throw error;
    }
    active.size += bytes;
  }

  /** The frames are written: their events are durable against a crash; by the mode, resolve now or after fsync. */
  private acknowledge(batch: Pending[], frames: Buffer[]): void {
    const first = this.nextLsn;
    this.nextLsn += batch.length;
    this.writtenLsn = this.nextLsn - 1;
    this.counters.appended += batch.length;
    this.writeFailure = null;
    batch.forEach((p, i) => this.remember({ lsn: first + i, row: p.row, bytes: frames[i]!.length }));
    if (this.durability === "group") {
      batch.forEach((p, i) => p.resolve(first + i));
      this.scheduleSync();
    } else {
      batch.forEach((p, i) => this.awaitingSync.push({ lsn: first + i, resolve: () => p.resolve(first + i), reject: p.reject }));
      this.sync();
    }
  }

  private remember(record: WalRecord): void {
    this.tail.push(record);
    this.tailBytes += record.bytes;
    while (this.tailBytes > this.o.memoryBytes && this.tailHead < this.tail.length) this.forgetHead();
    if (this.tailHead > 4096 && this.tailHead * 2 > this.tail.length) {
      this.tail.splice(0, this.tailHead);
      this.tailHead = 0;
    }
  }

  /**
   * Drops the oldest record kept in memory. Its slot is cleared at once rather than when the
   * array is next compacted: a shipped row then dies in the young generation instead of being
   * kept (and promoted) for the seconds until the compaction.
   */
  private forgetHead(): void {
    this.tailBytes -= this.tail[this.tailHead]!.bytes;
    this.tail[this.tailHead++] = FORGOTTEN;
  }

  private scheduleSync(): void {
    this.syncTimer ??= setTimeout(() => {
      this.syncTimer = null;
      this.sync();
    }, this.o.fsyncIntervalMs);
  }

  /** One fsync at a time, covering everything written before it started; more follow as needed. */
  private sync(): void {
    if (this.syncing) return; // its end starts the next one
    const target = this.writtenLsn;
    const fds = this.toClose.splice(0);
    const dir = this.dirDirty;
    this.dirDirty = false;
    const activeFd = this.active.fd;
    if (target === this.durableLsnValue && fds.length === 0 && !dir) return;
    const started = performance.now();
    this.syncing = (async () => {
      for (const fd of fds) {
        await this.o.syncData(fd);
        closeSync(fd);
      }
      if (activeFd !== null) await this.o.syncData(activeFd);
      if (dir) await syncDir(this.o.dir);
    })().then(
      () => {
        this.counters.fsyncs++;
        this.o.onFsync?.((performance.now() - started) / 1000);
        this.durableLsnValue = Math.max(this.durableLsnValue, target);
        while (this.awaitingSync.length && this.awaitingSync[0]!.lsn <= target) this.awaitingSync.shift()!.resolve();
        for (const wake of this.durableWaiters.splice(0)) wake();
      },
      (error: unknown) => {
        this.failure = error instanceof Error ? error : new Error(String(error));
        this.o.log?.error({ err: this.failure.message }, "audit log fsync failed; refusing every request until the worker restarts");
        const failure = new AuditUnavailableError("unwritable", `the audit log could not be synced: ${this.failure.message}`, error);
        for (const w of this.awaitingSync.splice(0)) w.reject(failure);
      },
    ).finally(() => {
      this.syncing = null;
      if (this.failure) return;
      if (this.awaitingSync.length > 0 || this.toClose.length > 0 || this.closed) this.sync();
      else if (this.writtenLsn > this.durableLsnValue) this.scheduleSync();
    });
  }

  /** Writes what is pending and fsyncs now; resolves once everything appended so far is durable. */
  async syncNow(): Promise<void> {
    if (this.pending.length > 0) this.writePending();
    const target = this.writtenLsn;
    while (this.durableLsnValue < target) {
      if (this.failure) throw new AuditUnavailableError("unwritable", `the audit log failed: ${this.failure.message}`, this.failure);
      this.sync();
      if (!this.syncing) break;
      await this.syncing;
    }
  }

  /** The first LSN the log still holds. */
  firstLsn(): number {
    return this.segments[0]?.first ?? this.nextLsn;
  }

  /** When the event at `lsn` was recorded (ms since the epoch), if it is still in memory. */
  timeOf(lsn: number): number | null {
    const first = this.tail[this.tailHead]?.lsn;
    if (first === undefined || lsn < first) return null;
    const r = this.tail[this.tailHead + (lsn - first)];
    return r ? Date.parse(r.row.at) : null;
  }

  /** Resolves when more events are durable than `lsn`, or the log closes. */
  waitForDurable(lsn: number): Promise<void> {
    if (this.durableLsnValue > lsn || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.durableWaiters.push(resolve));
  }

  /**
   * Durable records from `fromLsn` on, at most `max`: from memory when they are still there,
   * otherwise from disk (then a damaged or missing stretch is returned as a gap after them).
   */
  async read(fromLsn: number, max: number): Promise<{ records: WalRecord[]; gap: WalGap | null }> {
    const last = this.durableLsnValue;
    if (fromLsn > last) return { records: [], gap: null };
    const memFirst = this.tail[this.tailHead]?.lsn ?? Infinity;
    if (fromLsn >= memFirst) {
      const start = this.tailHead + (fromLsn - memFirst);
      return { records: this.tail.slice(start, start + Math.min(max, last - fromLsn + 1)), gap: null };
    }
    const readable = this.segments.map((s) => ({ first: s.first, file: s.file, size: s.size }));
    const read = await this.reader.read(readable, fromLsn, Math.min(last, memFirst - 1), max);
    return { records: read.records, gap: read.gap && this.explain(read.gap) };
  }

  /** A gap where damage was found at open: what the damage was, rather than just a short segment. */
  private explain(gap: WalGap): WalGap {
    const d = this.damagedAtOpen.find((d) => d.segment === gap.segment && gap.from >= d.from && gap.to <= d.to);
    return d ? { ...gap, problem: d.problem, bytes: d.bytes } : gap;
  }

  /**
   * Everything through `lsn` is in Postgres: forget it in memory and delete the segments that
   * hold nothing newer (never the one being written).
   */
  release(lsn: number): void {
    while (this.tailHead < this.tail.length && this.tail[this.tailHead]!.lsn <= lsn) this.forgetHead();
    // All shipped: start a new segment, so the log on disk measures what is not yet shipped.
    if (lsn >= this.writtenLsn && !this.failure && !this.closed && this.active.size > Math.min(1024 * 1024, this.o.segmentBytes / 4)) {
      try {
        this.startSegment();
      } catch (error) {
        this.o.log?.warn({ err: (error as Error).message }, "audit log: could not start a new segment; keeping the current one");
      }
    }
    while (this.segments.length > 1 && this.segments[1]!.first - 1 <= lsn && this.segments[0]!.fd === null) {
      const done = this.segments.shift()!;
      // Off the event loop. Until it is gone (or if a crash comes first) the file holds only
      // shipped events, which the next start skips and removes like any other shipped segment.
      const removal: Promise<void> = this.o.removeFile(done.file).then(
        () => {
          this.dirDirty = true; // the next sync makes the removal durable
        },
        (error: unknown) => {
          this.o.log?.warn({ segment: done.file, err: (error as Error).message }, "audit log: a shipped segment could not be removed");
        },
      ).finally(() => this.removals.delete(removal));
      this.removals.add(removal);
    }
  }

  /**
   * The database's cursor for this log, read by the shipper. When it says more of this log was
   * shipped than the log held when it was opened (its segments were removed, or the folder was
   * restored from an older copy), the LSNs this process has given out since the open may already
   * be counted as shipped, although none of those events is in PostgreSQL: they are logged again
   * after the cursor (same event, same time, a new LSN), before anything appended later, and
   * numbering continues after the cursor, so no event hides below it.
   */
  async advancePast(lsn: number): Promise<number> {
    const opened = this.openedLastLsn;
    this.openedLastLsn = Number.POSITIVE_INFINITY; // only the first cursor read can find the log behind
    if (this.failure || lsn <= opened) return lsn;
    const strandedTo = Math.min(lsn, this.writtenLsn);
    // Those still in memory are taken now, before any later event is numbered.
    const stranded: AuditRow[] = [];
    const memFirst = this.tail[this.tailHead]?.lsn ?? Number.POSITIVE_INFINITY;
    const diskTo = Math.min(strandedTo, memFirst - 1);
    for (let i = this.tailHead; i < this.tail.length; i++) {
      const r = this.tail[i]!;
      if (r.lsn > opened && r.lsn <= strandedTo) stranded.push(r.row);
    }
    // Pending events are numbered when written, so they already follow the cursor.
    if (lsn >= this.nextLsn) {
      this.o.log?.error({ walId: this.walId, cursor: lsn, lastLsn: this.writtenLsn }, "audit log is behind its own cursor in PostgreSQL (restored from an older copy?); numbering continues after the cursor");
      this.nextLsn = lsn + 1;
      this.writtenLsn = lsn;
      this.durableLsnValue = Math.max(this.durableLsnValue, lsn);
      while (this.tailHead < this.tail.length) this.forgetHead(); // memory holds consecutive LSNs only
      this.tailBytes = 0;
      this.startSegment();
    }
    const relog = (rows: AuditRow[], first: number) => {
      if (rows.length === 0) return;
      this.o.log?.error({ walId: this.walId, cursor: lsn, from: first, to: first + rows.length - 1 }, "audit log: events logged since the start at LSNs the database's cursor had passed are logged again after it");
      this.logAgain(rows);
    };
    relog(stranded, Math.max(opened + 1, memFirst));
    // Beyond the memory (more than memoryBytes logged since the start): read back from disk.
    if (diskTo > opened) {
      const rows: AuditRow[] = [];
      for (let from = opened + 1; from <= diskTo; ) {
        const { records, gap } = await this.reader.read(this.segments.map((s) => ({ first: s.first, file: s.file, size: s.size })), from, diskTo, 2_000);
        rows.push(...records.map((r) => r.row));
        if (records.length === 0 && !gap) break;
        from = Math.max(from + records.length, gap ? gap.to + 1 : 0);
      }
      relog(rows, opened + 1);
    }
    // Below what the log held at the start, the shipper compares what it holds with the database.
    return opened;
  }

  /**
   * Logs events again, ahead of anything not yet written, under new LSNs (after the cursor): for
   * events the database's cursor passed although PostgreSQL does not hold them. Nothing waits
   * for them; a failure is logged.
   */
  logAgain(rows: AuditRow[], notice?: AuditRow): void {
    if (rows.length === 0) return;
    this.counters.relogged += rows.length;
    if (notice) rows = [notice, ...rows];
    const failed = (error: Error) => this.o.log?.error({ err: error.message }, "audit log: an event could not be logged again after the cursor; it is missing from the audit");
    this.pending.unshift(...rows.map((row) => ({ row, refusal: true, resolve: () => undefined, reject: failed })));
    this.writePending();
    this.reloggedThrough = Math.max(this.reloggedThrough, this.writtenLsn);
  }

  stats(): AuditWalStats {
    return {
      walId: this.walId,
      durability: this.durability,
      segments: this.segments.length,
      bytes: this.bytes(),
      writtenLsn: this.writtenLsn,
      durableLsn: this.durableLsnValue,
      ...this.counters,
      writeFailure: this.writeFailure?.error.message ?? null,
      writeFailureAt: this.writeFailure?.at ?? null,
      fsyncFailure: this.failure?.message ?? null,
      truncatedAtOpen: this.truncatedAtOpen,
      // A log whose last write failed refuses every request until a write succeeds again.
      backlog: this.failure || this.writeFailure ? "refusing" : this.backlog(),
    };
  }

  /** Resolves once the shipped segments being removed are gone (their room is free again). */
  async removalsSettled(): Promise<void> {
    while (this.removals.size > 0) await Promise.all(this.removals);
  }

  /** Writes and syncs what is pending, closes the files and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pending.length > 0) this.writePending();
    this.closed = true;
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
    while (this.syncing) await this.syncing;
    await Promise.all(this.removals);
    this.sync();
    while (this.syncing) await this.syncing;
    for (const wake of this.durableWaiters.splice(0)) wake();
    await this.reader.close();
    for (const s of this.segments) {
      if (s.fd !== null) closeSync(s.fd);
      s.fd = null;
    }
    for (const fd of this.toClose.splice(0)) closeSync(fd);
    await this.unlock();
  }
}
