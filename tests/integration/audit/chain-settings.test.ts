/**
 * The chain's row trigger takes each row's prev_hash from a transaction-local setting
 * (bulkhead.chain_hash) that any role can change, also from inside the INSERT itself: a value
 * expression, a sub-query or RETURNING runs after the statement trigger and between the row
 * triggers. The check at the end of the statement (migration 20261207102000_audit_chain_links)
 * reads the stored links and refuses the statement unless every row links to the row before it.
 * Each case here is what a runtime role (the worker's, the dashboard's) can send; each must be
 * refused, keeping nothing, or be stored correctly linked, and the chain must verify afterwards.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createTestDatabase, type TestDatabase } from "../../support/database";

const ZEROS = "0".repeat(64);
const REFUSED = /does not link to the hash of seq|rows were chained after seq|duplicate key value violates unique constraint "audit_events_seq_key"/;

describe("the chain does not take a link from a setting changed during the insert", () => {
  let t: TestDatabase;
  let worker: pg.Client;
  let dashboard: pg.Client;
  beforeAll(async () => {
    t = await createTestDatabase();
    worker = new pg.Client({ connectionString: t.workerUrl });
    dashboard = new pg.Client({ connectionString: t.url });
    await worker.connect();
    await dashboard.connect();
    await worker.query(
      "INSERT INTO audit_events (type, actor_type, actor_id, reason) SELECT 'proxy.decision', 'system', 'proxy-worker', 'before ' || g FROM generate_series(1, 5) g",
    );
  });
  afterAll(async () => {
    await worker?.end();
    await dashboard?.end();
    await t?.drop();
  });

  const state = () =>
    worker.query<{ n: number; head: string; hash: string }>("SELECT count(*)::int AS n, (SELECT seq::text FROM audit_chain_head) AS head, (SELECT hash FROM audit_chain_head) AS hash FROM audit_events").then((r) => r.rows[0]!);
  const hashOf = (seq: number) => worker.query<{ hash: string }>("SELECT hash FROM audit_events WHERE seq = $1", [seq]).then((r) => r.rows[0]!.hash);

  /** The statement is refused with nothing of it kept, and the chain still verifies. */
  async function refused(client: pg.Client, sql: string, params: unknown[] = []): Promise<void> {
    const before = await state();
    await expect(client.query(sql, params)).rejects.toThrow(REFUSED);
    expect(await state()).toEqual(before);
    expect(await verifyAuditChain(client, { checkpointKeys: [] })).toMatchObject({ ok: true, lastSeq: BigInt(before.head) });
  }

  const ZERO_LINK = `INSERT INTO audit_events (type, actor_type, actor_id, data)
    VALUES ('proxy.decision', 'system', 'proxy-worker', jsonb_build_object('x', set_config('bulkhead.chain_hash', $1, true)))
    RETURNING seq, prev_hash`;

  it("refuses a row linked to 64 zeros by a set_config in its own values, as the worker's role", async () => {
    await refused(worker, ZERO_LINK, [ZEROS]);
  });

  it("refuses the same as the dashboard's role", async () => {
    await refused(dashboard, ZERO_LINK, [ZEROS]);
  });

  it("refuses a row linked to an older event (the hash of seq 3)", async () => {
    await refused(worker, ZERO_LINK, [await hashOf(3)]);
  });

  it("refuses a multi-row VALUES whose middle row changes the setting, keeping none of its rows", async () => {
    await refused(
      worker,
      `INSERT INTO audit_events (type, actor_type, actor_id, reason) VALUES
        ('proxy.decision', 'system', 'proxy-worker', 'first'),
        ('proxy.decision', 'system', 'proxy-worker', set_config('bulkhead.chain_hash', $1, true)),
        ('proxy.decision', 'system', 'proxy-worker', 'third')`,
      [ZEROS],
    );
  });

  it("refuses an INSERT ... SELECT that changes the setting in its WHERE", async () => {
    await refused(
      worker,
      `INSERT INTO audit_events (type, actor_type, actor_id, reason)
        SELECT 'proxy.decision', 'system', 'proxy-worker', g::text FROM generate_series(1, 4) g
         WHERE g <> 3 OR set_config('bulkhead.chain_hash', $1, true) IS NOT NULL`,
      [await hashOf(2)],
    );
  });

  it("refuses a sub-query that changes the setting for a later row", async () => {
    await refused(
      dashboard,
      `INSERT INTO audit_events (type, actor_type, actor_id, reason)
        SELECT 'admin.change', 'system', 'dashboard', (SELECT CASE WHEN g = 2 THEN set_config('bulkhead.chain_hash', $1, true) ELSE g::text END)
          FROM generate_series(1, 3) g`,
      [ZEROS],
    );
  });

  it("refuses a change of the seq handed on (a skipped seq, a repeated one)", async () => {
    await refused(
      worker,
      `INSERT INTO audit_events (type, actor_type, actor_id, reason)
        SELECT 'proxy.decision', 'system', 'proxy-worker', CASE WHEN g = 2 THEN set_config('bulkhead.chain_seq', (current_setting('bulkhead.chain_seq')::bigint + 10)::text, true) ELSE g::text END
          FROM generate_series(1, 3) g`,
    );
    await refused(
      worker,
      `INSERT INTO audit_events (type, actor_type, actor_id, reason)
        SELECT 'proxy.decision', 'system', 'proxy-worker', CASE WHEN g = 2 THEN set_config('bulkhead.chain_seq', (current_setting('bulkhead.chain_seq')::bigint - 1)::text, true) ELSE g::text END
          FROM generate_series(1, 3) g`,
    );
  });

  it("refuses a data-modifying WITH whose inner insert changes the setting", async () => {
    await refused(
      worker,
      `WITH a AS (INSERT INTO audit_events (type, actor_type, actor_id, reason) VALUES ('proxy.decision', 'system', 'proxy-worker', 'inner')
                  RETURNING set_config('bulkhead.chain_hash', $1, true) AS x)
       INSERT INTO audit_events (type, actor_type, actor_id, reason) SELECT 'proxy.decision', 'system', 'proxy-worker', 'outer ' || length(x) FROM a`,
      [ZEROS],
    );
  });

  it("moves the head to the stored end whatever RETURNING sets the settings to", async () => {
    // RETURNING runs after the (last) row trigger and before the statement's check: the settings
    // it leaves are the head as it was, which once kept the head from moving past the new row.
    const before = await state();
    const { rows } = await worker.query<{ seq: string }>(
      `INSERT INTO audit_events (type, actor_type, actor_id, reason) VALUES ('proxy.decision', 'system', 'proxy-worker', 'returning')
        RETURNING seq::text AS seq, set_config('bulkhead.chain_seq', $1, true), set_config('bulkhead.chain_hash', $2, true)`,
      [before.head, before.hash],
    );
    const after = await state();
    expect(after.head).toBe(rows[0]!.seq);
    expect(after.hash).toBe(await hashOf(Number(rows[0]!.seq)));
    expect(await verifyAuditChain(worker, { checkpointKeys: [] })).toMatchObject({ ok: true, lastSeq: BigInt(rows[0]!.seq) });
  });

  it("keeps a transaction's other statements chained when one of them is refused", async () => {
    const before = await state();
    await worker.query("BEGIN");
    await worker.query("INSERT INTO audit_events (type, actor_type, actor_id, reason) SELECT 'proxy.decision', 'system', 'proxy-worker', 'tx ' || g FROM generate_series(1, 3) g");
    await worker.query("SAVEPOINT s");
    await expect(worker.query(ZERO_LINK, [ZEROS])).rejects.toThrow(REFUSED);
    await worker.query("ROLLBACK TO SAVEPOINT s");
    // A value set between statements is overwritten by the next statement's trigger.
    await worker.query("SELECT set_config('bulkhead.chain_hash', $1, true)", [ZEROS]);
    await worker.query("INSERT INTO audit_events (type, actor_type, actor_id, reason) SELECT 'proxy.decision', 'system', 'proxy-worker', 'tx ' || g FROM generate_series(4, 5) g");
    await worker.query("COMMIT");
    const after = await state();
    expect(after.n).toBe(before.n + 5);
    expect(Number(after.head)).toBe(Number(before.head) + 5);
    expect(await verifyAuditChain(dashboard, { checkpointKeys: [] })).toMatchObject({ ok: true, lastSeq: BigInt(after.head), events: after.n });
  });
});
