import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as agentsRoute from "@/app/api/v1/agents/route";
import * as apiKeysRoute from "@/app/api/v1/api-keys/route";
import * as apiKeyRoute from "@/app/api/v1/api-keys/[id]/route";
import * as meRoute from "@/app/api/v1/me/route";
import { createApiKey, revokeApiKey } from "@/lib/apikeys";
import { MAX_JSON_BODY_BYTES } from "@/lib/http/route";
import type { Actor } from "@/lib/auth/actor";
import type { TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import type { RouteHandler } from "../../support/no-session";
import { callRoute, routeDatabase } from "../../support/routes";

// Requests without a session cookie; API keys and the database are real (tests/support/no-session.ts).
vi.mock("@/lib/auth/current", () => import("../../support/no-session"));

/**
 * The real route handlers, called in-process with API keys. (Session-cookie requests need
 * Next's request context and are covered by the Playwright suite.)
 */
describe("apiRoute with API keys", () => {
  let t: TestDatabase;
  let admin: Actor;
  const call = <P,>(
    handler: RouteHandler<P>,
    method: string,
    path: string,
    init: { key?: string; authorization?: string; body?: unknown; headers?: Record<string, string> } = {},
    params = {} as P,
  ) => {
    return callRoute(handler, path, { ...init, method, params });
  };

  beforeAll(async () => {
    t = await routeDatabase();
    admin = (await makeUser(t.db, "admin")).actor;
  });
  afterAll(() => t.drop());

  it("answers 401 with a Bearer challenge for any Bearer value that is not a live key", async () => {
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "soon-revoked", role: "admin" });
    await revokeApiKey(t.db, admin, apiKey.id);
    for (const authorization of ["Bearer", "Bearer ", "Bearer bk_x", `Bearer ${key}`, `bearer ${key}`, "Bearer eyJhbGciOiJub25lIn0.e30.", `Bearer ${key} ${key}`]) {
      const res = await call(meRoute.GET, "GET", "/api/v1/me", { authorization });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="bulkhead"');
      expect(await res.json()).toMatchObject({ error: "unauthenticated" });
    }
  });

  it("ignores other Authorization schemes (a fronting proxy's Basic auth) and falls back to the session", async () => {
    const res = await call(meRoute.GET, "GET", "/api/v1/me", { authorization: "Basic dXNlcjpwYXNz" });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: "unauthenticated", message: "Sign in first." });
  });

  it("identifies the key on /me", async () => {
    const { apiKey, key } = await createApiKey(t.db, admin, { name: "me", role: "approver" });
    const res = await call(meRoute.GET, "GET", "/api/v1/me", { key });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ actor: { kind: "api_key", apiKeyId: apiKey.id, role: "approver", createdById: (admin as { userId: string }).userId } });
  });

  it("limits a key to its role: an auditor key reads, and gets 403 on every change", async () => {
    const { key } = await createApiKey(t.db, admin, { name: "auditor-key", role: "auditor" });
    expect((await call(agentsRoute.GET, "GET", "/api/v1/agents", { key })).status).toBe(200);
    const name = unique("not-created");
    const res = await call(agentsRoute.POST, "POST", "/api/v1/agents", { key, body: { name } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: "forbidden" });
    expect(await t.db.agent.count({ where: { name } })).toBe(0);
    expect((await call(apiKeysRoute.GET, "GET", "/api/v1/api-keys", { key })).status).toBe(403);
  });

  it("needs no Origin or JSON content type with a key (no ambient credential, so no CSRF)", async () => {
    const { key } = await createApiKey(t.db, admin, { name: "writer", role: "admin" });
    const name = unique("by-key");
    const res = await call(agentsRoute.POST, "POST", "/api/v1/agents", { key, body: { name }, headers: { "content-type": "text/plain" } });
    expect(res.status).toBe(201);
    expect(await t.db.agent.count({ where: { name } })).toBe(1);
  });

  it("tells every cache not to keep an answer: data, creations and refusals are all no-store", async () => {
    const { key } = await createApiKey(t.db, admin, { name: "uncached", role: "admin" });
    const { key: auditorKey } = await createApiKey(t.db, admin, { name: "uncached-auditor", role: "auditor" });
    const answers = {
      me: await call(meRoute.GET, "GET", "/api/v1/me", { key }),
      list: await call(apiKeysRoute.GET, "GET", "/api/v1/api-keys", { key }),
      created: await call(agentsRoute.POST, "POST", "/api/v1/agents", { key, body: { name: unique("uncached") } }),
      invalid: await call(agentsRoute.POST, "POST", "/api/v1/agents", { key, body: { name: "" } }),
      forbidden: await call(agentsRoute.POST, "POST", "/api/v1/agents", { key: auditorKey, body: { name: unique("uncached") } }),
      unauthenticated: await call(meRoute.GET, "GET", "/api/v1/me", { key: "bk_nope" }),
    };
    expect(Object.fromEntries(Object.entries(answers).map(([what, res]) => [what, res.status]))).toEqual({ me: 200, list: 200, created: 201, invalid: 400, forbidden: 403, unauthenticated: 401 });
    for (const [what, res] of Object.entries(answers)) expect(res.headers.get("cache-control"), what).toBe("no-store");
  });

  it("does not let a key create or revoke keys", async () => {
    const { key } = await createApiKey(t.db, admin, { name: "admin-key", role: "admin" });
    const victim = await createApiKey(t.db, admin, { name: "victim", role: "auditor" });
    const created = await call(apiKeysRoute.POST, "POST", "/api/v1/api-keys", { key, body: { name: "successor", role: "admin" } });
    expect(created.status).toBe(403);
    const revoked = await call(apiKeyRoute.DELETE, "DELETE", `/api/v1/api-keys/${victim.apiKey.id}`, { key }, { id: victim.apiKey.id });
    expect(revoked.status).toBe(403);
    expect(await t.db.apiKey.count({ where: { name: "successor" } })).toBe(0);
    expect((await t.db.apiKey.findUniqueOrThrow({ where: { id: victim.apiKey.id } })).revokedAt).toBeNull();
    // It may list them (admin role), and the list holds no key material.
    const list = await call(apiKeysRoute.GET, "GET", "/api/v1/api-keys", { key });
    expect(list.status).toBe(200);
    const text = await list.text();
    expect(text).not.toContain(victim.key.split("_")[2]!);
    expect(text).not.toMatch(/"keyHash"/);
  });

  it("refuses a JSON body past MAX_JSON_BODY_BYTES with 413 before holding it, declared or streamed, and creates nothing", async () => {
    const { key } = await createApiKey(t.db, admin, { name: "big-bodies", role: "admin" });
    const name = unique("too-big");
    const huge = JSON.stringify({ name, description: "x".repeat(MAX_JSON_BODY_BYTES) });
    // Declared: Content-Length says it all.
    const declared = await agentsRoute.POST(new Request("http://127.0.0.1:3000/api/v1/agents", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: huge }), { params: Promise.resolve({}) });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ error: "payload_too_large" });
    // Streamed without a length: counted as it arrives, and the rest is never pulled.
    let pulled = 0;
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(`{"name":"${name}","description":"`));
      },
      pull(c) {
        pulled++;
        if (pulled > 1000) c.close(); // 64 MiB would follow if it kept reading
        else c.enqueue(chunk);
      },
    });
    const streamed = await agentsRoute.POST(new Request("http://127.0.0.1:3000/api/v1/agents", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body, duplex: "half" } as RequestInit), { params: Promise.resolve({}) });
    expect(streamed.status).toBe(413);
    expect(pulled).toBeLessThan(MAX_JSON_BODY_BYTES / chunk.length + 4);
    expect(await t.db.agent.count({ where: { name } })).toBe(0);
    // A body just under the limit, with a byte order mark, is read as before.
    const ok = await call(agentsRoute.POST, "POST", "/api/v1/agents", { key, body: { name, description: "fits" } });
    expect(ok.status).toBe(201);
    const bom = await agentsRoute.POST(new Request("http://127.0.0.1:3000/api/v1/agents", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: `\uFEFF${JSON.stringify({ name: unique("bom") })}` }), { params: Promise.resolve({}) });
    expect(bom.status).toBe(201);
  });
});
