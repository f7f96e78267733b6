import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AuditUnavailableError } from "@/proxy-worker/audit/errors";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { AuditWal, type AuditWalOptions } from "@/proxy-worker/audit/wal/log";

const row = (i: number) => prepareEvent({ type: "proxy.decision", actorType: "agent", outcome: "allow", reason: `request ${i}`, data: { i } }, new Date());

/**
 * The log's data sync, instrumented: each call waits until the test lets it finish (or fail), so
 * the order of "synced" and "acknowledged" is observed, not inferred from timing.
 */
class HeldSync {
  readonly calls: Array<{ fd: number; finish: () => void; fail: (error: Error) => void }> = [];
  /** After the test: every sync finishes at once (closing the log syncs too). */
  release = false;
  readonly syncData = (fd: number): Promise<void> =>
    this.release
      ? Promise.resolve()
      : new Promise<void>((finish, fail) => {
          this.calls.push({ fd, finish, fail });
        });
  async started(count: number): Promise<void> {
    for (let i = 0; i < 500 && this.calls.length < count; i++) await new Promise((r) => setTimeout(r, 2));
    expect(this.calls.length).toBeGreaterThanOrEqual(count);
  }
  finishAll(): void {
    this.release = true;
    for (const c of this.calls.splice(0)) c.finish();
  }
}

/** Resolves with what `p` has settled to so far, without waiting for it. */
async function settled<T>(p: Promise<T>): Promise<"pending" | "resolved" | "rejected"> {
  let state: "pending" | "resolved" | "rejected" = "pending";
  p.then(
    () => (state = "resolved"),
    () => (state = "rejected"),
  );
  // Several turns of the loop: writes happen on setImmediate, acknowledgements on microtasks.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return state;
}

describe("the audit log's fsync ordering (an instrumented sync)", () => {
  let dir: string;
  let wal: AuditWal | null = null;
  let sync: HeldSync;
  const open = async (options: Partial<AuditWalOptions>) => {
    wal = await AuditWal.open({ dir, workerId: "w", fsyncIntervalMs: 1, syncData: sync.syncData, ...options });
    return wal;
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-wal-sync-"));
    sync = new HeldSync();
  });
  afterEach(async () => {
    sync.finishAll();
    await wal?.close().catch(() => undefined);
    wal = null;
    await rm(dir, { recursive: true, force: true });
  });

  it("strict: an event is acknowledged (so its request may be forwarded) only after a sync that started after it was written", async () => {
    const log = await open({ durability: "strict" });
    const first = log.append(row(1));
    await sync.started(1);
    // The disk is still syncing: not acknowledged, and the event loop keeps turning meanwhile.
    expect(await settled(first)).toBe("pending");
    let timerRan = false;
    await new Promise<void>((r) =>
      setTimeout(() => {
        timerRan = true;
        r();
      }, 5),
    );
    expect(timerRan).toBe(true);
    expect(log.durableLsn).toBe(0);

    // Written while that sync runs: the running sync does not cover it.
    const second = log.append(row(2));
    expect(await settled(second)).toBe("pending");
    sync.calls.shift()!.finish();
    expect(await first).toBe(1);
    expect(await settled(second)).toBe("pending");
    expect(log.durableLsn).toBe(1);

    // Its own sync follows; only when that completes is it acknowledged.
    await sync.started(1);
    expect(await settled(second)).toBe("pending");
    sync.calls.shift()!.finish();
    expect(await second).toBe(2);
    expect(log.durableLsn).toBe(2);
  });

  it("group: an event is acknowledged once written, before its sync completes; it becomes durable (shippable) only after", async () => {
    const log = await open({ durability: "group" });
    expect(await log.append(row(1))).toBe(1);
    await sync.started(1);
    expect(log.lastLsn).toBe(1);
    expect(log.durableLsn).toBe(0);
    expect((await log.read(1, 10)).records).toHaveLength(0);
    sync.calls.shift()!.finish();
    await log.waitForDurable(0);
    expect(log.durableLsn).toBe(1);
    expect((await log.read(1, 10)).records.map((r) => r.lsn)).toEqual([1]);
  });

  it("strict: a failed sync refuses the event that waited for it and every event after (fail closed)", async () => {
    const log = await open({ durability: "strict" });
    const waiting = log.append(row(1));
    await sync.started(1);
    sync.calls.shift()!.fail(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" }));
    await expect(waiting).rejects.toBeInstanceOf(AuditUnavailableError);
    await expect(waiting).rejects.toMatchObject({ reason: "unwritable" });
    await expect(log.append(row(2))).rejects.toMatchObject({ reason: "unwritable" });
    expect(log.durableLsn).toBe(0);
    expect(log.stats()).toMatchObject({ backlog: "refusing" });
  });

  it("group: a failed sync refuses every later event", async () => {
    const log = await open({ durability: "group" });
    expect(await log.append(row(1))).toBe(1);
    await sync.started(1);
    sync.calls.shift()!.fail(new Error("EIO: i/o error, fdatasync"));
    for (let i = 0; i < 100 && log.stats().fsyncFailure === null; i++) await new Promise((r) => setTimeout(r, 2));
    await expect(log.append(row(2))).rejects.toMatchObject({ reason: "unwritable" });
  });
});
