import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import type { Db } from "@/lib/db/client";
import { loadTaskReport } from "@/lib/reports/task-report";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

/**
 * A task's report lists its held requests by method, URL and outcome. It used to read every column
 * of every approval the task ever had, the held request's whole body included (up to
 * BULKHEAD_MAX_BODY_BYTES each): an agent that had many large requests held made the report of its
 * task load all of them into the dashboard's memory, whoever opened it (an auditor, a scheduled
 * download). What the database hands the report is checked here, through a query extension.
 */
describe("a task's report and the bodies of its held requests", () => {
  let t: TestDatabase;
  let auditor: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    const owner = await makeUser(t.db, "admin");
    auditor = (await makeUser(t.db, "auditor")).actor;
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
    const task = await t.db.task.create({ data: { agentId: agent.id, purpose: "large holds", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    const body = new Uint8Array(1024 * 1024).fill(0x41);
    for (let i = 0; i < 3; i++) {
      await t.adminDb().approval.create({
        data: {
          taskId: task.id, agentId: agent.id, requestDigest: "d".repeat(64), method: "POST", url: `https://api.railway.test/graphql/${i}`, reason: "held",
          actions: [{ service: "railway", effect: "irreversible" }], status: "denied", decidedAt: new Date(), expiresAt: new Date(Date.now() + 600_000),
          requestBody: body, bodySize: body.byteLength,
        },
      });
    }
    taskId = task.id;
  });
  let taskId: string;
  afterAll(() => t.drop());

  it("lists every held request without reading any held body from the database", async () => {
    const loaded: Array<Record<string, unknown>> = [];
    const watched = t.db.$extends({
      query: {
        approval: {
          async $allOperations({ args, query }) {
            const result = await query(args);
            for (const row of Array.isArray(result) ? result : [result]) if (row && typeof row === "object") loaded.push(row as Record<string, unknown>);
            return result;
          },
        },
      },
    }) as unknown as Db;
    const report = await loadTaskReport(watched, auditor, taskId, { checkpointKeys: null });
    expect(report.approvals.map((a) => a.url)).toEqual([0, 1, 2].map((i) => `https://api.railway.test/graphql/${i}`));
    expect(loaded.length).toBeGreaterThanOrEqual(3);
    for (const row of loaded) {
      expect(Object.keys(row)).not.toContain("requestBody");
      expect(Object.keys(row)).not.toContain("requestHeaders");
    }
  });
});
