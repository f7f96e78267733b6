import { execFileSync } from "node:child_process";
import { appendFile, mkdtemp, open, readdir, readFile, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createLogger } from "@/lib/log";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { readCursor, shipRows } from "@/proxy-worker/audit/store";
import { decodeFrames, encodeFrame, SEGMENT_HEADER_BYTES } from "@/proxy-worker/audit/wal/frame";
import { AuditWal } from "@/proxy-worker/audit/wal/log";
import { segmentFile } from "@/proxy-worker/audit/wal/segments";
import { AuditWriter, type AuditDurability, type AuditWriterOptions, type WorkerAuditEvent } from "@/proxy-worker/audit/writer";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { DatabaseOutage, until, withClient } from "./helpers";

const log = createLogger("audit-wal-test", "silent");
const event = (i: number, extra: Partial<WorkerAuditEvent> = {}): WorkerAuditEvent => ({
  type: "proxy.decision",
  actorType: "agent",
  outcome: "allow",
  reason: `request ${i}`,
  data: { i, url: `https://api.example.test/items/${i}` },
  ...extra,
});

/**
 * The log itself: what survives a torn append, damage and a full disk, and how shipping resumes
 * at the cursor kept in PostgreSQL. (SIGKILL of a real process: sigkill.test.ts.)
 */
describe("the audit write-ahead log", () => {
  let t: TestDatabase;
  let dir: string;
  const writers: AuditWriter[] = [];
  const down = () => new DatabaseOutage(t.adminUrl);
  const start = async (options: Partial<AuditWriterOptions> = {}) => {
    const w = await AuditWriter.start({ databaseUrl: t.workerUrl, walDir: dir, workerId: "w", foldWindowMs: 0, log, ...options });
    writers.push(w);
    return w;
  };
  const close = async (w: AuditWriter) => {
    writers.splice(writers.indexOf(w), 1);
    await w.close(0);
  };
  /** The events with these ids, in chain order, with how often each occurs. */
  const stored = async (ids: string[]) =>
    withClient(t.url, async (c) =>
      (await c.query<{ id: string; type: string; reason: string | null }>("SELECT data->>'eventId' AS id, type, reason FROM audit_events WHERE data->>'eventId' = ANY($1::text[]) ORDER BY seq", [ids])).rows,
    );
  const segmentFiles = async (d = dir) => (await readdir(d)).filter((f) => f.endsWith(".wal")).sort().map((f) => path.join(d, f));
  const chainOk = async () => expect(await verifyAuditChain(t.db, { checkpointKeys: [] })).toMatchObject({ ok: true });

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-wal-"));
  });
  afterEach(async () => {
    await down().end();
    while (writers.length) await writers.pop()!.close(0);
    await rm(dir, { recursive: true, force: true });
  });

  it("detects a torn final record, cuts it off, and goes on numbering after the last whole one", async () => {
    const outage = down();
    await outage.begin();
    const w1 = await start();
    const before = await Promise.all(Array.from({ length: 50 }, (_, i) => w1.record(event(i))));
    await close(w1);
    // A crash in the middle of an append: half a record at the end of the newest segment.
    const newest = (await segmentFiles()).at(-1)!;
    const torn = encodeFrame(51, prepareEvent(event(999), new Date()));
    await appendFile(newest, torn.subarray(0, Math.floor(torn.length / 2)));
    const sizeWithTear = (await stat(newest)).size;

    const w2 = await start();
    expect(w2.stats().truncatedAtOpen).toBe(Math.floor(torn.length / 2));
    expect((await stat(newest)).size).toBe(sizeWithTear - Math.floor(torn.length / 2));
    const after = await Promise.all(Array.from({ length: 10 }, (_, i) => w2.record(event(50 + i))));
    expect(after.map((r) => r.lsn)).toEqual(Array.from({ length: 10 }, (_, i) => 51 + i));
    await outage.end();
    await w2.flush();
    const all = [...before, ...after].map((r) => r.eventId);
    expect((await stored(all)).map((r) => r.id)).toEqual(all);
    // An append that never completed was never acknowledged: nothing is missing, no gap is recorded.
    expect(w2.stats().gaps).toBe(0);
    await chainOk();
  });

  it("keeps the records after damage in the newest segment, records what the damage took as a gap, and gives none of its LSNs out again", async () => {
    const outage = down();
    await outage.begin();
    const w1 = await start();
    const acked: AuditDurability[] = [];
    for (let i = 0; i < 20; i++) acked.push(await w1.record(event(i)));
    await close(w1);
    // One byte flipped in the payload of the 5th record of the newest (only) segment.
    const [segment] = await segmentFiles();
    const frames = decodeFrames(await readFile(segment!), SEGMENT_HEADER_BYTES, 1).records;
    expect(frames).toHaveLength(20);
    const at = SEGMENT_HEADER_BYTES + frames.slice(0, 4).reduce((n, r) => n + r.bytes, 0) + 30;
    const handle = await open(segment!, "r+");
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    await handle.write(Buffer.from([byte[0]! ^ 0x20]), 0, 1, at);
    await handle.close();

    const w2 = await start();
    expect(w2.stats().truncatedAtOpen).toBe(0);
    const later = await Promise.all(Array.from({ length: 5 }, (_, i) => w2.record(event(100 + i))));
    expect(later.map((r) => r.lsn)).toEqual([21, 22, 23, 24, 25]);
    await outage.end();
    await w2.flush();
    const gaps = await withClient(t.url, async (c) => (await c.query<{ data: { from: number; to: number; problem: string; bytes: number } }>("SELECT data FROM audit_events WHERE type = 'audit.log_gap' AND data->>'walId' = $1", [w2.logId])).rows);
    expect(gaps.map((g) => g.data)).toEqual([expect.objectContaining({ from: 5, to: 5, problem: "checksum", bytes: frames[4]!.bytes })]);
    // Every other acknowledged event arrived, once, in order; so did those logged after the restart.
    const expected = [...acked.filter((r) => r.lsn !== 5), ...later].map((r) => r.eventId);
    expect((await stored([...acked, ...later].map((r) => r.eventId))).map((r) => r.id)).toEqual(expected);
    expect(w2.stats().gaps).toBe(1);
    await chainOk();
  });

  it("records a damaged stretch of a segment as a gap event in the chain, never skipping it silently", async () => {
    const outage = down();
    await outage.begin();
    const w1 = await start({ segmentBytes: 4096 });
    const acked = await Promise.all(Array.from({ length: 100 }, (_, i) => w1.record(event(i))));
    await close(w1);
    // Flip one byte inside the payload of a record in the middle of the first segment.
    const [first, second] = await segmentFiles();
    const frames = decodeFrames(await readFile(first!), SEGMENT_HEADER_BYTES, 1).records;
    const victim = Math.floor(frames.length / 2);
    const at = SEGMENT_HEADER_BYTES + frames.slice(0, victim).reduce((n, r) => n + r.bytes, 0) + 20;
    const handle = await open(first!, "r+");
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    await handle.write(Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
    await handle.close();
    const firstOfSecond = Number(path.basename(second!).split(".")[1]);

    const w2 = await start({ segmentBytes: 4096 });
    await outage.end();
    await w2.flush();
    const rows = await stored(acked.map((r) => r.eventId));
    const gaps = await withClient(t.url, async (c) => (await c.query<{ data: { from: number; to: number; problem: string } }>("SELECT data FROM audit_events WHERE type = 'audit.log_gap' AND data->>'walId' = $1", [w2.logId])).rows);
    expect(gaps, JSON.stringify(gaps)).toHaveLength(1);
    const gap = gaps[0]!.data;
    expect(gap.from).toBe(frames[victim]!.lsn);
    expect(gap.to).toBe(firstOfSecond - 1);
    expect(gap.problem).toBe("checksum");
    // Everything outside the gap arrived, once, in order.
    const expected = acked.filter((r) => r.lsn < gap.from || r.lsn > gap.to).map((r) => r.eventId);
    expect(rows.map((r) => r.id)).toEqual(expected);
    expect(expected.length).toBe(100 - (gap.to - gap.from + 1));
    expect(w2.stats().gaps).toBe(1);
    await chainOk();
  });

  it("resumes at the cursor after a restart: a batch committed by a shipper that died is not shipped again, and nothing is skipped", async () => {
    const outage = down();
    await outage.begin();
    const w1 = await start({ segmentBytes: 16 * 1024 });
    const acked: AuditDurability[] = [];
    for (let i = 0; i < 1000; i += 100) acked.push(...(await Promise.all(Array.from({ length: 100 }, (_, k) => w1.record(event(i + k))))));
    await close(w1);
    await outage.end();

    // A shipper committed LSNs 1-300 with its cursor and died before it could delete anything.
    const wal = await AuditWal.open({ dir, workerId: "w" });
    const client = new pg.Client({ connectionString: t.workerUrl });
    await client.connect();
    try {
      expect(await readCursor(client, wal.walId, "w")).toBe(0);
      const rows = [];
      for (let from = 1; from <= 300; ) {
        const { records } = await wal.read(from, 300 - from + 1);
        rows.push(...records.map((r) => r.row));
        from += records.length;
      }
      expect(await shipRows(client, wal.walId, 0, 300, rows)).toBe(true);
      // A stale shipper (expecting the old cursor) changes nothing.
      expect(await shipRows(client, wal.walId, 0, 300, rows)).toBe(false);
    } finally {
      await client.end();
      await wal.close();
    }

    const w2 = await start({ segmentBytes: 16 * 1024, maxBatch: 70 });
    await w2.flush();
    expect(w2.stats()).toMatchObject({ shippedLsn: 1000, shipped: 700 });
    const rows = await stored(acked.map((r) => r.eventId));
    expect(rows.map((r) => r.id)).toEqual(acked.map((r) => r.eventId));
    await chainOk();
  });

  it("refuses events when the disk is full, loses none it acknowledged, and takes events again once there is room", async () => {
    const mnt = await mkdtemp(path.join(tmpdir(), "bh-wal-full-"));
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=192k,mode=0700", "tmpfs", mnt]);
    try {
      const outage = down();
      await outage.begin();
      const w = await start({ walDir: mnt, segmentBytes: 32 * 1024 });
      const acked: AuditDurability[] = [];
      let refusal: unknown = null;
      for (let i = 0; i < 5_000 && !refusal; i++) {
        await w.record(event(i, { data: { i, pad: "p".repeat(200) } })).then((r) => acked.push(r), (e: unknown) => (refusal = e));
      }
      expect(refusal).toMatchObject({ name: "AuditUnavailableError", reason: "unwritable" });
      expect(String((refusal as Error).message)).toMatch(/ENOSPC/);
      expect(acked.length).toBeGreaterThan(100);
      // Still refused while nothing could be shipped away.
      await expect(w.record(event(-1, { data: { pad: "p".repeat(200) } }))).rejects.toMatchObject({ reason: "unwritable" });

      await outage.end();
      await w.flush();
      const again = await w.record(event(10_000));
      await w.flush();
      const ids = [...acked, again].map((r) => r.eventId);
      expect((await stored(ids)).map((r) => r.id)).toEqual(ids);
      await close(w);
      await chainOk();
    } finally {
      while (writers.length) await writers.pop()!.close(0);
      execFileSync("umount", [mnt]);
      await rm(mnt, { recursive: true, force: true });
    }
  });

  it("says it refuses requests (not ready, backlog 2) while its writes fail, and is ready again once one succeeds", async () => {
    // PostgreSQL away meanwhile, so nothing is shipped and no segment started but the one written here.
    const outage = down();
    await outage.begin();
    const w = await start({ segmentBytes: 2048 });
    const first = await w.record(event(1, { data: { pad: "p".repeat(1500) } }));
    expect(w.stats().backlog).toBe("ok");
    // A full disk: the segment the next event needs takes no write (/dev/full answers ENOSPC).
    await symlink("/dev/full", segmentFile(dir, "w", first.lsn + 1));
    await expect(w.record(event(2, { data: { pad: "p".repeat(1500) } }))).rejects.toMatchObject({ reason: "unwritable" });
    const failed = w.stats();
    // What /readyz (ready only while the backlog is not "refusing") and bulkhead_audit_backlog read.
    expect(failed).toMatchObject({ failed: 1, backlog: "refusing" });
    expect(failed.writeFailure).toMatch(/ENOSPC|no space/i);
    expect(failed.lastError).toMatch(/audit log write failed: .*(ENOSPC|no space)/i);
    const again = await w.record(event(3, { data: { pad: "p".repeat(1500) } }));
    expect(w.stats()).toMatchObject({ backlog: "ok", writeFailure: null });
    expect(w.stats().lastError ?? "").not.toMatch(/audit log write failed/);
    await outage.end();
    await w.flush();
    expect((await stored([first.eventId, again.eventId])).map((r) => r.id)).toEqual([first.eventId, again.eventId]);
  });

  it("after a failed write it tries again on its own: ready again with no traffic, and the outage is in the audit", async () => {
    const startedAt = new Date();
    const outage = down();
    await outage.begin();
    // Retries every 200 ms: none before the failure is asserted, several in the test's time.
    const w = await start({ segmentBytes: 2048, writeRetryMs: 200 });
    const first = await w.record(event(1, { data: { pad: "p".repeat(1500) } }));
    await symlink("/dev/full", segmentFile(dir, "w", first.lsn + 1));
    await expect(w.record(event(2, { data: { pad: "p".repeat(1500) } }))).rejects.toMatchObject({ reason: "unwritable" });
    // The failed segment is removed after each failure: the disk is made full for the next one too.
    await symlink("/dev/full", segmentFile(dir, "w", first.lsn + 1));
    await expect(w.record(event(3, { data: { pad: "p".repeat(1500) } }))).rejects.toMatchObject({ reason: "unwritable" });
    expect(w.stats().backlog).toBe("refusing");
    // No request is sent: the writer's own retry must make it writable (and /readyz ready) again.
    const until = Date.now() + 10_000;
    while (w.stats().backlog !== "ok" && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(w.stats()).toMatchObject({ backlog: "ok", writeFailure: null });
    await outage.end();
    await w.flush();
    const rows = await withClient(t.url, async (c) => (await c.query<{ outcome: string; reason: string; data: { refused: number; error: string; from: string; to: string } }>("SELECT outcome, reason, data FROM audit_events WHERE type = 'audit.log_unwritable' AND at >= $1", [startedAt])).rows);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.outcome).toBe("recovered");
    expect(rows[0]!.data.refused).toBe(2);
    expect(rows[0]!.data.error).toMatch(/ENOSPC|no space/i);
    expect(Date.parse(rows[0]!.data.to)).toBeGreaterThanOrEqual(Date.parse(rows[0]!.data.from));
    expect(rows[0]!.reason).toMatch(/^the audit log could not be written from .* to .*; 2 events were refused \(the requests they describe were not forwarded\); last error: /);
    await chainOk();
  });

  it("moves the events of an earlier version's spool into the log once, without duplicating those already committed", async () => {
    const spool = await mkdtemp(path.join(tmpdir(), "bh-legacy-spool-"));
    try {
      const rows = Array.from({ length: 30 }, (_, i) => prepareEvent(event(i), new Date(Date.now() - 60_000 + i)));
      // The old process committed the first 10 and died before deleting its segment.
      await withClient(t.url, async (c) => {
        for (const r of rows.slice(0, 10)) {
          await c.query(
            "INSERT INTO audit_events (at, type, actor_type, outcome, reason, data) VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
            [r.at, r.type, r.actorType, r.outcome, r.reason, r.data],
          );
        }
      });
      const line = (r: (typeof rows)[number]) => `${JSON.stringify({ v: 1, eventId: r.eventId, at: r.at, type: r.type, actorType: r.actorType, actorId: r.actorId, agentId: r.agentId, taskId: r.taskId, outcome: r.outcome, effect: r.effect, reason: r.reason, ruleId: r.ruleId, data: JSON.parse(r.data) })}\n`;
      await appendFile(path.join(spool, "w.00000003.jsonl"), rows.map(line).join("") + '{"v":1,"eventId":"torn');
      const w = await start({ legacySpoolDir: spool });
      await w.flush();
      expect(await readdir(spool)).toEqual([]);
      const got = await stored(rows.map((r) => r.eventId));
      expect(got.map((r) => r.id).sort()).toEqual(rows.map((r) => r.eventId).sort());
      expect(await readFile(path.join(dir, "w.legacy-range"), "utf8").catch(() => "gone")).toBe("gone");
      await chainOk();
    } finally {
      await rm(spool, { recursive: true, force: true });
    }
  });

  it("refuses segments whose log identity is gone, rather than ship them again under a new one", async () => {
    const w = await start();
    await w.record(event(1));
    await close(w);
    await rm(path.join(dir, "w.wal-id"));
    await expect(start()).rejects.toThrow(/w\.wal-id is missing but the directory holds audit log segments/);
    // Nothing was changed, and the lock was released.
    expect((await segmentFiles()).length).toBeGreaterThan(0);
    await expect(readFile(path.join(dir, "w.lock"), "utf8")).rejects.toThrow(/ENOENT/);
  });

  it("ships the events logged while PostgreSQL was away after the log's segments were deleted, and records that they were gone", async () => {
    const w1 = await start();
    const shipped = await Promise.all(Array.from({ length: 40 }, (_, i) => w1.record(event(i))));
    await w1.flush();
    await close(w1);
    // Someone removes every segment (the log identity stays): the log has lost its place.
    for (const f of await segmentFiles()) await rm(f);
    const outage = down();
    await outage.begin();
    const w2 = await start();
    // Requests go on while the database is away: each of these decisions was acknowledged.
    const later = await Promise.all(Array.from({ length: 10 }, (_, i) => w2.record(event(100 + i))));
    await outage.end();
    await w2.flush();
    const all = [...shipped, ...later].map((r) => r.eventId);
    expect((await stored(all)).map((r) => r.id)).toEqual(all);
    const walId = (await readFile(path.join(dir, "w.wal-id"), "utf8")).trim();
    const gaps = await withClient(t.url, async (c) => (await c.query<{ data: { problem: string }; seq: string }>("SELECT data, seq::text FROM audit_events WHERE type = 'audit.log_gap' AND data->>'walId' = $1", [walId])).rows);
    // Said once, in the chain, before the events logged after it.
    expect(gaps.map((g) => g.data.problem)).toEqual(["segments_missing"]);
    expect((await stored(later.map((r) => r.eventId)))).toHaveLength(10);
    expect(w2.stats().truncatedAtOpen).toBe(0);
    await chainOk();
  });

  it("records no gap when the worker is restarted after a run that logged nothing (a quiet start, stop, start)", async () => {
    // A worker started and stopped before any request (or killed right after it started) leaves
    // its identity and one empty segment: nothing was lost, so nothing may be reported lost.
    await close(await start());
    await close(await start());
    const w = await start();
    const after = await w.record(event(1));
    await w.flush();
    await close(w);
    await close(await start());
    const walId = (await readFile(path.join(dir, "w.wal-id"), "utf8")).trim();
    const gaps = await withClient(t.url, async (c) => (await c.query("SELECT data FROM audit_events WHERE type = 'audit.log_gap' AND data->>'walId' = $1", [walId])).rows);
    expect(gaps).toEqual([]);
    expect(await stored([after.eventId])).toHaveLength(1);
    await chainOk();
  });

  it("ships the events logged before it learnt that its log is an older copy than the database's cursor", async () => {
    const w1 = await start();
    await Promise.all(Array.from({ length: 10 }, (_, i) => w1.record(event(i))));
    await w1.flush();
    await close(w1);
    // A copy of the folder taken now, restored after more was logged and shipped.
    const copy = await mkdtemp(path.join(tmpdir(), "bh-wal-copy-"));
    for (const f of await readdir(dir)) if (!f.endsWith(".lock")) await writeFile(path.join(copy, f), await readFile(path.join(dir, f)));
    const w2 = await start();
    const shipped = await Promise.all(Array.from({ length: 30 }, (_, i) => w2.record(event(10 + i))));
    await w2.flush();
    await close(w2);
    await rm(dir, { recursive: true, force: true });
    await rename(copy, dir);

    const outage = down();
    await outage.begin();
    const w3 = await start();
    const later = await Promise.all(Array.from({ length: 25 }, (_, i) => w3.record(event(100 + i))));
    await outage.end();
    await w3.flush();
    const all = [...shipped, ...later].map((r) => r.eventId);
    const rows = await stored(all);
    expect(rows.map((r) => r.id).sort()).toEqual([...all].sort());
    expect(rows.slice(-25).map((r) => r.id)).toEqual(later.map((r) => r.eventId));
    await chainOk();
  });

  it("does not take a cursor moved past its unshipped events by the worker's role as proof that they were stored", async () => {
    const w1 = await start();
    const shipped = await Promise.all(Array.from({ length: 10 }, (_, i) => w1.record(event(i))));
    await w1.flush();
    const outage = down();
    await outage.begin();
    const unshipped = await Promise.all(Array.from({ length: 20 }, (_, i) => w1.record(event(10 + i))));
    await close(w1);
    await outage.end();
    // Anyone holding the workers' database role (another worker, say) moves this log's cursor on.
    const walId = (await readFile(path.join(dir, "w.wal-id"), "utf8")).trim();
    await withClient(t.workerUrl, (c) => c.query("UPDATE audit_wal_cursors SET lsn = lsn + 15 WHERE wal_id = $1", [walId]));

    const w2 = await start();
    await w2.flush();
    const all = [...shipped, ...unshipped].map((r) => r.eventId);
    const rows = await stored(all);
    expect([...new Set(rows.map((r) => r.id))].sort()).toEqual([...all].sort());
    expect(rows).toHaveLength(all.length);
    // And the chain says that the cursor was moved past events it did not hold.
    const moved = await withClient(t.url, async (c) => (await c.query<{ data: { from: number; to: number; relogged: number } }>("SELECT data FROM audit_events WHERE type = 'audit.log_cursor_moved' AND data->>'walId' = $1", [walId])).rows);
    expect(moved.map((m) => m.data)).toEqual([expect.objectContaining({ from: 11, to: 25, relogged: 15 })]);
    expect(w2.stats().relogged).toBe(15);
    await chainOk();
  });

  it("refuses to start on a segment of another log copied into its folder, rather than ship its events as its own", async () => {
    const outage = down();
    await outage.begin();
    const w1 = await start({ segmentBytes: 4096 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => w1.record(event(i))));
    await close(w1);
    // Another machine's worker with the same slot id, its folder copied over this one's segments.
    const other = await mkdtemp(path.join(tmpdir(), "bh-wal-other-"));
    try {
      const w2 = await start({ walDir: other, segmentBytes: 4096 });
      await Promise.all(Array.from({ length: 30 }, (_, i) => w2.record(event(500 + i))));
      await close(w2);
      const theirs = await segmentFiles(other);
      const mine = await segmentFiles();
      const foreign = path.join(dir, path.basename(theirs[1]!));
      await writeFile(foreign, await readFile(theirs[1]!));
      await expect(start({ segmentBytes: 4096 })).rejects.toThrow(/belongs to another audit log/);
      // Nothing was changed, and the lock was released.
      expect(await segmentFiles()).toEqual([...new Set([...mine, foreign])].sort());
      await expect(readFile(path.join(dir, "w.lock"), "utf8")).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it("lets one process at a time own a log", async () => {
    await start();
    await expect(start()).rejects.toThrow(/already open in this process/);
  });

  it("ships large events in batches of bounded size, in order, each exactly once, with text of every kind intact", async () => {
    const w = await start({ maxBatchBytes: 64 * 1024, maxBatch: 2_000 });
    const text = (i: number) => `"quoted" \\back\\slash\\ é ü 日本 😀 \u2028 ${"x".repeat(9_000)} #${i}`;
    const acked = await Promise.all(Array.from({ length: 120 }, (_, i) => w.record(event(i, { reason: `reason "${i}" \\ é`, data: { i, body: text(i), nested: { list: [i, null, true, 1.5e-7, "a\"b"] } } }))));
    await w.flush();
    const stats = w.stats();
    expect(stats.shipped).toBe(120);
    // 120 events of ~9.5 KB in batches of at most 64 KiB: no fewer than 18 statements.
    expect(stats.batches).toBeGreaterThanOrEqual(18);
    const rows = await withClient(t.url, async (c) =>
      (await c.query<{ id: string; reason: string; data: { i: number; body: string; nested: unknown } }>("SELECT data->>'eventId' AS id, reason, data FROM audit_events WHERE data->>'eventId' = ANY($1::text[]) ORDER BY seq", [acked.map((a) => a.eventId)])).rows,
    );
    expect(rows.map((r) => r.id)).toEqual(acked.map((a) => a.eventId));
    rows.forEach((r, i) => {
      expect(r.reason).toBe(`reason "${i}" \\ é`);
      expect(r.data).toMatchObject({ i, body: text(i), nested: { list: [i, null, true, 1.5e-7, "a\"b"] } });
    });
    await chainOk();
  });

  it("ships a batch the database refuses as data event by event, also with the next batch read ahead: a refused event in minimal form, one refused even so kept in a file, nothing else lost, repeated or reordered", async () => {
    // A rule of this database only: rows whose reason starts "refuse me", or of type test.refused, are refused as data.
    await withClient(t.adminUrl, (c) =>
      c.query(`CREATE FUNCTION bh_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                   IF NEW.reason LIKE 'refuse me%' OR NEW.type = 'test.refused' THEN
                     RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation';
                   END IF;
                   RETURN NEW;
                 END $$;
               CREATE TRIGGER bh_test_refuse BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION bh_test_refuse();`),
    );
    try {
      const w = await start({ maxBatch: 50 });
      const outage = down();
      await outage.begin();
      const acked = await Promise.all(Array.from({ length: 300 }, (_, i) => w.record(i === 120 ? event(i, { reason: "refuse me" }) : i === 210 ? event(i, { type: "test.refused" }) : event(i))));
      await until(() => w.stats().durableLsn >= acked.at(-1)!.lsn, 5_000, "fsync");
      await outage.end();
      await w.flush();
      const stats = w.stats();
      expect(stats).toMatchObject({ shipped: 300, minimal: 1, quarantined: 1, lagEvents: 0 });
      // Behind by 300 events in batches of 50: batches were read while the one before was stored.
      expect(stats.readAhead).toBeGreaterThan(0);
      const rows = await stored(acked.map((a) => a.eventId));
      expect(rows.map((r) => r.id)).toEqual(acked.filter((_, i) => i !== 210).map((a) => a.eventId));
      expect(rows.find((r) => r.id === acked[120]!.eventId)?.reason).toMatch(/^recorded in minimal form: /);
      expect(rows.filter((r) => r.reason?.startsWith("recorded in minimal form")).length).toBe(1);
      const kept = (await readFile(path.join(dir, "w.rejected.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(kept).toEqual([expect.objectContaining({ lsn: acked[210]!.lsn, eventId: acked[210]!.eventId, type: "test.refused" })]);
      await chainOk();
    } finally {
      await withClient(t.adminUrl, (c) => c.query("DROP TRIGGER bh_test_refuse ON audit_events; DROP FUNCTION bh_test_refuse()"));
    }
  });

  it("ships only fsync'd events and never more than the database's cursor says", async () => {
    const w = await start({ fsyncIntervalMs: 500 });
    const r = await w.record(event(1));
    expect(w.stats().shippedLsn).toBeLessThan(r.lsn);
    await until(() => w.stats().shippedLsn === r.lsn, 10_000, "the event to be shipped after its fsync");
    expect(w.stats().durableLsn).toBeGreaterThanOrEqual(r.lsn);
  });
});
