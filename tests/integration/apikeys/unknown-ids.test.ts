import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as agentRoute from "@/app/api/v1/agents/[id]/route";
import * as suspendRoute from "@/app/api/v1/agents/[id]/suspend/route";
import * as reactivateRoute from "@/app/api/v1/agents/[id]/reactivate/route";
import * as taskRoute from "@/app/api/v1/tasks/[id]/route";
import * as taskEndRoute from "@/app/api/v1/tasks/[id]/end/route";
import * as tokensRoute from "@/app/api/v1/tasks/[id]/tokens/route";
import * as scopeRoute from "@/app/api/v1/tasks/[id]/scope/route";
import * as credentialRoute from "@/app/api/v1/credentials/[id]/route";
import * as bindingRoute from "@/app/api/v1/credentials/[id]/binding/route";
import * as rotateRoute from "@/app/api/v1/credentials/[id]/rotate/route";
import * as revokeRoute from "@/app/api/v1/tokens/[jti]/revoke/route";
import * as approverScopeRoute from "@/app/api/v1/users/[id]/approver-scope/route";
import * as sandboxesRoute from "@/app/api/v1/sandboxes/route";
import { createApiKey } from "@/lib/apikeys";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

// Each route reads its own parameter (id, or jti for tokens); both are given the same id.
type Handler = RouteHandler<{ id: string; jti: string }>;

/**
 * Every route that names a thing in its path answers 404 for an id that names nothing, well-formed
 * or not. `GET /api/v1/tasks/{id}/tokens` answered 200 `{"tokens":[]}` instead: a task that does
 * not exist looked like one with no tokens.
 */
describe("API routes given an id that names nothing", () => {
  let t: TestDatabase;
  let key: string;
  const ids = ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "ZZZZZZZZ-0000-4000-8000-000000000000", "x".repeat(3000)];

  beforeAll(async () => {
    t = await routeDatabase({ keys: true });
    const admin = await makeUser(t.db, "admin");
    key = (await createApiKey(t.db, admin.actor, { name: unique("ids"), role: "admin" })).key;
  });
  afterAll(() => t.drop());

  const call = async (handler: Handler, method: string, path: string, params: { id: string; jti: string }, body?: unknown) => {
    const response = await callRoute(handler, path, { method, key, body, headers: { "content-type": "application/json" }, params });
    return { status: response.status, body: (await response.json()) as { error?: string; message?: string } };
  };

  const routes: Array<[string, Handler, string, (id: string) => string, string, unknown?]> = [
    ["GET agent", agentRoute.GET, "GET", (id) => `/api/v1/agents/${id}`, "No such agent."],
    ["suspend agent", suspendRoute.POST, "POST", (id) => `/api/v1/agents/${id}/suspend`, "No such agent.", {}],
    ["reactivate agent", reactivateRoute.POST, "POST", (id) => `/api/v1/agents/${id}/reactivate`, "No such agent.", {}],
    ["GET task", taskRoute.GET, "GET", (id) => `/api/v1/tasks/${id}`, "No such task."],
    ["end task", taskEndRoute.POST, "POST", (id) => `/api/v1/tasks/${id}/end`, "No such task.", {}],
    ["list a task's tokens", tokensRoute.GET, "GET", (id) => `/api/v1/tasks/${id}/tokens`, "No such task."],
    ["mint a task's token", tokensRoute.POST, "POST", (id) => `/api/v1/tasks/${id}/tokens`, "No such task.", {}],
    ["a task's scope", scopeRoute.GET, "GET", (id) => `/api/v1/tasks/${id}/scope`, "No such task."],
    ["delete credential", credentialRoute.DELETE, "DELETE", (id) => `/api/v1/credentials/${id}`, "No such credential."],
    ["bind credential", bindingRoute.POST, "POST", (id) => `/api/v1/credentials/${id}/binding`, "No such credential.", { serviceId: "github", environments: ["*"] }],
    ["rotate credential", rotateRoute.POST, "POST", (id) => `/api/v1/credentials/${id}/rotate`, "No such credential.", { secret: "s" }],
    ["revoke token", revokeRoute.POST, "POST", (id) => `/api/v1/tokens/${id}/revoke`, "No such token.", {}],
    ["approver scope", approverScopeRoute.PUT, "PUT", (id) => `/api/v1/users/${id}/approver-scope`, "No such user.", { services: ["github"] }],
  ];

  it("registering a sandbox for a task that does not exist is a 404 naming taskId, not \"the task is not active\"", async () => {
    const unknown = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", { id: "", jti: "" }, { taskId: ids[0], address: "10.99.0.1" });
    expect(unknown).toEqual({ status: 404, body: expect.objectContaining({ error: "not_found", message: "No such task.", issues: [{ path: "taskId", message: "No such task." }] }) });
    const owner = await t.db.user.findFirstOrThrow();
    const agent = await t.db.agent.create({ data: { name: unique("ended"), ownerId: owner.id } });
    const ended = await t.db.task.create({ data: { agentId: agent.id, purpose: "ended", policyYaml: "rules: []\n", status: "ended", expiresAt: new Date(Date.now() + 60_000) } });
    const inactive = await call(sandboxesRoute.POST, "POST", "/api/v1/sandboxes", { id: "", jti: "" }, { taskId: ended.id, address: "10.99.0.2" });
    expect(inactive).toEqual({ status: 400, body: expect.objectContaining({ issues: [{ path: "taskId", message: "The task is not active (ended, expired, revoked, or its agent is suspended)." }] }) });
    expect(await t.db.sandbox.count()).toBe(0);
  });

  for (const [name, handler, method, path, message, body] of routes) {
    it(`${name}: 404 "${message}"`, async () => {
      for (const id of ids) {
        const answer = await call(handler, method, path(id), { id, jti: id }, body);
        expect(answer.status, `${method} ${path(id).slice(0, 80)}`).toBe(404);
        expect(answer.body).toMatchObject({ error: "not_found", message });
      }
    });
  }
});
