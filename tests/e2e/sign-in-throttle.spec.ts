import { unique } from "../support/factories";
import { expect, test } from "./support/fixtures";

/**
 * Password guessing against one account, through next-auth's endpoint (what a script uses) and
 * then the sign-in form (what a person sees). Per-address limits are tested against the
 * throttle itself (tests/integration/auth), so this file never locks out the loopback address
 * the other browser tests sign in from; it clears what it counted when it is done.
 */
test.afterEach(async ({ db }) => {
  await db.signInThrottle.deleteMany({ where: { key: { startsWith: "address:" } } });
});

test("after five wrong passwords an account is locked: the API says 429 with Retry-After, the form says how long", async ({ request, page, createUser, db }) => {
  const victim = await createUser("admin");
  const guess = async (password: string) => {
    const { csrfToken } = (await (await request.get("/api/auth/csrf")).json()) as { csrfToken: string };
    return request.post("/api/auth/callback/password", { form: { csrfToken, email: victim.email, password, callbackUrl: "/agents" }, maxRedirects: 0 });
  };
  for (let i = 0; i < 5; i++) {
    const r = await guess(`Spring2026-${i}!`);
    expect(r.status()).toBe(302);
    expect(r.headers()["location"]).toContain("error=CredentialsSignin");
  }
  const locked = await guess(victim.password);
  expect(locked.status()).toBe(429);
  const retryAfter = Number(locked.headers()["retry-after"]);
  expect(retryAfter).toBeGreaterThan(0);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(await locked.json()).toMatchObject({ error: "rate_limited", retryAfterSeconds: retryAfter });
  expect(await db.session.count({ where: { userId: victim.id } })).toBe(0);

  // The person with the right password is told, in a sentence, to wait.
  await page.goto("/login");
  await page.getByLabel("Email").fill(victim.email);
  await page.getByLabel("Password").fill(victim.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert").filter({ hasText: "Too many" })).toHaveText(/^Too many failed sign-in attempts for this account or from your network\. Try again in (a minute|\d+ minutes)\.$/);
  await expect(page).toHaveURL(/\/login/);
  expect(await db.session.count({ where: { userId: victim.id } })).toBe(0);

  // The audit has the individual failures and one lock, not an event per refused attempt.
  const events = await db.auditEvent.findMany({ where: { OR: [{ data: { path: ["email"], equals: victim.email } }, { data: { path: ["account"], equals: victim.email } }] } });
  expect(events.filter((e) => e.type === "auth.sign_in_failed")).toHaveLength(4);
  expect(events.filter((e) => e.type === "auth.sign_in_throttled")).toHaveLength(1);
});

test("X-Forwarded-For from a client is not believed: rotating it does not escape the address's count", async ({ request, db }) => {
  const email = () => `${unique("spray")}@example.test`;
  for (let i = 0; i < 20; i++) {
    const { csrfToken } = (await (await request.get("/api/auth/csrf")).json()) as { csrfToken: string };
    await request.post("/api/auth/callback/password", {
      form: { csrfToken, email: email(), password: "Winter2026!" },
      headers: { "x-forwarded-for": `203.0.113.${i}`, "x-real-ip": `203.0.113.${i}`, forwarded: `for=203.0.113.${i}` },
      maxRedirects: 0,
    });
  }
  const { csrfToken } = (await (await request.get("/api/auth/csrf")).json()) as { csrfToken: string };
  const refused = await request.post("/api/auth/callback/password", { form: { csrfToken, email: email(), password: "Winter2026!" }, headers: { "x-forwarded-for": "198.51.100.99" }, maxRedirects: 0 });
  expect(refused.status()).toBe(429);
  const key = await db.signInThrottle.findFirstOrThrow({ where: { key: { startsWith: "address:" } }, orderBy: { lastFailureAt: "desc" } });
  expect(key.key).toBe("address:127.0.0.1");
});
