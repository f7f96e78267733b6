import { request as playwrightRequest, type APIRequestContext } from "@playwright/test";
import { unique } from "../support/factories";
import { expect, signInViaApi, test } from "./support/fixtures";

/** Another browser of the same person (or of someone else): its own cookie jar, the dashboard's Origin. */
async function otherBrowser(userAgent = "other-browser/1.0"): Promise<APIRequestContext> {
  const baseURL = test.info().project.use.baseURL!;
  return playwrightRequest.newContext({ baseURL, extraHTTPHeaders: { origin: new URL(baseURL).origin, "user-agent": userAgent } });
}

const origin = () => new URL(test.info().project.use.baseURL!).origin;

async function sessionCookieOf(ctx: APIRequestContext): Promise<string> {
  const cookie = (await ctx.storageState()).cookies.find((c) => c.name === "authjs.session-token");
  expect(cookie, "signed in").toBeDefined();
  return `authjs.session-token=${cookie!.value}`;
}

test("your account lists your sessions with where they came from; you can end one, or all others", async ({ page, createUser, db }) => {
  const me = await createUser("approver");
  await signInViaApi(page.request, me.email, me.password);
  const laptop = await otherBrowser("laptop-browser/2.0");
  await signInViaApi(laptop, me.email, me.password);
  const phone = await otherBrowser("phone-browser/3.0");
  await signInViaApi(phone, me.email, me.password);
  const stranger = await createUser("auditor");
  const strangers = await otherBrowser("stranger/1.0");
  await signInViaApi(strangers, stranger.email, stranger.password);

  await page.goto("/account");
  await expect(page.getByRole("heading", { name: "Your account" })).toBeVisible();
  const rows = page.locator("tr[data-session-id]");
  await expect(rows).toHaveCount(3);
  // Where each came from: the address the dashboard's server saw, and the browser.
  const laptopRow = rows.filter({ hasText: "laptop-browser/2.0" });
  await expect(laptopRow).toContainText("127.0.0.1");
  await expect(rows.filter({ hasText: "this session" })).toHaveCount(1);
  await expect(page.getByText("stranger/1.0")).toHaveCount(0);

  await laptopRow.getByRole("button", { name: "Sign out" }).click();
  await expect(rows).toHaveCount(2);
  expect((await laptop.get("/api/v1/me")).status()).toBe(401);
  expect((await phone.get("/api/v1/me")).status()).toBe(200);

  page.once("dialog", (d) => void d.accept());
  await page.getByRole("button", { name: "Sign out everywhere else" }).click();
  await expect(rows).toHaveCount(1);
  expect((await phone.get("/api/v1/me")).status()).toBe(401);
  expect((await page.request.get("/api/v1/me")).status()).toBe(200);
  // Nobody else's session was touched.
  expect((await strangers.get("/api/v1/me")).status()).toBe(200);
  expect(await db.auditEvent.count({ where: { type: "auth.session_ended", actorId: me.id } })).toBe(1);
  expect(await db.auditEvent.count({ where: { type: "auth.other_sessions_ended", actorId: me.id } })).toBe(1);
  for (const ctx of [laptop, phone, strangers]) await ctx.dispose();
});

test("the sessions API: your own only, `current` marked; another person's session id is 404 and keeps working (IDOR)", async ({ createUser, db }) => {
  const alice = await createUser("admin");
  const bob = await createUser("auditor");
  const a = await otherBrowser("alice-browser");
  await signInViaApi(a, alice.email, alice.password);
  const b = await otherBrowser("bob-browser");
  await signInViaApi(b, bob.email, bob.password);

  const listed = (await (await a.get("/api/v1/session/sessions")).json()) as { sessions: Array<{ id: string; current: boolean; ip: string | null; userAgent: string | null }> };
  expect(listed.sessions).toHaveLength(1);
  expect(listed.sessions[0]).toMatchObject({ current: true, ip: "127.0.0.1", userAgent: "alice-browser" });
  const aliceSession = listed.sessions[0]!.id;

  // Bob reaches for Alice's session: not found, exactly like an id that does not exist.
  const idor = await b.delete(`/api/v1/session/sessions/${aliceSession}`);
  expect(idor.status()).toBe(404);
  const unknown = await b.delete("/api/v1/session/sessions/00000000-0000-4000-8000-000000000000");
  expect(unknown.status()).toBe(404);
  expect(await idor.json()).toEqual(await unknown.json());
  expect((await b.get("/api/v1/session/sessions")).ok()).toBe(true);
  expect(((await (await b.get("/api/v1/session/sessions")).json()) as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id)).not.toContain(aliceSession);
  expect((await a.get("/api/v1/me")).status()).toBe(200);
  expect(await db.session.count({ where: { id: aliceSession } })).toBe(1);

  // A cross-site request with Alice's cookie cannot end her session either.
  const crossSite = await a.delete(`/api/v1/session/sessions/${aliceSession}`, { headers: { origin: "https://evil.example" } });
  expect(crossSite.status()).toBe(403);
  expect((await a.get("/api/v1/me")).status()).toBe(200);

  // API keys have no sessions.
  const created = (await (await a.post("/api/v1/api-keys", { data: { name: unique("k"), role: "admin" } })).json()) as { key: string };
  const bare = await playwrightRequest.newContext({ baseURL: test.info().project.use.baseURL });
  expect((await bare.get("/api/v1/session/sessions", { headers: { authorization: `Bearer ${created.key}` } })).status()).toBe(403);

  // Alice ends her own current session through the API: she is signed out.
  expect((await a.delete(`/api/v1/session/sessions/${aliceSession}`)).status()).toBe(200);
  expect((await a.get("/api/v1/me")).status()).toBe(401);
  for (const ctx of [a, b, bare]) await ctx.dispose();
});

test("a session unused past the idle limit is signed out: 401 JSON for the API, the sign-in page for pages; API keys are unaffected", async ({ page, createUser, db }) => {
  const me = await createUser("admin");
  await signInViaApi(page.request, me.email, me.password);
  await page.goto("/agents");
  await expect(page).toHaveURL(/\/agents$/);
  const created = (await (await page.request.post("/api/v1/api-keys", { data: { name: unique("idle-k"), role: "auditor" }, headers: { origin: origin() } })).json()) as { key: string };
  const copy = await sessionCookieOf(page.request);

  // Unused for 61 minutes (the default limit is 60).
  await db.session.updateMany({ where: { userId: me.id }, data: { lastSeenAt: new Date(Date.now() - 61 * 60_000) } });
  const bare = await playwrightRequest.newContext({ baseURL: test.info().project.use.baseURL });
  const api = await bare.get("/api/v1/me", { headers: { cookie: copy } });
  expect(api.status()).toBe(401);
  expect(await api.json()).toMatchObject({ error: "unauthenticated" });
  await page.goto("/agents");
  await expect(page).toHaveURL(/\/login/);
  expect(await db.session.count({ where: { userId: me.id } })).toBe(0);
  expect(await db.auditEvent.count({ where: { type: "auth.session_expired", actorId: me.id } })).toBe(1);

  expect((await bare.get("/api/v1/me", { headers: { authorization: `Bearer ${created.key}` } })).status()).toBe(200);
  await bare.dispose();
});

test("a page left open past the idle limit does not go quietly stale: its live stream ends and the page goes to sign-in", async ({ page, createUser, db }) => {
  const me = await createUser("approver");
  await signInViaApi(page.request, me.email, me.password);
  await page.goto("/approvals");
  await expect(page).toHaveURL(/\/approvals$/);
  await expect(page.getByTestId("pending-badge")).toBeAttached();
  // Nobody touches the page; the open stream is not use. Its session has been idle for 61 minutes.
  await db.session.updateMany({ where: { userId: me.id }, data: { lastSeenAt: new Date(Date.now() - 61 * 60_000) } });
  await expect(page).toHaveURL(/\/login/, { timeout: 20_000 });
});

test("a page whose session was ended elsewhere goes to sign-in too", async ({ page, createUser, db }) => {
  const me = await createUser("auditor");
  await signInViaApi(page.request, me.email, me.password);
  await page.goto("/agents");
  await expect(page.getByTestId("pending-badge")).toBeAttached();
  await db.session.deleteMany({ where: { userId: me.id } });
  await expect(page).toHaveURL(/\/login/, { timeout: 20_000 });
});

test("changing your password signs out your other sessions and a copy of your cookie; this one carries on", async ({ page, createUser, db }) => {
  const me = await createUser("auditor");
  await signInViaApi(page.request, me.email, me.password);
  const other = await otherBrowser();
  await signInViaApi(other, me.email, me.password);
  const copiedCookie = await sessionCookieOf(page.request);

  await page.goto("/account");
  const form = page.getByRole("form", { name: "Change password" });
  await form.getByLabel("Current password").fill("not my password at all");
  await form.getByLabel("New password", { exact: true }).fill("a new long password 1");
  await form.getByLabel("New password again").fill("a new long password 1");
  await form.getByRole("button", { name: "Change password" }).click();
  // Said once, at its field; the form's own alert points there.
  await expect(form.getByText("Your current password is not correct.")).toBeVisible();
  await expect(form.getByText("Your current password is not correct.")).toHaveCount(1);
  await expect(form.getByRole("alert")).toContainText("Please correct the highlighted field.");
  expect((await other.get("/api/v1/me")).status()).toBe(200);

  await form.getByLabel("Current password").fill(me.password);
  await form.getByLabel("New password", { exact: true }).fill("short");
  await form.getByLabel("New password again").fill("short");
  await form.getByRole("button", { name: "Change password" }).click();
  await expect(form.getByText("Use at least 12 characters.")).toBeVisible();

  await form.getByLabel("New password", { exact: true }).fill("a new long password 1");
  await form.getByLabel("New password again").fill("a new long password 1");
  await form.getByRole("button", { name: "Change password" }).click();
  await expect(form.getByRole("status")).toContainText("1 other session was signed out.");

  expect((await other.get("/api/v1/me")).status()).toBe(401);
  const bare = await playwrightRequest.newContext({ baseURL: test.info().project.use.baseURL });
  expect((await bare.get("/api/v1/me", { headers: { cookie: copiedCookie } })).status(), "a copy of the old cookie still works").toBe(401);
  // This browser got the new cookie and stays signed in.
  await page.goto("/agents");
  await expect(page).toHaveURL(/\/agents$/);
  expect((await page.request.get("/api/v1/me")).status()).toBe(200);
  expect(await db.auditEvent.count({ where: { type: "user.password_changed", actorId: me.id } })).toBe(1);
  // The new password signs in; the old one does not.
  const fresh = await otherBrowser();
  await signInViaApi(fresh, me.email, "a new long password 1");
  for (const ctx of [other, bare, fresh]) await ctx.dispose();
});

test("an account that signs in through the identity provider has no password to change here", async ({ page, createUser, db }) => {
  const me = await createUser("auditor");
  await signInViaApi(page.request, me.email, me.password);
  await db.user.update({ where: { id: me.id }, data: { passwordHash: null } });
  await page.goto("/account");
  await expect(page.getByText("change your password there")).toBeVisible();
  await expect(page.getByRole("form", { name: "Change password" })).toHaveCount(0);
  const res = await page.request.post("/api/v1/session/password", { data: { currentPassword: me.password, newPassword: "a new long password 2" }, headers: { origin: origin() } });
  expect(res.status()).toBe(409);
  expect(await res.json()).toMatchObject({ message: "This account signs in through the identity provider: change your password there." });
});

test("an admin signs a user out everywhere from the Users page", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const victim = await createUser("approver");
  const victims = await otherBrowser();
  await signInViaApi(victims, victim.email, victim.password);
  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/users");
  const row = page.getByRole("row").filter({ hasText: victim.email });
  await row.getByRole("button", { name: "Sign out everywhere" }).click();
  await expect(row.getByRole("status")).toContainText("Signed out.");
  expect((await victims.get("/api/v1/me")).status()).toBe(401);
  expect(await db.auditEvent.count({ where: { type: "user.sessions_ended", actorId: admin.id, data: { path: ["userId"], equals: victim.id } } })).toBe(1);
  // The admin is still signed in.
  expect((await page.request.get("/api/v1/me")).status()).toBe(200);
  await victims.dispose();
});

test("disabling a user on the Users page revokes the API keys they created; re-enabling does not bring them back", async ({ page, createUser, db }) => {
  const admin = await createUser("admin");
  const creator = await createUser("admin");
  const creators = await otherBrowser();
  await signInViaApi(creators, creator.email, creator.password);
  const { key, apiKey } = (await (await creators.post("/api/v1/api-keys", { data: { name: unique("ci"), role: "approver" } })).json()) as { key: string; apiKey: { id: string } };
  const bare = await playwrightRequest.newContext({ baseURL: test.info().project.use.baseURL });
  const withKey = { headers: { authorization: `Bearer ${key}` } };
  expect((await bare.get("/api/v1/me", withKey)).status()).toBe(200);

  await signInViaApi(page.request, admin.email, admin.password);
  await page.goto("/users");
  const row = page.getByRole("row").filter({ hasText: creator.email });
  await row.getByRole("button", { name: "Disable" }).click();
  await expect(row.getByRole("button", { name: "Enable" })).toBeVisible();
  expect((await bare.get("/api/v1/me", withKey)).status()).toBe(401);
  expect((await creators.get("/api/v1/me")).status()).toBe(401);
  expect((await db.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } })).revokedAt).not.toBeNull();

  await row.getByRole("button", { name: "Enable" }).click();
  await expect(row.getByRole("button", { name: "Disable" })).toBeVisible();
  expect((await bare.get("/api/v1/me", withKey)).status(), "re-enabling revived the key").toBe(401);
  const revoked = await db.auditEvent.findFirstOrThrow({ where: { type: "api_key.revoked", data: { path: ["apiKeyId"], equals: apiKey.id } } });
  expect(revoked.reason).toBe("its creator was disabled");
  for (const ctx of [creators, bare]) await ctx.dispose();
});

test("a sign-in through the form (a server action, where next-auth passes no request) records the address and browser too", async ({ page, createUser }) => {
  const me = await createUser("auditor");
  await page.goto("/login");
  await page.getByLabel("Email").fill(me.email);
  await page.getByLabel("Password").fill(me.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/agents$/);
  const userAgent = await page.evaluate(() => navigator.userAgent);
  const listed = (await (await page.request.get("/api/v1/session/sessions")).json()) as { sessions: Array<{ current: boolean; ip: string | null; userAgent: string | null }> };
  expect(listed.sessions).toHaveLength(1);
  expect(listed.sessions[0]).toMatchObject({ current: true, ip: "127.0.0.1", userAgent });
});
