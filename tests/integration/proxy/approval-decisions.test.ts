import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getApprovalCard, listApprovals } from "@/lib/approvals/card";
import { CARD_BODY_LIMIT } from "@/lib/approvals/body-view";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { updateApprovalSettings } from "@/lib/approvals/settings";
import { createPrismaClient } from "@/lib/db/client";
import { createLogger } from "@/lib/log";
import { canonicalizeRequest } from "@/lib/semantics/canonical";
import { PostgresHoldGate } from "@/proxy-worker/approvals/hold-gate";
import type { AuthenticatedTask } from "@/proxy-worker/identity/token-verifier";
import { makeUser } from "../../support/factories";
import { waitFor } from "../../support/log-capture";
import { DatabaseOutage } from "../audit/helpers";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const deleteVolume = (pad = "") => ({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }', variables: { pad } });

/**
 * Who may approve, and what they approve: the card binds to the whole body, N distinct people
 * release a request, scoped approvers see only their agents and services, two approvers at once
 * forward once and the loser is told who won, and a task's flood of holds is cut off at its limit.
 */
describe("approval decisions through a real proxy", () => {
  let h: ProxyHarness;
  let railway: Upstream;

  const send = (token: string, body: unknown) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const pendingFor = async (agentId: string, count = 1) => {
    for (let i = 0; i < 500; i++) {
      const rows = await h.t.db.approval.findMany({ where: { status: "pending", agentId }, orderBy: { createdAt: "asc" } });
      if (rows.length >= count) return rows;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("the held requests did not appear");
  };

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "8", BULKHEAD_TASK_MAX_PENDING_HOLDS: "2" } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  it("the card shows part of a large body, and the approval releases exactly the whole body", async () => {
    const { token, agentId } = await h.newTask(POLICY);
    const approver = await makeUser(h.t.db, "approver");
    const pad = "x".repeat(CARD_BODY_LIMIT * 2);
    const pending = send(token, deleteVolume(pad));
    const [approval] = await pendingFor(agentId);
    const card = await getApprovalCard(h.t.db, approver.actor, approval!.id);
    expect(card.actions.map((a) => [a.operation, a.resource, a.environment, a.effect])).toEqual([["volumeDelete", "vol_staging", "staging", "irreversible"]]);
    expect(card.request.body.truncated).toBe(true);
    expect(card.request.body.size).toBe(Buffer.byteLength(JSON.stringify(deleteVolume(pad))));
    expect(card.request.headers["content-type"]).toBe("application/json");
    expect(card.task.purpose).toBe("proxy test");
    const full = await getApprovalCard(h.t.db, approver.actor, approval!.id, { fullBody: true });
    expect(full.request.body.truncated).toBe(false);
    const before = railway.hits.length;
    await decideApproval(h.t.db, approver.actor, approval!.id, "approve");
    expect((await pending).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
    expect(railway.hits.at(-1)!.body).toBe(JSON.stringify(deleteVolume(pad)));
  });

  it("N-of-M: two distinct approvers are needed for irreversible actions; one person twice is not two", async () => {
    await updateApprovalSettings(h.t.db, h.admin, { requiredByEffect: { irreversible: 2 } });
    try {
      const { token, agentId } = await h.newTask(POLICY);
      const a = await makeUser(h.t.db, "approver");
      const b = await makeUser(h.t.db, "approver");
      const before = railway.hits.length;
      const pending = send(token, deleteVolume());
      const [approval] = await pendingFor(agentId);
      expect(approval!.requiredApprovals).toBe(2);
      expect(await decideApproval(h.t.db, a.actor, approval!.id, "approve", "first look")).toMatchObject({ status: "pending", approvals: 1, required: 2 });
      await expect(decideApproval(h.t.db, a.actor, approval!.id, "approve")).rejects.toThrow(/already approved this request/);
      await new Promise((r) => setTimeout(r, 300));
      expect(railway.hits.length).toBe(before);
      expect(await decideApproval(h.t.db, b.actor, approval!.id, "approve", "second look")).toMatchObject({ status: "approved", approvals: 2 });
      expect((await pending).status).toBe(200);
      expect(railway.hits.length).toBe(before + 1);
      const votes = await h.t.db.auditEvent.findMany({ where: { type: { in: ["approval.vote", "approval.approved"] }, data: { path: ["approvalId"], equals: approval!.id } }, orderBy: { seq: "asc" } });
      expect(votes.map((v) => [v.type, v.reason])).toEqual([["approval.vote", "first look"], ["approval.approved", "second look"]]);
    } finally {
      await updateApprovalSettings(h.t.db, h.admin, { requiredByEffect: {} });
    }
  });

  it("a scoped approver neither sees nor decides other agents' or services' requests", async () => {
    const mine = await h.newTask(POLICY);
    const theirs = await h.newTask(POLICY);
    const scoped = await makeUser(h.t.db, "approver");
    await h.t.db.approverScope.create({ data: { userId: scoped.user.id, kind: "agent", value: mine.agentId } });
    const p1 = send(mine.token, deleteVolume());
    const p2 = send(theirs.token, deleteVolume());
    const [own] = await pendingFor(mine.agentId);
    const [other] = await pendingFor(theirs.agentId);
    const listed = await listApprovals(h.t.db, scoped.actor, { state: "pending" });
    expect(listed.map((a) => a.id)).toContain(own!.id);
    expect(listed.map((a) => a.id)).not.toContain(other!.id);
    await expect(getApprovalCard(h.t.db, scoped.actor, other!.id)).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(decideApproval(h.t.db, scoped.actor, other!.id, "approve")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(decideApproval(h.t.db, scoped.actor, other!.id, "deny")).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: other!.id } })).status).toBe("pending");
    await decideApproval(h.t.db, scoped.actor, own!.id, "approve");
    expect((await p1).status).toBe(200);

    // A service scope: approvals whose actions touch another service stay out of sight.
    const bySvc = await makeUser(h.t.db, "approver");
    await h.t.db.approverScope.create({ data: { userId: bySvc.user.id, kind: "service", value: "github" } });
    await expect(decideApproval(h.t.db, bySvc.actor, other!.id, "deny")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await h.t.db.approverScope.create({ data: { userId: bySvc.user.id, kind: "service", value: "railway" } });
    await decideApproval(h.t.db, bySvc.actor, other!.id, "deny", "not this one");
    expect((await p2).status).toBe(403);
  });

  it("two approvers at once: one decision wins, the upstream runs once, the other is told who decided", async () => {
    const { token, agentId } = await h.newTask(POLICY);
    const a = await makeUser(h.t.db, "approver");
    const b = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const pending = send(token, deleteVolume());
    const [approval] = await pendingFor(agentId);
    const results = await Promise.allSettled([decideApproval(h.t.db, a.actor, approval!.id, "approve"), decideApproval(h.t.db, b.actor, approval!.id, "deny")]);
    const won = results.findIndex((r) => r.status === "fulfilled");
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results[1 - won] as PromiseRejectedResult;
    expect(String(lost.reason.message)).toContain(won === 0 ? a.email : b.email);
    const res = await pending;
    expect(res.status).toBe(won === 0 ? 200 : 403);
    expect(railway.hits.length).toBe(before + (won === 0 ? 1 : 0));
  });

  it("a late approval (after the timeout) forwards nothing", async () => {
    const { token, agentId } = await h.newTask(POLICY);
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const pending = send(token, deleteVolume());
    const [approval] = await pendingFor(agentId);
    expect((await pending).status).toBe(403);
    await expect(decideApproval(h.t.db, approver.actor, approval!.id, "approve")).rejects.toThrow(/can no longer be decided/);
    expect(railway.hits.length).toBe(before);
  }, 20_000);

  it("a task's flood of holds stops at its limit with a clear reason; other tasks' requests are still held", async () => {
    const flood = await h.newTask(POLICY);
    const calm = await h.newTask(POLICY);
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const attempts = Array.from({ length: 6 }, (_, i) => send(flood.token, deleteVolume(`flood-${i}`)));
    const refused = (await Promise.all(attempts.slice(0, 6).map((p) => Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), 1500))])))).filter(
      (r): r is NonNullable<typeof r> => r !== null,
    );
    // Exactly the limit is held: holds of one task are created one at a time, so a burst is
    // neither let past the limit nor refused while there is room.
    expect(refused.length).toBe(4);
    for (const r of refused) {
      expect(r.status).toBe(429);
      expect(r.json).toMatchObject({ error: "hold_limit" });
      expect(String(r.json?.reason)).toMatch(/already has 2 requests waiting/);
    }
    expect(await h.t.db.approval.count({ where: { taskId: flood.taskId, status: "pending" } })).toBe(2);
    const quiet = send(calm.token, deleteVolume("calm"));
    const [held] = await pendingFor(calm.agentId);
    const listed = await listApprovals(h.t.db, approver.actor, { state: "pending", limit: 3 });
    expect(listed.map((a) => a.id)).toContain(held!.id);
    await decideApproval(h.t.db, approver.actor, held!.id, "approve");
    expect((await quiet).status).toBe(200);
    await Promise.all(attempts);
    expect(railway.hits.length).toBe(before + 1);
  }, 30_000);

  it("a task's holds arriving at several workers at once stop at the limit together, counted in the database", async () => {
    const { taskId, agentId } = await h.newTask(POLICY);
    // Two more workers on the same database (the worker's own role), each with the same limit.
    const db = createPrismaClient(h.t.workerUrl, 8);
    const log = createLogger("hold-limit-test", "silent");
    const gates = [new PostgresHoldGate(db, h.t.workerUrl, log, 30_000, { maxPendingPerTask: 3 }), new PostgresHoldGate(db, h.t.workerUrl, log, 30_000, { maxPendingPerTask: 3 })];
    try {
      const task = await h.t.db.task.findUniqueOrThrow({ where: { id: taskId } });
      const auth = { taskId, agentId, jti: null, via: "sandbox", token: null, task: { ...task, expiresAt: task.expiresAt }, scope: null } as unknown as AuthenticatedTask;
      const canonical = canonicalizeRequest({ method: "POST", url: `http://${RAILWAY}:${railway.port}/graphql/v2`, headers: { "content-type": "application/json" } });
      if (!canonical.ok) throw new Error(canonical.reason);
      const actions = [{ service: "railway", environment: "staging", resource: "vol_staging", operation: "volumeDelete", effect: "irreversible" as const }];
      const opened = await Promise.all(
        Array.from({ length: 12 }, (_, i) => gates[i % 2]!.open!({ auth, request: { ...canonical.request, body: new TextEncoder().encode(`{"n":${i}}`) }, actions, reason: "held", eventId: `e-${i}` })),
      );
      expect(opened.filter((o) => o.outcome === "opened")).toHaveLength(3);
      expect(opened.filter((o) => o.outcome === "limited")).toHaveLength(9);
      expect(await h.t.db.approval.count({ where: { taskId, status: "pending" } })).toBe(3);
    } finally {
      await db.$disconnect();
    }
  });
  // A restarted worker's holds carry its predecessor's holder id. When PostgreSQL was away as it
  // started, the cancellation of what the predecessor left was retried every 5 s, and a retry after
  // the database came back cancelled the holds the new run had opened meanwhile as well.
  it("a worker that could not cancel its predecessor's holds at start cancels them before recording its own, and never its own", async () => {
    const { taskId, agentId } = await h.newTask(POLICY);
    const task = await h.t.db.task.findUniqueOrThrow({ where: { id: taskId } });
    const auth = { taskId, agentId, jti: null, via: "sandbox", token: null, task: { ...task, expiresAt: task.expiresAt }, scope: null } as unknown as AuthenticatedTask;
    const canonical = canonicalizeRequest({ method: "POST", url: `http://${RAILWAY}:${railway.port}/graphql/v2`, headers: { "content-type": "application/json" } });
    if (!canonical.ok) throw new Error(canonical.reason);
    const actions = [{ service: "railway", environment: "staging", resource: "vol_staging", operation: "volumeDelete", effect: "irreversible" as const }];
    const input = (n: number) => ({ auth, request: { ...canonical.request, body: new TextEncoder().encode(`{"n":${n}}`) }, actions, reason: "held", eventId: `restart-${n}` });
    const holder = `worker-log-${taskId}`;
    const db = createPrismaClient(h.t.workerUrl, 8);
    const log = createLogger("hold-restart-test", "silent");
    // What the killed predecessor left: a blocking hold of this holder, still pending.
    const seeding = new PostgresHoldGate(db, h.t.workerUrl, log, 30_000);
    const seeded = await seeding.open!(input(1));
    if (seeded.outcome !== "opened") throw new Error("the predecessor's hold was not recorded");
    await h.t.adminDb().approval.update({ where: { id: seeded.approvalId }, data: { heldBy: holder, pollMode: false } });
    const gate = new PostgresHoldGate(db, h.t.workerUrl, log, 30_000, { holder });
    const outage = new DatabaseOutage(h.t.adminUrl);
    try {
      await outage.begin();
      try {
        await gate.start();
      } finally {
        await outage.end();
      }
      expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: seeded.approvalId } })).status).toBe("pending");
      // Back, and at once (before the 5 s retry) this run holds a request of its own.
      const holding = gate.hold(input(2));
      const fresh = await waitFor(() => h.t.db.approval.findFirst({ where: { taskId, heldBy: holder, id: { not: seeded.approvalId } } }), 30_000, "the new run's hold");
      expect(await h.t.db.approval.findUniqueOrThrow({ where: { id: seeded.approvalId } })).toMatchObject({ status: "cancelled", cancelReason: "worker_stopped" });
      // Past the retry: the new run's hold still waits for a person.
      await new Promise((r) => setTimeout(r, 6500));
      expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: fresh.id } })).status).toBe("pending");
      const approver = await makeUser(h.t.db, "approver");
      await decideApproval(h.t.db, approver.actor, fresh.id, "deny", "after the restart");
      expect((await holding).outcome).toBe("denied");
      const cancelled = await h.t.db.auditEvent.findMany({ where: { type: "approval.cancelled", taskId } });
      expect(cancelled.map((e) => (e.data as { approvalId?: string }).approvalId)).toEqual([seeded.approvalId]);
    } finally {
      await gate.close();
      await seeding.close();
      await db.$disconnect();
    }
  }, 60_000);
});
