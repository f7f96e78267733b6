/**
 * The audit log as the shipper's thread sees it (shipper-thread.ts). The worker's main thread owns
 * the log (wal/log.ts: appends, fsync, segments); it sends the frames of each write here as it
 * writes them, and each new durable LSN with the segments that hold the log. The mirror keeps the
 * unshipped events decoded in this thread's memory (so they never sit on the heap of the thread
 * that serves requests) and reads from the segment files what it was not sent or no longer holds:
 * what was logged before the thread started, or beyond `memoryBytes`.
 *
 * It offers the shipper what the log itself would (`ShipperLog`); `release` and `advancePast`
 * are the log's to carry out, and are passed back to the main thread.
 */
import type { ShipperLog } from "../shipper";
import { decodeFrames, type WalRecord } from "./frame";
import { WalDiskReader, type ReadableSegment, type WalGap } from "./reader";

export interface WalMirrorState {
  walId: string;
  /** The log's durable LSN and last written LSN when the mirror starts. */
  durableLsn: number;
  writtenLsn: number;
  segments: ReadableSegment[];
}

export interface WalMirrorLink {
  /** Everything through `lsn` is in PostgreSQL: the log may forget it. */
  release(lsn: number): void;
  /** The database's cursor is past the end of the log: the log continues numbering after it. */
  advancePast(lsn: number): void;
}

export class WalMirror implements ShipperLog {
  readonly walId: string;
  private durable: number;
  /** The LSN the next frames are expected to start at (a jump empties the memory). */
  private nextLsn: number;
  private segments: ReadableSegment[];
  private readonly tail: WalRecord[] = [];
  private tailHead = 0;
  private tailBytes = 0;
  private waiters: Array<() => void> = [];
  private closed = false;
  private readonly reader = new WalDiskReader();
  /** Frames that did not decode (never expected: the main thread just encoded them). */
  undecodable = 0;

  constructor(
    state: WalMirrorState,
    private readonly memoryBytes: number,
    private readonly link: WalMirrorLink,
  ) {
    this.walId = state.walId;
    this.durable = state.durableLsn;
    this.nextLsn = state.writtenLsn + 1;
    this.segments = state.segments;
  }

  get durableLsn(): number {
    return this.durable;
  }

  /** The frames of one write, starting at `firstLsn`, as the log wrote them. */
  written(firstLsn: number, frames: Buffer): void {
    if (firstLsn !== this.nextLsn) this.forget();
    const { records, problem } = decodeFrames(frames, 0, firstLsn);
    for (const r of records) this.remember(r);
    this.nextLsn = firstLsn + records.length;
    if (problem !== null) {
      // What did not decode is read from the segment files, like anything else not in memory.
      this.undecodable++;
      this.forget();
      this.nextLsn = -1;
    }
  }

  /** The log is durable through `lsn`; `segments` are the files that hold it now. */
  durableThrough(lsn: number, segments: ReadableSegment[]): void {
    this.segments = segments;
    if (lsn > this.durable) this.durable = lsn;
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Memory holds consecutive LSNs only: a jump starts it again. */
  private forget(): void {
    this.tail.length = 0;
    this.tailHead = 0;
    this.tailBytes = 0;
  }

  private remember(record: WalRecord): void {
    this.tail.push(record);
    this.tailBytes += record.bytes;
    while (this.tailBytes > this.memoryBytes && this.tailHead < this.tail.length) this.tailBytes -= this.tail[this.tailHead++]!.bytes;
    if (this.tailHead > 4096 && this.tailHead * 2 > this.tail.length) {
      this.tail.splice(0, this.tailHead);
      this.tailHead = 0;
    }
  }

  /** Resolves when more events are durable than `lsn`, or the mirror closes. */
  waitForDurable(lsn: number): Promise<void> {
    if (this.durable > lsn || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** As AuditWal.read: durable records from memory when there, else from the segment files. */
  async read(fromLsn: number, max: number): Promise<{ records: WalRecord[]; gap: WalGap | null }> {
    const last = this.durable;
    if (fromLsn > last) return { records: [], gap: null };
    const memFirst = this.tail[this.tailHead]?.lsn ?? Infinity;
    if (fromLsn >= memFirst) {
      const start = this.tailHead + (fromLsn - memFirst);
      return { records: this.tail.slice(start, start + Math.min(max, last - fromLsn + 1)), gap: null };
    }
    return this.reader.read(this.segments, fromLsn, Math.min(last, memFirst - 1), max);
  }

  release(lsn: number): void {
    while (this.tailHead < this.tail.length && this.tail[this.tailHead]!.lsn <= lsn) this.tailBytes -= this.tail[this.tailHead++]!.bytes;
    this.link.release(lsn);
  }

  advancePast(lsn: number): void {
    // The log decides (it knows what it wrote since); shipping resumes after the cursor either way.
    if (lsn > this.durable) this.durable = lsn;
    this.link.advancePast(lsn);
  }

  /** Memory held for unshipped events (bytes of their frames). */
  memoryHeld(): number {
    return this.tailBytes;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.waiters.splice(0)) wake();
    await this.reader.close();
  }
}
