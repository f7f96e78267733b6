import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { setApproverScope } from "@/lib/approvals/approver-scope";
import { setUserDisabled, setUserRole } from "@/lib/users/users";
import { makeUser } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const DELETE = JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' });

/**
 * An approved 202-and-poll grant waits for the agent's retry, for up to the hold timeout (hours,
 * if so configured). When the person who approved it is disabled (an account found compromised)
 * or loses the right to approve before the grant is used, what they approved must not be
 * released: the grant used to stay good until its deadline, so disabling an approver's account
 * left every approval it had just given to be spent.
 */
describe("an approver removed between the approval and its use", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  const send = (token: string, headers: Record<string, string> = {}) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json", ...headers }, body: DELETE });

  beforeAll(async () => {
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_HOLD_TIMEOUT_SECONDS: "60" } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    await h.t.db.setting.create({ data: { key: "inventory.yaml", value: "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n" } });
  });
  afterAll(async () => {
    await h.close();
    await railway.close();
  });

  const approvedGrant = async () => {
    const { token } = await h.newTask(POLICY);
    const held = await send(token, { prefer: "respond-async" });
    expect(held.status).toBe(202);
    const { approvalId } = held.json as { approvalId: string };
    const approver = await makeUser(h.t.db, "approver");
    await decideApproval(h.t.db, approver.actor, approvalId, "approve");
    return { token, approvalId, approver };
  };

  it.each([
    ["disabled", (userId: string) => setUserDisabled(h.t.db, h.admin, userId, true)],
    ["demoted to auditor", (userId: string) => setUserRole(h.t.db, h.admin, userId, "auditor")],
    ["narrowed to another service", (userId: string) => setApproverScope(h.t.db, h.admin, userId, { services: ["github"] })],
  ])("an approver %s: the unused grant is cancelled, audited, and releases nothing", async (_what, remove) => {
    const { token, approvalId, approver } = await approvedGrant();
    await remove(approver.user.id);
    const before = railway.hits.length;
    const retry = await send(token, { "bulkhead-approval": approvalId });
    expect(retry.status, JSON.stringify(retry.json)).toBe(403);
    expect(retry.json).toMatchObject({ error: "approval_cancelled" });
    expect(railway.hits.length).toBe(before);
    const row = await h.t.db.approval.findUniqueOrThrow({ where: { id: approvalId } });
    expect(row).toMatchObject({ status: "cancelled", cancelReason: "approver_removed" });
    const cancelled = await h.t.db.auditEvent.findFirst({ where: { type: "approval.cancelled", data: { path: ["approvalId"], equals: approvalId } } });
    expect(cancelled).toMatchObject({ actorType: "user", actorId: h.admin.kind === "user" ? h.admin.userId : "" });
  });

  it("an approval already used stays as it was, and another approver's grants are untouched", async () => {
    const used = await approvedGrant();
    expect((await send(used.token, { "bulkhead-approval": used.approvalId })).status).toBe(200);
    const kept = await approvedGrant();
    await setUserDisabled(h.t.db, h.admin, used.approver.user.id, true);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: used.approvalId } })).status).toBe("consumed");
    expect((await send(kept.token, { "bulkhead-approval": kept.approvalId })).status).toBe(200);
    // A scope that still covers the approval takes nothing away.
    const covered = await approvedGrant();
    await setApproverScope(h.t.db, h.admin, covered.approver.user.id, { services: ["railway"] });
    expect((await send(covered.token, { "bulkhead-approval": covered.approvalId })).status).toBe(200);
    // Promoting someone (approver to admin) takes nothing away.
    const promoted = await approvedGrant();
    await setUserRole(h.t.db, h.admin, promoted.approver.user.id, "admin");
    expect((await send(promoted.token, { "bulkhead-approval": promoted.approvalId })).status).toBe(200);
  });
});
