import { mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { AuditWal } from "@/proxy-worker/audit/wal/log";
import { segmentFile } from "@/proxy-worker/audit/wal/segments";

const row = (i: number, pad = 0) => prepareEvent({ type: "proxy.decision", actorType: "agent", outcome: "allow", reason: `request ${i}`, data: { i, pad: "p".repeat(pad) } }, new Date());

/**
 * A log whose write fails (a full disk: its next segment's name points at /dev/full, which answers
 * every write with ENOSPC) says it refuses requests, so health and metrics agree with what the
 * proxy answers, until a write succeeds again.
 */
describe("the audit log after a failed write", () => {
  let dir: string;
  let wal: AuditWal | null = null;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-wal-write-"));
  });
  afterEach(async () => {
    await wal?.close();
    wal = null;
    await rm(dir, { recursive: true, force: true });
  });

  it("is refusing while its last write failed, and ok again once a write succeeds", async () => {
    wal = await AuditWal.open({ dir, workerId: "w", segmentBytes: 2048 });
    expect(await wal.append(row(1, 1500))).toBe(1);
    expect(wal.stats().backlog).toBe("ok");
    // The next event does not fit: it needs a new segment, whose file takes no write.
    await symlink("/dev/full", segmentFile(dir, "w", 2));
    await expect(wal.append(row(2, 1500))).rejects.toMatchObject({ name: "AuditUnavailableError", reason: "unwritable" });
    const failed = wal.stats();
    expect(failed).toMatchObject({ backlog: "refusing", writeFailures: 1 });
    expect(failed.writeFailure).toMatch(/ENOSPC|no space/i);
    expect(failed.writeFailureAt).toBeInstanceOf(Date);
    // The failed segment was removed; the next write makes a real one and succeeds.
    expect(await readdir(dir)).not.toContain(path.basename(segmentFile(dir, "w", 2)));
    expect(await wal.append(row(3, 1500))).toBe(2);
    expect(wal.stats()).toMatchObject({ backlog: "ok", writeFailure: null, writeFailureAt: null, writtenLsn: 2 });
  });
});
