import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI_ACTOR } from "@/cli/database";
import { getApprovalCard } from "@/lib/approvals/card";
import type { Actor } from "@/lib/auth/actor";
import { loadTaskReport } from "@/lib/reports/task-report";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { createTask } from "@/lib/tasks/tasks";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * A task created with `bulkhead task create` (the README's way) has no creating user: its
 * approval cards and its report said "Task created by unknown" and "Version 1 ... by unknown",
 * as if nobody knew. They name the bulkhead CLI, as the task.created event records it.
 */
describe("who created a task and changed its policy, when it was the CLI", () => {
  let t: TestDatabase;
  let admin: Actor;
  let taskId: string;
  let approvalId: string;

  beforeAll(async () => {
    t = await createTestDatabase();
    const made = await makeUser(t.db, "admin");
    admin = made.actor;
    const agent = await t.db.agent.create({ data: { name: unique("cli-made"), ownerId: made.user.id } });
    const policy = "unlisted: deny\nrules:\n  - service: github\n    effects: [read, write]\n";
    taskId = (await createTask(t.db, CLI_ACTOR, { agentId: agent.id, purpose: "made from the CLI", policyYaml: policy, ttl: "30m" })).id;
    await updateTaskPolicy(t.db, CLI_ACTOR, taskId, "unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n");
    approvalId = (
      await t.adminDb().approval.create({
        data: { taskId, agentId: agent.id, requestDigest: unique("digest"), method: "DELETE", url: "https://api.github.com/repos/a/b", actions: [], reason: "test", expiresAt: new Date(Date.now() + 600_000) },
      })
    ).id;
  });
  afterAll(() => t.drop());

  it("the approval card names the bulkhead CLI as the task's creator", async () => {
    expect((await getApprovalCard(t.db, admin, approvalId)).task.createdBy).toBe("the bulkhead CLI");
  });

  it("the report names it for the task and for each policy version", async () => {
    const report = await loadTaskReport(t.db, admin, taskId, { checkpointKeys: null });
    expect(report.task.createdBy).toBe("the bulkhead CLI");
    expect(report.policyVersions.map((v) => v.by)).toEqual(["the bulkhead CLI", "the bulkhead CLI"]);
  });
});
