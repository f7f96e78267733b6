/**
 * The log's directory, per worker id:
 *   <workerId>.lock                      the live owner's pid and start time (one process per worker id)
 *   <workerId>.wal-id                    the log's random identity (its cursor's key in Postgres)
 *   <workerId>.<first LSN, 16 digits>.wal  segments, in LSN order
 *   <workerId>.rejected.jsonl            events the database refused even in minimal form (kept)
 */
import { randomUUID } from "node:crypto";
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, renameSync, writeSync, fdatasyncSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { lockOwnerAlive, processStartTime } from "@/lib/files/process-alive";
import { AuditWalLockedError, AuditWalFormatError } from "../errors";
import { decodeFrames, findNextFrame, isSegmentHeader, logTag, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC, segmentHeader, segmentTag, type FrameProblem } from "./frame";

export const WORKER_ID = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Lock files this process holds (a pid cannot tell two logs of one process apart). */
const heldHere = new Set<string>();

export interface SegmentFile {
  first: number;
  file: string;
  size: number;
}

export function segmentFile(dir: string, workerId: string, first: number): string {
  return path.join(dir, `${workerId}.${String(first).padStart(16, "0")}.wal`);
}

/** Every segment on disk, in LSN order. */
export async function listSegments(dir: string, workerId: string): Promise<SegmentFile[]> {
  const prefix = `${workerId}.`;
  const out: SegmentFile[] = [];
  for (const name of await readdir(dir)) {
    if (!name.startsWith(prefix) || !/^\d{16}\.wal$/.test(name.slice(prefix.length))) continue;
    const file = path.join(dir, name);
    out.push({ first: Number(name.slice(prefix.length, -".wal".length)), file, size: (await stat(file)).size });
  }
  return out.sort((a, b) => a.first - b.first);
}

export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface LockOwner {
  pid: number;
  /** The kernel's start time of that process (null: a lock written before it was recorded). */
  startedAt: string | null;
}

/** A lock file's text: the pid, then the process's start time (so a reused pid is not taken for the owner). */
function lockText(): string {
  return `${process.pid}\n${processStartTime(process.pid) ?? ""}\n`;
}

function parseLock(text: string): LockOwner {
  const [pid, startedAt] = text.split("\n").map((l) => l.trim());
  return { pid: Number(pid), startedAt: startedAt ? startedAt : null };
}

/** Another process that still runs holds it (not a dead owner's pid, nor one reused since). */
function alive(owner: LockOwner): boolean {
  return owner.pid !== process.pid && lockOwnerAlive(owner.pid, owner.startedAt);
}

/**
 * The pid of a live process (other than this one) holding a log lock in `dir`, or null: whether
 * a proxy worker runs on this folder, for those who must not pull things from under it.
 */
export function liveLockHolder(dir: string): number | null {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith(".lock"));
  } catch {
    return null; // no log folder: no worker ever ran here
  }
  for (const name of names) {
    let owner: LockOwner;
    try {
      owner = parseLock(readFileSync(path.join(dir, name), "utf8"));
    } catch {
      continue; // released meanwhile
    }
    if (alive(owner)) return owner.pid;
  }
  return null;
}

/** Creates the directory and takes the worker id's lock: one live process per log. */
export async function takeLock(dir: string, workerId: string): Promise<() => Promise<void>> {
  if (!WORKER_ID.test(workerId)) throw new TypeError(`audit log worker id "${workerId}" must match ${WORKER_ID}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${workerId}.lock`);
  if (heldHere.has(file)) throw new AuditWalLockedError(`audit log ${file} is already open in this process`);
  for (let attempt = 0; ; attempt++) {
    if (attempt === 3) throw new AuditWalLockedError(`could not take the audit log lock ${file}`);
    try {
      await writeFile(file, lockText(), { flag: "wx", mode: 0o600 });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = parseLock(await readFile(file, "utf8").catch(() => ""));
    if (alive(owner)) throw new AuditWalLockedError(`audit log ${file} is held by running process ${owner.pid}; give each worker its own worker id`);
    // Its owner is gone, or its pid now names another process (reused after a crash): stale.
    await unlink(file).catch(() => undefined);
  }
  heldHere.add(file);
  return async () => {
    heldHere.delete(file);
    await unlink(file).catch(() => undefined);
  };
}

/**
 * The log's identity: made once, durably, when the directory gets its first log (before any
 * segment). Segments without it are refused: under a new identity they would be shipped again.
 */
export async function walIdentity(dir: string, workerId: string, hasSegments: boolean): Promise<string> {
  const file = path.join(dir, `${workerId}.wal-id`);
  const existing = await readFile(file, "utf8").catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? null : Promise.reject(e)));
  if (existing === null && hasSegments) {
    throw new AuditWalFormatError(`${file} is missing but the directory holds audit log segments; restore it (without it they would be shipped again) or move the segments away`);
  }
  if (existing !== null) {
    const id = existing.trim();
    if (!UUID.test(id)) throw new AuditWalFormatError(`${file} does not hold a log id; restore it from a backup or move the directory away (its unshipped events would be lost)`);
    return id;
  }
  const id = randomUUID();
  const tmp = `${file}.tmp`;
  const handle = await open(tmp, "w", 0o600);
  try {
    await handle.writeFile(`${id}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  await syncDir(dir);
  return id;
}

/**
 * Refuses segments another log wrote (their header's tag is not this log's): shipped under this
 * log's cursor they would pass as its events, and replace or interleave with its own at the same
 * LSNs. Nothing is changed; they belong in their own log's folder. Segments written before the tag
 * (0) and headers that are not a segment's (damage, handled where they are read) are let through.
 */
export async function checkSegmentsBelong(segments: SegmentFile[], walId: string): Promise<void> {
  const mine = logTag(walId);
  for (const s of segments) {
    const handle = await open(s.file, "r");
    let header: Buffer;
    try {
      header = Buffer.alloc(SEGMENT_HEADER_BYTES);
      const { bytesRead } = await handle.read(header, 0, SEGMENT_HEADER_BYTES, 0);
      if (bytesRead < SEGMENT_HEADER_BYTES || !isSegmentHeader(header)) continue;
    } finally {
      await handle.close();
    }
    const tag = segmentTag(header);
    if (tag !== 0 && tag !== mine) {
      throw new AuditWalFormatError(
        `${s.file} belongs to another audit log (its tag ${tag.toString(16)}, this log's ${mine.toString(16)}: a folder copied from another worker or machine with the same worker id?); move it to its own log's folder, with that log's .wal-id, where its worker ships it`,
      );
    }
  }
}

/** A damaged stretch of the newest segment with whole, valid frames after it. */
export interface WalDamage {
  /** The LSNs lost to it (from > to: bytes were damaged but no record is missing). */
  from: number;
  to: number;
  /** Where it was in the segment, and how many bytes. */
  offset: number;
  bytes: number;
  problem: FrameProblem;
  segment: string;
}

export interface RecoveredTail {
  /** The last LSN in the segment, or in the last segment split off it (first - 1 when none holds any). */
  lastLsn: number;
  /** The segment's size after recovery. */
  size: number;
  /** Bytes cut off the end: a record whose append never completed (never acknowledged). */
  truncatedBytes: number;
  problem: FrameProblem | "header" | null;
  /** Damage with valid frames after it: what was lost (recorded as a gap when shipped). */
  damage: WalDamage[];
  /** The valid frames after each damaged stretch, moved into segments of their own, in order. */
  split: SegmentFile[];
}

/**
 * Reads the newest segment after a start and validates every frame. Bad bytes with nothing valid
 * after them are a torn end (an append that never completed, never acknowledged) and are cut off,
 * so nothing is ever appended behind a torn record. Bad bytes with whole, valid frames after them
 * are damage: those frames were written, and may have been acknowledged, after it. Each stretch of
 * them is moved into a segment of its own (named by its first LSN), and the segment is cut at the
 * damage: the LSNs lost to it are a hole between segments, which the shipper records as a gap, and
 * numbering continues after the last valid frame, so no LSN is given out twice. A torn header (a
 * crash while the segment was being created) is rewritten; a header of another format is refused.
 */
export function recoverTail(segment: SegmentFile, tag: number): RecoveredTail {
  const fd = openSync(segment.file, constants.O_RDWR);
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(size);
    for (let got = 0; got < size; ) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (!isSegmentHeader(buf)) {
      if (size >= 8 && buf.subarray(0, 8).equals(SEGMENT_MAGIC)) throw new AuditWalFormatError(`${segment.file} was written in another log format (version ${buf.readUInt32LE(8)}); this Bulkhead cannot read it`);
      if (size >= SEGMENT_HEADER_BYTES) throw new AuditWalFormatError(`${segment.file} is not an audit log segment; move it away`);
      ftruncateSync(fd, 0);
      writeSync(fd, segmentHeader(tag), 0, SEGMENT_HEADER_BYTES, 0);
      fdatasyncSync(fd);
      return { lastLsn: segment.first - 1, size: SEGMENT_HEADER_BYTES, truncatedBytes: size, problem: "header", damage: [], split: [] };
    }
    const decoded = decodeFrames(buf, SEGMENT_HEADER_BYTES, segment.first);
    let lastLsn = segment.first + decoded.records.length - 1;
    let end = decoded.end;
    let problem = decoded.problem;
    // Stretches of valid frames after damage, each after the damage before it.
    const damage: WalDamage[] = [];
    const runs: Array<{ first: number; offset: number; end: number }> = [];
    while (problem !== null) {
      const next = findNextFrame(buf, end + 1, lastLsn + 1);
      if (!next) break; // nothing valid follows: a torn end
      damage.push({ from: lastLsn + 1, to: next.lsn - 1, offset: end, bytes: next.offset - end, problem, segment: segment.file });
      const run = decodeFrames(buf, next.offset, next.lsn);
      runs.push({ first: next.lsn, offset: next.offset, end: run.end });
      lastLsn = next.lsn + run.records.length - 1;
      end = run.end;
      problem = run.problem;
    }
    const keep = damage[0]?.offset ?? decoded.end;
    // The newest stretch first: should this be cut short by a crash, every frame not yet moved is
    // still in the damaged segment, behind damage the shipper reports as a gap up to the next
    // segment, and numbering after a restart continues after the newest stretch moved.
    const split: SegmentFile[] = [];
    for (const run of runs.reverse()) split.unshift(writeSplit(segment.file, run.first, tag, buf.subarray(run.offset, run.end)));
    if (split.length > 0) syncDirSync(path.dirname(segment.file));
    if (keep < size) {
      ftruncateSync(fd, keep);
      fdatasyncSync(fd);
    }
    return { lastLsn, size: keep, truncatedBytes: size - end, problem, damage, split };
  } finally {
    closeSync(fd);
  }
}

/** Writes frames into a new segment beside `file`, named by their first LSN (complete, or not at all). */
function writeSplit(file: string, first: number, tag: number, frames: Buffer): SegmentFile {
  const target = path.join(path.dirname(file), path.basename(file).replace(/\d{16}\.wal$/, `${String(first).padStart(16, "0")}.wal`));
  const tmp = `${target}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, segmentHeader(tag), 0, SEGMENT_HEADER_BYTES, 0);
    for (let done = 0; done < frames.length; ) done += writeSync(fd, frames, done, frames.length - done, SEGMENT_HEADER_BYTES + done);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, target);
  return { first, file: target, size: SEGMENT_HEADER_BYTES + frames.length };
}

function syncDirSync(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
