/**
 * The local, append-only spool that holds audit events while the database is away.
 *
 * Files in the spool directory, per worker id:
 *   <workerId>.lock              the live owner's pid (one process per worker id)
 *   <workerId>.<00000001>.jsonl  segments, replayed in number order; one event per line
 *   <workerId>.rejected.jsonl    events the database refused on replay (kept, never dropped)
 *
 * Appends go to the active (highest) segment and are fdatasync'd before they count; a new file's
 * directory entry is fsync'd too. A segment is sealed (closed for appends) when it reaches its
 * size limit or when the replayer takes it; sealed segments are deleted only after every event
 * in them is committed. A crash can leave a torn last line, which was never acknowledged and is
 * skipped on reading.
 */
import { constants } from "node:fs";
import { mkdir, open, readdir, readFile, unlink, writeFile, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { AuditSpoolLockedError } from "./errors";
import { parseSpoolLine, spoolLine, type AuditRow } from "./event";

const WORKER_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;
/** Lock files this process holds (a pid cannot tell two spools of one process apart). */
const heldHere = new Set<string>();

export interface SpoolSegment {
  number: number;
  file: string;
}

export interface SegmentContents {
  rows: AuditRow[];
  /** Lines that are not complete records (a torn last line after a crash, or damage). */
  unreadable: number;
}

export class AuditSpool {
  /** Successful fdatasyncs of appended events. */
  syncs = 0;
  private active: { number: number; handle: FileHandle; size: number } | null = null;
  private nextNumber = 1;

  private constructor(
    readonly dir: string,
    readonly workerId: string,
    private readonly maxSegmentBytes: number,
  ) {}

  /** Creates the directory if needed and takes the worker id's lock. */
  static async open(dir: string, workerId: string, maxSegmentBytes = 4 * 1024 * 1024): Promise<AuditSpool> {
    if (!WORKER_ID.test(workerId)) throw new TypeError(`audit spool worker id "${workerId}" must match ${WORKER_ID}`);
    const resolved = path.resolve(dir);
    await mkdir(resolved, { recursive: true, mode: 0o700 });
    const lock = path.join(resolved, `${workerId}.lock`);
    if (heldHere.has(lock)) throw new AuditSpoolLockedError(`audit spool ${lock} is already open in this process`);
    await takeLock(lock);
    heldHere.add(lock);
    const spool = new AuditSpool(resolved, workerId, maxSegmentBytes);
    const existing = await spool.segments();
    spool.nextNumber = existing.length > 0 ? existing[existing.length - 1]!.number + 1 : 1;
    return spool;
  }

  private segmentFile(n: number): string {
    return path.join(this.dir, `${this.workerId}.${String(n).padStart(8, "0")}.jsonl`);
  }

  /** Every segment on disk, oldest first (the active one included). */
  async segments(): Promise<SpoolSegment[]> {
    const prefix = `${this.workerId}.`;
    const names = await readdir(this.dir);
    return names
      .filter((n) => n.startsWith(prefix) && /^\d{8,}\.jsonl$/.test(n.slice(prefix.length)))
      .map((n) => ({ number: Number(n.slice(prefix.length, -".jsonl".length)), file: path.join(this.dir, n) }))
      .sort((a, b) => a.number - b.number);
  }

  /** Segments no longer appended to, oldest first. */
  async sealedSegments(): Promise<SpoolSegment[]> {
    const all = await this.segments();
    return this.active ? all.filter((s) => s.number < this.active!.number) : all;
  }

  /** Appends the rows as one write and fdatasyncs; on failure nothing is acknowledged. */
  async append(rows: AuditRow[]): Promise<void> {
    const bytes = Buffer.from(rows.map(spoolLine).join(""), "utf8");
    if (this.active && this.active.size > 0 && this.active.size + bytes.length > this.maxSegmentBytes) await this.seal();
    const active = this.active ?? (await this.startSegment());
    try {
      let written = 0;
      while (written < bytes.length) written += (await active.handle.write(bytes, written, bytes.length - written, null)).bytesWritten;
      await active.handle.datasync();
      active.size += bytes.length;
      this.syncs++;
    } catch (error) {
      // Cut off what may have been written, and never append after a possibly torn line.
      await active.handle.truncate(active.size).catch(() => undefined);
      await this.seal().catch(() => undefined);
      throw error;
    }
  }

  private async startSegment() {
    const number = this.nextNumber++;
    const handle = await open(this.segmentFile(number), constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
    try {
      await syncDir(this.dir);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(this.segmentFile(number)).catch(() => undefined);
      throw error;
    }
    this.active = { number, handle, size: 0 };
    return this.active;
  }

  /**
   * Closes the active segment for appends. Returns true when it held events (it is now sealed,
   * for the replayer), false when there was nothing to seal (an empty one is removed).
   */
  async seal(): Promise<boolean> {
    const active = this.active;
    if (!active) return false;
    this.active = null;
    await active.handle.close().catch(() => undefined);
    if (active.size > 0) return true;
    await unlink(this.segmentFile(active.number)).catch(() => undefined);
    return false;
  }

  /** The segment's non-empty lines, unparsed (the replayer parses a chunk at a time). */
  async readLines(segment: SpoolSegment): Promise<string[]> {
    return (await readFile(segment.file, "utf8")).split("\n").filter((line) => line !== "");
  }

  async read(segment: SpoolSegment): Promise<SegmentContents> {
    const rows: AuditRow[] = [];
    let unreadable = 0;
    for (const line of await this.readLines(segment)) {
      const row = parseSpoolLine(line);
      if (row) rows.push(row);
      else unreadable++;
    }
    return { rows, unreadable };
  }

  /** Deletes a fully replayed segment. */
  async remove(segment: SpoolSegment): Promise<void> {
    await unlink(segment.file);
    await syncDir(this.dir);
  }

  /** Keeps events the database refused, so that nothing acknowledged is ever dropped silently. */
  async quarantine(rows: AuditRow[]): Promise<string> {
    const file = path.join(this.dir, `${this.workerId}.rejected.jsonl`);
    const handle = await open(file, "a", 0o600);
    try {
      await handle.write(rows.map(spoolLine).join(""));
      await handle.datasync();
    } finally {
      await handle.close();
    }
    return file;
  }

  /** Closes the active segment (kept for the next start) and releases the lock. */
  async close(): Promise<void> {
    await this.seal();
    const lock = path.join(this.dir, `${this.workerId}.lock`);
    await unlink(lock).catch(() => undefined);
    heldHere.delete(lock);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** One live process per worker id: the lock file names its pid; a dead owner's lock is taken over. */
async function takeLock(file: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(file, `${process.pid}\n`, { flag: "wx", mode: 0o600 });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = Number((await readFile(file, "utf8").catch(() => "")).trim());
    if (alive(owner)) {
      throw new AuditSpoolLockedError(`audit spool ${file} is held by running process ${owner}; give each worker its own worker id`);
    }
    await unlink(file).catch(() => undefined);
  }
  throw new AuditSpoolLockedError(`could not take the audit spool lock ${file}`);
}
