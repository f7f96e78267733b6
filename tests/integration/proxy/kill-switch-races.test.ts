import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setAgentSuspended } from "@/lib/agents/agents";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { revokeTaskToken } from "@/lib/identity/task-tokens";
import { endTask } from "@/lib/tasks/tasks";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const DELETE_STAGING = JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' });
const HELD_POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const ROUNDS = 5;

/**
 * A person approves a held request at the very moment a kill switch is pulled. Either order is
 * fine; what must never happen is a mix: an approval left "approved" (spendable) under a dead
 * task, a request forwarded whose approval was cancelled, or an upstream hit without the
 * approval being consumed. The audit says the same as the rows. A request the kill switch finds
 * still being decided gets its refusal; one it finds already being forwarded is cut.
 */
describe("approving at the moment a kill switch is pulled", () => {
  let h: ProxyHarness;
  let railway: Upstream;

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "30" } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  const held = async () => {
    const task = await h.newTask(HELD_POLICY);
    const jti = (await h.t.db.issuedToken.findFirstOrThrow({ where: { taskId: task.taskId } })).jti;
    const response = viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token: task.token, headers: { "content-type": "application/json" }, body: DELETE_STAGING });
    for (let i = 0; i < 500; i++) {
      const approval = await h.t.db.approval.findFirst({ where: { taskId: task.taskId, status: "pending" } });
      if (approval) return { ...task, jti, response, approval };
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no pending approval appeared");
  };

  it.each([
    ["the task is ended", (x: Awaited<ReturnType<typeof held>>) => endTask(h.t.db, h.admin, x.taskId)],
    ["the agent is suspended", (x: Awaited<ReturnType<typeof held>>) => setAgentSuspended(h.t.db, h.admin, x.agentId, true)],
    ["the token is revoked", (x: Awaited<ReturnType<typeof held>>) => revokeTaskToken(h.t.db, h.admin, x.jti)],
  ])("when %s: forwarded at most once, and only with its approval consumed", async (_what, kill) => {
    for (let i = 0; i < ROUNDS; i++) {
      const hold = await held();
      const approver = await makeUser(h.t.db, "approver");
      const before = railway.hits.length;
      await Promise.allSettled([decideApproval(h.t.db, approver.actor, hold.approval.id, "approve"), kill(hold)]);
      // A kill switch cuts a request already being forwarded (its connection closes mid-answer):
      // only an approved, consumed request can be cut, never one refused or cancelled.
      const res = await hold.response.catch((error: Error) => ({ status: 0, cut: error.message }));
      const row = await h.t.db.approval.findUniqueOrThrow({ where: { id: hold.approval.id } });
      expect(["consumed", "cancelled"]).toContain(row.status);
      if (res.status === 0) {
        expect(row.status).toBe("consumed");
        expect(railway.hits.length - before).toBeLessThanOrEqual(1);
      } else {
        expect(railway.hits.length - before).toBe(res.status === 200 ? 1 : 0);
        if (res.status === 200) expect(row.status).toBe("consumed");
        else expect(res.status).toBe(403);
      }
      const cancelled = await h.t.db.auditEvent.count({ where: { type: "approval.cancelled", data: { path: ["approvalId"], equals: hold.approval.id } } });
      expect(cancelled).toBe(row.status === "cancelled" ? 1 : 0);
    }
  }, 60_000);
  it("a suspended agent, reactivated, gets none of its old tokens or tasks back; a new task works", async () => {
    const read = (token: string) =>
      viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ me { id } }" }) });
    const READS = "unlisted: deny\nrules:\n  - service: railway\n    effects: [read]\n";
    const old = await h.newTask(READS);
    const first = await read(old.token);
    expect(first.status, JSON.stringify(first.json)).toBe(200);
    await setAgentSuspended(h.t.db, h.admin, old.agentId, true);
    await h.sync();
    expect((await read(old.token)).status).toBe(407);
    await setAgentSuspended(h.t.db, h.admin, old.agentId, false);
    await h.sync();
    const before = railway.hits.length;
    const again = await read(old.token);
    expect(again.status).toBe(407);
    expect(again.json).toMatchObject({ error: "token_task_revoked" });
    expect(railway.hits.length).toBe(before);
    expect((await h.t.db.task.findUniqueOrThrow({ where: { id: old.taskId } })).status).toBe("revoked");
    const fresh = await h.newTask(READS, { agentId: old.agentId });
    expect((await read(fresh.token)).status).toBe(200);
  });
});
