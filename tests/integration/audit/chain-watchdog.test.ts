import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startChainWatchdog } from "@/lib/audit/chain-watchdog";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { prepareWorkerEnvironment, startWorkerProcess, stopWorkerProcess } from "../../support/worker-process";

/**
 * Whoever holds a runtime role's database URL could insert one audit event and keep its
 * transaction open (idle, or sleeping): the chain's lock stays held, and every kill switch (which
 * records its event in its own transaction) waited 20 s and failed, as did the worker's audit.
 * The launcher's watchdog, one per runtime role, ends a session of its role that holds the lock
 * past the limit; Bulkhead's own short transactions are left alone.
 */
describe("the audit chain's lock watchdog", () => {
  let t: TestDatabase;
  const open: pg.Client[] = [];
  const stops: Array<() => Promise<void>> = [];
  const lines: string[] = [];

  const connect = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    c.on("error", () => undefined);
    await c.connect();
    open.push(c);
    return c;
  };
  const watch = (url: string) => {
    const w = startChainWatchdog({ databaseUrl: url, holdLimitMs: 1_500, intervalMs: 200, say: (l) => lines.push(l) });
    stops.push(() => w.stop());
    return w;
  };
  const event = (c: pg.Client, actorId: string) => c.query(`INSERT INTO audit_events (type, actor_type, actor_id, data) VALUES ('probe.event', 'system', $1, '{}'::jsonb)`, [actorId]);
  /** A dashboard-role transaction that records an event, as a kill switch does: ms until it committed. */
  const killSwitch = async () => {
    const c = await connect(t.url);
    const started = Date.now();
    await c.query("BEGIN");
    await event(c, "cli");
    await c.query("COMMIT");
    return Date.now() - started;
  };

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    for (const c of open.splice(0)) await c.end().catch(() => undefined);
    lines.splice(0);
  });
  afterAll(() => t.drop());

  it.each([
    ["idle in its transaction", async (_c: pg.Client) => undefined],
    ["sleeping in a statement", async (c: pg.Client) => void c.query("SELECT pg_sleep(60)").catch(() => undefined)],
  ])("ends a worker-role session holding the lock %s, and the kill switch waiting behind it commits", async (_how, hold) => {
    watch(t.workerUrl);
    const attacker = await connect(t.workerUrl);
    await attacker.query("BEGIN");
    await event(attacker, "proxy-worker");
    await hold(attacker);
    const waited = await killSwitch();
    // Held past the 1.5 s limit, then ended within a look or two; never the 20 s it took before.
    expect(waited).toBeGreaterThan(1_000);
    expect(waited).toBeLessThan(8_000);
    await expect(attacker.query("SELECT 1")).rejects.toThrow();
    const released = await t.db.auditEvent.findMany({ where: { type: "audit.chain_lock_released" } });
    expect(released.length).toBeGreaterThanOrEqual(1);
    expect(released.at(-1)!.reason).toMatch(/held the audit chain's lock for at least [\d.]+ s, blocking every audit event and kill switch; it was ended/);
    expect(lines.some((l) => l.startsWith("Audit chain watchdog: a session of database role"))).toBe(true);
    // What the ended transaction chained was rolled back; the chain verifies.
    expect((await verifyAuditChain(t.db, { checkpointKeys: null })).ok).toBe(true);
  }, 30_000);

  it("leaves short transactions, sessions holding no lock and other roles' sessions alone", async () => {
    const w = watch(t.workerUrl);
    const reader = await connect(t.workerUrl);
    await reader.query("BEGIN");
    await reader.query("SELECT seq FROM audit_chain_head");
    // Another role's transaction holding the lock past the limit is that role's watchdog's to end.
    const other = await connect(t.url);
    await other.query("BEGIN");
    await event(other, "cli");
    await new Promise((r) => setTimeout(r, 2_500));
    expect(await w.check()).toEqual([]);
    await expect(other.query("COMMIT")).resolves.toBeDefined();
    const short = await connect(t.workerUrl);
    for (let i = 0; i < 5; i++) {
      await short.query("BEGIN");
      await event(short, "proxy-worker");
      await new Promise((r) => setTimeout(r, 300));
      await short.query("COMMIT");
    }
    expect(await w.check()).toEqual([]);
    await expect(reader.query("SELECT 1")).resolves.toBeDefined();
    expect(lines.filter((l) => l.includes("was ended"))).toEqual([]);
  }, 30_000);

  it("finds the holder behind a savepoint, and not the sessions queued behind it", async () => {
    watch(t.workerUrl);
    const holder = await connect(t.workerUrl);
    await holder.query("BEGIN");
    await holder.query("SAVEPOINT hide");
    await event(holder, "proxy-worker");
    // A second worker-role session queues behind it for as long as it holds the lock.
    const queued = await connect(t.workerUrl);
    await queued.query("BEGIN");
    const waiting = event(queued, "proxy-worker");
    const kill = killSwitch();
    // Once the holder is ended, the queued session takes the lock for a moment, as Bulkhead's own
    // transactions do: it waited longer than the limit, and is not ended for that.
    await waiting;
    await new Promise((r) => setTimeout(r, 300));
    await expect(queued.query("COMMIT")).resolves.toBeDefined();
    expect(await kill).toBeLessThan(8_000);
    await expect(holder.query("SELECT 1")).rejects.toThrow();
    expect(lines.filter((l) => l.includes("was ended"))).toHaveLength(1);
  }, 30_000);

  it("runs in the real worker process: a worker started without the launcher ends such a session of its role too", async () => {
    const w = await prepareWorkerEnvironment(1);
    const child = await startWorkerProcess(w);
    try {
      const attacker = await connect(w.t.workerUrl);
      await attacker.query("BEGIN");
      await event(attacker, "proxy-worker");
      // The worker's default limit (5 s) and look (1 s): ended within about seven seconds.
      const ended = new Promise<number>((resolve) => {
        const started = Date.now();
        attacker.once("error", () => resolve(Date.now() - started));
        attacker.once("end", () => resolve(Date.now() - started));
      });
      const after = await Promise.race([ended, new Promise<number>((r) => setTimeout(() => r(-1), 15_000))]);
      expect(after).toBeGreaterThan(3_000);
      expect(after).toBeLessThan(12_000);
      await expect.poll(() => w.t.db.auditEvent.count({ where: { type: "audit.chain_lock_released" } }), { timeout: 5_000 }).toBe(1);
    } finally {
      await stopWorkerProcess(child);
      await w.close();
    }
  }, 150_000);
});
