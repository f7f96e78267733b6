/**
 * The chain's per-statement check (migration 20261203001000_audit_chain_check_plan) must cost what
 * the statement inserts, whatever PostgreSQL knows about the table. Without statistics (a new
 * installation before autovacuum's first ANALYZE, a restored database) the check's first form
 * counted `seq > head` by reading the whole audit table for every batch the shipper inserted.
 * Here the table holds 250,000 rows and no statistics (where PostgreSQL's default estimates make a
 * parallel sequential scan the cheapest plan for an open range), and one batch of the shipper's own
 * statement (store.ts) may not scan it. The check's new refusal (a row past the chain's end) is
 * tested here; the dropped-row refusal it keeps is in chain-db.test.ts.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "@/lib/audit/verify";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { readCursor, shipRows } from "@/proxy-worker/audit/store";
import { bulkProxyDecisions } from "../../support/audit-events";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { withClient } from "./helpers";

const FILL = 250_000;
const BATCH = 200;

describe("the chain's statement check without table statistics", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
    // No ANALYZE may run during the test: the table must stay without statistics.
    await withClient(t.ownerUrl, (o) => o.query("ALTER TABLE audit_events SET (autovacuum_enabled = false, toast.autovacuum_enabled = false)"));
    const agents = [{ id: randomUUID(), name: "plan" }];
    await withClient(t.workerUrl, (c) => bulkProxyDecisions(c, { agents, tasks: [{ id: randomUUID(), agentId: agents[0]!.id }] }, FILL, { chunk: FILL }));
  }, 120_000);
  afterAll(async () => {
    await t?.drop();
  });

  it("does not scan the table for the batch it checks", async () => {
    const seqScans = () =>
      withClient(t.ownerUrl, async (o) => {
        await o.query("SELECT pg_stat_clear_snapshot()");
        const { rows } = await o.query<{ n: string }>("SELECT seq_scan::text AS n FROM pg_stat_user_tables WHERE relname = 'audit_events'");
        return Number(rows[0]!.n);
      });
    await withClient(t.ownerUrl, async (o) => {
      const stats = await o.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stats WHERE schemaname = 'public' AND tablename = 'audit_events'");
      expect(stats.rows[0]!.n).toBe(0);
    });
    const before = await seqScans();
    await withClient(t.workerUrl, async (c) => {
      const walId = randomUUID();
      const cursor = await readCursor(c, walId, "plan-test");
      const rows = Array.from({ length: BATCH }, (_, i) =>
        prepareEvent({ type: "proxy.decision", actorType: "system", actorId: "worker:plan-test", outcome: "allow", reason: `batch row ${i}`, data: { url: `https://api.example.test/v1/items/${i}` } }, new Date()),
      );
      expect(await shipRows(c, walId, cursor, cursor + BATCH, rows)).toBe(true);
      // This backend's counters reach the shared statistics when its next transaction ends
      // (parallel workers' when they exit, before the statement ends).
      await c.query("SELECT pg_stat_force_next_flush()");
      await c.query("SELECT 1");
    });
    // The first form of the check scanned all FILL rows here (a parallel sequential scan).
    expect((await seqScans()) - before).toBe(0);
    await withClient(t.url, async (c) => {
      const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_events");
      expect(rows[0]!.n).toBe(FILL + BATCH);
      expect(await verifyAuditChain(c, { checkpointKeys: [], fromSeq: FILL - 10 })).toMatchObject({ ok: true });
    });
  });

  it("refuses a statement when a row lies past the chain's end", async () => {
    // A row past the end can only get there with the chain's triggers switched off (the owner),
    // and the statement trigger then takes it as the chain's end. Here it is planted and the
    // statement trigger switched off as well, its settings made by hand from the head as if it
    // had missed the row: the check at the end of the statement must still refuse. All of it in a
    // transaction that is rolled back.
    await withClient(t.ownerUrl, async (o) => {
      await o.query("BEGIN");
      await o.query("ALTER TABLE audit_events DISABLE TRIGGER audit_events_chain, DISABLE TRIGGER audit_events_chain_lock, DISABLE TRIGGER audit_events_chain_advance");
      await o.query("INSERT INTO audit_events (type, actor_type, seq) VALUES ('planted', 'system', 99000000)");
      await o.query("ALTER TABLE audit_events ENABLE TRIGGER audit_events_chain, ENABLE TRIGGER audit_events_chain_advance");
      await o.query("SELECT set_config('bulkhead.chain_seq', seq::text, true), set_config('bulkhead.chain_hash', hash, true) FROM audit_chain_head WHERE id = 1");
      await expect(o.query("INSERT INTO audit_events (type, actor_type) VALUES ('after-planted', 'system')")).rejects.toThrow(/a row with seq 99000000 lies past the chain's end \d+/);
      await o.query("ROLLBACK");
    });
    await withClient(t.url, async (c) => {
      expect(await verifyAuditChain(c, { checkpointKeys: [], fromSeq: FILL - 10 })).toMatchObject({ ok: true });
    });
  });
});
