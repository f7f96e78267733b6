import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * Who may move an approval to which state, enforced by PostgreSQL (migration
 * 20261206002000_approval_status_transitions), not only by the code that normally does it.
 *
 * The worker's database role inserts approvals and marks them consumed, expired or cancelled; it
 * never decides. Before, its column grant on `status` let anyone holding the worker's database
 * URL write `status = 'approved'` on a held request (or insert an approval already approved, and
 * redeem it as a 202 grant): the worker woke on the change, consumed it and forwarded an
 * irreversible request no person had approved, with no `approval.approved` in the audit. And any
 * role could bring a spent, denied, expired or cancelled approval back to `approved`, so a 202
 * grant could be redeemed twice, or a kill switch undone.
 */
describe("approval states: only a decider decides, and a finished approval stays finished", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  let token: string;
  let agentId: string;
  let taskId: string;
  const RAILWAY = "backboard.railway.com";
  const DELETE = { query: 'mutation { volumeDelete(volumeId: "vol_staging") }' };

  const send = (headers: Record<string, string> = {}) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(DELETE) });
  const nextPending = async () => {
    for (let i = 0; i < 300; i++) {
      const a = await h.t.db.approval.findFirst({ where: { status: "pending", agentId }, orderBy: { createdAt: "desc" } });
      if (a) return a;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no pending approval appeared");
  };
  /** One statement on its own connection as `url`'s role; the error's SQLSTATE, or null when it ran. */
  const asRole = async (url: string, sql: string, params: unknown[] = []): Promise<string | null> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql, params);
      return null;
    } catch (error) {
      return String((error as { code?: unknown }).code);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
    ({ token, agentId, taskId } = await h.newTask("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n"));
  });
  afterAll(async () => {
    await h?.close();
    await railway?.close();
  });

  it("the worker's role cannot approve a held request: refused, and nothing is forwarded", async () => {
    const before = railway.hits.length;
    const pending = send();
    const approval = await nextPending();
    const approving = await asRole(h.t.workerUrl, `UPDATE approvals SET status = 'approved' WHERE id = $1::uuid`, [approval.id]);
    const denying = await asRole(h.t.workerUrl, `UPDATE approvals SET status = 'denied' WHERE id = $1::uuid`, [approval.id]);
    const res = await pending; // the harness holds for 3 s
    expect(railway.hits.length, "forwarded without a person's approval").toBe(before);
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: "approval_timeout" });
    expect(approving).toBe("42501");
    expect(denying).toBe("42501");
    expect(await h.t.db.auditEvent.count({ where: { type: "approval.approved", taskId } })).toBe(0);
  }, 15_000);

  it("the worker's role cannot insert an approval already decided (to redeem it as a 202 grant)", async () => {
    const before = railway.hits.length;
    const row = await h.t.db.issuedToken.findFirstOrThrow({ where: { taskId }, select: { jti: true } });
    for (const status of ["approved", "denied", "consumed", "expired", "cancelled"]) {
      const code = await asRole(
        h.t.workerUrl,
        `INSERT INTO approvals (id, task_id, agent_id, jti, request_digest, method, url, actions, reason, expires_at, status)
         VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3, $4, 'POST', 'x', '[]'::jsonb, 'forged', now() + interval '1 hour', $5::"ApprovalStatus")`,
        [taskId, agentId, row.jti, "0".repeat(64), status],
      );
      expect(code, status).toBe("42501");
    }
    // Nor one that claims a decider or a use.
    expect(
      await asRole(
        h.t.workerUrl,
        `INSERT INTO approvals (id, task_id, agent_id, jti, request_digest, method, url, actions, reason, expires_at, decided_at)
         VALUES (gen_random_uuid(), $1::uuid, $2::uuid, $3, $4, 'POST', 'x', '[]'::jsonb, 'forged', now() + interval '1 hour', now())`,
        [taskId, agentId, row.jti, "0".repeat(64)],
      ),
    ).toBe("42501");
    expect(await h.t.db.approval.count({ where: { reason: "forged" } })).toBe(0);
    expect(railway.hits.length).toBe(before);
  });

  it("a 202 grant that was used cannot be made approved again by any runtime role, so it releases one request", async () => {
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const opened = await send({ prefer: "respond-async" });
    expect(opened.status).toBe(202);
    const approvalId = String(opened.json?.approvalId);
    await decideApproval(h.t.db, approver.actor, approvalId, "approve");
    expect((await send({ "bulkhead-approval": approvalId })).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
    for (const [role, url] of [["dashboard", h.t.url], ["worker", h.t.workerUrl]] as const) {
      expect(await asRole(url, `UPDATE approvals SET status = 'approved' WHERE id = $1::uuid`, [approvalId]), role).toBe("23514");
      expect(await asRole(url, `UPDATE approvals SET status = 'pending' WHERE id = $1::uuid`, [approvalId]), role).toBe("23514");
    }
    expect((await send({ "bulkhead-approval": approvalId })).status).toBe(403);
    expect(railway.hits.length).toBe(before + 1);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: approvalId } })).status).toBe("consumed");
  }, 15_000);

  it("a denied, expired or cancelled approval stays so: no role brings it back", async () => {
    const approver = await makeUser(h.t.db, "approver");
    const ids: string[] = [];
    for (const end of ["deny", "expire", "cancel"] as const) {
      const opened = await send({ prefer: "respond-async" });
      expect(opened.status).toBe(202);
      const id = String(opened.json?.approvalId);
      if (end === "deny") await decideApproval(h.t.db, approver.actor, id, "deny");
      else await h.t.db.approval.update({ where: { id }, data: end === "expire" ? { status: "expired" } : { status: "cancelled", cancelReason: "task_ended", cancelledAt: new Date() } });
      ids.push(id);
    }
    for (const id of ids) {
      for (const [role, url] of [["dashboard", h.t.url], ["worker", h.t.workerUrl], ["superuser", h.t.adminUrl]] as const) {
        for (const status of ["approved", "pending", "consumed"]) {
          expect(await asRole(url, `UPDATE approvals SET status = $2::"ApprovalStatus" WHERE id = $1::uuid`, [id, status]), `${status} as ${role}`).toBe("23514");
        }
      }
    }
    // The dashboard's own path still works: a pending approval is decided, a used one consumed.
    const opened = await send({ prefer: "respond-async" });
    const id = String(opened.json?.approvalId);
    await decideApproval(h.t.db, approver.actor, id, "approve");
    expect((await send({ "bulkhead-approval": id })).status).toBe(200);
  }, 20_000);
});
