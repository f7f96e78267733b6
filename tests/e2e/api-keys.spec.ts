import { request as playwrightRequest } from "@playwright/test";
import { test, expect, signInViaApi } from "./support/fixtures";
import { unique } from "../support/factories";

const ZERO = "00000000-0000-4000-8000-000000000000";

/** A request context with no cookies and no Origin header: what a script or CI job sends. */
async function bare() {
  return playwrightRequest.newContext({ baseURL: test.info().project.use.baseURL });
}

test("an API key created in the UI works as a Bearer token without Origin, and stops once revoked", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/settings/api-keys");
  const name = unique("ci-key");
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Role").selectOption("admin");
  await page.getByRole("button", { name: "Create API key" }).click();
  const shown = page.getByTestId("new-api-key");
  await expect(shown).toHaveText(/^bk_[a-z0-9]{8}_[A-Za-z0-9]{43}$/);
  const key = (await shown.textContent())!;
  await expect(page.getByRole("button", { name: "Copy" })).toBeVisible();
  const row = page.getByRole("row").filter({ hasText: name });
  await expect(row).toContainText(`bk_${key.split("_")[1]}_…`);

  // Shown once: a fresh load of the page does not contain it.
  expect(await (await page.request.get("/settings/api-keys")).text()).not.toContain(key);
  await page.reload();
  await expect(page.getByTestId("new-api-key")).toHaveCount(0);
  expect(await page.content()).not.toContain(key);

  const client = await bare();
  const auth = { authorization: `Bearer ${key}` };
  expect((await client.get("/api/v1/agents", { headers: auth })).status()).toBe(200);
  const agentName = unique("by-key");
  const created = await client.post("/api/v1/agents", { headers: auth, data: { name: agentName } });
  expect(created.status()).toBe(201);
  const event = await db.auditEvent.findFirstOrThrow({ where: { type: "agent.created", data: { path: ["name"], equals: agentName } } });
  expect(event.actorType).toBe("api_key");

  await page.getByRole("row").filter({ hasText: name }).getByRole("button", { name: `Revoke ${name}` }).click();
  // The confirmation says what revoking does, approvals given through the key included.
  await expect(page.getByRole("row").filter({ hasText: name }).getByTestId("revoke-key-warning")).toContainText("approvals given through it that are not used yet are cancelled");
  await page.getByRole("row").filter({ hasText: name }).getByRole("button", { name: "Confirm revoke" }).click();
  await expect(page.getByRole("row").filter({ hasText: name })).toContainText("revoked");

  const after = await client.get("/api/v1/agents", { headers: auth });
  expect(after.status()).toBe(401);
  expect(after.headers()["www-authenticate"]).toContain("Bearer");
  expect((await client.post("/api/v1/agents", { headers: auth, data: { name: unique("after-revoke") } })).status()).toBe(401);
  await client.dispose();
});

test("an invalid Bearer is 401 even with a valid session cookie", async ({ api, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  expect((await api.get("/api/v1/me")).status()).toBe(200);
  const created = await api.post("/api/v1/api-keys", { data: { name: unique("to-revoke"), role: "admin" } });
  const { apiKey, key } = (await created.json()) as { apiKey: { id: string }; key: string };
  expect((await api.delete(`/api/v1/api-keys/${apiKey.id}`)).status()).toBe(200);
  for (const authorization of ["Bearer bk_nonsense", `Bearer ${key}`, "Bearer ", `Bearer ${key.slice(0, -1)}X`]) {
    const me = await api.get("/api/v1/me", { headers: { authorization } });
    expect(me.status(), authorization).toBe(401);
    const name = unique("not-created");
    const post = await api.post("/api/v1/agents", { headers: { authorization }, data: { name } });
    expect(post.status(), authorization).toBe(401);
    expect(await db.agent.count({ where: { name } })).toBe(0);
  }
  expect((await api.get("/api/v1/me")).status()).toBe(200);
});

test("API key routes: 401 unauthenticated, 403 for auditors and approvers, nothing changes", async ({ request, createUser, db }) => {
  const admin = await createUser("admin");
  const victim = await db.apiKey.create({ data: { name: "victim", prefix: unique("p").slice(-8), keyHash: unique("h"), role: "admin", createdById: admin.id } });
  const routes = [
    { method: "GET", path: "/api/v1/api-keys" },
    { method: "POST", path: "/api/v1/api-keys", data: { name: "escalate", role: "admin" } },
    { method: "DELETE", path: `/api/v1/api-keys/${victim.id}` },
    { method: "DELETE", path: `/api/v1/api-keys/${ZERO}` },
  ];
  for (const r of routes) {
    const res = await request.fetch(r.path, { method: r.method, data: r.data });
    expect(res.status(), `${r.method} ${r.path}`).toBe(401);
  }
  for (const role of ["auditor", "approver"] as const) {
    const baseURL = test.info().project.use.baseURL!;
    const ctx = await playwrightRequest.newContext({ baseURL, extraHTTPHeaders: { origin: new URL(baseURL).origin } });
    const user = await createUser(role);
    await signInViaApi(ctx, user.email, user.password);
    for (const r of routes) {
      const res = await ctx.fetch(r.path, { method: r.method, data: r.data });
      expect(res.status(), `${role} ${r.method} ${r.path}`).toBe(403);
    }
    await ctx.dispose();
  }
  expect(await db.apiKey.count({ where: { name: "escalate" } })).toBe(0);
  expect((await db.apiKey.findUniqueOrThrow({ where: { id: victim.id } })).revokedAt).toBeNull();
});

test("a key's role limits it, and a key cannot mint or revoke keys", async ({ api, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(api, admin.email, admin.password);
  const auditorKey = ((await (await api.post("/api/v1/api-keys", { data: { name: unique("auditor"), role: "auditor" } })).json()) as { key: string }).key;
  const adminKey = ((await (await api.post("/api/v1/api-keys", { data: { name: unique("admin"), role: "admin" } })).json()) as { key: string }).key;
  const client = await bare();
  const as = (key: string) => ({ authorization: `Bearer ${key}` });
  expect((await client.get("/api/v1/agents", { headers: as(auditorKey) })).status()).toBe(200);
  const name = unique("denied");
  expect((await client.post("/api/v1/agents", { headers: as(auditorKey), data: { name } })).status()).toBe(403);
  expect((await client.post("/api/v1/credentials", { headers: as(auditorKey), data: { name, host: "x.example.test", headerTemplate: "X-Key: {secret}", secret: "s" } })).status()).toBe(403);
  expect(await db.agent.count({ where: { name } })).toBe(0);
  const mint = await client.post("/api/v1/api-keys", { headers: as(adminKey), data: { name: "successor", role: "admin" } });
  expect(mint.status()).toBe(403);
  expect(await db.apiKey.count({ where: { name: "successor" } })).toBe(0);
  await client.dispose();
});

test("the API keys page is for admins only", async ({ page, createUser }) => {
  const auditor = await createUser("auditor");
  await signInViaApi(page.request, auditor.email, auditor.password);
  await page.goto("/settings/api-keys");
  await expect(page.getByRole("heading", { name: "Your role does not allow this" })).toBeVisible();
});

test("the OpenAPI document is public and lists these routes", async ({ request }) => {
  const res = await request.get("/api/v1/openapi.json");
  expect(res.status()).toBe(200);
  const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
  expect(doc.openapi).toBe("3.1.0");
  for (const p of ["/api/v1/agents", "/api/v1/credentials", "/api/v1/credentials/{id}/rotate", "/api/v1/api-keys/{id}", "/api/v1/me"]) {
    expect(doc.paths[p], p).toBeDefined();
  }
});

test("the new key's Copy button selects the key and says so when the browser refuses the clipboard", async ({ page, createUser }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  // A browser that refuses the clipboard (plain http away from loopback has no clipboard API at all).
  await page.addInitScript(() => {
    Object.defineProperty(navigator, "clipboard", { value: { writeText: () => Promise.reject(new DOMException("Write permission denied.", "NotAllowedError")) } });
  });
  await page.goto("/settings/api-keys");
  await page.getByLabel("Name", { exact: true }).fill(unique("copy-key"));
  await page.getByLabel("Role").selectOption("auditor");
  await page.getByRole("button", { name: "Create API key" }).click();
  const key = await page.getByTestId("new-api-key").innerText();
  await page.getByRole("button", { name: "Copy", exact: true }).click();
  await expect(page.getByRole("alert").filter({ hasText: "did not let the page copy it" })).toBeVisible();
  expect(await page.evaluate(() => window.getSelection()?.toString())).toBe(key);
});
