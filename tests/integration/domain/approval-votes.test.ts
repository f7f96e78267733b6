import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setApproverScope } from "@/lib/approvals/approver-scope";
import { decideApproval } from "@/lib/approvals/decide-approval";
import { authenticateApiKey, createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { setUserDisabled, setUserRole } from "@/lib/users/users";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * A multi-person approval (two votes for a destructive action) must be released by two people who
 * may still approve when it is released: a vote left behind by someone disabled, demoted or
 * narrowed since does not count.
 */
describe("quorum votes count only while their voters may still approve", () => {
  let t: TestDatabase;
  let admin: Actor;
  let agentId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    const made = await makeUser(t.db, "admin");
    admin = made.actor;
    agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId: made.user.id } })).id;
  });
  afterAll(() => t.drop());

  async function heldForTwo() {
    const task = await t.db.task.create({ data: { agentId, purpose: "votes", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    return t.adminDb().approval.create({
      data: {
        taskId: task.id, agentId, requestDigest: "d".repeat(64), method: "DELETE", url: "https://api.railway.test/projects/1", reason: "held",
        actions: [{ service: "railway", effect: "destructive" }], requiredApprovals: 2, expiresAt: new Date(Date.now() + 600_000),
      },
    });
  }

  const lastDecision = (approvalId: string) =>
    t.db.auditEvent.findFirstOrThrow({ where: { type: { in: ["approval.approved", "approval.vote"] }, data: { path: ["approvalId"], equals: approvalId } }, orderBy: { id: "desc" } });

  it.each([
    ["disabled", (userId: string) => setUserDisabled(t.db, admin, userId, true)],
    ["demoted to auditor", (userId: string) => setUserRole(t.db, admin, userId, "auditor")],
    ["narrowed to another service", (userId: string) => setApproverScope(t.db, admin, userId, { services: ["github"] })],
  ])("a vote from an approver since %s does not complete the quorum", async (what, change) => {
    const approval = await heldForTwo();
    const first = await makeUser(t.db, "approver");
    const second = await makeUser(t.db, "approver");
    expect(await decideApproval(t.db, first.actor, approval.id, "approve")).toMatchObject({ status: "pending", approvals: 1, required: 2 });
    await change(first.user.id);
    // The other approver's vote is now the only one that counts: still pending, nothing released.
    expect(await decideApproval(t.db, second.actor, approval.id, "approve"), what).toMatchObject({ status: "pending", approvals: 1, required: 2 });
    expect((await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
    const vote = await lastDecision(approval.id);
    expect(vote.type).toBe("approval.vote");
    expect(vote.data).toMatchObject({ approvals: 1, withdrawnVotes: [{ userId: first.user.id, reason: expect.any(String) }] });
    // A third approver who may still approve completes it; the audit names only counted voters.
    const third = await makeUser(t.db, "approver");
    expect(await decideApproval(t.db, third.actor, approval.id, "approve")).toMatchObject({ status: "approved", approvals: 2 });
    const approved = await lastDecision(approval.id);
    expect(approved.type).toBe("approval.approved");
    expect((approved.data as { approvers: string[] }).approvers.sort()).toEqual([second.user.id, third.user.id].sort());
  });

  it("a vote cast through an API key revoked since (by any route) does not complete the quorum; its creator's other votes are theirs", async () => {
    const approval = await heldForTwo();
    const first = await makeUser(t.db, "approver");
    const { apiKey, key } = await createApiKey(t.db, admin, { name: unique("k"), role: "approver" });
    await t.adminDb().apiKey.update({ where: { id: apiKey.id }, data: { createdById: first.user.id } });
    const keyActor = (await authenticateApiKey(t.db, key)) as Actor;
    expect(await decideApproval(t.db, keyActor, approval.id, "approve")).toMatchObject({ status: "pending", approvals: 1 });
    // Revoked outside revokeApiKey (which would cancel the approval outright): an operator's SQL.
    await t.adminDb().apiKey.update({ where: { id: apiKey.id }, data: { revokedAt: new Date() } });
    const second = await makeUser(t.db, "approver");
    expect(await decideApproval(t.db, second.actor, approval.id, "approve"), "the revoked key's vote still counted").toMatchObject({ status: "pending", approvals: 1, required: 2 });
    const vote = await lastDecision(approval.id);
    expect(vote.data).toMatchObject({ approvals: 1, withdrawnVotes: [{ userId: first.user.id, reason: "api_key_revoked" }] });
    // The person (active, still an approver) is not what was revoked: their session's votes elsewhere count.
    const other = await heldForTwo();
    await decideApproval(t.db, first.actor, other.id, "approve");
    expect(await decideApproval(t.db, second.actor, other.id, "approve")).toMatchObject({ status: "approved", approvals: 2 });
  });

  it("a vote from an approver who is still active still counts", async () => {
    const approval = await heldForTwo();
    const first = await makeUser(t.db, "approver");
    const second = await makeUser(t.db, "admin");
    await decideApproval(t.db, first.actor, approval.id, "approve");
    expect(await decideApproval(t.db, second.actor, approval.id, "approve")).toMatchObject({ status: "approved", approvals: 2 });
  });
});
