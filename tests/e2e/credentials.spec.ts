import { request as playwrightRequest } from "@playwright/test";
import { test, expect, signInViaApi } from "./support/fixtures";
import { unique } from "../support/factories";
import { leaks, randomSecret } from "../integration/vault/secret-search";

const ZERO = "00000000-0000-4000-8000-000000000000";
const ROUTES = [
  { method: "GET", path: "/api/v1/credentials", write: false },
  { method: "POST", path: "/api/v1/credentials", write: true },
  { method: "POST", path: `/api/v1/credentials/${ZERO}/rotate`, write: true },
  { method: "POST", path: `/api/v1/credentials/${ZERO}/binding`, write: true },
  { method: "DELETE", path: `/api/v1/credentials/${ZERO}`, write: true },
] as const;
const body = (secret: string) => ({ name: unique("should-not-exist"), host: `${unique("h")}.example.test`, environments: "*", headerTemplate: "X-Key: {secret}", secret });

test("an admin adds, rotates and deletes a credential in the browser, and the secret never comes back", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  await signInViaApi(page.request, admin.email, admin.password);
  // Everything the server sends the browser during this test, to search for the secrets.
  const responses: Array<Promise<string>> = [];
  // The approvals event stream (the nav badge) never ends, so its body is never complete; it
  // carries approval ids and counts only, never a credential.
  page.on("response", (r) => {
    if (!(r.headers()["content-type"] ?? "").includes("text/event-stream")) responses.push(r.text().catch(() => ""));
  });

  const secret = randomSecret();
  const name = unique("github");
  await page.goto("/services");
  // A bad host reaches the server and comes back with a message, not with the secret.
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Environments", { exact: true }).fill("production");
  await page.getByLabel("Host", { exact: true }).fill("user@api.github.com");
  await page.getByLabel("Secret", { exact: true }).fill(secret);
  await page.getByRole("button", { name: "Add credential" }).click();
  await expect(page.locator("#host-error")).toContainText("must not contain user information");
  // What was typed comes back, except the secret.
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue(name);
  await expect(page.getByLabel("Environments", { exact: true })).toHaveValue("production");
  await expect(page.getByLabel("Secret", { exact: true })).toHaveValue("");
  expect(leaks(await page.content(), secret)).toEqual([]);

  // A token pasted into the template instead of {secret} is rejected and not sent back either.
  const pasted = randomSecret();
  await page.getByLabel("Header template", { exact: true }).fill(`Authorization: Bearer ${pasted}`);
  await page.getByLabel("Secret", { exact: true }).fill(secret);
  await page.getByRole("button", { name: "Add credential" }).click();
  await expect(page.locator("#headerTemplate-error")).toContainText("exactly one {secret}");
  expect(leaks(await page.content(), pasted)).toEqual([]);

  await page.getByLabel("Host", { exact: true }).fill("API.GitHub.com");
  await page.getByLabel("Header template", { exact: true }).fill("Authorization: Bearer {secret}");
  await page.getByLabel("Secret", { exact: true }).fill(secret);
  await page.getByRole("button", { name: "Add credential" }).click();
  await expect(page.getByRole("status").filter({ hasText: `Added ${name}.` })).toBeVisible();
  const row = page.getByRole("row").filter({ hasText: name });
  await expect(row).toContainText("https://api.github.com:443");
  await expect(row.getByTestId("credential-serves")).toHaveText("github in production");
  await expect(row).toContainText("Authorization: Bearer {secret}");
  await expect(row).toContainText("••••");
  await expect(page.getByLabel("Secret", { exact: true })).toHaveValue("");
  expect(leaks(await page.content(), secret)).toEqual([]);
  expect(leaks(await (await page.request.get("/services")).text(), secret)).toEqual([]);

  const stored = await db.credential.findFirstOrThrow({ where: { name } });
  expect(leaks(JSON.stringify(stored), secret)).toEqual([]);

  const rotatedSecret = randomSecret();
  await row.getByLabel(`New secret for ${name}`).fill(rotatedSecret);
  await row.getByRole("button", { name: "Rotate" }).click();
  await expect(row.getByRole("status")).toHaveText("Rotated.");
  expect((await db.credential.findFirstOrThrow({ where: { name } })).secretSealed).not.toBe(stored.secretSealed);
  expect(leaks(await page.content(), rotatedSecret)).toEqual([]);

  // What it serves can be re-declared; the secret stays as it was.
  const sealed = (await db.credential.findFirstOrThrow({ where: { name } })).secretSealed;
  await row.getByLabel(`Environments ${name} serves`).fill("staging, *");
  await row.getByRole("button", { name: "Bind" }).click();
  await expect(row.getByRole("alert")).toContainText("* already means every environment");
  await expect(row.getByLabel(`Environments ${name} serves`)).toHaveValue("staging, *");
  await row.getByLabel(`Environments ${name} serves`).fill("staging");
  await row.getByRole("button", { name: "Bind" }).click();
  await expect(row.getByTestId("credential-serves")).toHaveText("github in staging");
  expect(await db.credential.findFirstOrThrow({ where: { name } })).toMatchObject({ environments: "staging", secretSealed: sealed });

  await row.getByRole("button", { name: "Delete" }).click();
  await row.getByRole("button", { name: "Confirm delete" }).click();
  await expect(page.getByRole("row").filter({ hasText: name })).toHaveCount(0);
  expect(await db.credential.count({ where: { name } })).toBe(0);

  const everything = (await Promise.all(responses)).join("\n");
  expect(everything.length).toBeGreaterThan(1000);
  expect(leaks(everything, secret), "a response to the browser contained the secret").toEqual([]);
  expect(leaks(everything, rotatedSecret), "a response to the browser contained the rotated secret").toEqual([]);
  expect(leaks(everything, pasted), "a response to the browser contained the token pasted into the template").toEqual([]);
  const audit = await db.auditEvent.findMany({ where: { type: { startsWith: "credential." } } });
  expect(audit.length).toBeGreaterThanOrEqual(3);
  const auditJson = JSON.stringify(audit, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
  expect(leaks(auditJson, secret)).toEqual([]);
  expect(leaks(auditJson, rotatedSecret)).toEqual([]);
});

test("auditors and approvers see credentials read-only", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  await db.credential.create({ data: { name: unique("listed"), scheme: "https", host: `${unique("ro")}.example.test`, port: 443, headerTemplate: "X-Key: {secret}", secretSealed: "v1.not-a-real-envelope", createdById: admin.id } });
  for (const role of ["auditor", "approver"] as const) {
    const user = await createUser(role);
    await page.context().clearCookies();
    await signInViaApi(page.request, user.email, user.password);
    await page.goto("/services");
    await expect(page.getByRole("heading", { name: "Services & Credentials" })).toBeVisible();
    await expect(page.getByRole("cell", { name: "••••" }).first()).toBeVisible();
    await expect(page.getByRole("button", { name: "Add credential" })).toHaveCount(0);
    await expect(page.getByRole("button", { name: "Rotate" })).toHaveCount(0);
    await expect(page.getByRole("button", { name: "Delete" })).toHaveCount(0);
    expect(await page.content()).not.toContain("v1.not-a-real-envelope");
  }
});

test.describe("credential route handlers", () => {
  test("unauthenticated requests get 401 on every route", async ({ request }) => {
    for (const r of ROUTES) {
      const res = await request.fetch(r.path, { method: r.method, data: r.write ? body(randomSecret()) : undefined });
      expect(res.status(), `${r.method} ${r.path}`).toBe(401);
      expect(await res.json()).toMatchObject({ error: "unauthenticated" });
    }
  });

  test("an auditor and an approver read, get 403 on every change, and nothing changes", async ({ createUser, db }) => {
    const admin = await createUser("admin");
    const existing = await db.credential.create({
      data: { name: unique("target"), scheme: "https", host: `${unique("t")}.example.test`, port: 443, headerTemplate: "X-Key: {secret}", secretSealed: "v1.sealed", createdById: admin.id },
    });
    for (const role of ["auditor", "approver"] as const) {
      const baseURL = test.info().project.use.baseURL!;
      const ctx = await playwrightRequest.newContext({ baseURL, extraHTTPHeaders: { origin: new URL(baseURL).origin } });
      const user = await createUser(role);
      await signInViaApi(ctx, user.email, user.password);
      const list = await ctx.get("/api/v1/credentials");
      expect(list.status()).toBe(200);
      expect(await list.text()).not.toContain("v1.sealed");
      const attempt = body(randomSecret());
      const changes = [
        await ctx.post("/api/v1/credentials", { data: attempt }),
        await ctx.post(`/api/v1/credentials/${existing.id}/rotate`, { data: { secret: randomSecret() } }),
        await ctx.delete(`/api/v1/credentials/${existing.id}`),
      ];
      for (const res of changes) {
        expect(res.status(), role).toBe(403);
        expect(await res.json()).toMatchObject({ error: "forbidden" });
      }
      expect(await db.credential.count({ where: { name: attempt.name } })).toBe(0);
      expect(await db.credential.findUniqueOrThrow({ where: { id: existing.id } })).toEqual(existing);
      await ctx.dispose();
    }
  });

  test("an admin's API responses never carry the secret, and cross-site writes are refused", async ({ api, createUser, db }) => {
    const admin = await createUser("admin");
    await signInViaApi(api, admin.email, admin.password);
    const secret = randomSecret();
    const created = await api.post("/api/v1/credentials", { data: { ...body(secret), name: unique("via-api") } });
    expect(created.status()).toBe(201);
    const { credential } = (await created.json()) as { credential: { id: string; secret: string } };
    expect(credential.secret).toBe("••••");
    const texts = [JSON.stringify(credential), await (await api.get("/api/v1/credentials")).text()];
    const rotated = await api.post(`/api/v1/credentials/${credential.id}/rotate`, { data: { secret: randomSecret() } });
    expect(rotated.status()).toBe(200);
    texts.push(await rotated.text());
    for (const t of texts) expect(leaks(t, secret)).toEqual([]);

    const crossSite = body(randomSecret());
    const refused = await api.post("/api/v1/credentials", { data: crossSite, headers: { origin: "https://evil.example" } });
    expect(refused.status()).toBe(403);
    expect(await refused.json()).toMatchObject({ error: "csrf" });
    expect(await db.credential.count({ where: { name: crossSite.name } })).toBe(0);
    // No GET changes state.
    expect((await api.get(`/api/v1/credentials/${credential.id}/rotate`)).status()).toBe(405);
  });
});
