import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createPrismaClient } from "@/lib/db/client";
import { ensureCertificateAuthority } from "@/lib/tls/ca-store";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { establishTestKeys } from "../../support/keys";

/**
 * What the worker's database role may write, tried as whoever holds only that role's URL (not the
 * worker's key) would (migration 20261207101000_worker_role_limits): plant an interception CA whose
 * key they chose, retire the healthy one, record events as a person by spelling the actor type
 * differently or as the operator's CLI, end a task early, and write a reason on a pending approval.
 */
describe("the worker's database role writes only what the worker does", () => {
  let t: TestDatabase;
  let agentId: string;
  let userId: string;

  /** Runs `sql` as the role of `url`; the SQLSTATE it failed with, or null. */
  const as = async (url: string, sql: string, values: unknown[] = []): Promise<string | null> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql, values);
      return null;
    } catch (error) {
      return String((error as { code?: unknown }).code);
    } finally {
      await client.end();
    }
  };
  const event = (url: string, actorType: string, actorId: string | null) =>
    as(url, `INSERT INTO audit_events (type, actor_type, actor_id, outcome, data) VALUES ('approval.approved', $1, $2, 'approve', '{"probe":true}'::jsonb)`, [actorType, actorId]);
  const task = (expiresInMs: number) => t.db.task.create({ data: { agentId, purpose: "limits", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + expiresInMs) } });

  beforeAll(async () => {
    t = await createTestDatabase();
    const admin = await makeUser(t.db, "admin");
    userId = admin.user.id;
    agentId = (await t.db.agent.create({ data: { name: "limits-agent", ownerId: userId } })).id;
  });
  afterAll(() => t.drop());

  it("refuses actor types other than the four Bulkhead writes, however they are spelled, for every role", async () => {
    for (const spelling of ["User", "user ", "Api_Key", "USER", "robot", ""]) {
      expect(await event(t.workerUrl, spelling, userId), spelling).toBe("23514");
      expect(await event(t.url, spelling, userId), spelling).toBe("23514");
    }
    expect(await t.db.auditEvent.count({ where: { data: { path: ["probe"], equals: true } } })).toBe(0);
  });

  it("lets the worker's role record the system only under the worker's own names", async () => {
    for (const id of ["cli", "cli ", "sign-in", "first-run setup", "replay", "retention", "Proxy-Worker", userId]) expect(await event(t.workerUrl, "system", id), id).toBe("23514");
    for (const id of ["proxy-worker", "worker:w1", "expiry", "start-up", null]) expect(await event(t.workerUrl, "system", id), String(id)).toBeNull();
    // The dashboard's role (and the CLI, which uses it) keeps its own names.
    expect(await event(t.url, "system", "cli")).toBeNull();
    expect((await verifyAuditChain(t.db, { checkpointKeys: null })).ok).toBe(true);
  });

  it("lets the worker's role mark a task expired only once its time is up, and change nothing else of it", async () => {
    const early = await task(3600_000);
    expect(await as(t.workerUrl, "UPDATE tasks SET status = 'expired', ended_at = now() WHERE id = $1", [early.id])).toBe("42501");
    expect(await as(t.workerUrl, "UPDATE tasks SET ended_reason = 'ended by security', ended_at = now() WHERE id = $1", [early.id])).toBe("42501");
    expect(await t.db.task.findUniqueOrThrow({ where: { id: early.id } })).toMatchObject({ status: "active", endedAt: null, endedReason: null });
    const due = await task(-1000);
    expect(await as(t.workerUrl, "UPDATE tasks SET status = 'expired', ended_at = now(), ended_reason = 'time to live reached' WHERE id = $1", [due.id])).toBeNull();
    expect((await t.db.task.findUniqueOrThrow({ where: { id: due.id } })).status).toBe("expired");
    // The dashboard still ends a task early (a person's decision).
    expect(await as(t.url, "UPDATE tasks SET status = 'ended', ended_at = now(), ended_reason = 'done' WHERE id = $1", [early.id])).toBeNull();
  });

  it("lets the worker's role write when an approval was used or cancelled only with that change", async () => {
    const own = await task(3600_000);
    const approval = await t.adminDb().approval.create({
      data: { taskId: own.id, agentId, requestDigest: "d".repeat(64), method: "DELETE", url: "https://api.railway.test/projects/1", reason: "held", actions: [{ service: "railway", effect: "destructive" }], expiresAt: new Date(Date.now() + 600_000) },
    });
    expect(await as(t.workerUrl, "UPDATE approvals SET cancel_reason = 'Reviewed and pre-approved by security' WHERE id = $1", [approval.id])).toBe("42501");
    expect(await as(t.workerUrl, "UPDATE approvals SET consumed_at = now() WHERE id = $1", [approval.id])).toBe("42501");
    expect(await as(t.workerUrl, "UPDATE approvals SET cancelled_at = now() WHERE id = $1", [approval.id])).toBe("42501");
    expect(await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).toMatchObject({ status: "pending", cancelReason: null, consumedAt: null, cancelledAt: null });
    // Its own cancellation (a kill switch) writes all three with the status.
    expect(await as(t.workerUrl, "UPDATE approvals SET status = 'cancelled', cancelled_at = now(), cancel_reason = 'task_revoked' WHERE id = $1", [approval.id])).toBeNull();
    expect(await as(t.workerUrl, "UPDATE approvals SET cancel_reason = 'something else' WHERE id = $1", [approval.id])).toBe("42501");
  });

  it("keeps the worker's role from planting or retiring interception CAs while one is usable, and from creating one unaudited", async () => {
    const keys = await establishTestKeys(t.db);
    const current = await ensureCertificateAuthority(t.db, keys.workerKey);
    const plant = (id: string, createdAt = new Date()) =>
      as(t.workerUrl, "INSERT INTO certificate_authorities (id, cert_pem, private_key_sealed, created_at, not_after) VALUES ($1, 'attacker pem', 'sb1.attacker', $2, now() + interval '1 year')", [id, createdAt]);
    // A healthy CA exists: no new one, not even with a creation time that would sort first.
    expect(await plant(randomUUID(), new Date("2099-01-01T00:00:00Z"))).toBe("42501");
    expect(await as(t.workerUrl, "UPDATE certificate_authorities SET retired_at = now() WHERE id = $1", [current.id])).toBe("42501");
    expect(await t.db.certificateAuthority.count({ where: { retiredAt: null } })).toBe(1);

    // Once none is usable (retired by the dashboard, as `bulkhead ca rotate` does), the worker may
    // create one, but only with its ca.created event in the same transaction.
    await t.db.certificateAuthority.updateMany({ data: { retiredAt: new Date() } });
    expect(await as(t.url, "UPDATE certificate_authorities SET retired_at = NULL WHERE id = $1", [current.id])).toBe("23514");
    expect(await plant(randomUUID())).toBe("42501");
    expect(await t.db.certificateAuthority.count({ where: { retiredAt: null } })).toBe(0);
    const audited = randomUUID();
    const client = new pg.Client({ connectionString: t.workerUrl });
    await client.connect();
    try {
      await client.query("BEGIN");
      await client.query("INSERT INTO certificate_authorities (id, cert_pem, private_key_sealed, created_at, not_after) VALUES ($1, 'pem', 'sb1.x', '2099-01-01', now() + interval '1 year')", [audited]);
      await client.query(`INSERT INTO audit_events (type, actor_type, actor_id, data) VALUES ('ca.created', 'system', 'start-up', jsonb_build_object('id', $1::text))`, [audited]);
      await client.query("COMMIT");
    } finally {
      await client.end();
    }
    // Dated by the database, not by the writer.
    const row = await t.db.certificateAuthority.findUniqueOrThrow({ where: { id: audited } });
    expect(Math.abs(row.createdAt.getTime() - Date.now())).toBeLessThan(60_000);

    // The dashboard's role holds the worker's public key too: a CA it inserts unaudited is refused
    // at commit as well (`bulkhead ca rotate` records ca.rotated with it).
    const silent = randomUUID();
    expect(await as(t.url, "INSERT INTO certificate_authorities (id, cert_pem, private_key_sealed, not_after) VALUES ($1, 'pem', 'sb1.x', now() + interval '1 year')", [silent])).toBe("42501");
    expect(await t.db.certificateAuthority.count({ where: { id: silent } })).toBe(0);

    // The worker's own path (ensureCertificateAuthority, as the worker's role) passes all of it.
    await t.db.certificateAuthority.updateMany({ where: { retiredAt: null }, data: { retiredAt: new Date() } });
    const workerDb = createPrismaClient(t.workerUrl, 1);
    try {
      const created = await ensureCertificateAuthority(workerDb, keys.workerKey);
      expect(created.created).toBe(true);
      expect(await t.db.auditEvent.count({ where: { type: "ca.created", data: { path: ["id"], equals: created.id } } })).toBe(1);
    } finally {
      await workerDb.$disconnect();
    }
  });
});
