import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { AuditWal, type WalFeed } from "@/proxy-worker/audit/wal/log";
import { WalMirror } from "@/proxy-worker/audit/wal/mirror";

/** Event i (the same row, event id included, each time it is asked for). */
const rows = new Map<number, ReturnType<typeof prepareEvent>>();
const row = (i: number) => {
  if (!rows.has(i)) rows.set(i, prepareEvent({ type: "proxy.decision", actorType: "agent", outcome: "allow", reason: `request ${i} ${"x".repeat(100)}`, data: { i } }, new Date(Date.UTC(2026, 11, 4, 0, 0, i))));
  return rows.get(i)!;
};

/**
 * The shipper's thread sees the log through a mirror: the main thread's log hands it the frames of
 * each write and each durable LSN (a WalFeed, here called directly, as the thread's messages
 * would), and the mirror offers the shipper what the log itself would. The log keeps no events in
 * memory while fed.
 */
describe("the audit log's mirror in the shipper's thread", () => {
  let dir: string;
  let wal: AuditWal | null = null;
  let mirror: WalMirror | null = null;
  const released: number[] = [];
  const advanced: number[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-wal-mirror-"));
    released.length = 0;
    advanced.length = 0;
  });
  afterEach(async () => {
    await mirror?.close();
    await wal?.close().catch(() => undefined);
    wal = mirror = null;
    await rm(dir, { recursive: true, force: true });
  });

  /** A log fed into a mirror, as ThreadedShipper connects them (the frames copied, as they cross threads). */
  async function fed(options: { memoryBytes?: number; before?: number } = {}): Promise<{ wal: AuditWal; mirror: WalMirror }> {
    wal = await AuditWal.open({ dir, workerId: "w", segmentBytes: 4096, syncData: async () => undefined });
    for (let i = 1; i <= (options.before ?? 0); i++) await wal.append(row(i));
    await wal.syncNow();
    const m = new WalMirror({ walId: wal.walId, durableLsn: wal.durableLsn, writtenLsn: wal.lastLsn, segments: wal.readableSegments() }, options.memoryBytes ?? 1 << 20, {
      release: (lsn) => {
        released.push(lsn);
        wal!.release(lsn);
      },
      advancePast: (lsn) => advanced.push(lsn),
    });
    const feed: WalFeed = {
      written: (first, frames) => m.written(first, Buffer.concat(frames)),
      durable: (lsn, segments) => m.durableThrough(lsn, segments),
    };
    wal.feed(feed);
    mirror = m;
    return { wal, mirror: m };
  }

  it("offers only durable events, in order, from memory, and the log holds none of them in its own", async () => {
    const { wal, mirror } = await fed();
    for (let i = 1; i <= 30; i++) void wal.append(row(i));
    await new Promise((r) => setImmediate(r));
    expect(wal.lastLsn).toBe(30);
    // Written, not yet fsync'd: nothing to ship.
    expect((await mirror.read(1, 100)).records).toEqual([]);
    let woken = false;
    const waiting = mirror.waitForDurable(0).then(() => (woken = true));
    await wal.syncNow();
    await waiting;
    expect(woken).toBe(true);
    const { records, gap } = await mirror.read(1, 100);
    expect(gap).toBeNull();
    expect(records.map((r) => r.lsn)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(records.map((r) => JSON.parse(r.row.data).i)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(records[4]!.row).toEqual(row(5));
    expect(mirror.memoryHeld()).toBeGreaterThan(0);
    // The main thread's log answers from disk, not memory: it keeps no rows while fed.
    expect((wal as unknown as { tail: unknown[]; tailHead: number }).tail.length - (wal as unknown as { tailHead: number }).tailHead).toBe(0);
    expect(wal.timeOf(5)).toBe(Date.parse(row(1).at)); // one write: the time it began
  });

  it("reads from the segment files what was logged before it started or no longer fits in memory", async () => {
    const { wal, mirror } = await fed({ before: 25, memoryBytes: 2_000 });
    for (let i = 26; i <= 60; i++) await wal.append(row(i)); // one write each
    await wal.syncNow();
    const seen: number[] = [];
    for (let from = 1; from <= 60; ) {
      const { records, gap } = await mirror.read(from, 7);
      expect(gap).toBeNull();
      expect(records.length).toBeGreaterThan(0);
      for (const r of records) expect(JSON.parse(r.row.data).i).toBe(r.lsn);
      seen.push(...records.map((r) => r.lsn));
      from = records.at(-1)!.lsn + 1;
    }
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    // Memory was bounded: it kept only the newest events.
    expect(mirror.memoryHeld()).toBeLessThanOrEqual(2_000);
  });

  it("passes releases to the log (which removes shipped segments) and forgets them itself", async () => {
    const { wal, mirror } = await fed();
    for (let i = 1; i <= 80; i++) void wal.append(row(i));
    await wal.syncNow();
    const segmentsBefore = wal.stats().segments;
    expect(segmentsBefore).toBeGreaterThan(2);
    const held = mirror.memoryHeld();
    mirror.release(70);
    expect(released).toEqual([70]);
    expect(wal.stats().segments).toBeLessThan(segmentsBefore);
    expect(mirror.memoryHeld()).toBeLessThan(held);
    expect((await mirror.read(71, 100)).records.map((r) => r.lsn)).toEqual(Array.from({ length: 10 }, (_, i) => i + 71));
    // The oldest unshipped event's time, for the lag.
    expect(wal.timeOf(71)).not.toBeNull();
    mirror.release(80);
    expect(wal.timeOf(81)).toBeNull();
  });

  it("starts its memory again at a jump in LSNs, and reads the rest from disk", async () => {
    const { wal, mirror } = await fed();
    for (let i = 1; i <= 10; i++) await wal.append(row(i));
    await wal.syncNow();
    // A write it never saw (its message lost with a thread that died): frames 11-12 go to disk only.
    wal.feed(null);
    await wal.append(row(11));
    await wal.append(row(12));
    wal.feed({ written: (first, frames) => mirror.written(first, Buffer.concat(frames)), durable: (lsn, segments) => mirror.durableThrough(lsn, segments) });
    for (let i = 13; i <= 15; i++) await wal.append(row(i));
    await wal.syncNow();
    const all: number[] = [];
    for (let from = 1; from <= 15; ) {
      const { records } = await mirror.read(from, 100);
      expect(records.length).toBeGreaterThan(0);
      all.push(...records.map((r) => r.lsn));
      from = records.at(-1)!.lsn + 1;
    }
    expect(all).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  });

  it("a frame that does not decode is read from disk instead, never shipped as damage", async () => {
    const { wal, mirror } = await fed();
    await wal.append(row(1));
    await wal.syncNow();
    const bad = Buffer.alloc(40, 7);
    mirror.written(2, bad);
    expect(mirror.undecodable).toBe(1);
    await wal.append(row(2));
    await wal.syncNow();
    const first = await mirror.read(1, 10); // from disk: memory starts again at 2
    const second = await mirror.read(2, 10);
    expect([first.gap, second.gap]).toEqual([null, null]);
    expect([...first.records, ...second.records].map((r) => r.lsn)).toEqual([1, 2]);
    expect(second.records[0]!.row).toEqual(row(2));
  });

  it("passes a cursor beyond the log to the log, and ships after it", async () => {
    const { mirror } = await fed();
    mirror.advancePast(500);
    expect(advanced).toEqual([500]);
    expect(mirror.durableLsn).toBe(500);
  });
});
