import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setInventoryYaml } from "@/lib/services/inventory";
import { deleteCustomService, saveCustomService } from "@/lib/services/services";
import { simulateRequest, updateTaskPolicy } from "@/lib/tasks/policy";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

describe("custom services, the inventory and task policies", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("saves a custom service, refuses one claiming a host another claims, and refuses non-admins", async () => {
    const admin = await makeUser(t.db, "admin");
    const approver = await makeUser(t.db, "approver");
    await saveCustomService(t.db, admin.actor, "id: billing\nhosts: [billing.example.com]\nprotocol: rest\n");
    await expect(saveCustomService(t.db, admin.actor, "id: other\nhosts: [billing.example.com]\nprotocol: rest\n")).rejects.toThrow(/claimed by both/);
    await expect(saveCustomService(t.db, admin.actor, "id: x\nhosts: [a.example.com]\nprotocol: rest\nsurprise: true\n")).rejects.toThrow(/not valid/);
    await expect(saveCustomService(t.db, approver.actor, "id: y\nhosts: [y.example.com]\nprotocol: rest\n")).rejects.toMatchObject({ code: "FORBIDDEN" });
    await deleteCustomService(t.db, admin.actor, "billing");
    expect(await t.db.service.count()).toBe(0);
  });

  it("simulates with the stored services and inventory: staging is staging, everything else production", async () => {
    const admin = await makeUser(t.db, "admin");
    await setInventoryYaml(t.db, admin.actor, "entries:\n  - environment: staging\n    service: railway\n    resources: [vol_staging]\n");
    const policyYaml = "unlisted: deny\nrules:\n  - service: railway\n    environments: [staging]\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n";
    const sim = (volume: string) =>
      simulateRequest(t.db, admin.actor, { policyYaml, method: "POST", url: "https://backboard.railway.com/graphql/v2", body: JSON.stringify({ query: `mutation { volumeDelete(volumeId: "${volume}") }` }) });
    expect(await sim("vol_staging")).toMatchObject({ decision: "allow" });
    const prod = await sim("vol_prod");
    expect(prod).toMatchObject({ decision: "deny" });
    expect((prod as { actions: Array<{ environment: string }> }).actions[0]?.environment).toBe("production");
    await expect(setInventoryYaml(t.db, admin.actor, "entries: [ { nope: 1 } ]")).rejects.toThrow(/not valid/);
  });

  it("updates an active task's policy with a new version and an audit event; refuses invalid YAML and ended tasks", async () => {
    const admin = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("p"), ownerId: admin.user.id } });
    const task = await t.db.task.create({ data: { agentId: agent.id, purpose: "p", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 60_000) } });
    expect(await updateTaskPolicy(t.db, admin.actor, task.id, "unlisted: hold\nrules: []\n")).toEqual({ policyVersion: 2, cancelledApprovals: 0 });
    await expect(updateTaskPolicy(t.db, admin.actor, task.id, "rules: [ { service: x, effects: [boom] } ]")).rejects.toThrow(/not valid/);
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "task.policy_changed", taskId: task.id } });
    expect(event.data).toMatchObject({ fromVersion: 1, toVersion: 2 });
    await t.db.task.update({ where: { id: task.id }, data: { status: "ended" } });
    await expect(updateTaskPolicy(t.db, admin.actor, task.id, "rules: []\n")).rejects.toThrow(/active task/);
  });
});
