import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { REPORT_LIST_ROWS } from "@/lib/reports/limits";
import { renderTaskReportPdf } from "@/lib/reports/pdf";
import { loadTaskReport } from "@/lib/reports/task-report";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, retiredSigningKeyData, unique } from "../../support/factories";

/**
 * How many of a task's requests are held is the agent's choice, and every held request is a row
 * with a URL (up to the proxy's head limit). The report listed every one, on the page and in the
 * PDF, so a long task whose agent had thousands of requests held made whoever opened its report
 * load them all. It lists the first REPORT_LIST_ROWS and counts every one, by status.
 */
describe("a task's report with more held requests and tokens than it lists", () => {
  let t: TestDatabase;
  let auditor: Actor;
  let taskId: string;
  const held = REPORT_LIST_ROWS + 25;
  const tokens = REPORT_LIST_ROWS + 3;

  beforeAll(async () => {
    t = await createTestDatabase();
    const owner = await makeUser(t.db, "admin");
    auditor = (await makeUser(t.db, "auditor")).actor;
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
    const task = await t.db.task.create({ data: { agentId: agent.id, purpose: "many holds", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    taskId = task.id;
    const base = Date.now() - 3600_000;
    const admin = t.adminDb();
    await admin.approval.createMany({
      data: Array.from({ length: held }, (_, i) => ({
        taskId, agentId: agent.id, requestDigest: "d".repeat(64), method: "POST", url: `https://api.railway.test/graphql/${i}`, reason: "held",
        actions: [{ service: "railway", effect: "irreversible" }], status: i % 5 === 0 ? "denied" as const : "expired" as const,
        createdAt: new Date(base + i * 10), expiresAt: new Date(base + i * 10 + 60_000),
      })),
    });
    const key = await admin.signingKey.create({ data: await retiredSigningKeyData() });
    await admin.issuedToken.createMany({
      data: Array.from({ length: tokens }, (_, i) => ({ jti: unique(`jti${i}`), taskId, agentId: agent.id, kid: key.kid, issuedAt: new Date(base + i), expiresAt: new Date(base + i + 900_000) })),
    });
  });
  afterAll(() => t.drop());

  it("lists the first REPORT_LIST_ROWS, oldest first, and counts every one by status", async () => {
    const report = await loadTaskReport(t.db, auditor, taskId, { checkpointKeys: null });
    expect(report.approvals).toHaveLength(REPORT_LIST_ROWS);
    expect(report.approvals[0]!.url).toBe("https://api.railway.test/graphql/0");
    expect(report.approvals.at(-1)!.url).toBe(`https://api.railway.test/graphql/${REPORT_LIST_ROWS - 1}`);
    const denied = Math.ceil(held / 5);
    expect(report.approvalCounts).toEqual({ total: held, byStatus: [{ status: "expired", count: held - denied }, { status: "denied", count: denied }] });
    expect(report.tokens).toHaveLength(REPORT_LIST_ROWS);
    expect(report.tokenCount).toBe(tokens);
  });

  it("the PDF is drawn from that bounded model", async () => {
    const report = await loadTaskReport(t.db, auditor, taskId, { checkpointKeys: null });
    const pdf = await renderTaskReportPdf(report);
    expect(pdf.subarray(0, 5).toString("latin1")).toBe("%PDF-");
  });
});
