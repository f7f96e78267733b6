import { expect, test } from "./support/fixtures";
import { startSecondDashboard } from "./support/second-dashboard";

/**
 * next-auth's endpoints (`/api/auth/*`) asked what they have no answer for, by anyone, signed out:
 * a `callbackUrl` (parameter or cookie) that is not an http URL was a 500 "problem with the server
 * configuration" (and, with the cookie set, the sign-in form itself was); a provider this dashboard
 * does not have, the password callback by GET, endpoints of providers it never configures were a
 * redirect to "Sign-in is misconfigured on the server"; and each of these, every wrong password and
 * every missing CSRF token wrote an error with a stack trace to the log. A second production
 * dashboard, with its output read by the test (lib/auth/auth-endpoints.ts).
 */
const LOGGED_ERROR = /\[auth\]\[error\]|Error:|⨯/;

test("next-auth's endpoints answer a client's bad request as the client's: no 5xx, never 'misconfigured', nothing in the log", async ({ playwright, createUser }) => {
  test.setTimeout(120_000);
  const admin = await createUser("admin");
  const dashboard = await startSecondDashboard();
  const host = new URL(dashboard.base).hostname;
  const api = await playwright.request.newContext({ baseURL: dashboard.base, extraHTTPHeaders: { origin: dashboard.base } });
  // A callback-URL cookie another program on this host set (on plain http it has no __Host- prefix).
  const cookied = await playwright.request.newContext({
    baseURL: dashboard.base,
    extraHTTPHeaders: { origin: dashboard.base },
    storageState: { cookies: [{ name: "authjs.callback-url", value: "foo%3Abar", domain: host, path: "/", expires: -1, httpOnly: true, secure: false, sameSite: "Lax" }], origins: [] },
  });
  try {
    for (const path of ["/api/auth/session", "/api/auth/csrf", "/api/auth/providers"]) {
      for (const callbackUrl of ["foo:bar", "javascript:alert(1)", " ", "agents", "//"]) {
        const res = await api.get(`${path}?callbackUrl=${encodeURIComponent(callbackUrl)}`, { maxRedirects: 0 });
        expect(res.status(), `${path} callbackUrl=${callbackUrl}`).toBe(200);
      }
      expect((await cookied.get(path, { maxRedirects: 0 })).status(), `${path} with the cookie`).toBe(200);
    }
    for (const path of ["/api/auth/signin", "/api/auth/signout"]) {
      const res = await api.get(`${path}?callbackUrl=foo:bar`, { maxRedirects: 0 });
      expect(res.status(), path).toBeLessThan(500);
      expect(res.headers()["location"] ?? "", path).not.toContain("Configuration");
    }

    // Endpoints this dashboard does not have: the API's JSON error shape, never a page or a redirect.
    const refused: Array<[string, string, number, string?]> = [
      ["GET", "/api/auth/nope", 404],
      ["GET", "/api/auth/verify-request", 404],
      ["GET", "/api/auth/webauthn-options/password", 404],
      ["GET", "/api/auth/signin/oidc", 404],
      ["GET", "/api/auth/signin/password", 404],
      ["POST", "/api/auth/signin/oidc", 404],
      ["GET", "/api/auth/callback/oidc?code=x&state=y", 404],
      ["POST", "/api/auth/callback/credentials", 404],
      ["GET", "/api/auth/callback", 404],
      ["GET", "/api/auth/csrf/password", 404],
      ["GET", "/api/auth/callback/password/x", 404],
      ["GET", "/api/auth/callback/password?email=a@example.com&password=x", 405, "POST"],
      ["POST", "/api/auth/csrf", 405, "GET"],
      ["POST", "/api/auth/providers", 405, "GET"],
      ["POST", "/api/auth/error", 405, "GET"],
      ["PUT", "/api/auth/session", 405, "GET, POST"],
      ["DELETE", "/api/auth/signout", 405, "GET, POST"],
      ["PATCH", "/api/auth/nope", 404],
    ];
    for (const [method, path, status, allow] of refused) {
      const res = await api.fetch(path, { method, maxRedirects: 0, ...(method === "GET" ? {} : { form: { x: "1" } }) });
      const what = `${method} ${path}`;
      expect(res.status(), what).toBe(status);
      expect(res.headers()["content-type"], what).toContain("application/json");
      expect(res.headers()["cache-control"], what).toContain("no-store");
      expect(await res.json(), what).toMatchObject({ error: status === 404 ? "not_found" : "method_not_allowed", message: expect.any(String) });
      if (allow) expect(res.headers()["allow"], what).toBe(allow);
    }

    // A client's mistakes: told as before, not logged (a sign-in failure is in the audit).
    const { csrfToken } = (await (await api.get("/api/auth/csrf")).json()) as { csrfToken: string };
    const wrong = await api.post("/api/auth/callback/password", { form: { csrfToken, email: admin.email, password: "not the password at all", callbackUrl: "/agents" }, maxRedirects: 0 });
    expect(wrong.headers()["location"]).toContain("error=CredentialsSignin");
    const noCsrf = await api.post("/api/auth/signout", { form: { callbackUrl: "/login" }, maxRedirects: 0 });
    expect(noCsrf.status()).toBeLessThan(500);
    expect(noCsrf.headers()["location"] ?? "").not.toContain("Configuration");

    // And the endpoints still work: the sign-in form's post signs in, also with the cookie set.
    for (const client of [api, cookied]) {
      const token = ((await (await client.get("/api/auth/csrf")).json()) as { csrfToken: string }).csrfToken;
      const signedIn = await client.post("/api/auth/callback/password?callbackUrl=foo:bar", { form: { csrfToken: token, email: admin.email, password: admin.password, callbackUrl: "/agents" }, maxRedirects: 0 });
      expect(signedIn.status()).toBe(302);
      expect(signedIn.headers()["location"]).toBe(`${dashboard.base}/agents`);
      expect(((await (await client.get("/api/auth/session")).json()) as { user?: unknown } | null)?.user).toBeTruthy();
      expect((await client.get("/api/v1/me")).status()).toBe(200);
    }
    // A posted callbackUrl that is no URL at all: the right password signs in, to the dashboard.
    for (const callbackUrl of ["%2F%2Fevil.example", "\t//evil.example", "agents", "foo:bar"]) {
      const fresh = await playwright.request.newContext({ baseURL: dashboard.base, extraHTTPHeaders: { origin: dashboard.base } });
      const token = ((await (await fresh.get("/api/auth/csrf")).json()) as { csrfToken: string }).csrfToken;
      const res = await fresh.post("/api/auth/callback/password", { form: { csrfToken: token, email: admin.email, password: admin.password, callbackUrl }, maxRedirects: 0 });
      expect(res.headers()["location"], JSON.stringify(callbackUrl)).toBe(`${dashboard.base}`);
      expect((await fresh.get("/api/v1/me")).status(), JSON.stringify(callbackUrl)).toBe(200);
      await fresh.dispose();
    }
    expect(dashboard.logs()).not.toMatch(LOGGED_ERROR);
  } finally {
    await api.dispose();
    await cookied.dispose();
    await dashboard.stop();
  }
});

test("the sign-in form works in a browser that holds a callback-URL cookie next-auth would refuse, and the browser drops it", async ({ browser, createUser }, testInfo) => {
  const admin = await createUser("auditor");
  const baseURL = testInfo.project.use.baseURL!;
  const context = await browser.newContext({ baseURL });
  await context.addCookies([{ name: "authjs.callback-url", value: "foo%3Abar", url: baseURL }]);
  const page = await context.newPage();
  await page.goto("/login");
  await page.getByLabel("Email").fill(admin.email);
  await page.getByLabel("Password").fill(admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/agents$/);
  await expect(page.getByRole("heading", { name: "Agents", exact: true, level: 1 })).toBeVisible();
  expect((await context.cookies()).find((c) => c.name === "authjs.callback-url")?.value ?? "").not.toBe("foo%3Abar");
  await context.close();
});
