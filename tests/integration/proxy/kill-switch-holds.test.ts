import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setAgentSuspended } from "@/lib/agents/agents";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { revokeTaskToken } from "@/lib/identity/task-tokens";
import { endTask } from "@/lib/tasks/tasks";
import { makeUser } from "../../support/factories";
import { viaProxy, type ProxyResponse } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const DELETE_STAGING = { query: 'mutation { volumeDelete(volumeId: "vol_staging") }' };
const HELD_POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
/** Far longer than any kill switch may take: an answer before it is an answer "at once". */
const HOLD_TIMEOUT_MS = 30_000;

/**
 * The attacker's side of a held request: an irreversible action waits for a person; meanwhile the
 * task is ended, expires or is revoked, its agent is suspended or its token revoked. The waiting
 * request must be refused at once, the approval must read as cancelled, and approving it
 * afterwards must release nothing: the upstream, which counts what reaches it, stays untouched.
 */
describe("kill switches cancel held requests", () => {
  let h: ProxyHarness;
  let railway: Upstream;

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: String(HOLD_TIMEOUT_MS / 1000) } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  const send = (token: string): Promise<ProxyResponse> =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json" }, body: JSON.stringify(DELETE_STAGING) });

  /** A held request of a fresh task, with its pending approval. */
  const held = async (options: { expiresInMs?: number } = {}) => {
    const task = await h.newTask(HELD_POLICY);
    if (options.expiresInMs) {
      await h.t.db.task.update({ where: { id: task.taskId }, data: { expiresAt: new Date(Date.now() + options.expiresInMs) } });
      await h.sync();
    }
    const jti = (await h.t.db.issuedToken.findFirstOrThrow({ where: { taskId: task.taskId } })).jti;
    const response = send(task.token);
    for (let i = 0; i < 500; i++) {
      const approval = await h.t.db.approval.findFirst({ where: { taskId: task.taskId, status: "pending" } });
      if (approval) return { ...task, jti, response, approval };
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no pending approval appeared");
  };

  /** Polls the approval until it reaches a terminal state other than pending. */
  /** Waits (bounded) for the row to reach `status`; returns it as it last was. */
  const settledAs = async (id: string, status: string) => {
    let row = await h.t.db.approval.findUniqueOrThrow({ where: { id } });
    for (let i = 0; i < 300 && row.status !== status; i++) {
      await new Promise((r) => setTimeout(r, 10));
      row = await h.t.db.approval.findUniqueOrThrow({ where: { id } });
    }
    return row;
  };
  const settled = async (id: string) => {
    for (let i = 0; i < 300; i++) {
      const row = await h.t.db.approval.findUniqueOrThrow({ where: { id } });
      if (row.status !== "pending") return row;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("the approval stayed pending");
  };

  const expectCancelled = async (
    hold: Awaited<ReturnType<typeof held>>,
    pulledAt: number,
    reason: string,
    text: string,
  ): Promise<void> => {
    const sentence = new RegExp(`cancelled because ${text}`);
    const res = await hold.response;
    // Answered at once, not at the 30 s hold timeout.
    expect(performance.now() - pulledAt).toBeLessThan(3000);
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: "approval_cancelled", kind: "denied" });
    expect(typeof res.json?.auditEventId).toBe("string");
    const row = await settled(hold.approval.id);
    expect(row.status).toBe("cancelled");
    expect(row.cancelReason).toBe(reason);
    expect(row.cancelledAt).not.toBeNull();
    // A person approving afterwards is told it was cancelled, and why; nothing is released.
    const approver = await makeUser(h.t.db, "approver");
    await expect(decideApproval(h.t.db, approver.actor, hold.approval.id, "approve")).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringMatching(sentence) as unknown as string,
      details: { status: "cancelled", reason },
    });
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: hold.approval.id } })).status).toBe("cancelled");
    const refusal = (await h.events()).find((e) => e.data.code === "approval_cancelled" && e.data.approvalId === hold.approval.id);
    expect(refusal?.outcome).toBe("deny");
    const cancellation = await h.t.db.auditEvent.findFirst({ where: { type: "approval.cancelled", data: { path: ["approvalId"], equals: hold.approval.id } } });
    expect(cancellation?.reason).toBe(text);
  };

  it("ending the task cancels its held request at once; a later approval forwards nothing", async () => {
    const before = railway.hits.length;
    const hold = await held();
    const pulledAt = performance.now();
    await endTask(h.t.db, h.admin, hold.taskId);
    await expectCancelled(hold, pulledAt, "task_ended", "the task was ended");
    expect(railway.hits.length).toBe(before);
  });

  it("suspending the agent cancels its held request at once; a later approval forwards nothing", async () => {
    const before = railway.hits.length;
    const hold = await held();
    const pulledAt = performance.now();
    await setAgentSuspended(h.t.db, h.admin, hold.agentId, true);
    await expectCancelled(hold, pulledAt, "agent_suspended", "the agent was suspended");
    expect(railway.hits.length).toBe(before);
  });

  it("revoking the token that made the request cancels it at once; a later approval forwards nothing", async () => {
    const before = railway.hits.length;
    const hold = await held();
    const pulledAt = performance.now();
    await revokeTaskToken(h.t.db, h.admin, hold.jti);
    await expectCancelled(hold, pulledAt, "token_revoked", "the task token was revoked");
    expect(railway.hits.length).toBe(before);
  });

  it("expiry cancels the held request when the task's time is up, and an approval two seconds later forwards nothing", async () => {
    const before = railway.hits.length;
    const hold = await held({ expiresInMs: 2500 });
    const expiresAt = (await h.t.db.task.findUniqueOrThrow({ where: { id: hold.taskId } })).expiresAt.getTime();
    const res = await hold.response;
    // Answered when the task expired, not at the hold timeout.
    expect(Date.now()).toBeGreaterThanOrEqual(expiresAt);
    expect(Date.now() - expiresAt).toBeLessThan(2000);
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: "approval_cancelled" });
    await new Promise((r) => setTimeout(r, 2000));
    await expectCancelled(hold, performance.now(), "task_expired", "the task expired");
    // Something acted at expiresAt: the task reads as expired in the database, audited once.
    const task = await h.t.db.task.findUniqueOrThrow({ where: { id: hold.taskId } });
    expect(task.status).toBe("expired");
    expect(await h.t.db.auditEvent.count({ where: { type: "task.expired", taskId: hold.taskId } })).toBe(1);
    expect(railway.hits.length).toBe(before);
  }, 20_000);

  it("an approval written together with the task's expiry (bypassing the approval API) releases nothing", async () => {
    const before = railway.hits.length;
    const hold = await held();
    const approver = await makeUser(h.t.db, "approver");
    const pulledAt = performance.now();
    await h.t.db.$transaction([
      h.t.db.task.update({ where: { id: hold.taskId }, data: { expiresAt: new Date(Date.now() - 2000) } }),
      h.t.db.approval.update({ where: { id: hold.approval.id }, data: { status: "approved", decidedById: approver.user.id, decidedAt: new Date() } }),
    ]);
    const res = await hold.response;
    expect(performance.now() - pulledAt).toBeLessThan(3000);
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: "approval_cancelled" });
    // The row is the test's own "approved" until the worker's cancellation lands: a kill switch
    // answers the hold at once and the row follows (proxy-worker/approvals/hold-gate.ts).
    expect((await settledAs(hold.approval.id, "cancelled")).status).toBe("cancelled");
    expect(railway.hits.length).toBe(before);
  });

  it("a task that leaves the worker's snapshot by any route (a direct database change) has its hold answered and cancelled", async () => {
    const before = railway.hits.length;
    const hold = await held();
    const pulledAt = performance.now();
    // Not through endTask: nothing cancels the approval in the database; the worker must notice.
    await h.t.db.task.update({ where: { id: hold.taskId }, data: { status: "ended", endedAt: new Date() } });
    const res = await hold.response;
    expect(performance.now() - pulledAt).toBeLessThan(3000);
    expect(res.json).toMatchObject({ error: "approval_cancelled" });
    const row = await settled(hold.approval.id);
    expect(row.status).toBe("cancelled");
    const approver = await makeUser(h.t.db, "approver");
    await expect(decideApproval(h.t.db, approver.actor, hold.approval.id, "approve")).rejects.toThrow(/cancelled/);
    expect(railway.hits.length).toBe(before);
  });

  it("an approval whose task ended before anyone acted on it is cancelled by the approval API itself", async () => {
    // No worker holds this one (it was recorded, and the worker is gone): the API still refuses.
    const task = await h.newTask(HELD_POLICY);
    const approval = await h.t.adminDb().approval.create({
      data: { taskId: task.taskId, agentId: task.agentId, requestDigest: "e".repeat(64), method: "POST", url: "http://x.test/", actions: [], reason: "held", expiresAt: new Date(Date.now() + 60_000) },
    });
    await h.t.db.task.update({ where: { id: task.taskId }, data: { status: "revoked", endedAt: new Date() } });
    const approver = await makeUser(h.t.db, "approver");
    await expect(decideApproval(h.t.db, approver.actor, approval.id, "approve")).rejects.toThrow(/cancelled because the task was revoked/);
    const row = await h.t.db.approval.findUniqueOrThrow({ where: { id: approval.id } });
    expect(row).toMatchObject({ status: "cancelled", cancelReason: "task_revoked", decidedById: null });
  });

  it("a held request still forwards once when nothing was revoked (the switches do not misfire)", async () => {
    const before = railway.hits.length;
    const hold = await held();
    const approver = await makeUser(h.t.db, "approver");
    await decideApproval(h.t.db, approver.actor, hold.approval.id, "approve");
    expect((await hold.response).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });
});
