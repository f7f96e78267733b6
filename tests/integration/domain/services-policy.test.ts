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

  it("saves one of three custom services that claim one host at the same moment; the other is refused", async () => {
    const admin = await makeUser(t.db, "admin");
    for (let round = 0; round < 6; round++) {
      const host = `${unique("race")}.example.com`;
      const ids = [0, 1, 2].map((i) => `race${round}x${i}${unique("s").replace(/-/g, "")}`);
      const results = await Promise.allSettled(ids.map((id) => saveCustomService(t.db, admin.actor, `id: ${id}\nhosts: [${host}]\nprotocol: rest\n`)));
      // Each save read the others as committed before it began: all three passed the check, and the
      // stored registry was left conflicting (every custom service fell back to the built-ins).
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject({ code: "CONFLICT" });
      expect(await t.db.service.count({ where: { name: { in: ids } } })).toBe(1);
      await t.db.service.deleteMany({ where: { name: { in: ids } } });
    }
  });

  it("refuses a descriptor or an inventory that would expand past the alias limit or nest past the stack, as invalid input", async () => {
    const admin = await makeUser(t.db, "admin");
    // Each level refers to the one before ten times: 10^6 nodes from a few hundred bytes.
    const bomb = (head: string) => `${head}\nx0: &x0 [a, a, a, a, a, a, a, a, a, a]\n${[1, 2, 3, 4, 5, 6].map((i) => `x${i}: &x${i} [${Array(10).fill(`*x${i - 1}`).join(", ")}]`).join("\n")}\n`;
    const deep = (head: string) => `${head}\nx: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`;
    for (const yaml of [bomb("id: bomb\nhosts: [bomb.example.com]\nprotocol: rest"), deep("id: deep\nhosts: [deep.example.com]\nprotocol: rest")]) {
      await expect(saveCustomService(t.db, admin.actor, yaml)).rejects.toMatchObject({ code: "INVALID_INPUT" });
    }
    for (const yaml of [bomb("entries: []"), deep("entries: []")]) {
      await expect(setInventoryYaml(t.db, admin.actor, yaml)).rejects.toMatchObject({ code: "INVALID_INPUT" });
    }
    expect(await t.db.service.count({ where: { name: { in: ["bomb", "deep"] } } })).toBe(0);
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

  it("refuses to change the policy of a task whose time ran out before the expiry sweep marked it", async () => {
    const admin = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("p"), ownerId: admin.user.id } });
    // Still `active` in its row: workers judge expiry by the clock, and the sweep may not have run yet.
    const task = await t.db.task.create({ data: { agentId: agent.id, purpose: "p", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() - 1000) } });
    await expect(updateTaskPolicy(t.db, admin.actor, task.id, "unlisted: hold\nrules: []\n")).rejects.toMatchObject({ code: "CONFLICT" });
    expect(await t.db.task.findUniqueOrThrow({ where: { id: task.id }, select: { policyVersion: true, policyYaml: true } })).toEqual({ policyVersion: 1, policyYaml: "rules: []\n" });
    expect(await t.db.auditEvent.count({ where: { type: "task.policy_changed", taskId: task.id } })).toBe(0);
  });
});
