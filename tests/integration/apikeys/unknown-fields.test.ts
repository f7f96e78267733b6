import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as agentsRoute from "@/app/api/v1/agents/route";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import { createApiKey } from "@/lib/apikeys";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";

// next-auth cannot load outside Next's runtime; these requests carry an API key, not a session.
// Everything else (database included) is real.
vi.mock("@/lib/auth/current", async () => {
  const { AppError } = await import("@/lib/errors/app-error");
  return {
    requireActor: async () => {
      throw new AppError("UNAUTHENTICATED", "Sign in first.");
    },
  };
});

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
    const response = await handler(
      new Request(`http://127.0.0.1:3000${path}`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) }),
      { params: Promise.resolve({}) },
    );
    return { status: response.status, body: (await response.json()) as { issues?: Array<{ path: string; message: string }> } & Record<string, unknown> };
  };

  beforeAll(async () => {
    t = await createTestDatabase();
    process.env.BULKHEAD_DASHBOARD_DATABASE_URL = t.url; // getDb() in the handlers reads it on first use
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
});
