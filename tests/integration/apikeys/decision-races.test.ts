import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as approveRoute from "@/app/api/v1/approvals/[id]/approve/route";
import * as denyRoute from "@/app/api/v1/approvals/[id]/deny/route";
import { createApiKey, revokeApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { setUserDisabled } from "@/lib/users/users";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

const ROUNDS = 10;

/**
 * The approval API with an API key, racing the key's revocation or its creator's disabling: a
 * decision is recorded only if it committed before the revocation, never after it.
 */
describe("approving through the API while the key is revoked", () => {
  let t: TestDatabase;
  let admin: Actor;
  let agentId: string;
  const post = (handler: RouteHandler<{ id: string }>, key: string, id: string) =>
    callRoute(handler, `/api/v1/approvals/${id}/x`, { method: "POST", key, headers: { "content-length": "0" }, params: { id } });

  beforeAll(async () => {
    t = await routeDatabase();
    const a = await makeUser(t.db, "admin");
    admin = a.actor;
    agentId = (await t.db.agent.create({ data: { name: unique("agent"), ownerId: a.user.id } })).id;
  });
  afterAll(() => t.drop());

  async function held() {
    const task = await t.db.task.create({ data: { agentId, purpose: "race", policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 3600_000) } });
    return t.adminDb().approval.create({
      data: {
        taskId: task.id, agentId, requestDigest: "d".repeat(64), method: "DELETE", url: "https://api.railway.test/projects/1", reason: "held",
        actions: [{ service: "railway", effect: "destructive" }], expiresAt: new Date(Date.now() + 600_000),
      },
    });
  }

  it.each([
    ["approve", approveRoute.POST, "approval.approved"],
    ["deny", denyRoute.POST, "approval.denied"],
  ])("%s racing the key's revocation and its creator's disabling: decided before them, or not at all", async (_verdict, handler, decided) => {
    for (let i = 0; i < ROUNDS; i++) {
      const approval = await held();
      const creator = await makeUser(t.db, "admin");
      const { apiKey, key } = await createApiKey(t.db, creator.actor, { name: unique("k"), role: "approver" });
      const kill = i % 2 === 0 ? () => revokeApiKey(t.db, admin, apiKey.id) : () => setUserDisabled(t.db, admin, creator.user.id, true);
      const [res] = await Promise.all([post(handler, key, approval.id), kill()]);
      const events = await t.db.auditEvent.findMany({
        where: { OR: [{ type: decided, data: { path: ["approvalId"], equals: approval.id } }, { type: "api_key.revoked" }, { type: "user.disabled", data: { path: ["userId"], equals: creator.user.id } }] },
        orderBy: { seq: "asc" },
      });
      const mine = events.filter((e) => e.type === decided || e.type === "user.disabled" || (e.data as { apiKeyId?: string }).apiKeyId === apiKey.id);
      const row = await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } });
      if (res.status === 200) {
        expect(mine.map((e) => e.type)[0]).toBe(decided);
        expect(row.status).not.toBe("pending");
      } else {
        expect([401, 403]).toContain(res.status);
        expect(mine.map((e) => e.type)).not.toContain(decided);
        expect(row.status).toBe("pending");
      }
    }
  });

  it("a key no person stands behind (no creator) cannot approve, not even a one-approver request; it can deny", async () => {
    const { key, apiKey } = await createApiKey(t.db, admin, { name: unique("orphan"), role: "approver" });
    await t.adminDb().apiKey.update({ where: { id: apiKey.id }, data: { createdById: null } });
    const approval = await held();
    const res = await post(approveRoute.POST, key, approval.id);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "forbidden" });
    expect(await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).toMatchObject({ status: "pending" });
    expect(await t.db.auditEvent.count({ where: { type: "approval.approved", data: { path: ["approvalId"], equals: approval.id } } })).toBe(0);
    const denied = await post(denyRoute.POST, key, approval.id);
    expect(denied.status).toBe(200);
    expect(await t.db.approval.findUniqueOrThrow({ where: { id: approval.id } })).toMatchObject({ status: "denied" });
  });

  it("reads a decision's body whatever its Content-Type, and refuses a field the verdict does not take", async () => {
    const creator = await makeUser(t.db, "admin");
    const { key } = await createApiKey(t.db, creator.actor, { name: unique("k"), role: "approver" });
    const send = (handler: RouteHandler<{ id: string }>, id: string, body: string, headers: Record<string, string> = {}) =>
      // Built here: callRoute would give the body a JSON Content-Type, which is what varies here.
      handler(new Request(`http://127.0.0.1:3000/api/v1/approvals/${id}/x`, { method: "POST", headers: { authorization: `Bearer ${key}`, ...headers }, body }), { params: Promise.resolve({ id }) });

    // No Content-Type (a client that does not set one): the note is kept, not dropped.
    const denied = await held();
    const request = new Request(`http://127.0.0.1:3000/api/v1/approvals/${denied.id}/deny`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}` },
      body: new Blob([JSON.stringify({ note: "dropping prod is not on the plan" })]),
    });
    expect(request.headers.get("content-type")).toBeNull();
    const res = await denyRoute.POST(request, { params: Promise.resolve({ id: denied.id }) });
    expect(res.status).toBe(200);
    expect((await t.db.approval.findUniqueOrThrow({ where: { id: denied.id } })).decisionNote).toBe("dropping prod is not on the plan");

    // allowForTask on a denial is refused (it only means something for approve), and nothing is decided.
    const other = await held();
    const refused = await send(denyRoute.POST, other.id, JSON.stringify({ note: "n", allowForTask: true }), { "content-type": "application/json" });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ error: "invalid_input", issues: [{ path: "allowForTask", message: expect.stringMatching(/^allowForTask is not a field of this request/) }] });
    expect((await t.db.approval.findUniqueOrThrow({ where: { id: other.id } })).status).toBe("pending");

    // No body at all still decides.
    const empty = await send(approveRoute.POST, other.id, "");
    expect(empty.status).toBe(200);
  });
});
