/**
 * The audit shipper in a thread of its own (`worker_threads`), seen from the worker's main thread.
 *
 * The main thread serves requests and owns the log (wal/log.ts): it appends each decision, writes
 * and fsyncs. Everything after that is the shipper's: reading the unshipped events, folding
 * completions into decisions, making the statement, the `pg` driver's work and its socket writes
 * to PostgreSQL, and the memory of every event until it is shipped. In a thread those no longer
 * take turns with requests on one event loop, their garbage is collected on the thread's own heap
 * (a pause there stops no request), and on a machine with a second core they run there.
 *
 * What crosses between the threads: with each new durable LSN, the segment list and the frames
 * written since the last message (copied once into a buffer that is transferred, not cloned); back, the cursor
 * (`release`), the shipper's statistics after each batch, its log lines, and the answers to
 * drain and stop. The log's contract is unchanged: an event is durable once appended, whatever
 * the thread does; if the thread dies, the events wait in the log and a new thread (started
 * again after a pause) reads them from the segment files, from the cursor in PostgreSQL.
 */
import { existsSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type { Logger } from "@/lib/log";
import type { LegacyRange } from "./legacy-spool";
import type { AuditShipperOptions, AuditShipperStats } from "./shipper";
import type { AuditWal, WalFeed } from "./wal/log";
import type { WalMirrorState } from "./wal/mirror";
import type { ReadableSegment } from "./wal/reader";

export type ShipperThreadOptions = Omit<AuditShipperOptions, "log" | "onBatch" | "onProgress" | "dedupe">;

export interface ShipperThreadData {
  state: WalMirrorState;
  memoryBytes: number;
  options: ShipperThreadOptions;
  dedupe: LegacyRange | null;
}

export type ToShipperThread =
  /** Frames written from LSN `first` on (if any), then the log durable through `durable.lsn` (if given). */
  | { t: "log"; first: number; frames: Uint8Array | null; durable: { lsn: number; segments: ReadableSegment[] } | null }
  | { t: "drain"; id: number; ms: number }
  | { t: "stop" };

export type LogLevel = "debug" | "info" | "warn" | "error";

export type FromShipperThread =
  | { t: "release"; lsn: number }
  | { t: "advancePast"; lsn: number }
  | { t: "stats"; stats: AuditShipperStats }
  | { t: "batch"; events: number; seconds: number }
  | { t: "log"; level: LogLevel; obj: Record<string, unknown>; msg: string }
  | { t: "drained"; id: number; ok: boolean }
  | { t: "stopped" };

export interface ThreadedShipperOptions extends AuditShipperOptions {
  /** Unshipped events kept decoded in the thread's memory (beyond it, read back from disk). */
  memoryBytes?: number;
  /** Pause before a thread that died is started again (ms). */
  restartDelayMs?: number;
}

const COUNTERS = ["batches", "shipped", "rows", "folded", "minimal", "quarantined", "gaps", "readAhead"] as const;

/** How to start the thread: the compiled entry beside this code, or the TypeScript source through tsx. */
function threadEntry(): { file: URL; source?: string } {
  const here = import.meta.url;
  if (here.endsWith(".ts")) return { file: new URL("./shipper-thread-dev.mjs", here), source: new URL("./shipper-thread.ts", here).href };
  // The build writes the entry beside main.js; this code may be in main.js or in a chunk below it.
  for (const candidate of ["./audit-shipper-thread.js", "../audit-shipper-thread.js"]) {
    const url = new URL(candidate, here);
    if (existsSync(url)) return { file: url };
  }
  throw new Error(`the audit shipper's thread entry (audit-shipper-thread.js) is missing beside ${here}; rebuild with npm run build:cli`);
}

export class ThreadedShipper implements WalFeed {
  private worker: Worker | null = null;
  private last: AuditShipperStats = {
    shippedLsn: -1,
    batches: 0,
    shipped: 0,
    rows: 0,
    folded: 0,
    minimal: 0,
    quarantined: 0,
    gaps: 0,
    readAhead: 0,
    connected: false,
    lastShippedAt: null,
    lastError: null,
    lastErrorAt: null,
  };
  /** Counters of threads that ended, so that the totals never go back. */
  private readonly before = Object.fromEntries(COUNTERS.map((k) => [k, 0])) as Record<(typeof COUNTERS)[number], number>;
  private nextId = 1;
  private readonly drains = new Map<number, (ok: boolean) => void>();
  private stopping = false;
  private stopped: (() => void) | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private restarts = 0;
  /**
   * The cursor a thread that died last reported: a batch it stored after its last message is
   * found when the next thread reads the cursor, and counted as shipped.
   */
  private cursorAtExit: number | null = null;
  /** Frames written since the last message to the thread, and the LSN of the first / after the last. */
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;
  private gatheredFirst = 0;
  private gatheredNext = 0;
  private readonly log: Logger | undefined;

  constructor(
    private readonly wal: AuditWal,
    private readonly o: ThreadedShipperOptions,
  ) {
    this.log = o.log;
  }

  start(): void {
    if (this.worker || this.stopping) return;
    const entry = threadEntry();
    const { log: _log, onBatch: _onBatch, onProgress: _onProgress, dedupe, memoryBytes, restartDelayMs: _delay, ...options } = this.o;
    const data: ShipperThreadData & { source?: string } = {
      state: { walId: this.wal.walId, durableLsn: this.wal.durableLsn, writtenLsn: this.wal.lastLsn, segments: this.wal.readableSegments() },
      memoryBytes: memoryBytes ?? 32 * 1024 * 1024,
      options,
      dedupe: dedupe ?? null,
      source: entry.source,
    };
    const worker = new Worker(entry.file, { workerData: data, name: `bulkhead-audit-shipper-${this.o.workerId}` });
    this.worker = worker;
    this.gathered = [];
    this.gatheredBytes = 0;
    // From now on every write reaches the thread (queued until it runs); what was written before
    // is in the segments it was given.
    this.wal.feed(this);
    worker.on("message", (m: FromShipperThread) => this.onMessage(m));
    worker.on("error", (error) => {
      this.last = { ...this.last, connected: false, lastError: `the shipper's thread failed: ${error.message}`, lastErrorAt: new Date() };
      this.log?.error({ err: error.message }, "audit shipper thread failed; the events wait in the log");
    });
    worker.on("exit", (code) => this.onExit(worker, code));
  }

  private onMessage(m: FromShipperThread): void {
    switch (m.t) {
      case "release":
        this.wal.release(m.lsn);
        return;
      case "advancePast":
        this.wal.advancePast(m.lsn);
        return;
      case "stats":
        if (this.cursorAtExit !== null && m.stats.shippedLsn >= 0) {
          this.before.shipped += Math.max(0, m.stats.shippedLsn - m.stats.shipped - this.cursorAtExit);
          this.cursorAtExit = null;
        }
        this.last = m.stats;
        return;
      case "batch":
        this.o.onBatch?.(m.events, m.seconds);
        return;
      case "log":
        this.log?.[m.level](m.obj, m.msg);
        return;
      case "drained":
        this.drains.get(m.id)?.(m.ok);
        this.drains.delete(m.id);
        return;
      case "stopped":
        return;
    }
  }

  private onExit(worker: Worker, code: number): void {
    if (this.worker !== worker) return;
    this.worker = null;
    for (const k of COUNTERS) this.before[k] += this.last[k];
    if (this.last.shippedLsn >= 0) this.cursorAtExit = this.last.shippedLsn;
    this.last = { ...this.last, ...Object.fromEntries(COUNTERS.map((k) => [k, 0])), connected: false };
    for (const done of this.drains.values()) done(false);
    this.drains.clear();
    if (this.stopping) {
      this.stopped?.();
      return;
    }
    // Not asked to stop: the thread died. The events wait in the log; a new thread goes on.
    this.restarts++;
    const delay = Math.min((this.o.restartDelayMs ?? 1_000) * 2 ** Math.min(this.restarts - 1, 5), 30_000);
    this.log?.error({ code, restartInMs: delay }, "audit shipper thread exited; starting it again");
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.start();
    }, delay);
  }

  /**
   * WalFeed: the frames of one write. They are gathered, not sent one write at a time (a message
   * costs the main thread more than the write itself: measured, postMessage per write was 7 % of
   * the worker's time at saturation), and go with the next durable LSN, which is when the shipper
   * may use them. A jump in LSNs (the log numbering on after a cursor) sends what was gathered first.
   */
  written(firstLsn: number, frames: Buffer[], bytes: number): void {
    if (!this.worker) return;
    if (this.gathered.length > 0 && firstLsn !== this.gatheredNext) this.sendGathered(null);
    if (this.gathered.length === 0) this.gatheredFirst = firstLsn;
    for (const f of frames) this.gathered.push(f);
    this.gatheredBytes += bytes;
    this.gatheredNext = firstLsn + frames.length;
  }

  /** WalFeed: the log is durable through `lsn`. */
  durable(lsn: number, segments: ReadableSegment[]): void {
    this.sendGathered({ lsn, segments });
  }

  /** One message: the frames gathered (copied into a buffer of their own, handed over) and the durable LSN. */
  private sendGathered(durable: { lsn: number; segments: ReadableSegment[] } | null): void {
    const worker = this.worker;
    let frames: Uint8Array<ArrayBuffer> | null = null;
    if (this.gathered.length > 0) {
      frames = new Uint8Array(this.gatheredBytes);
      let at = 0;
      for (const f of this.gathered) {
        frames.set(f, at);
        at += f.length;
      }
    }
    const first = this.gatheredFirst;
    this.gathered = [];
    this.gatheredBytes = 0;
    if (!worker || (!frames && !durable)) return;
    const message: ToShipperThread = { t: "log", first, frames, durable };
    worker.postMessage(message, frames ? [frames.buffer] : []);
  }

  get shippedLsn(): number {
    return this.last.shippedLsn;
  }

  stats(): AuditShipperStats {
    const s = { ...this.last };
    for (const k of COUNTERS) s[k] += this.before[k];
    return s;
  }

  /** As AuditShipper.drain, in the thread (waiting for one that is being started again). */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.worker && !this.stopping && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const worker = this.worker;
    if (!worker) return false;
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.drains.set(id, resolve);
      worker.postMessage({ t: "drain", id, ms: Math.max(0, deadline - Date.now()) } satisfies ToShipperThread);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const worker = this.worker;
    if (worker) {
      const exited = new Promise<void>((resolve) => (this.stopped = resolve));
      worker.postMessage({ t: "stop" } satisfies ToShipperThread);
      // The thread stops its shipper (abandoning a batch stuck on a frozen server after 1 s) and
      // ends; if it does not, it is ended.
      const force = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(force);
    }
    this.wal.feed(null);
  }
}
