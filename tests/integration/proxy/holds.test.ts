import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { setFourEyes } from "@/lib/approvals/settings";
import { AppError } from "@/lib/errors/app-error";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const DELETE_STAGING = { query: 'mutation { volumeDelete(volumeId: "vol_staging") }' };

describe("holds: irreversible actions wait for a person, bound to the exact request", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  let token: string;
  let agentId: string;

  const send = (body: unknown, t = token) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token: t, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const nextPending = async () => {
    for (let i = 0; i < 200; i++) {
      const a = await h.t.db.approval.findFirst({ where: { status: "pending", agentId }, orderBy: { createdAt: "desc" } });
      if (a) return a;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("no pending approval appeared");
  };

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
    ({ token, agentId } = await h.newTask("unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n"));
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  it("an approved hold is forwarded exactly once; a second use of the approval fails", async () => {
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const pending = send(DELETE_STAGING);
    const approval = await nextPending();
    expect(approval.reason).toMatch(/irreversible/);
    await decideApproval(h.t.db, approver.actor, approval.id, "approve");
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers["x-bulkhead-decision"]).toBe("approved");
    expect(railway.hits.length).toBe(before + 1);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("consumed");
    // Deciding again does nothing: it is no longer pending.
    await expect(decideApproval(h.t.db, approver.actor, approval.id, "approve")).rejects.toThrow(/already consumed/);
    expect(railway.hits.length).toBe(before + 1);
  });

  it("the held request keeps every header it will be forwarded with, for the card (not the agent's credentials)", async () => {
    const pending = viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, {
      token,
      headers: { "content-type": "application/json", "x-cascade": "delete-all-backups", prefer: "return=minimal", authorization: "Bearer agent-own-token" },
      body: JSON.stringify(DELETE_STAGING),
    });
    const approval = await nextPending();
    expect(approval.requestHeaders).toMatchObject({ "x-cascade": "delete-all-backups", prefer: "return=minimal", "content-type": "application/json" });
    expect(JSON.stringify(approval.requestHeaders)).not.toContain("agent-own-token");
    const approver = await makeUser(h.t.db, "approver");
    await decideApproval(h.t.db, approver.actor, approval.id, "deny");
    expect((await pending).status).toBe(403);
  });

  it("a denied hold gets 403 and reaches nothing", async () => {
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const pending = send(DELETE_STAGING);
    const approval = await nextPending();
    await decideApproval(h.t.db, approver.actor, approval.id, "deny", "not today \u001b[31mred\u202e");
    const res = await pending;
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: "approval_denied" });
    // The note reaches the agent as visible text: no terminal escape, no direction override.
    expect(String(res.json?.reason)).toContain("not today \\u001b[31mred\\u202e");
    expect(String(res.json?.reason)).not.toMatch(/[\u001b\u202e]/);
    expect(railway.hits.length).toBe(before);
  });

  it("a hold nobody decides times out to 403, and a late approval does nothing", async () => {
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const pending = send(DELETE_STAGING);
    const approval = await nextPending();
    const res = await pending; // the harness holds for 3 s
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ error: "approval_timeout" });
    await expect(decideApproval(h.t.db, approver.actor, approval.id, "approve")).rejects.toThrow(/can no longer be decided/);
    expect(railway.hits.length).toBe(before);
  }, 15_000);

  // The hold went on after its client left: approvers were asked about a request nobody waited
  // for, and approving it recorded `proxy.approved` (allow) for a request that was never sent.
  it("a held request whose client goes away is cancelled at once (client_gone): a late approval does nothing", async () => {
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const body = JSON.stringify(DELETE_STAGING);
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.on("error", () => undefined);
    socket.write(`POST http://${RAILWAY}:${railway.port}/graphql/v2 HTTP/1.1\r\nHost: ${RAILWAY}:${railway.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    const approval = await nextPending();
    socket.destroy();
    // Well before the harness's 3 s hold timeout.
    await expect.poll(async () => (await h.t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).cancelReason, { timeout: 1500 }).toBe("client_gone");
    expect(h.proxy.status().pendingHolds).toBe(0);
    await expect(decideApproval(h.t.db, approver.actor, approval.id, "approve")).rejects.toThrow(/cancelled/);
    // The decision event goes through the worker's batched audit writer, the cancellation is
    // written with the approval row: wait for the batch rather than reading once.
    const eventsOf = async () => {
      const events = await h.t.db.auditEvent.findMany({ where: { OR: [{ type: "approval.cancelled" }, { type: { startsWith: "proxy." } }] }, orderBy: { id: "asc" } });
      return events.filter((e) => (e.data as { approvalId?: string }).approvalId === approval.id);
    };
    await expect.poll(async () => (await eventsOf()).map((e) => [e.type, e.outcome]), { timeout: 5000 }).toEqual(expect.arrayContaining([["approval.cancelled", "cancel"], ["proxy.decision", "deny"]]));
    const mine = await eventsOf();
    expect(mine.find((e) => e.type === "proxy.decision")?.reason).toMatch(/stopped waiting/);
    expect(mine.some((e) => e.type === "proxy.approved")).toBe(false);
    expect(railway.hits.length).toBe(before);
  }, 15_000);

  it("two approvers at once: one wins, the request is forwarded once", async () => {
    const a = await makeUser(h.t.db, "approver");
    const b = await makeUser(h.t.db, "admin");
    const before = railway.hits.length;
    const pending = send(DELETE_STAGING);
    const approval = await nextPending();
    const results = await Promise.allSettled([decideApproval(h.t.db, a.actor, approval.id, "approve"), decideApproval(h.t.db, b.actor, approval.id, "approve")]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect((await pending).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
  });

  it("an approval is bound to its request: approving one held request does not release another", async () => {
    const approver = await makeUser(h.t.db, "approver");
    const before = railway.hits.length;
    const first = send(DELETE_STAGING);
    const approval1 = await nextPending();
    const second = send({ query: 'mutation { volumeDelete(volumeId: "vol_staging") } # another' });
    let approval2 = await nextPending();
    for (let i = 0; approval2.id === approval1.id && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 10));
      approval2 = await nextPending();
    }
    expect(approval2.id).not.toBe(approval1.id);
    expect(approval2.requestDigest).not.toBe(approval1.requestDigest);
    await decideApproval(h.t.db, approver.actor, approval1.id, "approve");
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(403); // times out
    expect(railway.hits.length).toBe(before + 1);
  }, 15_000);

  it("four-eyes: the agent's owner cannot approve its own agent's request; auditors cannot decide", async () => {
    await setFourEyes(h.t.db, h.admin, true);
    const auditor = await makeUser(h.t.db, "auditor");
    const pending = send(DELETE_STAGING);
    const approval = await nextPending();
    await expect(decideApproval(h.t.db, auditor.actor, approval.id, "approve")).rejects.toMatchObject({ code: "FORBIDDEN" });
    const err = await decideApproval(h.t.db, h.admin, approval.id, "approve").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(String((err as Error).message)).toMatch(/Four-eyes/);
    const other = await makeUser(h.t.db, "approver");
    await decideApproval(h.t.db, other.actor, approval.id, "approve");
    expect((await pending).status).toBe(200);
    await setFourEyes(h.t.db, h.admin, false);
  });
});
