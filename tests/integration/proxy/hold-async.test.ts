import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const DELETE = JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' });

/**
 * 202-and-poll from the agent's side: the held request is answered at once, the status is polled
 * through the proxy, and the approval is redeemed once, only for the same request, only by the
 * same task; the grant never reaches the upstream.
 */
describe("202-and-poll: a held request answered at once, a one-use grant bound to its digest", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  const send = (token: string, headers: Record<string, string> = {}, body = DELETE) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json", ...headers }, body });
  const poll = (token: string, url: string) => viaProxy(h.proxyPort, url, { token });

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

  it("answers 202 with a status URL; the grant releases the same request once, and nothing else", async () => {
    const { token } = await h.newTask(POLICY);
    const other = await h.newTask(POLICY);
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const started = Date.now();
    const held = await send(token, { prefer: "respond-async" });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(held.status).toBe(202);
    const { approvalId, statusUrl, auditEventId } = held.json as { approvalId: string; statusUrl: string; auditEventId: string | null };
    expect(statusUrl).toBe(`http://bulkhead.hold/${approvalId}`);
    // The 202 names its audit event (the hold), as every other answer of Bulkhead's does.
    expect(auditEventId).toMatch(/^[0-9a-f-]{36}$/);
    let hold = null;
    for (let i = 0; i < 100 && !hold; i++) {
      hold = await h.t.db.auditEvent.findFirst({ where: { type: "proxy.hold", data: { path: ["eventId"], equals: auditEventId ?? "" } } });
      if (!hold) await new Promise((r) => setTimeout(r, 20));
    }
    expect(hold?.taskId).toBeTruthy();
    expect(railway.hits.length).toBe(before);

    const pending = await poll(token, statusUrl);
    expect(pending.status).toBe(200);
    expect(pending.json).toMatchObject({ approvalId, status: "pending" });
    // Another task cannot see it, nor use it.
    expect((await poll(other.token, statusUrl)).status).toBe(403);
    // Redeeming before a decision releases nothing.
    const early = await send(token, { "bulkhead-approval": approvalId });
    expect(early.status).toBe(403);
    expect(String(early.json?.reason)).toMatch(/still waiting/);

    await decideApproval(h.t.db, approver.actor, approvalId, "approve");
    expect((await poll(token, statusUrl)).json).toMatchObject({ status: "approved" });

    // A different body (or another task) with the same grant is refused, and does not use it up.
    const otherBody = await send(token, { "bulkhead-approval": approvalId }, JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") } # changed' }));
    expect(otherBody.status).toBe(403);
    expect(String(otherBody.json?.reason)).toMatch(/different request/);
    expect((await send(other.token, { "bulkhead-approval": approvalId })).status).toBe(403);
    expect(railway.hits.length).toBe(before);

    const ok = await send(token, { "bulkhead-approval": approvalId });
    expect(ok.status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
    expect(railway.hits.at(-1)!.headers["bulkhead-approval"]).toBeUndefined();
    expect((await poll(token, statusUrl)).json).toMatchObject({ status: "consumed" });

    const again = await send(token, { "bulkhead-approval": approvalId });
    expect(again.status).toBe(403);
    // Said as what it is: the grant was used, not a request that timed out.
    expect(again.json).toMatchObject({ error: "approval_used" });
    expect(railway.hits.length).toBe(before + 1);
  });

  it("the grant is bound to the request's other preferences: an approved dry run does not release the real write", async () => {
    const { token } = await h.newTask(POLICY);
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    // `Prefer` reaches the upstream: PostgREST reads tx=rollback as a dry run, resolution=merge-duplicates as an overwrite.
    const held = await send(token, { prefer: "respond-async, tx=rollback" });
    expect(held.status).toBe(202);
    const { approvalId } = held.json as { approvalId: string };
    await decideApproval(h.t.db, approver.actor, approvalId, "approve");
    for (const prefer of ["tx=commit", "resolution=merge-duplicates", "respond-async"]) {
      const r = await send(token, { "bulkhead-approval": approvalId, prefer });
      expect([r.status, String(r.json?.reason)], prefer).toEqual([403, expect.stringMatching(/different request/)]);
    }
    expect(railway.hits.length).toBe(before);
    // Bulkhead's own preferences (respond-async, wait) are not part of what was approved.
    const ok = await send(token, { "bulkhead-approval": approvalId, prefer: "tx=rollback, respond-async, wait=10" });
    expect(ok.status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
    // ...nor forwarded: the upstream gets its own preference only.
    expect(railway.hits.at(-1)!.headers.prefer).toBe("tx=rollback");
  });

  it("a denied or cancelled async hold says so on poll, and its grant releases nothing", async () => {
    const { token, taskId } = await h.newTask(POLICY);
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const a = (await send(token, { prefer: "respond-async" })).json as { approvalId: string; statusUrl: string };
    await decideApproval(h.t.db, approver.actor, a.approvalId, "deny", "no");
    expect((await poll(token, a.statusUrl)).json).toMatchObject({ status: "denied", why: "no" });
    expect((await send(token, { "bulkhead-approval": a.approvalId })).status).toBe(403);

    const b = (await send(token, { prefer: "respond-async" }, DELETE.replace("}", "} "))).json as { approvalId: string; statusUrl: string };
    await h.t.db.$transaction(async (tx) => {
      await tx.task.update({ where: { id: taskId }, data: { status: "ended", endedAt: new Date() } });
      const { cancelApprovals } = await import("@/lib/approvals/cancel");
      await cancelApprovals(tx, { taskIds: [taskId] }, "task_ended", h.admin);
    });
    await expect(decideApproval(h.t.db, approver.actor, b.approvalId, "approve")).rejects.toThrow(/cancelled/);
    expect(railway.hits.length).toBe(before);
  });

  it("malformed polls get 400; polls never reach an upstream", async () => {
    const { token } = await h.newTask(POLICY);
    const before = railway.hits.length;
    expect((await poll(token, "http://bulkhead.hold/not-an-id")).status).toBe(400);
    expect((await viaProxy(h.proxyPort, "http://bulkhead.hold/00000000-0000-4000-8000-000000000000", { token, method: "POST", body: "x" })).status).toBe(400);
    expect((await poll(token, "http://bulkhead.hold/00000000-0000-4000-8000-000000000000")).status).toBe(403);
    expect(railway.hits.length).toBe(before);
  });
});
