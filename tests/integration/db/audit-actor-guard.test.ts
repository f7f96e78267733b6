import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";

/**
 * Whose words a database role may put in the audit. The worker records what agents did and what
 * Bulkhead itself did (actor `agent` or `system`); people (`user`) and their API keys
 * (`api_key`) act through the dashboard. Before, the worker's role could insert any event, so
 * whoever held the worker's database URL could write "alice approved the deletion" or "bob changed
 * the policy" into the chain, hash-linked and verifying like any other event. Now an event whose
 * actor is a person or an API key is refused (insufficient_privilege) unless the inserting role
 * manages sign-ins (INSERT on sessions: the dashboard's, the owner) (migration
 * 20261206003000_audit_actor_guard).
 */
describe("the worker's role cannot record what a person did", () => {
  let t: TestDatabase;
  let userId: string;

  /** One INSERT as `url`'s role; its SQLSTATE, or null when it ran. */
  const insertAs = async (url: string, actorType: string, type: string, actorId = userId): Promise<string | null> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`INSERT INTO audit_events (type, actor_type, actor_id, outcome, reason, data) VALUES ($1, $2, $3, 'approve', 'forged?', '{}'::jsonb)`, [type, actorType, actorId]);
      return null;
    } catch (error) {
      return String((error as { code?: unknown }).code);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    t = await createTestDatabase();
    userId = (await makeUser(t.db, "approver")).user.id;
  });
  afterAll(() => t.drop());

  it("refuses the worker's role an event done by a user or an API key, in one row or a batch", async () => {
    expect(await insertAs(t.workerUrl, "user", "approval.approved")).toBe("42501");
    expect(await insertAs(t.workerUrl, "api_key", "user.role_changed")).toBe("42501");
    const client = new pg.Client({ connectionString: t.workerUrl });
    await client.connect();
    try {
      // A batch that hides one such event among the worker's own is refused whole.
      const batch = client.query(
        `INSERT INTO audit_events (type, actor_type, actor_id, data) SELECT 'proxy.decision', a, CASE WHEN a = 'system' THEN 'proxy-worker' ELSE $1::text END, '{}'::jsonb FROM unnest(ARRAY['agent','system','user','agent']) AS a`,
        [userId],
      );
      await expect(batch).rejects.toMatchObject({ code: "42501" });
    } finally {
      await client.end();
    }
    expect(await t.db.auditEvent.count({ where: { reason: "forged?" } })).toBe(0);
    expect(await t.db.auditEvent.count({ where: { type: "proxy.decision" } })).toBe(0);
  });

  it("lets the worker's role record agents and the system, and the dashboard's role people; the chain verifies", async () => {
    expect(await insertAs(t.workerUrl, "agent", "proxy.decision")).toBeNull();
    expect(await insertAs(t.workerUrl, "system", "approval.cancelled", "proxy-worker")).toBeNull();
    expect(await insertAs(t.url, "user", "approval.approved")).toBeNull();
    expect(await insertAs(t.url, "api_key", "approval.denied")).toBeNull();
    const result = await verifyAuditChain(t.db, { checkpointKeys: null });
    expect(result.ok).toBe(true);
  });
});
