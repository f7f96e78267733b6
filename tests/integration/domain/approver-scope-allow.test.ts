import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { approveAndAllow, previewApproveAndAllow } from "@/lib/approvals/allow-rule";
import { setApproverScope } from "@/lib/approvals/approver-scope";
import { decideApproval } from "@/lib/approvals/decide-approval";
import type { Actor } from "@/lib/auth/actor";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * A scoped approver decides the held requests that touch their services, mixed ones included. But
 * "approve and allow for the rest of the task" writes a rule per action, and those rules then let
 * later requests through without anyone: for the actions of services outside the approver's
 * scope, requests the approver could not even see (404), let alone decide. The option is theirs
 * only when every action lies inside their scope.
 */
describe("approve-and-allow by a scoped approver", () => {
  let t: TestDatabase;
  let admin: Actor;
  let ownerId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    ownerId = a.user.id;
  });
  afterAll(() => t.drop());

  async function held(actions: Array<{ service: string; resource: string }>) {
    const agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId } })).id;
    const policyYaml = "unlisted: deny\nrules: []\n";
    const task = await t.db.task.create({ data: { agentId, purpose: "mixed", policyYaml, expiresAt: new Date(Date.now() + 3600_000) } });
    const approval = await t.adminDb().approval.create({
      data: {
        taskId: task.id, agentId, requestDigest: "d".repeat(64), method: "POST", url: "https://api.github.com/graphql", reason: "held",
        actions: actions.map((a) => ({ service: a.service, environment: "production", operation: a.service === "github" ? "repos.delete" : "volumeDelete", resource: a.resource, effect: "irreversible" })),
        expiresAt: new Date(Date.now() + 600_000),
      },
    });
    return { approval, task, agentId, policyYaml };
  }

  it("refuses to allow, for the rest of the task, actions of a service outside the approver's scope; nothing is decided or added", async () => {
    const approver = await makeUser(t.db, "approver");
    await setApproverScope(t.db, admin, approver.user.id, { services: ["github"] });
    const { approval, task, policyYaml } = await held([
      { service: "github", resource: "acme/app" },
      { service: "railway", resource: "vol_prod" },
    ]);

    // The mixed request is the approver's to see (it touches github)...
    const preview = await previewApproveAndAllow(t.db, approver.actor, approval.id);
    expect(preview.possible).toBe(false);
    expect(preview.why).toMatch(/outside your approver scope/);
    // ...but not to turn into a standing rule for railway.
    await expect(approveAndAllow(t.db, approver.actor, approval.id)).rejects.toMatchObject({ code: "CONFLICT" });
    expect((await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).status).toBe("pending");
    const after = await t.db.task.findUniqueOrThrow({ where: { id: task.id } });
    expect(after.policyYaml).toBe(policyYaml);
    expect(after.policyVersion).toBe(1);
    expect(await t.db.auditEvent.count({ where: { type: "task.policy_changed", taskId: task.id } })).toBe(0);

    // Approving this one request stays theirs.
    expect(await decideApproval(t.db, approver.actor, approval.id, "approve")).toMatchObject({ status: "approved" });
  });

  it("still allows it when every action is in scope, by service or by agent, and for an approver without a scope", async () => {
    const byService = await makeUser(t.db, "approver");
    await setApproverScope(t.db, admin, byService.user.id, { services: ["github", "railway"] });
    const both = await held([
      { service: "github", resource: "acme/app" },
      { service: "railway", resource: "vol_prod" },
    ]);
    expect(await approveAndAllow(t.db, byService.actor, both.approval.id)).toMatchObject({ status: "approved", policyVersion: 2 });

    const mixed = await held([
      { service: "github", resource: "acme/app" },
      { service: "railway", resource: "vol_prod" },
    ]);
    const byAgent = await makeUser(t.db, "approver");
    await setApproverScope(t.db, admin, byAgent.user.id, { agents: [mixed.agentId] });
    expect(await approveAndAllow(t.db, byAgent.actor, mixed.approval.id)).toMatchObject({ status: "approved", policyVersion: 2 });

    const unscoped = await makeUser(t.db, "approver");
    const third = await held([
      { service: "github", resource: "acme/app" },
      { service: "railway", resource: "vol_prod" },
    ]);
    expect(await approveAndAllow(t.db, unscoped.actor, third.approval.id)).toMatchObject({ status: "approved", policyVersion: 2 });
  });
});
