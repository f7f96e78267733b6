import { fork } from "node:child_process";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import type http from "node:http";
import { superviseWorker, WORKER_STOP_TIMEOUT_MS, type WorkerSupervisor } from "@/cli/runtime/supervise";
import { makeUser } from "../../support/factories";
import { DatabaseOutage } from "../audit/helpers";
import { waitFor } from "../../support/log-capture";
import { viaProxy, type ProxyResponse } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";
import { prepareWorkerEnvironment, type WorkerEnvironment } from "../../support/worker-process";

/** Deletes are held for a person; the task may read. */
const HOLD_DELETES = "unlisted: deny\nrules:\n  - service: local\n    effects: [read]\n  - service: local\n    effects: [destructive]\n    decision: hold\n";

/**
 * A held request lives in the worker process that holds it. When that process stops (Ctrl-C,
 * SIGTERM from the launcher) or dies, the request can no longer be released by anyone: the agent
 * must get an answer, the approval must not stay pending for a person to grant, and both must be
 * in the audit. Runs the launcher's supervisor around the real `bulkhead worker`.
 */
describe("held requests when the worker stops", () => {
  let up: Upstream;
  let w: WorkerEnvironment;
  let supervisor: WorkerSupervisor | null = null;
  const said: string[] = [];

  const supervise = async () => {
    supervisor = superviseWorker({
      spawn: (env) => fork(path.resolve("bin/bulkhead.mjs"), ["worker"], { env: { ...w.env, ...env }, stdio: ["ignore", "ignore", "inherit", "ipc"] }),
      say: (line) => said.push(line),
      onGiveUp: (reason) => said.push(`gave up: ${reason}`),
      backoff: { initialMs: 200, maxMs: 2000, stableAfterMs: 60_000 },
      // As the launcher runs it.
      stopTimeoutMs: WORKER_STOP_TIMEOUT_MS,
    });
    await supervisor.ready();
    await waitFor(async () => ((await w.readyz()).status === 200 ? true : null), 90_000, "the worker");
  };
  const pendingApproval = () =>
    waitFor(async () => w.t.db.approval.findFirst({ where: { status: "pending" }, orderBy: { createdAt: "desc" } }), 30_000, "the held request's approval");
  const held = () => {
    const answer: Promise<ProxyResponse | Error> = viaProxy(w.proxyPort, `http://127.0.0.1:${up.port}/volumes/v1`, { token: w.token, method: "DELETE" }).catch((e: Error) => e);
    return answer;
  };

  /** Answers to /slow are never sent (until the test ends). */
  const hanging: http.ServerResponse[] = [];

  beforeAll(async () => {
    up = await startHttpUpstream((hit, res) => {
      if (hit.url.startsWith("/slow")) return void hanging.push(res);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ok: true }));
    });
    // Holds wait far longer than any shutdown may take.
    w = await prepareWorkerEnvironment(up.port, { BULKHEAD_HOLD_TIMEOUT_SECONDS: "600" }, { policyYaml: HOLD_DELETES });
  }, 120_000);
  afterEach(async () => {
    await supervisor?.stop();
    supervisor = null;
  });
  afterAll(async () => {
    for (const res of hanging) res.destroy();
    await w.close();
    await up.close();
  });

  it("on SIGTERM answers the held request, cancels its approval and audits both, and stops without being killed", async () => {
    await supervise();
    const worker = supervisor!.child()!;
    const answer = held();
    const approval = await pendingApproval();
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => worker.once("exit", (code, signal) => resolve({ code, signal })));
    const stopping = Date.now();
    await supervisor!.stop();
    const exit = await exited;
    // Stopped on its own, well inside the launcher's 10 s before SIGKILL: a held request is not waited out.
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - stopping).toBeLessThan(9_000);

    const res = await answer;
    expect(res).not.toBeInstanceOf(Error);
    expect((res as ProxyResponse).status).toBe(403);
    expect((res as ProxyResponse).json).toMatchObject({ error: "approval_cancelled", approvalId: approval.id });
    expect(String((res as ProxyResponse).json?.reason)).toMatch(/proxy worker holding the request stopped/);

    const row = await w.t.db.approval.findUniqueOrThrow({ where: { id: approval.id } });
    expect(row).toMatchObject({ status: "cancelled", cancelReason: "worker_stopped" });
    const approver = await makeUser(w.t.db, "approver");
    await expect(decideApproval(w.t.db, approver.actor, approval.id, "approve")).rejects.toThrow(/cancelled/);

    // Both in the audit: the cancellation, and the refusal the agent got (shipped before the worker exited).
    const events = await w.t.db.auditEvent.findMany({ where: { OR: [{ type: "approval.cancelled" }, { type: "proxy.decision" }] }, orderBy: { id: "asc" } });
    const mine = events.filter((e) => (e.data as { approvalId?: string }).approvalId === approval.id);
    expect(mine.map((e) => [e.type, e.outcome])).toEqual(expect.arrayContaining([["approval.cancelled", "cancel"], ["proxy.decision", "deny"]]));
    expect(up.hits.filter((h) => h.method === "DELETE")).toHaveLength(0);
  }, 180_000);

  it("a second SIGTERM while it stops (the process group's, then the launcher's) does not cut the stop short", async () => {
    await supervise();
    const worker = supervisor!.child()!;
    // A request in flight to an upstream that does not answer: the worker's stop waits for it.
    const answer = viaProxy(w.proxyPort, `http://127.0.0.1:${up.port}/slow-twice`, { token: w.token }).catch((e: Error) => e);
    await waitFor(() => (hanging.some((res) => res.req.url?.startsWith("/slow-twice")) ? true : null), 30_000, "the request to reach the upstream");
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => worker.once("exit", (code, signal) => resolve({ code, signal })));
    // As systemd's stop or `timeout` does: SIGTERM to every process of the group, then the
    // launcher, which got it too, sends the worker its own while the worker is stopping.
    worker.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    await supervisor!.stop();
    expect(await exited).toEqual({ code: 0, signal: null });
    await answer;
    const events = await w.t.db.auditEvent.findMany({ where: { type: { startsWith: "proxy." } }, orderBy: { id: "asc" } });
    expect(events.some((e) => String((e.data as { url?: string }).url ?? "").includes("/slow-twice"))).toBe(true);
  }, 180_000);

  it("after a SIGKILL, the restarted worker cancels what its predecessor held (pending or approved meanwhile) and audits it; another worker's holds stay", async () => {
    await supervise();
    const first = supervisor!.child()!;
    const answer = held();
    const approval = await pendingApproval();
    expect(approval.heldBy).toEqual(expect.any(String));
    // A hold of another worker (another audit log) waiting at the same time.
    const other = await w.t.adminDb().approval.create({
      data: { ...approval, id: undefined, heldBy: "another-worker-log", createdAt: undefined, actions: approval.actions as object, requestHeaders: approval.requestHeaders as object },
    });
    first.kill("SIGKILL");
    // The agent's connection dies with the process; no answer could be given.
    expect(await answer).toBeInstanceOf(Error);
    // Between the crash and the restart someone approves the orphan: it must release nothing.
    const approver = await makeUser(w.t.db, "approver");
    await decideApproval(w.t.db, approver.actor, approval.id, "approve").catch(() => undefined);
    await waitFor(async () => (supervisor!.child() && supervisor!.child() !== first && (await w.readyz()).status === 200 ? true : null), 90_000, "the restarted worker");

    const row = await waitFor(async () => {
      const r = await w.t.db.approval.findUniqueOrThrow({ where: { id: approval.id } });
      return r.status === "cancelled" ? r : null;
    }, 30_000, "the left-behind approval's cancellation");
    expect(row.cancelReason).toBe("worker_stopped");
    await expect(decideApproval(w.t.db, approver.actor, approval.id, "approve")).rejects.toThrow(/cancelled|no longer be decided/);
    const cancelledEvents = await w.t.db.auditEvent.findMany({ where: { type: "approval.cancelled" } });
    expect(cancelledEvents.filter((e) => (e.data as { approvalId?: string }).approvalId === approval.id)).toHaveLength(1);
    expect((await w.t.db.approval.findUniqueOrThrow({ where: { id: other.id } })).status).toBe("pending");
    await w.t.adminDb().approval.update({ where: { id: other.id }, data: { status: "expired" } });
    expect(up.hits.filter((h) => h.method === "DELETE")).toHaveLength(0);
  }, 240_000);

  // A hold needs its approval row: while PostgreSQL was away the request failed after the pool's
  // timeout as a 502 internal_error, "the proxy failed to handle the request".
  it("while PostgreSQL is away a request that needs approval is refused as 503 approvals_unavailable, audited, nothing forwarded; holds work again once it is back", async () => {
    await supervise();
    const outage = new DatabaseOutage(w.t.adminUrl);
    await outage.begin();
    let res: ProxyResponse | Error;
    try {
      res = await held();
    } finally {
      await outage.end();
    }
    expect(res).not.toBeInstanceOf(Error);
    const refused = res as ProxyResponse;
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ error: "approvals_unavailable", kind: "unavailable" });
    expect(String(refused.json?.reason)).toMatch(/needs a person's approval.*nothing was forwarded/);
    expect(typeof refused.json?.auditEventId).toBe("string");
    // Recorded (in the worker's log first, shipped once PostgreSQL is back).
    const recorded = await waitFor(async () => w.t.db.auditEvent.findFirst({ where: { type: "proxy.rejected", outcome: "deny", reason: { contains: "approvals cannot be recorded" } } }), 60_000, "the refusal's audit event");
    expect(recorded.taskId).toEqual(expect.any(String));
    // Back: the next one is held as usual.
    const answer = held();
    const approval = await pendingApproval();
    const approver = await makeUser(w.t.db, "approver");
    await decideApproval(w.t.db, approver.actor, approval.id, "deny", "after the outage");
    expect(((await answer) as ProxyResponse).status).toBe(403);
    expect(up.hits.filter((h) => h.method === "DELETE")).toHaveLength(0);
  }, 180_000);

  // The worker's own shutdown waits up to 10 s for requests in flight, then ships its audit log
  // (up to 5 s); the launcher killed it 10 s after SIGTERM, in the middle of that.
  it("with a request in flight to an upstream that does not answer, the launcher lets the worker finish its own shutdown", async () => {
    await supervise();
    const worker = supervisor!.child()!;
    const answer = viaProxy(w.proxyPort, `http://127.0.0.1:${up.port}/slow`, { token: w.token }).catch((e: Error) => e);
    await waitFor(() => (hanging.length > 0 ? true : null), 30_000, "the request to reach the upstream");
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => worker.once("exit", (code, signal) => resolve({ code, signal })));
    await supervisor!.stop();
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(said.some((line) => /killing it/.test(line))).toBe(false);
    await answer;
    // Its decision and its ending were shipped on the way out.
    const events = await w.t.db.auditEvent.findMany({ where: { type: { startsWith: "proxy." } }, orderBy: { id: "asc" } });
    const slow = events.filter((e) => String((e.data as { url?: string }).url ?? "").includes("/slow"));
    expect(slow.length).toBeGreaterThan(0);
  }, 180_000);
});
