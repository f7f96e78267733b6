import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createLogger } from "@/lib/log";
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

/**
 * The writer: the write-ahead log is the commit point (record resolves once the event is durable
 * there) and the shipper moves events to PostgreSQL in batches, in log order, exactly once.
 */
describe("the worker's audit writer", () => {
  let t: TestDatabase;
  let dir: string;
  const writers: AuditWriter[] = [];
  const outage = () => new DatabaseOutage(t.adminUrl);
  const start = async (options: Partial<AuditWriterOptions> = {}) => {
    const w = await AuditWriter.start({ databaseUrl: t.workerUrl, walDir: dir, workerId: "w1", foldWindowMs: 0, log, ...options });
    writers.push(w);
    return w;
  };
  const chainOk = async () => expect(await verifyAuditChain(t.db, { checkpointKeys: [] })).toMatchObject({ ok: true });
  const segments = async () => (await readdir(dir)).filter((f) => f.endsWith(".wal"));

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "bh-audit-wal-"));
  });
  afterEach(async () => {
    await outage().end();
    while (writers.length) await writers.pop()!.close(0);
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves once each event is in the log, then ships them in batches, in order, and chains them", async () => {
    const before = (await eventIds(t.url)).length;
    const w = await start({ maxBatch: 50 });
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => w.record(decision(i))));
    expect(results.every((r) => r.durable === "group")).toBe(true);
    expect(results.map((r) => r.lsn)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    await w.flush();
    const ids = (await eventIds(t.url)).slice(before).map((r) => r.eventId);
    expect(ids).toEqual(results.map((r) => r.eventId));
    expect(w.stats()).toMatchObject({ backlog: "ok", recorded: 500, shipped: 500, rows: 500, failed: 0, lagEvents: 0, shippedLsn: 500 });
    expect(w.stats().batches).toBeGreaterThanOrEqual(10);
    expect(w.takeFlushLagSamples()).toHaveLength(500);
    await chainOk();
  });

  it("caught up, gathers events that arrive a few at a time into one statement per pause", async () => {
    const w = await start({ smallBatchPauseMs: 1_000 });
    await w.record(decision(1));
    await until(() => w.stats().shippedLsn >= 1, 10_000, "the first event shipped");
    const first = w.stats().batches;
    // Twenty events trickling in during the pause that the first (small) batch started.
    for (let i = 2; i <= 21; i++) {
      await w.record(decision(i));
      await new Promise((r) => setTimeout(r, 5));
    }
    await until(() => w.stats().shippedLsn >= 21, 10_000, "every event shipped");
    expect(w.stats().batches - first).toBeLessThanOrEqual(2);
    expect(w.stats()).toMatchObject({ shipped: 21, rows: 21, lagEvents: 0 });
    await chainOk();
  });

  it("never makes flush() wait out the pause", async () => {
    const w = await start({ smallBatchPauseMs: 600_000 });
    await w.record(decision(1));
    await until(() => w.stats().shippedLsn >= 1, 10_000, "the first event shipped");
    const { lsn } = await w.record(decision(2));
    await w.flush(5_000);
    expect(w.stats().shippedLsn).toBe(lsn);
  });

  it("keeps one valid chain with several writers and the app writing at once", async () => {
    const ws = await Promise.all(["a", "b", "c"].map((id) => start({ workerId: id, maxBatch: 40 })));
    const before = (await eventIds(t.url)).length;
    // Four lanes of app transactions (as many as the app's pool has connections), one after another in each.
    const app = Array.from({ length: 4 }, async (_, lane) => {
      for (let i = lane; i < 60; i += 4) {
        // Generous waits: on a machine shared with other jobs, Prisma's 2 s default can run out.
        await t.db.$transaction((tx) => recordAuditEvent(tx, { type: "admin.change", actor: { actorType: "user", actorId: `u${i}` }, data: { app: i } }), { maxWait: 30_000, timeout: 30_000 });
      }
    });
    const worker = ws.flatMap((w, k) => Array.from({ length: 300 }, (_, i) => w.record(decision(i, { data: { worker: k, i } }))));
    await Promise.all([...app, ...worker]);
    await Promise.all(ws.map((w) => w.flush()));
    const rows = await withClient(t.url, async (c) => (await c.query<{ seq: string; app: boolean; worker: string | null; i: string | null }>(
      `SELECT seq::text AS seq, type = 'admin.change' AS app, data->>'worker' AS worker, data->>'i' AS i FROM audit_events ORDER BY audit_events.seq OFFSET ${before}`,
    )).rows);
    expect(rows).toHaveLength(960);
    // Each writer's events are in the chain in the order it recorded them.
    for (const k of ["0", "1", "2"]) expect(rows.filter((r) => r.worker === k).map((r) => Number(r.i))).toEqual(Array.from({ length: 300 }, (_, i) => i));
    await chainOk();
  });

  it("keeps logging while the database is away and ships everything, in order, exactly once, when it is back", async () => {
    const w = await start({ maxBatch: 100 });
    const first = await Promise.all(Array.from({ length: 100 }, (_, i) => w.record(decision(i))));
    await w.flush();
    const down = outage();
    await down.begin();
    const during = await Promise.all(Array.from({ length: 300 }, (_, i) => w.record(decision(100 + i))));
    expect(during.every((r) => r.durable === "group")).toBe(true);
    await until(() => w.stats().lagEvents === 300 && !w.stats().connected, 10_000, "the shipper to notice");
    await down.end();
    await w.flush();
    const ids = (await eventIds(t.url)).map((r) => r.eventId);
    const mine = [...first, ...during].map((r) => r.eventId);
    expect(ids.filter((id) => mine.includes(id!))).toEqual(mine);
    expect(w.stats()).toMatchObject({ shipped: 400, lagEvents: 0, backlog: "ok" });
    await chainOk();
  });

  it("preserves order across many segments and removes each segment once it is shipped", async () => {
    const w = await start({ segmentBytes: 4096, maxBatch: 64 });
    const down = outage();
    await down.begin();
    const results = await Promise.all(Array.from({ length: 600 }, (_, i) => w.record(decision(i))));
    await until(() => w.stats().durableLsn >= 600, 5_000, "fsync");
    expect((await segments()).length).toBeGreaterThan(20);
    await down.end();
    await w.flush();
    const ids = (await eventIds(t.url)).map((r) => r.eventId);
    const mine = results.map((r) => r.eventId);
    expect(ids.filter((id) => mine.includes(id!))).toEqual(mine);
    // Only the segment being written is left.
    expect((await segments()).length).toBe(1);
    await chainOk();
  });

  it("strict mode resolves only once an fsync covers the event; group mode before", async () => {
    const strict = await start({ workerId: "strict", durability: "strict" });
    for (let i = 0; i < 20; i++) {
      const r = await strict.record(decision(i));
      expect(r.durable).toBe("strict");
      expect(strict.stats().durableLsn).toBeGreaterThanOrEqual(r.lsn);
    }
    expect(strict.stats().fsyncs).toBeGreaterThan(0);
    const group = await start({ workerId: "group", fsyncIntervalMs: 1000 });
    const r = await group.record(decision(1));
    expect(group.stats().writtenLsn).toBe(r.lsn);
    expect(group.stats().durableLsn).toBeLessThan(r.lsn);
    // Shipped only once fsync'd.
    expect(group.stats().shippedLsn).toBeLessThan(r.lsn);
    await until(() => group.stats().durableLsn >= r.lsn, 5_000, "the group fsync");
    await group.flush();
    expect(group.stats().shippedLsn).toBe(r.lsn);
  });

  it("says it is behind over the soft limit, refuses over the hard limit (refusals keep a reserve), and recovers", async () => {
    const w = await start({ segmentBytes: 4096, softLimitBytes: 8 * 1024, hardLimitBytes: 24 * 1024 });
    const down = outage();
    await down.begin();
    let n = 0;
    while (w.stats().backlog === "ok") await w.record(decision(n++, { outcome: "allow" }));
    expect(w.stats().backlog).toBe("behind");
    const refused: unknown[] = [];
    while (refused.length === 0) await w.record(decision(n++, { outcome: "allow" })).catch((e: unknown) => refused.push(e));
    expect(refused[0]).toMatchObject({ name: "AuditUnavailableError", reason: "backlog" });
    expect(w.stats()).toMatchObject({ backlog: "refusing", refusedForBacklog: 1 });
    // A refusal is still recorded (from the reserve), so the audit shows what was turned away.
    const denial = await w.record(decision(n++, { outcome: "deny" }));
    expect(denial.lsn).toBeGreaterThan(0);
    await down.end();
    await w.flush();
    await until(() => w.stats().backlog === "ok", 10_000, "the backlog to drain");
    expect((await w.record(decision(n++, { outcome: "allow" }))).lsn).toBeGreaterThan(denial.lsn);
    await chainOk();
  });

  it("makes everything logged durable on close, then refuses new events and releases the log", async () => {
    const w = await start({ fsyncIntervalMs: 1000 });
    const pending = Array.from({ length: 700 }, (_, i) => w.record(decision(i)));
    await w.close();
    writers.pop();
    const results = await Promise.all(pending);
    expect(results).toHaveLength(700);
    await expect(w.record(decision(1))).rejects.toMatchObject({ name: "AuditUnavailableError", reason: "closed" });
    // The lock is released: the worker id can be used again, and it ships whatever is left.
    const again = await start();
    await again.flush();
    const ids = new Set((await eventIds(t.url)).map((r) => r.eventId));
    expect(results.every((r) => ids.has(r.eventId))).toBe(true);
  });
});
