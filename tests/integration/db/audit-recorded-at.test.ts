import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csvHeader, csvRow } from "@/lib/audit/export/csv";
import { jsonlRow } from "@/lib/audit/export/jsonl";
import { ocsfEvent } from "@/lib/audit/export/ocsf";
import { pageQuery, type AuditRow } from "@/lib/audit/search";
import { toEventView } from "@/lib/audit/view";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createTestDatabase, type TestDatabase } from "../../support/database";

/**
 * `at` is the writer's word; `recorded_at` is when PostgreSQL stored the row, by its own clock,
 * and no runtime role can choose it (migration 20261207003000_audit_recorded_at). Before, whoever
 * held the worker's or the dashboard's database URL could insert an event dated last week, and
 * nothing in the row said when it really arrived.
 */
describe("audit events carry the time the database stored them, which no runtime role can set", () => {
  let t: TestDatabase;
  const WEEK_AGO = new Date(Date.now() - 7 * 86_400_000);

  const asRole = async <T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await run(client);
    } finally {
      await client.end();
    }
  };
  const codeOf = (promise: Promise<unknown>) => promise.then(() => null, (error: { code?: unknown }) => String(error.code));

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("refuses both runtime roles an INSERT that names recorded_at, in one row or a batch, and stores nothing", async () => {
    for (const [role, url, actor] of [["worker", t.workerUrl, "agent"], ["dashboard", t.url, "system"]] as const) {
      const single = asRole(url, (c) =>
        c.query(`INSERT INTO audit_events (at, recorded_at, type, actor_type, reason, data) VALUES ($1, $1, 'proxy.decision', $2, 'backdated?', '{}'::jsonb)`, [WEEK_AGO, actor]),
      );
      expect(await codeOf(single), role).toBe("42501");
      const batch = asRole(url, (c) =>
        c.query(`INSERT INTO audit_events (at, recorded_at, type, actor_type, reason, data) SELECT $1, $1, 'proxy.decision', $2, 'backdated?', '{}'::jsonb FROM generate_series(1, 3)`, [WEEK_AGO, actor]),
      );
      expect(await codeOf(batch), role).toBe("42501");
      // Nor can a role move it afterwards: audit rows are never updated.
      expect(await codeOf(asRole(url, (c) => c.query(`UPDATE audit_events SET recorded_at = $1`, [WEEK_AGO]))), role).toBe("42501");
    }
    expect(await t.db.auditEvent.count({ where: { reason: "backdated?" } })).toBe(0);
  });

  it("stores a backdated event with the database's own time beside it, and every reader shows both", async () => {
    const [{ now }] = (await asRole(t.workerUrl, (c) => c.query<{ now: Date }>("SELECT statement_timestamp() AS now"))).rows as [{ now: Date }];
    await asRole(t.workerUrl, (c) =>
      c.query(`INSERT INTO audit_events (at, type, actor_type, outcome, reason, data) VALUES ($1, 'proxy.decision', 'agent', 'allow', 'dated last week', '{"method":"GET","url":"https://api.test/x"}'::jsonb)`, [WEEK_AGO]),
    );
    const stored = await t.db.auditEvent.findFirstOrThrow({ where: { reason: "dated last week" } });
    expect(stored.at.getTime()).toBe(Math.trunc(WEEK_AGO.getTime()));
    expect(stored.recordedAt).not.toBeNull();
    expect(Math.abs(stored.recordedAt!.getTime() - now.getTime())).toBeLessThan(60_000);

    const query = pageQuery({ text: "e.seq = $1::bigint", values: [stored.seq!.toString()] }, "asc", 1);
    const [row] = (await asRole(t.url, (c) => c.query<AuditRow>(query.text, query.values))).rows as [AuditRow];
    const recorded = stored.recordedAt!.toISOString();
    expect(toEventView(row).recordedAt?.toISOString()).toBe(recorded);
    expect(toEventView(row).at.toISOString()).toBe(WEEK_AGO.toISOString());
    expect(csvHeader().trim().split(",").at(-1)).toBe('"recorded_at"');
    expect(csvRow(row).trim().split(",").at(-1)).toBe(`"${recorded}"`);
    expect((JSON.parse(jsonlRow(row)) as { recordedAt: string }).recordedAt).toBe(recorded);
    expect((ocsfEvent(row) as { metadata: { logged_time: number } }).metadata.logged_time).toBe(stored.recordedAt!.getTime());
    // The chain still verifies: recorded_at is not part of the hashed text.
    expect((await verifyAuditChain(t.db, { checkpointKeys: null })).ok).toBe(true);
  });

  it("an event stored before the column existed reads as not kept, not as the migration's time", async () => {
    // The owner stands in for history: a row whose recorded_at is NULL, as the migration leaves old rows.
    await asRole(t.ownerUrl, (c) => c.query(`INSERT INTO audit_events (type, actor_type, reason, data, recorded_at) VALUES ('agent.created', 'system', 'from before', '{}'::jsonb, NULL)`));
    const stored = await t.db.auditEvent.findFirstOrThrow({ where: { reason: "from before" } });
    const query = pageQuery({ text: "e.seq = $1::bigint", values: [stored.seq!.toString()] }, "asc", 1);
    const [row] = (await asRole(t.url, (c) => c.query<AuditRow>(query.text, query.values))).rows as [AuditRow];
    expect(toEventView(row).recordedAt).toBeNull();
    expect(csvRow(row).trim().endsWith(`"${stored.hash}",""`)).toBe(true);
    expect((JSON.parse(jsonlRow(row)) as { recordedAt: unknown }).recordedAt).toBeNull();
    expect((ocsfEvent(row) as { metadata: Record<string, unknown> }).metadata).not.toHaveProperty("logged_time");
  });
});
