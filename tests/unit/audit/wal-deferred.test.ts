import { readdir, readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { decodeFrames, SEGMENT_HEADER_BYTES } from "@/proxy-worker/audit/wal/frame";
import { AuditWal, type AuditWalOptions } from "@/proxy-worker/audit/wal/log";

const row = (i: number) => prepareEvent({ type: "proxy.decision", actorType: "agent", outcome: "allow", reason: `request ${i}`, data: { i } }, new Date());

/** Several turns of the event loop: an eager event is written on the next one. */
const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

/** What is on disk, in file order: the reasons of the frames of every segment. */
async function onDisk(dir: string): Promise<string[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".wal")).sort();
  const reasons: string[] = [];
  let next = 1;
  for (const f of files) {
    const records = decodeFrames(await readFile(path.join(dir, f)), SEGMENT_HEADER_BYTES, next).records;
    next += records.length;
    reasons.push(...records.map((r) => r.row.reason ?? ""));
  }
  return reasons;
}

/**
 * Deferred events (a request's completion: nothing waits for it) do not cost a write of their
 * own. They must still reach the disk, in the order they were appended, within the fsync
 * interval, and with the next event that is waited for.
 */
describe("the audit log's deferred events", () => {
  let dir: string;
  let wal: AuditWal | null = null;
  const open = async (options: Partial<AuditWalOptions> = {}) => {
    wal = await AuditWal.open({ dir, workerId: "w", fsyncIntervalMs: 150, syncData: async () => undefined, ...options });
    return wal;
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-wal-deferred-"));
  });
  afterEach(async () => {
    await wal?.close().catch(() => undefined);
    wal = null;
    await rm(dir, { recursive: true, force: true });
  });

  it("a deferred event alone waits for the fsync interval, then is written and acknowledged", async () => {
    const log = await open();
    const started = performance.now();
    const lsn = log.append(row(1), false, true);
    await turns();
    expect(log.lastLsn).toBe(0);
    expect(await onDisk(dir)).toEqual([]);
    expect(await lsn).toBe(1);
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    expect(await onDisk(dir)).toEqual(["request 1"]);
  });

  it("goes to disk with the next event that is waited for, in the order of the appends", async () => {
    const log = await open({ fsyncIntervalMs: 60_000 });
    const deferred = [log.append(row(1), false, true), log.append(row(2), false, true)];
    await turns();
    expect(log.lastLsn).toBe(0);
    // An eager event in a later turn: one write carries all three, the deferred ones first.
    expect(await log.append(row(3))).toBe(3);
    expect(await Promise.all(deferred)).toEqual([1, 2]);
    expect(await onDisk(dir)).toEqual(["request 1", "request 2", "request 3"]);
    // And one after them is numbered after them.
    const fourth = log.append(row(4), false, true);
    await log.syncNow();
    expect(await fourth).toBe(4);
  });

  it("an eager event appended between deferred ones keeps its place", async () => {
    const log = await open({ fsyncIntervalMs: 60_000 });
    const a = log.append(row(1), false, true);
    const b = log.append(row(2));
    const c = log.append(row(3), false, true);
    expect(await b).toBe(2);
    expect(await a).toBe(1);
    expect(await c).toBe(3);
    expect(await onDisk(dir)).toEqual(["request 1", "request 2", "request 3"]);
  });

  it("is written by close and by syncNow, never dropped by a shutdown", async () => {
    const log = await open({ fsyncIntervalMs: 60_000 });
    const first = log.append(row(1), false, true);
    await log.syncNow();
    expect(await first).toBe(1);
    expect(log.durableLsn).toBe(1);
    const second = log.append(row(2), false, true);
    await log.close();
    wal = null;
    expect(await second).toBe(2);
    expect(await onDisk(dir)).toEqual(["request 1", "request 2"]);
  });

  it("strict mode: a deferred event is still acknowledged only once synced", async () => {
    let syncs = 0;
    const log = await open({ durability: "strict", fsyncIntervalMs: 60_000, syncData: async () => void syncs++ });
    const deferred = log.append(row(1), false, true);
    await turns();
    expect(syncs).toBe(0);
    expect(await log.append(row(2))).toBe(2);
    expect(await deferred).toBe(1);
    expect(syncs).toBeGreaterThanOrEqual(1);
    expect(log.durableLsn).toBe(2);
  });
});
