import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { AuditWal } from "@/proxy-worker/audit/wal/log";

const row = (i: number) => prepareEvent({ type: "proxy.decision", actorType: "agent", outcome: "allow", reason: `request ${i} ${"x".repeat(200)}`, data: { i } }, new Date());
const segments = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith(".wal")).sort();

/**
 * Shipped segments are removed off the event loop (removing a 16 MiB file stalled every request
 * in flight): release() forgets them at once and leaves the file to `removeFile`; close() waits
 * for removals under way; a segment whose removal never happened is removed at the next release
 * after a restart.
 */
describe("the audit log's shipped segments", () => {
  let dir: string;
  let wal: AuditWal | null = null;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-wal-release-"));
  });
  afterEach(async () => {
    await wal?.close().catch(() => undefined);
    wal = null;
    await rm(dir, { recursive: true, force: true });
  });

  /** Appends `n` events, written and synced, into segments of 4 KiB. */
  async function filled(n: number, removeFile?: (file: string) => Promise<void>): Promise<AuditWal> {
    wal = await AuditWal.open({ dir, workerId: "w", segmentBytes: 4096, syncData: async () => undefined, removeFile });
    for (let i = 1; i <= n; i++) await wal.append(row(i));
    await wal.syncNow();
    return wal;
  }

  it("forgets a released segment at once and hands its file to removeFile, without waiting for it", async () => {
    const asked: string[] = [];
    let finish: () => void = () => undefined;
    const removing = new Promise<void>((r) => (finish = r));
    const log = await filled(60, (file) => {
      asked.push(file);
      return removing;
    });
    const before = await segments(dir);
    expect(before.length).toBeGreaterThan(3);
    const bytesBefore = log.bytes();
    log.release(log.lastLsn); // everything shipped
    // release returned with the removals still under way: the files are there, the log no longer counts them.
    expect(asked.map((f) => path.basename(f))).toEqual(before.slice(0, asked.length));
    expect(asked.length).toBeGreaterThanOrEqual(before.length - 1);
    expect(await segments(dir)).toEqual(expect.arrayContaining(before));
    expect(log.bytes()).toBeLessThan(bytesBefore);
    // close waits for them.
    let closed = false;
    const closing = log.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(false);
    finish();
    await closing;
    expect(closed).toBe(true);
    wal = null;
  });

  it("by default the released files are gone once close returns, and the log reopens where it was", async () => {
    const log = await filled(60);
    const last = log.lastLsn;
    log.release(last);
    await log.close();
    wal = null;
    const left = await segments(dir);
    expect(left.length).toBe(1); // the segment started for new events
    wal = await AuditWal.open({ dir, workerId: "w", segmentBytes: 4096, syncData: async () => undefined });
    expect(wal.lastLsn).toBe(last);
    expect(await wal.append(row(61))).toBe(last + 1);
  });

  it("a segment whose removal failed stays on disk, is reported, and goes at a later release", async () => {
    const failing = async () => {
      throw new Error("EIO: simulated");
    };
    const warnings: string[] = [];
    const logger = { warn: (_fields: unknown, message: string) => warnings.push(message), info: () => undefined, error: () => undefined, debug: () => undefined };
    wal = await AuditWal.open({ dir, workerId: "w", segmentBytes: 4096, syncData: async () => undefined, removeFile: failing, log: logger as never });
    const log = wal;
    for (let i = 1; i <= 60; i++) await log.append(row(i));
    await log.syncNow();
    const before = await segments(dir);
    log.release(log.lastLsn);
    await log.close();
    wal = null;
    expect(await segments(dir)).toEqual(expect.arrayContaining(before));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.every((w) => w === "audit log: a shipped segment could not be removed")).toBe(true);
    // After a restart the shipped segments are there again; the next release removes them.
    const again = await AuditWal.open({ dir, workerId: "w", segmentBytes: 4096, syncData: async () => undefined });
    wal = again;
    for (let i = 61; i <= 80; i++) await again.append(row(i));
    await again.syncNow();
    again.release(again.lastLsn);
    await again.close();
    wal = null;
    expect((await segments(dir)).length).toBe(1);
  });
});
