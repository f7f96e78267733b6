import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticateApiKey, createApiKey, revokeApiKey } from "@/lib/apikeys";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { updateApprovalSettings } from "@/lib/approvals/settings";
import type { Actor } from "@/lib/auth/actor";
import { setUserDisabled } from "@/lib/users/users";
import { makeUser, unique } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const RAILWAY = "backboard.railway.com";
const POLICY = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n";
const DELETE = JSON.stringify({ query: 'mutation { volumeDelete(volumeId: "vol_staging") }' });
const HOLD_TIMEOUT_MS = 20_000;

/**
 * An approval given through an API key is recorded as the key creator's. A key found stolen is
 * revoked precisely so that what it did does not take effect: what it approved (a 202 grant
 * waiting for the agent's retry) or voted for (an N-of-M request still held) must release
 * nothing once the key is revoked. What its creator approved through the dashboard stands, and
 * used approvals are history.
 */
describe("an API key revoked between its approval and the approval's use", () => {
  let h: ProxyHarness;
  let railway: Upstream;
  const send = (token: string, headers: Record<string, string> = {}) =>
    viaProxy(h.proxyPort, `http://${RAILWAY}:${railway.port}/graphql/v2`, { token, headers: { "content-type": "application/json", ...headers }, body: DELETE });

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

  /** A person who may approve, one of their API keys, and the key's actor as the API sees it. */
  const approverWithKey = async () => {
    const person = await makeUser(h.t.db, "approver");
    const { apiKey, key } = await createApiKey(h.t.db, h.admin, { name: unique("k"), role: "approver" });
    // The key is the person's (createApiKey records the signed-in creator; the admin made it for them).
    await h.t.adminDb().apiKey.update({ where: { id: apiKey.id }, data: { createdById: person.user.id } });
    const keyActor = (await authenticateApiKey(h.t.db, key)) as Actor;
    expect(keyActor).toMatchObject({ kind: "api_key", apiKeyId: apiKey.id, createdById: person.user.id });
    return { person, apiKeyId: apiKey.id, keyActor };
  };

  /** A 202-and-poll grant approved by `actor`. */
  const grantApprovedBy = async (actor: Actor) => {
    const { token } = await h.newTask(POLICY);
    const held = await send(token, { prefer: "respond-async" });
    expect(held.status).toBe(202);
    const { approvalId } = held.json as { approvalId: string };
    expect(await decideApproval(h.t.db, actor, approvalId, "approve")).toMatchObject({ status: "approved" });
    return { token, approvalId };
  };

  /** A blocking hold needing two approvers, with its pending approval. */
  const heldForTwo = async () => {
    await updateApprovalSettings(h.t.db, h.admin, { requiredByEffect: { irreversible: 2 } });
    try {
      const { token, taskId } = await h.newTask(POLICY);
      const response = send(token);
      for (let i = 0; i < 500; i++) {
        const approval = await h.t.db.approval.findFirst({ where: { taskId, status: "pending" } });
        if (approval) {
          expect(approval.requiredApprovals).toBe(2);
          return { response, approvalId: approval.id };
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error("no pending approval appeared");
    } finally {
      await updateApprovalSettings(h.t.db, h.admin, { requiredByEffect: {} });
    }
  };

  const cancellationOf = (approvalId: string) => h.t.db.auditEvent.findMany({ where: { type: "approval.cancelled", data: { path: ["approvalId"], equals: approvalId } } });

  it("a grant approved through the key is cancelled when the key is revoked, audited, and releases nothing", async () => {
    const { person, apiKeyId, keyActor } = await approverWithKey();
    const { token, approvalId } = await grantApprovedBy(keyActor);
    // The vote names the key it was cast through, and the person behind it.
    expect(await h.t.db.approvalVote.findMany({ where: { approvalId } })).toMatchObject([{ userId: person.user.id, apiKeyId }]);
    await revokeApiKey(h.t.db, h.admin, apiKeyId);
    const row = await h.t.db.approval.findUniqueOrThrow({ where: { id: approvalId } });
    expect(row, "the grant stood after its key was revoked").toMatchObject({ status: "cancelled", cancelReason: "approver_key_revoked" });
    const before = railway.hits.length;
    const retry = await send(token, { "bulkhead-approval": approvalId });
    expect(retry.status, JSON.stringify(retry.json)).toBe(403);
    expect(retry.json).toMatchObject({ error: "approval_cancelled" });
    expect(railway.hits.length).toBe(before);
    const cancelled = await cancellationOf(approvalId);
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]).toMatchObject({
      actorType: "user",
      actorId: h.admin.kind === "user" ? h.admin.userId : "",
      reason: "an API key through which it was approved was revoked before it was used",
      data: { approvalId, cause: "approver_key_revoked" },
    });
    const revoked = await h.t.db.auditEvent.findFirstOrThrow({ where: { type: "api_key.revoked", data: { path: ["apiKeyId"], equals: apiKeyId } } });
    expect(revoked.data).toMatchObject({ cancelledApprovals: 1 });
    // Revoking again changes nothing and cancels nothing more.
    await revokeApiKey(h.t.db, h.admin, apiKeyId);
    expect(await cancellationOf(approvalId)).toHaveLength(1);
  });

  it("a held request needing two approvers, voted for through the key: revoking the key answers the waiting agent at once and nothing is forwarded", async () => {
    const { apiKeyId, keyActor } = await approverWithKey();
    const before = railway.hits.length;
    const hold = await heldForTwo();
    expect(await decideApproval(h.t.db, keyActor, hold.approvalId, "approve")).toMatchObject({ status: "pending", approvals: 1, required: 2 });
    const revokedAt = performance.now();
    await revokeApiKey(h.t.db, h.admin, apiKeyId);
    const res = await hold.response;
    // Woken by the status change, not at the hold timeout.
    expect(performance.now() - revokedAt, "the agent waited for the hold timeout, not for the revocation").toBeLessThan(HOLD_TIMEOUT_MS / 4);
    expect(res.status, JSON.stringify(res.json)).toBe(403);
    expect(res.json).toMatchObject({ error: "approval_cancelled" });
    // Another approver's vote now completes nothing: the key's vote does not count.
    const other = await makeUser(h.t.db, "approver");
    await expect(decideApproval(h.t.db, other.actor, hold.approvalId, "approve")).rejects.toMatchObject({
      code: "CONFLICT",
      details: { status: "cancelled", reason: "approver_key_revoked" },
    });
    expect(await h.t.db.approval.findUniqueOrThrow({ where: { id: hold.approvalId } })).toMatchObject({ status: "cancelled", cancelReason: "approver_key_revoked" });
    expect(await cancellationOf(hold.approvalId)).toHaveLength(1);
    expect(railway.hits.length).toBe(before);
  });

  it("what the key's creator approved in the dashboard (a session, not the key) stands, and used approvals stay as they were", async () => {
    const { person, apiKeyId, keyActor } = await approverWithKey();
    const bySession = await grantApprovedBy(person.actor);
    const used = await grantApprovedBy(keyActor);
    expect((await send(used.token, { "bulkhead-approval": used.approvalId })).status).toBe(200);
    // A two-approver hold the person voted for in the dashboard stands too.
    const hold = await heldForTwo();
    expect(await decideApproval(h.t.db, person.actor, hold.approvalId, "approve")).toMatchObject({ status: "pending", approvals: 1 });
    await revokeApiKey(h.t.db, h.admin, apiKeyId);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: used.approvalId } })).status).toBe("consumed");
    expect(await cancellationOf(used.approvalId)).toHaveLength(0);
    expect((await h.t.db.approval.findUniqueOrThrow({ where: { id: bySession.approvalId } })).status).toBe("approved");
    const before = railway.hits.length;
    expect((await send(bySession.token, { "bulkhead-approval": bySession.approvalId })).status).toBe(200);
    expect(railway.hits.length).toBe(before + 1);
    const second = await makeUser(h.t.db, "approver");
    expect(await decideApproval(h.t.db, second.actor, hold.approvalId, "approve")).toMatchObject({ status: "approved", approvals: 2 });
    expect((await hold.response).status).toBe(200);
  });

  it("disabling the key's creator revokes the key and takes back both what it approved and what it voted for", async () => {
    const { person, apiKeyId, keyActor } = await approverWithKey();
    const grant = await grantApprovedBy(keyActor);
    const hold = await heldForTwo();
    expect(await decideApproval(h.t.db, keyActor, hold.approvalId, "approve")).toMatchObject({ status: "pending", approvals: 1 });
    const before = railway.hits.length;
    await setUserDisabled(h.t.db, h.admin, person.user.id, true);
    // The grant goes with its approver (approver_removed); the pending vote with the revoked key.
    expect(await h.t.db.approval.findUniqueOrThrow({ where: { id: grant.approvalId } })).toMatchObject({ status: "cancelled", cancelReason: "approver_removed" });
    expect(await h.t.db.approval.findUniqueOrThrow({ where: { id: hold.approvalId } })).toMatchObject({ status: "cancelled", cancelReason: "approver_key_revoked" });
    expect((await hold.response).status).toBe(403);
    expect((await send(grant.token, { "bulkhead-approval": grant.approvalId })).status).toBe(403);
    expect(railway.hits.length).toBe(before);
    const revoked = await h.t.db.auditEvent.findFirstOrThrow({ where: { type: "api_key.revoked", data: { path: ["apiKeyId"], equals: apiKeyId } } });
    expect(revoked.data).toMatchObject({ reason: "its creator was disabled", cancelledApprovals: 1 });
    const disabled = await h.t.db.auditEvent.findFirstOrThrow({ where: { type: "user.disabled", data: { path: ["userId"], equals: person.user.id } } });
    expect(disabled.data).toMatchObject({ cancelledApprovals: 1, revokedApiKeys: [apiKeyId] });
  });
});
