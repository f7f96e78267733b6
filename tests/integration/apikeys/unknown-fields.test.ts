import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as agentsRoute from "@/app/api/v1/agents/route";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import * as approvalsRoute from "@/app/api/v1/approvals/route";
import * as auditRoute from "@/app/api/v1/audit/route";
import * as meRoute from "@/app/api/v1/me/route";
import * as sandboxesRoute from "@/app/api/v1/sandboxes/route";
import { createApiKey } from "@/lib/apikeys";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

type Handler = (request: Request, segment: { params: Promise<Record<string, never>> }) => Promise<Response>;

/**
 * A field the route does not read is refused, naming it and the field it most likely meant: zod
 * dropped it, so `owner` for `ownerEmail` registered the agent with the default owner, and
 * `policy` for `policyYaml` created a task that denies everything, each with a 201.
 */
describe("API bodies with a field the route does not know", () => {
  let t: TestDatabase;
  let key: string;
  let ownerEmail: string;
  const post = async (handler: Handler, path: string, body: unknown) => {
    const response = await callRoute(handler, path, { method: "POST", key, body });
    return { status: response.status, body: (await response.json()) as { issues?: Array<{ path: string; message: string }> } & Record<string, unknown> };
  };

  beforeAll(async () => {
    t = await routeDatabase();
    const admin = await makeUser(t.db, "admin");
    await makeUser(t.db, "admin"); // two admins: an agent's owner cannot be guessed
    ownerEmail = admin.user.email;
    key = (await createApiKey(t.db, admin.actor, { name: "unknown-fields", role: "admin" })).key;
  });
  afterAll(() => t.drop());

  it("POST /api/v1/agents with owner for ownerEmail is a 400 naming both, and registers nothing", async () => {
    const name = unique("typo");
    const refused = await post(agentsRoute.POST, "/api/v1/agents", { name, owner: ownerEmail });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_input");
    expect(refused.body.issues).toEqual([{ path: "owner", message: expect.stringMatching(/^owner is not a field of this request \(did you mean ownerEmail\?\); its fields are name, description, ownerEmail$/) }]);
    expect(await t.db.agent.count({ where: { name } })).toBe(0);

    const created = await post(agentsRoute.POST, "/api/v1/agents", { name, ownerEmail });
    expect(created.status).toBe(201);
  });

  it("POST /api/v1/tasks with policy for policyYaml is refused instead of creating a deny-all task", async () => {
    const agentId = (await t.db.agent.create({ data: { name: unique("tasks"), ownerId: (await t.db.user.findFirstOrThrow({ where: { email: ownerEmail } })).id } })).id;
    const refused = await post(tasksRoute.POST, "/api/v1/tasks", { agentId, purpose: "read issues", policy: "rules: []\n", tll: "30m" });
    expect(refused.status).toBe(400);
    expect(refused.body.issues?.map((i) => i.path)).toEqual(["policy", "tll"]);
    expect(refused.body.issues?.[0]?.message).toMatch(/did you mean policyYaml\?/);
    expect(refused.body.issues?.[1]?.message).toMatch(/did you mean ttl\?/);
    expect(await t.db.task.count({ where: { agentId } })).toBe(0);
  });

  it("refuses a body with a key twice, or two keys one in case or Unicode form, instead of keeping the last, and creates nothing", async () => {
    const first = unique("seen");
    const second = unique("kept");
    for (const [body, why] of [
      [`{"name":"${first}","name":"${second}"}`, /duplicate key "name"/],
      [`{"name":"${first}","description":"a","description":"b"}`, /duplicate key "description"/],
      [`{"name":"${first}","Name":"${second}"}`, /keys "name" and "Name" differ only in case/],
      [`{"name":"${first}","na\u200bme":"${second}"}`, /invisible character/],
    ] as const) {
      const refused = await post(agentsRoute.POST, "/api/v1/agents", body);
      expect(refused.status, body).toBe(400);
      expect(refused.body.error).toBe("invalid_input");
      expect(refused.body.message).toMatch(why);
    }
    expect(await t.db.agent.count({ where: { name: { in: [first, second] } } })).toBe(0);
  });

  it("refuses nesting deeper than any route reads with a 400", async () => {
    const refused = await post(agentsRoute.POST, "/api/v1/agents", `{"name":"${unique("deep")}","description":${"[".repeat(200)}"x"${"]".repeat(200)}}`);
    expect(refused.status).toBe(400);
    expect(refused.body.message).toMatch(/nesting too deep/);
  });

  const get = async (handler: Handler, pathAndQuery: string) => {
    const response = await callRoute(handler, pathAndQuery, { key });
    return { status: response.status, body: (await response.json()) as { issues?: Array<{ path: string; message: string }> } & Record<string, unknown> };
  };

  it("refuses a query parameter the route does not read instead of answering unfiltered", async () => {
    const typo = await get(approvalsRoute.GET, "/api/v1/approvals?status=pending");
    expect(typo.status).toBe(400);
    expect(typo.body.error).toBe("invalid_input");
    expect(typo.body.issues).toEqual([{ path: "status", message: "status is not a parameter of this request (did you mean state?); its parameters are state, task, agent, limit, cursor" }]);
    const agentId = await get(tasksRoute.GET, "/api/v1/tasks?agentId=00000000-0000-4000-8000-000000000000");
    expect(agentId.status).toBe(400);
    expect(agentId.body.issues?.[0]?.message).toMatch(/^agentId is not a parameter of this request \(did you mean agent\?\)/);
    const none = await get(meRoute.GET, "/api/v1/me?verbose=1");
    expect(none.status).toBe(400);
    expect(none.body.issues?.[0]?.message).toBe("verbose is not a parameter of this request; it takes no query parameters");
    // The parameters a route reads still work.
    expect((await get(approvalsRoute.GET, "/api/v1/approvals?state=pending&limit=5")).status).toBe(200);
  });

  it("refuses a single-valued query parameter given twice, and takes repeatable filters", async () => {
    const twice = await get(agentsRoute.GET, "/api/v1/agents?status=active&status=suspended");
    expect(twice.status).toBe(400);
    expect(twice.body.issues).toEqual([{ path: "status", message: "status is given 2 times; give it once" }]);
    expect((await get(auditRoute.GET, "/api/v1/audit?limit=1&limit=500")).status).toBe(400);
    expect((await get(auditRoute.GET, "/api/v1/audit?type=agent.created&type=task.created&limit=5")).status).toBe(200);
  });

  it("names the refused field in issues whichever check refused it: validation, a filter, or a taken name", async () => {
    const name = unique("taken");
    expect((await post(agentsRoute.POST, "/api/v1/agents", { name })).status).toBe(201);
    const taken = await post(agentsRoute.POST, "/api/v1/agents", { name });
    expect(taken.status).toBe(409);
    expect(taken.body).toMatchObject({ error: "conflict", issues: [{ path: "name", message: `An agent named ${name} already exists.` }] });
    const owner = await post(agentsRoute.POST, "/api/v1/agents", { name: unique("owner"), ownerEmail: "nobody@example.test" });
    expect(owner.status).toBe(400);
    expect(owner.body.issues).toEqual([{ path: "ownerEmail", message: "No active user with email nobody@example.test. An agent's owner is a Bulkhead user: see the Users page or `bulkhead user list`." }]);
    const filter = await get(tasksRoute.GET, "/api/v1/tasks?agent=abc");
    expect(filter.status).toBe(400);
    expect(filter.body.issues).toEqual([{ path: "agent", message: expect.stringMatching(/^agent must be an agent's id/) }]);
    const invalid = await post(agentsRoute.POST, "/api/v1/agents", { name: "" });
    expect(invalid.body.issues?.[0]?.path).toBe("name");
  });

  it("takes a list's limit in decimal digits only, as the audit log does", async () => {
    for (const limit of ["0x10", "1e2", "", "0", "-1", "201", "2.5", "99999999999999999999"]) {
      const refused = await get(approvalsRoute.GET, `/api/v1/approvals?limit=${limit}`);
      expect(refused.status, limit).toBe(400);
      expect(refused.body.issues?.[0], limit).toMatchObject({ path: "limit", message: expect.stringMatching(/^limit must be (a whole number from 1 to 200, in decimal digits|at least 1|at most 200)$/) });
    }
    expect((await get(approvalsRoute.GET, "/api/v1/approvals?limit=200")).status).toBe(200);
    expect((await get(approvalsRoute.GET, "/api/v1/approvals")).status).toBe(200);
  });

  it("refuses a sandbox filter that is not one instead of listing every sandbox", async () => {
    const badTask = await get(sandboxesRoute.GET, "/api/v1/sandboxes?task=not-a-uuid");
    expect(badTask.status).toBe(400);
    expect(badTask.body.issues).toEqual([{ path: "task", message: "task must be a task's id (a uuid)." }]);
    for (const state of ["ALL", "stopped", "1"]) {
      const bad = await get(sandboxesRoute.GET, `/api/v1/sandboxes?state=${state}`);
      expect(bad.status, state).toBe(400);
      expect(bad.body.issues).toEqual([{ path: "state", message: "state must be live or all." }]);
    }
    for (const ok of ["", "?state=all", "?state=live", "?task=00000000-0000-4000-8000-000000000000"]) expect((await get(sandboxesRoute.GET, `/api/v1/sandboxes${ok}`)).status, ok).toBe(200);
  });
});
