import { request as playwrightRequest } from "@playwright/test";
import { test, expect, signInViaApi } from "./support/fixtures";
import { unique } from "../support/factories";

const ZERO = "00000000-0000-4000-8000-000000000000";
/** Every route handler under /api/v1 with the permission it needs. */
const ROUTES = [
  { method: "GET", path: "/api/v1/me", write: false },
  { method: "GET", path: "/api/v1/agents", write: false },
  { method: "POST", path: "/api/v1/agents", write: true },
  { method: "GET", path: `/api/v1/agents/${ZERO}`, write: false },
  { method: "POST", path: `/api/v1/agents/${ZERO}/suspend`, write: true },
  { method: "POST", path: `/api/v1/agents/${ZERO}/reactivate`, write: true },
] as const;

test.describe("route handlers check the session and role themselves", () => {
  test("unauthenticated requests get 401 on every route", async ({ request }) => {
    for (const r of ROUTES) {
      const res = await request.fetch(r.path, { method: r.method, data: r.write ? { name: "x" } : undefined });
      expect(res.status(), `${r.method} ${r.path}`).toBe(401);
      expect(await res.json()).toMatchObject({ error: "unauthenticated" });
    }
  });

  test("an auditor and an approver read but get 403 on every change, and nothing changes", async ({ createUser, db }) => {
    for (const role of ["auditor", "approver"] as const) {
      const baseURL = test.info().project.use.baseURL!;
      const ctx = await playwrightRequest.newContext({ baseURL, extraHTTPHeaders: { origin: new URL(baseURL).origin } });
      const user = await createUser(role);
      await signInViaApi(ctx, user.email, user.password);
      for (const r of ROUTES) {
        const name = unique("should-not-exist");
        const res = await ctx.fetch(r.path, { method: r.method, data: r.write ? { name } : undefined });
        if (r.write) {
          expect(res.status(), `${role} ${r.method} ${r.path}`).toBe(403);
          expect(await db.agent.count({ where: { name } })).toBe(0);
        } else {
          expect([200, 404], `${role} ${r.method} ${r.path}`).toContain(res.status());
        }
      }
      await ctx.dispose();
    }
  });

  test("an admin can create, read, suspend and reactivate through the API", async ({ api: request, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(request, admin.email, admin.password);
    const name = unique("api-agent");
    const created = await request.post("/api/v1/agents", { data: { name, description: "via API" } });
    expect(created.status()).toBe(201);
    const { agent } = (await created.json()) as { agent: { id: string; status: string } };
    expect((await request.get(`/api/v1/agents/${agent.id}`)).status()).toBe(200);
    const suspended = await request.post(`/api/v1/agents/${agent.id}/suspend`);
    expect(((await suspended.json()) as { agent: { status: string } }).agent.status).toBe("suspended");
    const dup = await request.post("/api/v1/agents", { data: { name } });
    expect(dup.status()).toBe(409);
    const bad = await request.post("/api/v1/agents", { data: { name: "" } });
    expect(bad.status()).toBe(400);
    expect(await bad.json()).toMatchObject({ error: "invalid_input" });
  });

  test("a signed-in person's retry with an Idempotency-Key gets the first answer, not a second agent", async ({ api: request, createUser, db }) => {
    const admin = await createUser("admin");
    await signInViaApi(request, admin.email, admin.password);
    const name = unique("idem-agent");
    const key = unique("retry");
    const first = await request.post("/api/v1/agents", { data: { name }, headers: { "idempotency-key": key } });
    expect(first.status()).toBe(201);
    const again = await request.post("/api/v1/agents", { data: { name }, headers: { "idempotency-key": key } });
    expect(again.status()).toBe(201);
    expect(again.headers()["idempotent-replayed"]).toBe("true");
    expect(await again.json()).toEqual(await first.json());
    expect(await db.agent.count({ where: { name } })).toBe(1);
    // The same key for another request is refused, and runs nothing.
    const other = await request.post("/api/v1/agents", { data: { name: unique("idem-other") }, headers: { "idempotency-key": key } });
    expect(other.status()).toBe(422);
    expect(await other.json()).toMatchObject({ error: "idempotency_key_reused" });
    // The key does not lift CSRF: a cross-site retry is refused before it is looked at.
    const crossSite = await request.post("/api/v1/agents", { data: { name }, headers: { "idempotency-key": key, origin: "https://evil.example" } });
    expect(crossSite.status()).toBe(403);
  });

  test("cross-site and form-encoded state changes are refused (CSRF)", async ({ api: request, createUser, db }) => {
    const admin = await createUser("admin");
    await signInViaApi(request, admin.email, admin.password);
    const name = unique("csrf");
    const crossSite = await request.post("/api/v1/agents", { data: { name }, headers: { origin: "https://evil.example" } });
    expect(crossSite.status()).toBe(403);
    expect(await crossSite.json()).toMatchObject({ error: "csrf" });
    const fetchSite = await request.post("/api/v1/agents", { data: { name }, headers: { "sec-fetch-site": "cross-site" } });
    expect(fetchSite.status()).toBe(403);
    const form = await request.post("/api/v1/agents", { form: { name } });
    expect(form.status()).toBe(403);
    expect(await db.agent.count({ where: { name } })).toBe(0);
  });

  test("no GET changes state", async ({ api: request, createUser, db }) => {
    const admin = await createUser("admin");
    await signInViaApi(request, admin.email, admin.password);
    const agent = await db.agent.create({ data: { name: unique("get-safe"), ownerId: admin.id } });
    for (const path of [`/api/v1/agents/${agent.id}/suspend`, `/api/v1/agents/${agent.id}/reactivate`]) {
      expect((await request.get(path)).status()).toBe(405);
    }
    expect((await db.agent.findUniqueOrThrow({ where: { id: agent.id } })).status).toBe("active");
  });
});

test.describe("sessions end at once", () => {
  test("sign-out invalidates the session cookie, even when replayed", async ({ api: request, createUser, db }) => {
    const user = await createUser("auditor");
    await signInViaApi(request, user.email, user.password);
    expect((await request.get("/api/v1/me")).status()).toBe(200);
    const state = await request.storageState();
    expect(await db.session.count({ where: { userId: user.id } })).toBe(1);

    const { csrfToken } = (await (await request.get("/api/auth/csrf")).json()) as { csrfToken: string };
    await request.post("/api/auth/signout", { form: { csrfToken }, maxRedirects: 0 });
    expect(await db.session.count({ where: { userId: user.id } })).toBe(0);

    const replay = await playwrightRequest.newContext({ baseURL: test.info().project.use.baseURL, storageState: state });
    expect((await replay.get("/api/v1/me")).status()).toBe(401);
    await replay.dispose();
  });

  test("disabling a user and removing their role take effect on the next request", async ({ api: request, createUser, db }) => {
    const user = await createUser("admin");
    await createUser("admin"); // so the first is not the last admin
    await signInViaApi(request, user.email, user.password);
    expect((await request.post("/api/v1/agents", { data: { name: unique("before") } })).status()).toBe(201);

    await db.user.update({ where: { id: user.id }, data: { role: "auditor" } });
    expect((await request.post("/api/v1/agents", { data: { name: unique("after") } })).status()).toBe(403);

    await db.user.update({ where: { id: user.id }, data: { disabledAt: new Date() } });
    expect((await request.get("/api/v1/me")).status()).toBe(401);
  });

  test("a disabled user cannot sign in, and the message does not say why", async ({ page, createUser, db }) => {
    const user = await createUser("approver");
    await db.user.update({ where: { id: user.id }, data: { disabledAt: new Date() } });
    await page.goto("/login");
    await page.getByLabel("Email").fill(user.email);
    await page.getByLabel("Password").fill(user.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page.getByRole("alert").filter({ hasText: "Sign-in failed" })).toHaveText("Sign-in failed: the email or password is wrong, or the account is disabled.");
  });

  test("pages redirect to sign-in when signed out, which comes back to the page asked for", async ({ page }) => {
    await page.goto("/agents");
    await expect(page).toHaveURL(/\/login$/);
    for (const path of ["/tasks", "/approvals", "/audit", "/services", "/users", "/settings"]) {
      await page.goto(path);
      await expect(page, path).toHaveURL(`/login?next=${encodeURIComponent(path)}`);
    }
  });

  test("signing in from a link to a page (a webhook's approval card, a shared audit search) lands on that page, never on another site", async ({ browser, createUser }, testInfo) => {
    const baseURL = testInfo.project.use.baseURL!;
    const approver = await createUser("approver");
    const signIn = async (page: import("@playwright/test").Page) => {
      await page.getByLabel("Email").fill(approver.email);
      await page.getByLabel("Password").fill(approver.password);
      await page.getByRole("button", { name: "Sign in" }).click();
    };
    for (const path of [`/approvals/${ZERO}`, "/audit?q=volumes&type=proxy.*", "/tasks?agent=x"]) {
      const context = await browser.newContext({ baseURL });
      const page = await context.newPage();
      await page.goto(path);
      await expect(page, path).toHaveURL(/\/login\?next=/);
      await signIn(page);
      await expect(page, path).toHaveURL(path);
      // Signed in already, the sign-in page sends the person on too.
      await page.goto(`/login?next=${encodeURIComponent(path)}`);
      await expect(page, path).toHaveURL(path);
      await context.close();
    }
    // (`/%09/evil.example` is a path of the dashboard, and stays one: no page, on the dashboard's origin.)
    for (const next of ["//evil.example/", "/\\evil.example", "https://evil.example/", "\t//evil.example", "javascript:alert(1)", "/login", "/api/v1/me", " /audit"]) {
      const context = await browser.newContext({ baseURL });
      const page = await context.newPage();
      await page.goto(`/login?next=${encodeURIComponent(next)}`);
      await signIn(page);
      await expect(page, next).toHaveURL(/\/agents$/);
      expect(new URL(page.url()).origin, next).toBe(new URL(baseURL).origin);
      await context.close();
    }
  });
});

test.describe("a method an API path does not serve", () => {
  test("is a JSON 405 in the API's error shape with Allow and no-store, signed out or in, for every path the OpenAPI document lists", async ({ request, api, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(api, admin.email, admin.password);
    const spec = (await (await request.get("/api/v1/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let checked = 0;
    for (const [template, operations] of Object.entries(spec.paths)) {
      const path = template.replace(/\{[^}]+\}/g, "00000000-0000-4000-8000-000000000000");
      const served = METHODS.filter((m) => m.toLowerCase() in operations);
      const allow = served.flatMap((m) => (m === "GET" ? ["GET", "HEAD"] : [m])).concat("OPTIONS").join(", ");
      for (const method of METHODS.filter((m) => !served.includes(m))) {
        for (const client of [request, api]) {
          const res = await client.fetch(path, { method, maxRedirects: 0, ...(method === "GET" || method === "DELETE" ? {} : { data: {} }) });
          const what = `${method} ${template}`;
          expect(res.status(), what).toBe(405);
          expect(res.headers()["allow"], what).toBe(allow);
          expect(res.headers()["cache-control"], what).toContain("no-store");
          expect(res.headers()["content-type"], what).toContain("application/json");
          expect(await res.json(), what).toMatchObject({ error: "method_not_allowed", message: expect.stringContaining("openapi.json") });
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });
});

test.describe("a path under /api/ that nothing serves", () => {
  test("is a JSON 404 in the API's error shape for every method, signed out or in, never the HTML page", async ({ request, api, createUser }) => {
    const admin = await createUser("admin");
    await signInViaApi(api, admin.email, admin.password);
    const paths = ["/api/v1/nothing", "/api/v1/agents/00000000-0000-4000-8000-000000000000/nothing", "/api/v2/agents", "/api/nothing", "/api/v1/tasks/x/y/z"];
    for (const client of [request, api]) {
      for (const path of paths) {
        for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE"]) {
          const res = await client.fetch(path, { method, maxRedirects: 0, ...(method === "GET" || method === "DELETE" ? {} : { data: {} }) });
          expect(res.status(), `${method} ${path}`).toBe(404);
          expect(res.headers()["content-type"], `${method} ${path}`).toContain("application/json");
          expect(res.headers()["cache-control"], `${method} ${path}`).toContain("no-store");
          expect(await res.json(), `${method} ${path}`).toMatchObject({ error: "not_found", message: expect.stringContaining("openapi.json") });
        }
      }
    }
    // Routes that exist are not shadowed by it.
    expect((await api.get("/api/v1/me")).status()).toBe(200);
    expect((await request.get("/api/v1/me")).status()).toBe(401);
    expect((await request.get("/api/v1/openapi.json")).status()).toBe(200);
    expect((await request.get("/api/auth/csrf")).status()).toBe(200);
  });
});
