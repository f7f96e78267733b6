/**
 * Idempotency-Key answers held for a person's session (lib/http/idempotency.ts). A stored answer
 * can hold a secret shown once (an admin API key, a task token), and the request that produced it
 * may have needed step-up, which only the session that re-authenticated has. Another session of
 * the same person (a copied cookie on another machine, never re-authenticated) that sends the
 * same request with the same key must run it, and be asked for step-up, not be handed the answer.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
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

  it("stores its principals in exactly the forms the schema documents for IdempotencyKey.principal", async () => {
    const { sessionId: _none, ...sessionless } = fresh as Extract<Actor, { kind: "user" }>;
    const apiKey: Actor = { kind: "api_key", apiKeyId: randomUUID(), role: "admin", createdById: null };
    for (const actor of [fresh, sessionless, apiKey]) {
      expect((await post(agentsRoute.POST, "/api/v1/agents", actor, { name: unique("principal") }, unique("principal"))).status).toBe(201);
    }
    const forms = documentedPrincipalForms();
    const principals = (await t.db.idempotencyKey.findMany({ select: { principal: true } })).map((r) => r.principal);
    for (const principal of principals) expect(forms.some((f) => f.test(principal)), `${principal} is not one of the documented forms ${forms.join(", ")}`).toBe(true);
    // And the comment names no form that is never stored.
    for (const form of forms) expect(principals.some((p) => form.test(p)), `${form} is documented but never stored`).toBe(true);
  });
});

/** The quoted forms (`"user:<id>"`) in the `///` comment above IdempotencyKey.principal, as patterns. */
function documentedPrincipalForms(): RegExp[] {
  const schema = readFileSync(path.resolve("prisma/schema.prisma"), "utf8");
  const model = /^model IdempotencyKey \{\n([\s\S]*?)^\}/m.exec(schema)?.[1] ?? "";
  const lines = model.split("\n");
  const at = lines.findIndex((l) => /^\s*principal\s/.test(l));
  const comment: string[] = [];
  for (let i = at - 1; i >= 0 && /^\s*\/\/\//.test(lines[i]!); i--) comment.unshift(lines[i]!.replace(/^\s*\/\/\/\s?/, ""));
  const forms = [...comment.join(" ").matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
  expect(forms.length, "the comment on IdempotencyKey.principal quotes its forms").toBeGreaterThan(0);
  return forms.map((f) => new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/<[^>]+>/g, "[^:]+")}$`));
}
