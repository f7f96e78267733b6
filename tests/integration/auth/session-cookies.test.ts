import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAuthConfig } from "@/lib/auth/auth-config";
import { passwordSignInRoute } from "@/lib/auth/sign-in-route";
import { loadAppConfig, type AppConfig } from "@/lib/config/app";
import { PEER_HEADER } from "@/lib/http/client-address";
import { Auth } from "@auth/core";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { AuthClient } from "../../support/auth-client";
import { makeUser, TEST_PASSWORD, unique } from "../../support/factories";

const SECRET = "cookie-test-secret-cookie-test-secret-01";

describe("session cookies", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  const client = (publicUrl: string) =>
    new AuthClient({ ...buildAuthConfig(loadAppConfig({ AUTH_SECRET: SECRET, BULKHEAD_PUBLIC_URL: publicUrl }), t.db), logger: { error: () => undefined } }, publicUrl);

  it("over https: every cookie is __Host- (Secure, Path=/, no Domain), HttpOnly and SameSite=Lax", async () => {
    const user = await makeUser(t.db, "auditor");
    const c = client("https://bulkhead.example.test");
    const response = await c.signInWithPassword(user.email, TEST_PASSWORD);
    expect(response.status).toBe(302);
    const session = c.cookie("__Host-authjs.session-token");
    expect(session, c.setCookies.map((x) => x.raw).join("\n")).toBeDefined();
    expect(c.setCookies.length).toBeGreaterThanOrEqual(2);
    for (const cookie of c.setCookies) {
      expect(cookie.name, cookie.raw).toMatch(/^__Host-authjs\./);
      expect(cookie.attributes.has("secure"), cookie.raw).toBe(true);
      expect(cookie.attributes.get("path"), cookie.raw).toBe("/");
      expect(cookie.attributes.has("domain"), cookie.raw).toBe(false);
      expect(cookie.attributes.has("httponly"), cookie.raw).toBe(true);
      expect(cookie.attributes.get("samesite")?.toLowerCase(), cookie.raw).toBe("lax");
    }
    // The cookie names the session; the session is a row.
    expect(await t.db.session.count({ where: { userId: user.user.id } })).toBe(1);
  });

  it("over plain http (loopback): no prefix and not Secure, which browsers other than Chromium would drop; still HttpOnly and Lax", async () => {
    const user = await makeUser(t.db, "auditor");
    const c = client("http://127.0.0.1:3999");
    await c.signInWithPassword(user.email, TEST_PASSWORD);
    const session = c.cookie("authjs.session-token");
    expect(session).toBeDefined();
    for (const cookie of c.setCookies) {
      expect(cookie.name, cookie.raw).not.toMatch(/^__(Host|Secure)-/);
      expect(cookie.attributes.has("secure"), cookie.raw).toBe(false);
      expect(cookie.attributes.has("httponly"), cookie.raw).toBe(true);
    }
  });
});

describe("throttled password sign-in through the API answers 429 with Retry-After", () => {
  let t: TestDatabase;
  let app: AppConfig;
  beforeAll(async () => {
    t = await createTestDatabase();
    app = loadAppConfig({ AUTH_SECRET: SECRET, BULKHEAD_PUBLIC_URL: "http://127.0.0.1:3999", BULKHEAD_INTERNAL_PEER_TOKEN: "peer-token", BULKHEAD_SIGNIN_ADDRESS_ATTEMPTS: "6" });
  });
  afterAll(() => t.drop());

  /** The /api/auth route as the dashboard serves it: the throttle in front of next-auth. */
  function routeClient(peer: string) {
    const config = { ...buildAuthConfig(app, t.db), logger: { error: () => undefined } };
    const c = new AuthClient(config, "http://127.0.0.1:3999", { [PEER_HEADER]: `peer-token;${peer}` });
    // next-auth reads a JSON body as well as a form (@auth/core's getBody), so API clients send either.
    const post = (email: string, password: string, csrfToken: string, as: "form" | "json" = "form") =>
      passwordSignInRoute(
        new Request("http://127.0.0.1:3999/api/auth/callback/password", {
          method: "POST",
          headers: { "content-type": as === "json" ? "application/json" : "application/x-www-form-urlencoded", [PEER_HEADER]: `peer-token;${peer}`, cookie: [...c.jar].map(([k, v]) => `${k}=${v}`).join("; ") },
          body: as === "json" ? JSON.stringify({ csrfToken, email, password }) : new URLSearchParams({ csrfToken, email, password, callbackUrl: "http://127.0.0.1:3999/agents" }).toString(),
        }),
        app,
        t.db,
        (r) => Auth(r, config),
      );
    return { c, post };
  }

  it("per account", async () => {
    const victim = await makeUser(t.db, "admin");
    const { c, post } = routeClient("203.0.113.10");
    const csrf = await c.csrfToken();
    for (let i = 0; i < 5; i++) {
      const r = await post(victim.email, `wrong-${i}`, csrf);
      expect(r.status).toBe(302);
      expect(r.headers.get("location")).toMatch(/error=CredentialsSignin/);
    }
    const refused = await post(victim.email, TEST_PASSWORD, csrf);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await refused.json()).toMatchObject({ error: "rate_limited", retryAfterSeconds: retryAfter, message: expect.stringMatching(/Try again in/) });
    expect(await t.db.session.count({ where: { userId: victim.user.id } })).toBe(0);
  });

  it("per account with a JSON body too: Retry-After is the lock's real length, not a second", async () => {
    const victim = await makeUser(t.db, "admin");
    const { c, post } = routeClient("203.0.113.30");
    const csrf = await c.csrfToken();
    for (let i = 0; i < 5; i++) expect((await post(victim.email, `wrong-${i}`, csrf, "json")).status).toBe(302);
    const refused = await post(victim.email, TEST_PASSWORD, csrf, "json");
    expect(refused.status).toBe(429);
    // Before, the route read the email from forms only: a JSON attempt was refused by the
    // account's lock inside next-auth, and the answer said to come back in 1 second.
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(50);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await refused.json()).toMatchObject({ error: "rate_limited", retryAfterSeconds: retryAfter });
    expect(await t.db.session.count({ where: { userId: victim.user.id } })).toBe(0);
  });

  it("per address, whatever X-Forwarded-For says (no trusted proxy is configured)", async () => {
    const { c, post } = routeClient("203.0.113.20");
    const csrf = await c.csrfToken();
    for (let i = 0; i < 6; i++) await post(`${unique("spray")}@example.test`, "Winter2026!", csrf);
    const victim = await makeUser(t.db, "approver");
    const refused = await passwordSignInRoute(
      new Request("http://127.0.0.1:3999/api/auth/callback/password", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", [PEER_HEADER]: "peer-token;203.0.113.20", "x-forwarded-for": `198.51.100.${Math.floor(Math.random() * 200)}` },
        body: new URLSearchParams({ csrfToken: csrf, email: victim.email, password: TEST_PASSWORD }).toString(),
      }),
      app,
      t.db,
      () => Promise.reject(new Error("next-auth must not run for a throttled attempt")),
    );
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
  });
});
