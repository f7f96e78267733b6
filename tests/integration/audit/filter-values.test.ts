import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as agentsRoute from "@/app/api/v1/agents/route";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import * as listRoute from "@/app/api/v1/audit/route";
import { createApiKey } from "@/lib/apikeys";
import { auditPageInput } from "@/lib/audit/filter";
import { listTasks } from "@/lib/tasks/view";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

type Route = RouteHandler<Record<string, string>>;

/** A filter value that cannot mean anything is refused with a sentence, never dropped (which widens the answer). */
describe("bad filter values are refused, not ignored", () => {
  let t: TestDatabase;
  let key: string;
  const call = (handler: Route, path: string) =>
    callRoute(handler, path, { key });

  beforeAll(async () => {
    t = await routeDatabase();
    const admin = await makeUser(t.db, "admin");
    key = (await createApiKey(t.db, admin.actor, { name: "filters", role: "auditor" })).key;
    const agent = await t.db.agent.create({ data: { name: unique("a"), ownerId: admin.user.id } });
    await t.db.task.create({ data: { agentId: agent.id, purpose: "p", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
  });
  afterAll(() => t.drop());

  it.each(["bogus", "1", "00000000-0000-4000-8000-00000000000", "' OR 1=1"])("GET /api/v1/tasks?agent=%s is a 400, not every task", async (agent) => {
    const res = await call(tasksRoute.GET, `/api/v1/tasks?agent=${encodeURIComponent(agent)}`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(/agent must be an agent's id/);
  });

  it("a real agent id (any case) and no filter still list tasks; the page's parser refuses the same values", async () => {
    expect((await call(tasksRoute.GET, "/api/v1/tasks")).status).toBe(200);
    const admin = await makeUser(t.db, "admin");
    await expect(listTasks(t.db, admin.actor, { agentId: "bogus" })).rejects.toMatchObject({ code: "INVALID_INPUT" });
    expect(await listTasks(t.db, admin.actor, { agentId: "" })).not.toHaveLength(0);
  });

  it.each(["bogus", "ACTIVE", "active,suspended"])("GET /api/v1/agents?status=%s is a 400, not every agent", async (status) => {
    const res = await call(agentsRoute.GET, `/api/v1/agents?status=${encodeURIComponent(status)}`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(/status must be active or suspended/);
    expect((await call(agentsRoute.GET, "/api/v1/agents?status=active")).status).toBe(200);
  });

  it.each([
    ["limit=0x10", /limit must be a whole number from 1 to 500, in decimal digits/],
    ["limit=1e2", /limit must be a whole number/],
    ["limit=0", /limit must be at least 1/],
    ["limit=501", /limit must be at most 500/],
    ["limit=2.5", /limit must be a whole number/],
    ["cursor=5&after=2", /give cursor \(older events\) or after \(newer events\), not both/],
  ])("GET /api/v1/audit?%s is a 400 with a sentence", async (query, message) => {
    const res = await call(listRoute.GET, `/api/v1/audit?${query}`);
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(message);
  });

  it("the audit page's parser takes the same decisions", () => {
    expect(auditPageInput.safeParse({ limit: "0x10" }).success).toBe(false);
    expect(auditPageInput.safeParse({ cursor: "5", after: "2" }).success).toBe(false);
    expect(auditPageInput.parse({ limit: "20" }).limit).toBe(20);
    expect(auditPageInput.parse({}).limit).toBe(50);
  });
});
