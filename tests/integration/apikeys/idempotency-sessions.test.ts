/**
 * Idempotency-Key answers held for a person's session (lib/http/idempotency.ts). A stored answer
 * can hold a secret shown once (an admin API key, a task token), and the request that produced it
 * may have needed step-up, which only the session that re-authenticated has. Another session of
 * the same person (a copied cookie on another machine, never re-authenticated) that sends the
 * same request with the same key must run it, and be asked for step-up, not be handed the answer.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as apiKeysRoute from "@/app/api/v1/api-keys/route";
import * as agentsRoute from "@/app/api/v1/agents/route";
import type { Actor } from "@/lib/auth/actor";
import { AppError } from "@/lib/errors/app-error";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { callRoute, routeDatabase } from "../../support/routes";

// The session cookie path, with the session resolved to whichever actor the test sets.
const current = vi.hoisted(() => ({ actor: null as unknown }));
vi.mock("@/lib/auth/current", () => ({
  requireActor: async () => {
    if (!current.actor) throw new AppError("UNAUTHENTICATED", "Sign in first.");
    return current.actor;
  },
}));

describe("Idempotency-Key answers and sessions", () => {
  let t: TestDatabase;
  let fresh: Actor;
  let stale: Actor;
  let freshElsewhere: Actor;

  const post = (handler: typeof apiKeysRoute.POST, path: string, actor: Actor, body: unknown, idempotencyKey: string) => {
    current.actor = actor;
    return callRoute(handler, path, {
      method: "POST",
      body,
      headers: { origin: "http://127.0.0.1:3000", "content-type": "application/json", "idempotency-key": idempotencyKey },
    });
  };

  beforeAll(async () => {
    t = await routeDatabase({ keys: true });
    const admin = await makeUser(t.db, "admin");
    const base = { kind: "user" as const, userId: admin.user.id, email: admin.email, role: "admin" as const };
    fresh = { ...base, sessionId: "11111111-1111-4111-8111-111111111111", authenticatedAt: Date.now() };
    stale = { ...base, sessionId: "22222222-2222-4222-8222-222222222222", authenticatedAt: Date.now() - 3600_000 };
    freshElsewhere = { ...base, sessionId: "33333333-3333-4333-8333-333333333333", authenticatedAt: Date.now() };
  });
  afterAll(() => t.drop());

  it("never hands a new API key made under step-up to another, stale session of the same person that replays the request", async () => {
    const idempotencyKey = unique("ci-key");
    const body = { name: unique("deploy"), role: "admin" };
    const first = await post(apiKeysRoute.POST, "/api/v1/api-keys", fresh, body, idempotencyKey);
    expect(first.status).toBe(201);
    const { key } = (await first.json()) as { key: string };
    expect(key).toMatch(/^bk_/);

    const replay = await post(apiKeysRoute.POST, "/api/v1/api-keys", stale, body, idempotencyKey);
    const text = await replay.text();
    expect(text).not.toContain(key);
    expect(replay.status).toBe(403);
    expect(JSON.parse(text)).toMatchObject({ error: "step_up_required" });
    expect(replay.headers.get("idempotent-replayed")).toBeNull();
    expect(await t.db.apiKey.count({ where: { name: body.name } })).toBe(1);
  });

  it("runs a request again in another session, and still replays within the session that made it", async () => {
    const idempotencyKey = unique("agent");
    const body = { name: unique("agent") };
    const first = await post(agentsRoute.POST, "/api/v1/agents", fresh, body, idempotencyKey);
    expect(first.status).toBe(201);
    const again = await post(agentsRoute.POST, "/api/v1/agents", fresh, body, idempotencyKey);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    // Another session runs it: the name is taken now, a 409, and nothing is created twice.
    const elsewhere = await post(agentsRoute.POST, "/api/v1/agents", freshElsewhere, body, idempotencyKey);
    expect(elsewhere.headers.get("idempotent-replayed")).toBeNull();
    expect(elsewhere.status).toBe(409);
    expect(await t.db.agent.count({ where: { name: body.name } })).toBe(1);
  });
});
