import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAuthConfig } from "@/lib/auth/auth-config";
import { oidcProviderKey } from "@/lib/auth/authenticate";
import { hashSessionToken } from "@/lib/auth/sessions";
import { isFresh } from "@/lib/auth/step-up";
import { loadAppConfig } from "@/lib/config/app";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { AuthClient } from "../../support/auth-client";
import { makeUser, unique } from "../../support/factories";
import { startOidcProvider, type OidcProvider } from "../../support/oidc-provider";

const SECRET = "oidc-test-secret-oidc-test-secret-0123";

/**
 * The whole OIDC flow, with a real (local) identity provider: discovery, authorization with
 * state, nonce and PKCE, the token endpoint, a signed ID token, and Bulkhead's next-auth
 * configuration deciding whether to link and sign in. The provider here is "permissive": it
 * lets anyone claim any email, as a self-service tenant of a real provider does.
 */
describe("OIDC sign-in links and signs in only on email_verified === true", () => {
  let t: TestDatabase;
  let idp: OidcProvider;
  let otherIdp: OidcProvider;
  const configFor = (provider: OidcProvider) => ({
    ...buildAuthConfig(
      loadAppConfig({
        AUTH_SECRET: SECRET,
        BULKHEAD_PUBLIC_URL: "http://127.0.0.1:3999",
        BULKHEAD_OIDC_ISSUER: provider.issuer,
        BULKHEAD_OIDC_CLIENT_ID: provider.clientId,
        BULKHEAD_OIDC_CLIENT_SECRET: provider.clientSecret,
      }),
      t.db,
    ),
    // Refusals are expected here; next-auth would log each one as an error.
    logger: { error: () => undefined },
  });

  beforeAll(async () => {
    t = await createTestDatabase();
    idp = await startOidcProvider();
    otherIdp = await startOidcProvider();
  });
  afterAll(async () => {
    await idp.close();
    await otherIdp.close();
    await t.drop();
  });

  async function signIn(provider: OidcProvider, claims: Record<string, unknown> & { sub: string }) {
    const client = new AuthClient(configFor(provider));
    provider.nextLogin(claims);
    const response = await client.signInWithOidc(provider);
    const session = client.jar.get("authjs.session-token");
    return { client, response, location: response.headers.get("location") ?? "", session };
  }

  const accountsOf = (userId: string) => t.db.account.count({ where: { userId } });
  const sessionsOf = (userId: string) => t.db.session.count({ where: { userId } });

  it("takes over nothing when the provider does not assert a verified email", async () => {
    const admin = await makeUser(t.db, "admin");
    for (const emailVerified of [undefined, false, "true", 1, "yes", null, {}]) {
      const claims = { sub: unique("attacker"), email: admin.email, ...(emailVerified === undefined ? {} : { email_verified: emailVerified }) };
      const { response, location, session } = await signIn(idp, claims);
      expect(response.status, JSON.stringify(emailVerified)).toBe(302);
      expect(location, JSON.stringify(emailVerified)).toMatch(/\/login\?error=AccessDenied/);
      expect(session, JSON.stringify(emailVerified)).toBeUndefined();
    }
    expect(await accountsOf(admin.user.id)).toBe(0);
    expect(await sessionsOf(admin.user.id)).toBe(0);
    const refusals = await t.db.auditEvent.count({ where: { type: "auth.sign_in_failed", reason: { contains: "email_verified is not true" } } });
    expect(refusals).toBeGreaterThanOrEqual(7);
  });

  it("links a verified identity to the pre-created user, signs in, and follows the link afterwards", async () => {
    const approver = await makeUser(t.db, "approver");
    const sub = unique("sub");
    const first = await signIn(idp, { sub, email: approver.email.toUpperCase(), email_verified: true });
    expect(first.location).toBe("http://127.0.0.1:3999/agents");
    expect(first.session).toBeDefined();
    const account = await t.db.account.findFirstOrThrow({ where: { userId: approver.user.id } });
    expect(account).toMatchObject({ provider: oidcProviderKey(idp.issuer), providerAccountId: sub });
    expect(await t.db.auditEvent.count({ where: { type: "auth.identity_linked", actorId: approver.user.id } })).toBe(1);
    // The state, nonce and PKCE checks were all in play.
    const authorize = idp.authorizations.at(-1)!;
    expect(authorize.get("code_challenge_method")).toBe("S256");
    expect(authorize.get("state")).toBeTruthy();
    expect(authorize.get("nonce")).toBeTruthy();

    const again = await signIn(idp, { sub, email: "changed@example.test", email_verified: true });
    expect(again.location).toBe("http://127.0.0.1:3999/agents");
    expect(await accountsOf(approver.user.id)).toBe(1);
    // A linked identity whose provider stops asserting a verified email is refused too.
    const unverified = await signIn(idp, { sub, email: approver.email, email_verified: false });
    expect(unverified.location).toMatch(/error=AccessDenied/);
    expect(unverified.session).toBeUndefined();
  });

  it("scopes links to the provider: the same subject at another issuer is a different identity", async () => {
    const victim = await makeUser(t.db, "admin");
    const sub = unique("shared-sub");
    await signIn(idp, { sub, email: victim.email, email_verified: true });
    expect(await accountsOf(victim.user.id)).toBe(1);
    // Another provider (a second tenant, or a reconfigured one) issues the same subject to an
    // attacker, without a verified email: the old link must not apply.
    const attacker = await signIn(otherIdp, { sub, email: `${unique("attacker")}@example.test`, email_verified: false });
    expect(attacker.location).toMatch(/error=AccessDenied/);
    const unverifiedVictimEmail = await signIn(otherIdp, { sub, email: victim.email });
    expect(unverifiedVictimEmail.session).toBeUndefined();
    expect(await sessionsOf(victim.user.id)).toBe(1);
  });

  it("refuses disabled users and emails with no account, and never creates users", async () => {
    const disabled = await makeUser(t.db, "auditor");
    await t.db.user.update({ where: { id: disabled.user.id }, data: { disabledAt: new Date() } });
    const users = await t.db.user.count();
    expect((await signIn(idp, { sub: unique("d"), email: disabled.email, email_verified: true })).location).toMatch(/error=AccessDenied/);
    expect((await signIn(idp, { sub: unique("n"), email: `${unique("nobody")}@example.test`, email_verified: true })).location).toMatch(/error=AccessDenied/);
    expect(await t.db.user.count()).toBe(users);
  });

  it("dates the session's authentication by the provider's auth_time, so an old single sign-on is not fresh for step-up", async () => {
    const admin = await makeUser(t.db, "admin");
    const hourAgo = Math.floor(Date.now() / 1000) - 3600;
    const { session } = await signIn(idp, { sub: unique("sso"), email: admin.email, email_verified: true, auth_time: hourAgo });
    expect(session).toBeDefined();
    const row = await t.db.session.findFirstOrThrow({ where: { userId: admin.user.id }, orderBy: { createdAt: "desc" } });
    expect(row.authMethod).toBe("oidc");
    expect(Math.round(row.authenticatedAt.getTime() / 1000)).toBe(hourAgo);
    expect(isFresh({ kind: "user", userId: admin.user.id, email: admin.email, role: "admin", authenticatedAt: row.authenticatedAt.getTime() }, Date.now(), 300)).toBe(false);
    // Re-authentication asks the provider for a new login, which yields a fresh auth_time.
    const client = new AuthClient(configFor(idp));
    idp.nextLogin({ sub: (await t.db.account.findFirstOrThrow({ where: { userId: admin.user.id } })).providerAccountId, email: admin.email, email_verified: true, auth_time: Math.floor(Date.now() / 1000) });
    await client.signInWithOidc(idp, { prompt: "login", max_age: "0" });
    expect(idp.authorizations.at(-1)!.get("prompt")).toBe("login");
    expect(idp.authorizations.at(-1)!.get("max_age")).toBe("0");
    const token = client.jar.get("authjs.session-token");
    expect(token).toBeDefined();
    const fresh = await t.db.session.findFirstOrThrow({ where: { userId: admin.user.id }, orderBy: { createdAt: "desc" } });
    expect(Date.now() - fresh.authenticatedAt.getTime()).toBeLessThan(60_000);
  });

  it("never stores the session token itself", async () => {
    const u = await makeUser(t.db, "auditor");
    const { client } = await signIn(idp, { sub: unique("s"), email: u.email, email_verified: true });
    const rows = await t.db.session.findMany({ where: { userId: u.user.id } });
    expect(rows).toHaveLength(1);
    // The cookie is next-auth's encrypted JWT; the row holds only the hash of the random sid inside it.
    expect(rows[0]!.tokenHash).not.toBe(client.jar.get("authjs.session-token"));
    expect(rows[0]!.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashSessionToken("x")).toMatch(/^[0-9a-f]{64}$/);
  });
});
