import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as tasksRoute from "@/app/api/v1/tasks/route";
import * as credentialsRoute from "@/app/api/v1/credentials/route";
import * as agentsRoute from "@/app/api/v1/agents/route";
import * as approvalSettingsRoute from "@/app/api/v1/settings/approvals/route";
import { createApiKey } from "@/lib/apikeys";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

type Handler = RouteHandler<Record<string, never>>;

/**
 * A value of the wrong JSON type is refused saying what it must be: the API answered with zod's
 * own wording ("Invalid input: expected boolean, received string"), a scope given as a list with
 * a number in it with a bare "Invalid input", and a refusal the schema raised twice (an empty
 * secret) was listed twice.
 */
describe("API bodies with values of the wrong type", () => {
  let t: TestDatabase;
  let key: string;
  let agentId: string;
  const send = async (handler: Handler, method: string, path: string, body: unknown) => {
    const response = await callRoute(handler, path, { method, key, body: JSON.stringify(body) });
    return { status: response.status, body: (await response.json()) as { issues?: Array<{ path: string; message: string }> } };
  };

  beforeAll(async () => {
    t = await routeDatabase({ keys: true });
    const admin = await makeUser(t.db, "admin");
    key = (await createApiKey(t.db, admin.actor, { name: unique("types"), role: "admin" })).key;
    agentId = (await t.db.agent.create({ data: { name: unique("types"), ownerId: admin.user.id } })).id;
  });
  afterAll(() => t.drop());

  it("names the type the field must have, in JSON's words", async () => {
    const fourEyes = await send(approvalSettingsRoute.PUT, "PUT", "/api/v1/settings/approvals", { fourEyes: "yes" });
    expect(fourEyes).toEqual({ status: 400, body: expect.objectContaining({ issues: [{ path: "fourEyes", message: "must be true or false, not a string" }] }) });

    const policy = await send(tasksRoute.POST, "POST", "/api/v1/tasks", { agentId, purpose: "typed policy", policyYaml: 5 });
    expect(policy.body.issues).toEqual([{ path: "policyYaml", message: "must be a string, not a number" }]);

    const scope = await send(tasksRoute.POST, "POST", "/api/v1/tasks", { agentId, purpose: "typed scope", scope: ["railway:staging:read", 5] });
    expect(scope.body.issues).toEqual([{ path: "scope", message: "matches none of its forms: must be a string, not an array; or item 1 must be a string, not a number" }]);

    const array = await send(tasksRoute.POST, "POST", "/api/v1/tasks", []);
    expect(array.body.issues).toEqual([{ path: "", message: "must be an object, not an array" }]);

    const missing = await send(approvalSettingsRoute.PUT, "PUT", "/api/v1/settings/approvals", { requiredByEffect: { write: null } });
    expect(missing.body.issues?.[0]?.message).not.toMatch(/Invalid input|received/);
    expect(await t.db.task.count({ where: { agentId } })).toBe(0);
  });

  it("a time to live of a fraction of seconds is told so, not that it is out of range", async () => {
    const fraction = await send(tasksRoute.POST, "POST", "/api/v1/tasks", { agentId, purpose: "fraction ttl", ttl: 900.5 });
    expect(fraction.status).toBe(400);
    expect(fraction.body.issues).toEqual([{ path: "ttl", message: "The time to live is a whole number of seconds (900.5 is not), between 60 and 28800; or a duration such as 15m." }]);
    const text = await send(tasksRoute.POST, "POST", "/api/v1/tasks", { agentId, purpose: "text ttl", ttl: "1h30m" });
    expect(text.body.issues?.[0]?.message).toMatch(/^The time to live "1h30m" is not a duration/);
    expect(await t.db.task.count({ where: { agentId } })).toBe(0);
  });

  it("says each refusal of a field once", async () => {
    const empty = await send(credentialsRoute.POST, "POST", "/api/v1/credentials", { name: unique("c"), host: "api.github.com", environments: ["*"], headerTemplate: "Authorization: Bearer {secret}", secret: "" });
    expect(empty.status).toBe(400);
    expect(empty.body.issues).toEqual([{ path: "secret", message: "Enter the secret." }]);
    expect(await t.db.credential.count()).toBe(0);
  });

  it("a body that is not UTF-8 is refused, not stored with its bytes replaced", async () => {
    const bytes = Buffer.concat([Buffer.from('{"name":"' + unique("utf8") + '","description":"caf'), Buffer.from([0xe9, 0x20, 0xff]), Buffer.from(' end"}')]);
    const before = await t.db.agent.count();
    const response = await callRoute(agentsRoute.POST as unknown as Handler, "/api/v1/agents", { method: "POST", key, body: new Uint8Array(bytes) });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { message: string }).message).toMatch(/not valid UTF-8/);
    expect(await t.db.agent.count()).toBe(before);
  });

  it("a compressed body, or one labelled another charset than UTF-8, is refused", async () => {
    const before = await t.db.agent.count();
    const body = JSON.stringify({ name: unique("enc"), description: "x" });
    for (const headers of [{ "content-encoding": "gzip" }, { "content-type": "application/json; charset=utf-16" }, { "content-type": "application/json; charset=latin1" }] as Array<Record<string, string>>) {
      const response = await callRoute(agentsRoute.POST as unknown as Handler, "/api/v1/agents", { method: "POST", key, body, headers });
      expect(response.status, JSON.stringify(headers)).toBe(400);
      expect(((await response.json()) as { message: string }).message).toMatch(/cannot be read/);
    }
    const ok = await callRoute(agentsRoute.POST as unknown as Handler, "/api/v1/agents", { method: "POST", key, body, headers: { "content-type": "application/json; charset=UTF-8" } });
    expect(ok.status).toBe(201);
    expect(await t.db.agent.count()).toBe(before + 1);
  });
});
