import { expect, test } from "./support/fixtures";
import { startDashboardBehindLink } from "./support/second-dashboard";

/**
 * A second production dashboard, the suite's own environment, reaching PostgreSQL through a link
 * the test can cut: with the database down, a signed-in person is neither let in nor signed out,
 * pages and the API say the database is unavailable (503 with Retry-After for the API), signing
 * in says so instead of "wrong password" or "misconfigured", and once the database is back the
 * same session works again.
 */
test("a dashboard whose database is down says so, lets nobody in, and signs nobody out", async ({ page, playwright, createUser }) => {
  test.setTimeout(120_000);
  const admin = await createUser("admin");
  const { dashboard, link, stop } = await startDashboardBehindLink();
  const { base } = dashboard;
  const api = await playwright.request.newContext({ baseURL: base, extraHTTPHeaders: { origin: base } });
  try {
    // Signed in while the database answers.
    const { csrfToken } = (await (await api.get("/api/auth/csrf")).json()) as { csrfToken: string };
    const signedIn = await api.post("/api/auth/callback/password", { form: { csrfToken, email: admin.email, password: admin.password, callbackUrl: "/agents" }, maxRedirects: 0 });
    expect(signedIn.status()).toBe(302);
    expect((await api.get("/api/v1/agents")).status()).toBe(200);
    await page.context().addCookies((await api.storageState()).cookies);
    await page.goto(`${base}/agents`);
    await expect(page.getByRole("heading", { name: "Agents", exact: true })).toBeVisible();

    link.refuse();

    // The API: 503 with a reason and when to come back, not 401 "sign in" and not 500.
    const down = await api.get("/api/v1/agents");
    expect(down.status()).toBe(503);
    expect(down.headers()["retry-after"]).toBe("5");
    expect(await down.json()).toEqual({ error: "database_unavailable", message: "Bulkhead cannot reach its database right now. Try again in a moment." });
    // A page: the sentence, no data, and no redirect to sign in.
    await page.goto(`${base}/agents`);
    expect(new URL(page.url()).pathname).toBe("/agents");
    await expect(page.getByRole("heading", { name: "Bulkhead cannot reach its database" })).toBeVisible();
    await expect(page.getByRole("link", { name: "Tasks" })).toHaveCount(0);
    // Signing in, through the HTTP endpoint and through the page, says why it cannot work now
    // (not "wrong password", not "misconfigured", not a 500).
    const stranger = await playwright.request.newContext({ baseURL: base, extraHTTPHeaders: { origin: base } });
    const csrf2 = ((await (await stranger.get("/api/auth/csrf")).json()) as { csrfToken: string }).csrfToken;
    const refused = await stranger.post("/api/auth/callback/password", { form: { csrfToken: csrf2, email: admin.email, password: admin.password, callbackUrl: "/agents" }, maxRedirects: 0 });
    expect(refused.status()).toBe(503);
    expect(refused.headers()["retry-after"]).toBe("5");
    expect((await refused.json()).error).toBe("database_unavailable");
    await stranger.dispose();
    const browser = page.context().browser()!;
    const signedOut = await browser.newContext();
    const login = await signedOut.newPage();
    await login.goto(`${base}/login`);
    await login.getByLabel("Email").fill(admin.email);
    await login.getByLabel("Password").fill(admin.password);
    await login.getByRole("button", { name: "Sign in" }).click();
    await expect(login.getByRole("alert").filter({ hasText: "cannot reach" })).toHaveText("Bulkhead cannot reach its database right now. Try again in a moment. Signing in works again once it is back.");
    expect(new URL(login.url()).pathname).toBe("/login");
    // The sign-in page itself, for someone whose session cannot be checked now.
    const mine = await page.context().newPage();
    await mine.goto(`${base}/login`);
    await expect(mine.getByRole("alert").filter({ hasText: "cannot reach" })).toHaveText("Bulkhead cannot reach its database right now. Try again in a moment. Signing in works again once it is back.");
    await mine.close();
    await signedOut.close();

    link.pass();

    // Back: the same session works, nobody was signed out.
    await expect.poll(async () => (await api.get("/api/v1/agents")).status(), { timeout: 30_000, intervals: [250] }).toBe(200);
    await page.goto(`${base}/agents`);
    await expect(page.getByRole("heading", { name: "Agents", exact: true })).toBeVisible();
    expect(dashboard.logs()).not.toContain("Unhandled error");
  } finally {
    await api.dispose();
    await stop();
  }
});
