import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTaskReport } from "@/lib/reports/task-report";
import { getInventoryYaml, setInventoryYaml } from "@/lib/services/inventory";
import { saveCustomService } from "@/lib/services/services";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { createTask } from "@/lib/tasks/tasks";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * A browser submits a textarea with \r\n line ends (and Windows editors save files that way). The
 * YAML documents people type are stored with \n whichever way they came, so that what is kept,
 * audited, diffed and shown in reports is the same document as from the CLI.
 */
describe("YAML documents are stored with \\n line ends whatever the client sent", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  const crlf = (lines: string[]) => lines.join("\r\n") + "\r\n";
  const lf = (lines: string[]) => lines.join("\n") + "\n";
  const policyLines = ["mode: enforce", "unlisted: deny", "rules:", "  - id: github-read", "    service: github", "    effects: [read]"];

  it("a task's policy, at creation and when replaced, and the report shows it without escaped carriage returns", async () => {
    const admin = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("crlf"), ownerId: admin.user.id } });
    const task = await createTask(t.db, admin.actor, { agentId: agent.id, purpose: "line ends", policyYaml: crlf(policyLines), ttl: "30m" });
    expect((await t.db.task.findUniqueOrThrow({ where: { id: task.id } })).policyYaml).toBe(lf(policyLines));

    // The same policy typed again in the editor: the stored text and the audited before/after agree line by line.
    const changed = [...policyLines.slice(0, 5), "    effects: [read]", "  - id: github-write", "    service: github", "    effects: [write]"];
    await updateTaskPolicy(t.db, admin.actor, task.id, changed.join("\r") + "\r");
    expect((await t.db.task.findUniqueOrThrow({ where: { id: task.id } })).policyYaml).toBe(lf(changed));
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "task.policy_changed", taskId: task.id } });
    expect(event.data).toMatchObject({ before: lf(policyLines), after: lf(changed) });

    const auditor = (await makeUser(t.db, "auditor")).actor;
    const report = await loadTaskReport(t.db, auditor, task.id, { checkpointKeys: null });
    expect(report.policyVersions.map((v) => v.yaml)).toEqual([lf(policyLines), lf(changed)]);
    // Only the added rule differs, not every line.
    expect(report.policyVersions[1]!.diff!.filter((d) => d.op !== " ").map((d) => d.text)).toEqual(["  - id: github-write", "    service: github", "    effects: [write]"]);
  });

  it("a policy stored with \\r\\n before (an older version) is shown in the report with plain line ends", async () => {
    const admin = await makeUser(t.db, "admin");
    const agent = await t.db.agent.create({ data: { name: unique("crlf-old"), ownerId: admin.user.id } });
    const task = await t.db.task.create({ data: { agentId: agent.id, purpose: "stored before", policyYaml: crlf(policyLines), expiresAt: new Date(Date.now() + 60_000) } });
    const report = await loadTaskReport(t.db, (await makeUser(t.db, "auditor")).actor, task.id, { checkpointKeys: null });
    expect(report.policyVersions[0]!.yaml).toBe(lf(policyLines));
  });

  it("a custom service's descriptor and the environment inventory", async () => {
    const admin = await makeUser(t.db, "admin");
    const service = ["id: billing", "hosts: [billing.example.com]", "protocol: rest"];
    await saveCustomService(t.db, admin.actor, crlf(service));
    expect((await t.db.service.findUniqueOrThrow({ where: { name: "billing" } })).descriptorYaml).toBe(lf(service));
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "service.added" } });
    expect(event.data).toMatchObject({ descriptorYaml: lf(service) });

    const inventory = ["entries:", "  - environment: staging", "    hosts: [billing.example.com]"];
    await setInventoryYaml(t.db, admin.actor, crlf(inventory));
    expect(await getInventoryYaml(t.db)).toBe(lf(inventory));
  });
});
