import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createLogger } from "@/lib/log";
import { checkpointVerificationKey } from "@/lib/audit/checkpoints";
import { startAuditCheckpointer } from "@/proxy-worker/audit/checkpointer";
import { AuditEventError, AuditUnavailableError } from "@/proxy-worker/audit/errors";
import { prepareEvent, spoolLine } from "@/proxy-worker/audit/event";
import { insertRows } from "@/proxy-worker/audit/store";
import { AuditWriter, type AuditWriterOptions, type WorkerAuditEvent } from "@/proxy-worker/audit/writer";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { DatabaseOutage, eventIds, until, withClient } from "./helpers";

const log = createLogger("audit-writer-test", "silent");
const decision = (i: number, extra: Partial<WorkerAuditEvent> = {}): WorkerAuditEvent => ({
  type: "proxy.decision",
  actorType: "agent",
  actorId: `agent-${i % 7}`,
  outcome: i % 3 === 0 ? "deny" : "allow",
  effect: "read",
  reason: `request ${i}`,
  ruleId: `rule-${i % 5}`,
  data: { i, method: "GET", url: `https://api.example.test/items/${i}` },
  ...extra,
});

describe("the worker's audit writer", () => {
  let t: TestDatabase;
  let dir: string;
  const writers: AuditWriter[] = [];
  const outage = () => new DatabaseOutage(t.adminUrl);
  const start = async (options: Partial<AuditWriterOptions> = {}) => {
    const w = await AuditWriter.start({ databaseUrl: t.workerUrl, spoolDir: dir, workerId: "w1", replayIntervalMs: 50, log, ...options });
    writers.push(w);
    return w;
  };
  const chainOk = async () => expect(await verifyAuditChain(t.db, { checkpointKeys: [] })).toMatchObject({ ok: true });
  const segments = async () => (await readdir(dir)).filter((f) => f.endsWith(".jsonl") && !f.includes("rejected"));

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-audit-spool-"));
  });
  afterEach(async () => {
    await outage().end();
    while (writers.length) await writers.pop()!.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves once each event is committed, in batches, and chains them", async () => {
    const before = (await eventIds(t.url)).length;
    const w = await start({ maxBatchSize: 50, maxInFlight: 1 });
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => w.record(decision(i))));
    expect(results.every((r) => r.durable === "database")).toBe(true);
    const ids = (await eventIds(t.url)).slice(before).map((r) => r.eventId);
    expect(ids).toEqual(results.map((r) => r.eventId));
    expect(w.stats()).toMatchObject({ mode: "database", recorded: 500, batches: 10, flushed: 500, spooled: 0, queued: 0, failed: 0 });
    expect(w.takeFlushLagSamples()).toHaveLength(500);
    expect(await segments()).toEqual([]);
    await chainOk();
  });

  it("keeps one valid chain with several writers and the app writing at once", async () => {
    const ws = await Promise.all(["a", "b", "c"].map((id) => start({ workerId: id, maxBatchSize: 40 })));
    const before = (await eventIds(t.url)).length;
    const app = Array.from({ length: 60 }, (_, i) =>
      t.db.$transaction((tx) => recordAuditEvent(tx, { type: "admin.change", actor: { actorType: "user", actorId: `u${i}` }, data: { app: i } })),
    );
    const worker = ws.flatMap((w, k) => Array.from({ length: 300 }, (_, i) => w.record(decision(i, { data: { worker: k, i } }))));
    await Promise.all([...app, ...worker]);
    const rows = await withClient(t.url, async (c) => (await c.query<{ seq: string; app: boolean }>(
      `SELECT seq::text AS seq, type = 'admin.change' AS app FROM audit_events ORDER BY audit_events.seq OFFSET ${before}`,
    )).rows);
    expect(rows).toHaveLength(960);
    const appSeqs = rows.filter((r) => r.app).map((r) => Number(r.seq));
    // App and worker events interleave in the one chain.
    expect(rows.some((r) => !r.app && Number(r.seq) > Math.min(...appSeqs) && Number(r.seq) < Math.max(...appSeqs))).toBe(true);
    await chainOk();
  });

  it("spools while the database is away (fsync'd), then replays in order, exactly once", async () => {
    const w = await start({ maxInFlight: 1 });
    const first = await Promise.all(Array.from({ length: 100 }, (_, i) => w.record(decision(i))));
    const down = outage();
    await down.begin();
    const during = await Promise.all(Array.from({ length: 300 }, (_, i) => w.record(decision(100 + i))));
    expect(during.every((r) => r.durable === "spool")).toBe(true);
    expect(w.stats().mode).toBe("spool");
    expect(w.stats().spoolSyncs).toBeGreaterThan(0);
    const files = await segments();
    expect(files.length).toBeGreaterThan(0);
    const spooled = (await Promise.all(files.map((f) => readFile(path.join(dir, f), "utf8")))).join("").trim().split("\n");
    expect(spooled.map((l) => JSON.parse(l).eventId)).toEqual(during.map((r) => r.eventId));
    expect(JSON.parse(spooled[0]!)).toMatchObject({ v: 1, type: "proxy.decision", at: expect.stringMatching(/Z$/), data: { i: 100 } });

    await down.end();
    await until(() => w.stats().mode === "database", 10_000, "replay");
    const after = await w.record(decision(999));
    expect(after.durable).toBe("database");
    const ids = (await eventIds(t.url)).map((r) => r.eventId);
    const mine = [...first, ...during, after].map((r) => r.eventId);
    expect(ids.filter((id) => mine.includes(id!))).toEqual(mine);
    expect(w.stats()).toMatchObject({ replayed: 300, spooled: 300, duplicatesSkipped: 0 });
    expect(await segments()).toEqual([]);
    await chainOk();
  });

  it("refuses with AuditUnavailableError when the spool is unwritable and the database away", async () => {
    const w = await start();
    await rm(dir, { recursive: true });
    await writeFile(dir, "not a directory");
    const down = outage();
    await down.begin();
    const error = await w.record(decision(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditUnavailableError);
    expect((error as AuditUnavailableError).reason).toBe("unwritable");
    expect(w.stats()).toMatchObject({ failed: 1, spooled: 0 });
    await down.end();
    await rm(dir);
    await w.close();
    writers.pop();
  });

  it("refuses with AuditUnavailableError when the disk is full and the database away", async () => {
    const w = await start();
    await symlink("/dev/full", path.join(dir, "w1.00000001.jsonl"));
    const down = outage();
    await down.begin();
    const error = await w.record(decision(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuditUnavailableError);
    expect(String((error as Error).message)).toMatch(/ENOSPC/);
    await down.end();
    // With the disk and the database back, events are durable again (spooled, then replayed).
    const next = await w.record(decision(2));
    await until(() => w.stats().mode === "database", 10_000, "replay");
    expect((await eventIds(t.url)).some((r) => r.eventId === next.eventId)).toBe(true);
  });

  it("replays a dead process's spool without duplicating what it had already committed", async () => {
    const rows = Array.from({ length: 50 }, (_, i) => prepareEvent(decision(i), new Date(Date.now() - 60_000 + i)));
    // The previous process committed the first 20 and died before deleting the segment.
    const pool = new pg.Pool({ connectionString: t.workerUrl, max: 1 });
    await insertRows(pool, rows.slice(0, 20));
    await pool.end();
    await writeFile(path.join(dir, "w1.00000003.jsonl"), rows.map(spoolLine).join("") + '{"v":1,"eventId":"torn');
    const w = await start();
    expect(w.stats().mode).toBe("spool");
    await until(() => w.stats().mode === "database", 10_000, "replay");
    expect(w.stats()).toMatchObject({ replayed: 30, duplicatesSkipped: 20 });
    const ids = (await eventIds(t.url)).map((r) => r.eventId);
    expect(ids.filter((id) => rows.some((r) => r.eventId === id))).toEqual(rows.map((r) => r.eventId));
    const stored = await withClient(t.url, (c) => c.query<{ at: Date }>("SELECT at FROM audit_events WHERE data->>'eventId' = $1", [rows[49]!.eventId]));
    expect(stored.rows[0]!.at.toISOString()).toBe(rows[49]!.at);
    expect(await segments()).toEqual([]);
    await chainOk();
  });

  it("makes everything queued durable on close, then refuses new events", async () => {
    const w = await start({ maxDelayMs: 1000, maxBatchSize: 10_000 });
    const pending = Array.from({ length: 700 }, (_, i) => w.record(decision(i)));
    await w.close();
    const results = await Promise.all(pending);
    expect(results.every((r) => r.durable === "database")).toBe(true);
    await expect(w.record(decision(1))).rejects.toMatchObject({ name: "AuditUnavailableError", reason: "closed" });
    // The lock is released: the worker id can be used again.
    await (await start()).close();
  });

  it("refuses an invalid event at once, and one the database refuses, without losing its batch", async () => {
    const w = await start();
    await expect(w.record(decision(1, { agentId: "nope" }))).rejects.toBeInstanceOf(AuditEventError);
    await withClient(t.adminUrl, (c) => c.query("ALTER TABLE audit_events ADD CONSTRAINT test_no_poison CHECK (type <> 'poison')"));
    try {
      const outcomes = await Promise.allSettled([w.record(decision(1)), w.record(decision(2, { type: "poison" })), w.record(decision(3))]);
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
      expect((outcomes[1] as PromiseRejectedResult).reason).toBeInstanceOf(AuditEventError);

      // A refused event found in the spool is quarantined, not dropped, and does not block the rest.
      const rows = [prepareEvent(decision(4), new Date()), prepareEvent(decision(5, { type: "poison" }), new Date()), prepareEvent(decision(6), new Date())];
      await writeFile(path.join(dir, "w2.00000001.jsonl"), rows.map(spoolLine).join(""));
      const w2 = await start({ workerId: "w2" });
      await until(() => w2.stats().mode === "database", 10_000, "replay");
      expect(w2.stats()).toMatchObject({ replayed: 2, quarantined: 1 });
      const quarantined = await readFile(path.join(dir, "w2.rejected.jsonl"), "utf8");
      expect(JSON.parse(quarantined).eventId).toBe(rows[1]!.eventId);
    } finally {
      await withClient(t.adminUrl, (c) => c.query("ALTER TABLE audit_events DROP CONSTRAINT test_no_poison"));
    }
    expect(await segments()).toEqual([]);
    await chainOk();
  });

  it("is checkpointed by the worker's checkpointer, which signs each new head once", async () => {
    const w = await start();
    const checkpointKey = Buffer.alloc(32, 7);
    await Promise.all(Array.from({ length: 20 }, (_, i) => w.record(decision(i))));
    const pool = new pg.Pool({ connectionString: t.workerUrl, max: 1 });
    const checkpointer = startAuditCheckpointer({ db: pool, checkpointKey, intervalMs: 30, log });
    try {
      const count = async () => Number((await pool.query<{ n: string }>("SELECT count(*) AS n FROM audit_checkpoints")).rows[0]!.n);
      await until(async () => (await count()) >= 1, 5_000, "a checkpoint");
      await new Promise((r) => setTimeout(r, 150));
      expect(await count()).toBe(1);
      expect(await checkpointer.runOnce()).toBeNull();
      expect(await verifyAuditChain(pool, { checkpointKeys: [checkpointVerificationKey(checkpointKey)] })).toMatchObject({ ok: true, checkpoints: 1 });
    } finally {
      await checkpointer.stop();
      await pool.end();
    }
  });
});
