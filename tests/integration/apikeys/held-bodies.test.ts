import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as approvalRoute from "@/app/api/v1/approvals/[id]/route";
import { createApiKey } from "@/lib/apikeys";
import { getApprovalCard } from "@/lib/approvals/card";
import { setApproverScope } from "@/lib/approvals/approver-scope";
import type { Actor } from "@/lib/auth/actor";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { callRoute, routeDatabase } from "../../support/routes";

vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

/**
 * Who reads what a held request would send. The body is kept so that someone can judge it; it is
 * what the agent was about to send (customer records, a message, data in a migration). It used to
 * be on the card for every role with read access: an auditor, or a leaked auditor API key, read
 * every held body in full (`?body=full`). Now only the roles that may decide approvals read it
 * (admins; approvers within their scope, where anything else is a 404); others see its size.
 */
describe("held request bodies on the approval card", () => {
  let t: TestDatabase;
  let admin: Actor;
  let approvalId: string;
  let otherServiceApprovalId: string;
  const SECRET = "ssn=078-05-1120 card=4111111111111111";

  beforeAll(async () => {
    t = await routeDatabase();
    const owner = await makeUser(t.db, "admin");
    admin = owner.actor;
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
    const task = await t.db.task.create({ data: { agentId: agent.id, purpose: "bodies", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    const held = async (service: string) => {
      const body = Buffer.from(JSON.stringify({ note: SECRET, padding: "x".repeat(20_000) }));
      const a = await t.adminDb().approval.create({
        data: {
          taskId: task.id, agentId: agent.id, requestDigest: "d".repeat(64), method: "POST", url: `https://api.${service}.test/customers`, reason: "held",
          actions: [{ service, environment: "production", resource: "customers", operation: "customers.export", effect: "irreversible" }],
          expiresAt: new Date(Date.now() + 600_000), requestHeaders: { "content-type": "application/json" }, requestBody: body, bodySize: body.byteLength,
        },
      });
      return a.id;
    };
    approvalId = await held("github");
    otherServiceApprovalId = await held("railway");
  });
  afterAll(() => t.drop());

  const get = async (key: string, id: string, full = false) => {
    const res = await callRoute(approvalRoute.GET, `/api/v1/approvals/${id}${full ? "?body=full" : ""}`, { key, method: "GET", params: { id } });
    return { status: res.status, text: await res.text() };
  };

  it("an auditor, by session or API key, sees the request and the body's size, never the body", async () => {
    const auditor = await makeUser(t.db, "auditor");
    const card = await getApprovalCard(t.db, auditor.actor, approvalId, { fullBody: true });
    expect(card.request.body).toMatchObject({ format: "withheld", shown: 0, segments: [] });
    expect(card.request.body.size).toBeGreaterThan(20_000);
    expect(card.request.url).toBe("https://api.github.test/customers");
    expect(JSON.stringify(card)).not.toContain("078-05-1120");

    const { key } = await createApiKey(t.db, admin, { name: unique("auditor-key"), role: "auditor" });
    for (const full of [false, true]) {
      const res = await get(key, approvalId, full);
      expect(res.status).toBe(200);
      expect(res.text).not.toContain("078-05-1120");
      expect(JSON.parse(res.text).approval.request.body.format).toBe("withheld");
    }
  });

  it("an admin and an approver in scope read it; an approver out of scope gets 404", async () => {
    for (const role of ["admin", "approver"] as const) {
      const { key } = await createApiKey(t.db, admin, { name: unique(`${role}-key`), role });
      const res = await get(key, approvalId, true);
      expect(res.status).toBe(200);
      expect(res.text).toContain("078-05-1120");
    }
    const scoped = await makeUser(t.db, "approver");
    await setApproverScope(t.db, admin, scoped.user.id, { services: ["github"] });
    expect(JSON.stringify(await getApprovalCard(t.db, scoped.actor, approvalId))).toContain("078-05-1120");
    await expect(getApprovalCard(t.db, scoped.actor, otherServiceApprovalId)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
