import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getApprovalCard } from "@/lib/approvals/card";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { createLogger } from "@/lib/log";
import { PostgresHoldGate } from "@/proxy-worker/approvals/hold-gate";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";

/**
 * Approvals held by a version of Bulkhead before the seal carry none, and a worker that seals
 * releases nothing from them: after an upgrade they were still listed as waiting (or "approved;
 * waiting for the proxy to forward it once"), people decided them in vain, and a blocking hold of
 * an old worker that had stopped stayed pending with no holder to cancel it. A sealing worker now
 * settles them when it starts: cancelled (`unsealed`), each audited. Sealed rows and decided
 * history are left alone.
 */
describe("a worker that seals cancels, at start, the pending and approved approvals that carry no seal", () => {
  let t: TestDatabase;
  let workerDb: Db;
  let taskId: string;
  let agentId: string;

  const insert = async (values: { status: string; seal?: string | null; pollMode?: boolean; heldBy?: string | null }) => {
    const client = new pg.Client({ connectionString: t.adminUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO approvals (task_id, agent_id, request_digest, method, url, actions, reason, status, expires_at, poll_mode, held_by, seal, decided_at)
         VALUES ($1::uuid, $2::uuid, $3, 'DELETE', 'https://api.example.test/volumes/v1', '[]'::jsonb, 'held', $4::"ApprovalStatus", now() + interval '1 hour', $5, $6, $7,
                 CASE WHEN $4 IN ('approved', 'denied', 'consumed') THEN now() END)
         RETURNING id::text`,
        [taskId, agentId, randomBytes(8).toString("hex"), values.status, values.pollMode ?? true, values.heldBy ?? null, values.seal ?? null],
      );
      return rows[0]!.id;
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    t = await createTestDatabase();
    const { user } = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: "upgraded-bot", ownerId: user.id } });
    const task = await t.db.task.create({ data: { agentId: agent.id, purpose: "held before the upgrade", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    ({ id: taskId } = task);
    agentId = agent.id;
    workerDb = createPrismaClient(t.workerUrl, 4);
  });
  afterAll(async () => {
    await workerDb?.$disconnect();
    await t?.drop();
  });

  it("cancels what no worker can release, audits each, and leaves sealed rows and history alone", async () => {
    const oldPending = await insert({ status: "pending" });
    const oldGrant = await insert({ status: "approved" });
    const oldBlocking = await insert({ status: "pending", pollMode: false, heldBy: null });
    const sealed = await insert({ status: "pending", seal: "v1.sealed-by-a-worker" });
    const denied = await insert({ status: "denied" });
    const consumed = await insert({ status: "consumed" });

    // A worker that does not seal (no key) has no reason to settle anything.
    const unsealing = new PostgresHoldGate(workerDb, t.workerUrl, createLogger("unsealed-test", "silent"), 30_000, { holder: "worker-old" });
    await unsealing.start();
    await unsealing.close();
    expect(await t.db.approval.count({ where: { id: { in: [oldPending, oldGrant, oldBlocking] }, status: { in: ["pending", "approved"] } } })).toBe(3);

    const gate = new PostgresHoldGate(workerDb, t.workerUrl, createLogger("unsealed-test", "silent"), 30_000, { holder: "worker-new", sealKey: randomBytes(32) });
    await gate.start();
    try {
      const rows = await t.db.approval.findMany({ where: { taskId }, select: { id: true, status: true, cancelReason: true } });
      const byId = new Map(rows.map((r) => [r.id, r]));
      for (const id of [oldPending, oldGrant, oldBlocking]) expect(byId.get(id)).toMatchObject({ status: "cancelled", cancelReason: "unsealed" });
      expect(byId.get(sealed)).toMatchObject({ status: "pending", cancelReason: null });
      expect(byId.get(denied)?.status).toBe("denied");
      expect(byId.get(consumed)?.status).toBe("consumed");

      const events = await t.db.auditEvent.findMany({ where: { type: "approval.cancelled", taskId }, orderBy: { seq: "asc" } });
      expect(new Set(events.map((e) => (e.data as { approvalId?: string }).approvalId))).toEqual(new Set([oldPending, oldGrant, oldBlocking]));
      for (const e of events) expect(e).toMatchObject({ actorType: "system", outcome: "cancel", data: expect.objectContaining({ cause: "unsealed" }) });

      // The card says why, instead of "waiting for the proxy to forward it once".
      const admin = await makeUser(t.db, "admin");
      const card = await getApprovalCard(t.db, admin.actor, oldGrant);
      expect(JSON.stringify(card)).toMatch(/earlier version of Bulkhead/);
    } finally {
      await gate.close();
    }
  });
});
