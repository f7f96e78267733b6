import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticateApiKey, createApiKey } from "@/lib/apikeys";
import type { Actor } from "@/lib/auth/actor";
import { actorStillValid } from "@/lib/auth/actor-still-valid";
import { buildAuthConfig } from "@/lib/auth/auth-config";
import { authenticateLocal } from "@/lib/auth/authenticate";
import { changeOwnPassword, resetUserPassword } from "@/lib/auth/change-password";
import { endOtherSessions, endOwnSession, endUserSessions, listOwnSessions } from "@/lib/auth/manage-sessions";
import { sessionTokenOf } from "@/lib/auth/session-origin";
import { createSession, resolveSession } from "@/lib/auth/sessions";
import { reauthenticateWithPassword } from "@/lib/auth/step-up";
import { loadAppConfig } from "@/lib/config/app";
import type { Db } from "@/lib/db/client";
import { PEER_HEADER } from "@/lib/http/client-address";
import { setUserDisabled } from "@/lib/users/users";
import { AuthClient } from "../../support/auth-client";
import { runCli } from "../../support/cli";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, TEST_PASSWORD, unique } from "../../support/factories";
import { startOidcProvider, type OidcProvider } from "../../support/oidc-provider";

const MINUTE = 60_000;
const HOUR = 3600;
const SECRET = "lifecycle-secret-lifecycle-secret-0123456";
const THROTTLE = { accountAttempts: 5, addressAttempts: 50, maxLockoutSeconds: 900 };
const CONTEXT = { address: "192.0.2.10", throttle: THROTTLE };
const NEW_PASSWORD = "a brand new long password";

/** A signed-in person: a real session row and the actor the dashboard builds from it. */
async function signedIn(db: Db, role: "admin" | "approver" | "auditor" = "auditor", user?: Awaited<ReturnType<typeof makeUser>>) {
  const u = user ?? (await makeUser(db, role));
  const token = await createSession(db, u.user.id, 12 * HOUR);
  const s = (await resolveSession(db, token))!;
  const actor: Actor = { kind: "user", userId: u.user.id, email: u.email, role: u.user.role, sessionId: s.sessionId, authenticatedAt: s.authenticatedAt, authMethod: s.authMethod };
  return { ...u, token, sessionId: s.sessionId, actor };
}

async function refusal(promise: Promise<unknown>): Promise<{ code?: string; userMessage?: string }> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, "expected a refusal").not.toBeNull();
  return error as { code?: string; userMessage?: string };
}

const eventsOf = (db: Db, type: string, field: string, value: string) => db.auditEvent.findMany({ where: { type, data: { path: [field], equals: value } } });

describe("idle timeout", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("ends a session unused for longer than the idle limit: deleted, signed out, audited once", async () => {
    const { token, sessionId, user } = await signedIn(t.db);
    const now = Date.now();
    // Unused for 61 minutes against a 60-minute limit.
    expect(await resolveSession(t.db, token, new Date(now + 61 * MINUTE), HOUR)).toBeNull();
    expect(await t.db.session.count({ where: { id: sessionId } })).toBe(0);
    // The next request with the same cookie is simply signed out.
    expect(await resolveSession(t.db, token, new Date(now + 62 * MINUTE), HOUR)).toBeNull();
    const events = await eventsOf(t.db, "auth.session_expired", "sessionId", sessionId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actorId: user.id, reason: "unused for more than 60 minutes" });
    expect((events[0]!.data as { ending: string }).ending).toBe("idle");
  });

  it("measures idleness from the last request as lastSeenAt records it (written at most once a minute)", async () => {
    const { token, sessionId } = await signedIn(t.db);
    const start = (await t.db.session.findUniqueOrThrow({ where: { id: sessionId } })).lastSeenAt.getTime();
    // A request 30 s in is not written (throttle): lastSeenAt stays at the start.
    expect(await resolveSession(t.db, token, new Date(start + 30_000), HOUR)).not.toBeNull();
    expect((await t.db.session.findUniqueOrThrow({ where: { id: sessionId } })).lastSeenAt.getTime()).toBe(start);
    // Used every 50 minutes for three hours: each use is written, so the session never idles.
    for (let minutes = 50; minutes <= 180; minutes += 50) {
      expect(await resolveSession(t.db, token, new Date(start + minutes * MINUTE), HOUR), `after ${minutes} minutes`).not.toBeNull();
      expect((await t.db.session.findUniqueOrThrow({ where: { id: sessionId } })).lastSeenAt.getTime()).toBe(start + minutes * MINUTE);
    }
    // 60 minutes after the last written use it still resolves; a minute more and it has ended.
    const last = start + 150 * MINUTE;
    expect(await resolveSession(t.db, token, new Date(last + 60 * MINUTE), HOUR)).not.toBeNull();
    expect(await resolveSession(t.db, token, new Date(last + 60 * MINUTE + 61 * MINUTE), HOUR)).toBeNull();
  });

  it("ends live streams of an idle session too (an open stream is not use)", async () => {
    const { actor, sessionId } = await signedIn(t.db);
    expect(await actorStillValid(t.db, actor, "read", new Date(), HOUR)).toBe(true);
    await t.db.session.update({ where: { id: sessionId }, data: { lastSeenAt: new Date(Date.now() - 61 * MINUTE) } });
    expect(await actorStillValid(t.db, actor, "read", new Date(), HOUR)).toBe(false);
  });

  it("ends a live stream opened before the session re-authenticated (its cookie, or a copy of it, no longer signs in)", async () => {
    const { actor, token } = await signedIn(t.db, "admin");
    expect(await actorStillValid(t.db, actor, "read", new Date(), HOUR, { sameSignIn: true })).toBe(true);
    const { sessionToken } = await reauthenticateWithPassword(t.db, actor, TEST_PASSWORD, { address: null, throttle: { accountAttempts: 5, addressAttempts: 20, maxLockoutSeconds: 900 } });
    // The old cookie signs nobody in any more; a stream it opened ends too.
    expect(await resolveSession(t.db, token)).toBeNull();
    expect(await actorStillValid(t.db, actor, "read", new Date(), HOUR, { sameSignIn: true })).toBe(false);
    // The person's own browser, with the new cookie, opens it again.
    const fresh = (await resolveSession(t.db, sessionToken))!;
    const again: Actor = { ...actor, authenticatedAt: fresh.authenticatedAt };
    expect(await actorStillValid(t.db, again, "read", new Date(), HOUR, { sameSignIn: true })).toBe(true);
    // A decision in flight is not held to it (it is one request, made with the cookie it was made with).
    expect(await actorStillValid(t.db, actor, "read", new Date(), HOUR)).toBe(true);
  });

  it("a sign-in sweeps the person's ended sessions nobody presented again (a closed browser): deleted, each audited once", async () => {
    const me = await signedIn(t.db);
    const idle = await signedIn(t.db, "auditor", me);
    const expired = await signedIn(t.db, "auditor", me);
    const other = await signedIn(t.db); // someone else's ended session is not this sign-in's to sweep
    await t.db.session.update({ where: { id: idle.sessionId }, data: { lastSeenAt: new Date(Date.now() - 61 * MINUTE) } });
    await t.db.session.update({ where: { id: expired.sessionId }, data: { expiresAt: new Date(Date.now() - MINUTE) } });
    await t.db.session.update({ where: { id: other.sessionId }, data: { lastSeenAt: new Date(Date.now() - 61 * MINUTE) } });
    const token = await createSession(t.db, me.user.id, 12 * HOUR, { idleSeconds: HOUR });
    const left = (await t.db.session.findMany({ where: { userId: me.user.id }, select: { id: true } })).map((r) => r.id);
    expect(left).toHaveLength(2);
    expect(left).toContain(me.sessionId);
    expect(left).toContain((await resolveSession(t.db, token, new Date(), HOUR))!.sessionId);
    expect(await t.db.session.count({ where: { id: other.sessionId } })).toBe(1);
    const idleEvents = await eventsOf(t.db, "auth.session_expired", "sessionId", idle.sessionId);
    expect(idleEvents).toHaveLength(1);
    expect(idleEvents[0]).toMatchObject({ actorId: me.user.id, reason: "unused for more than 60 minutes", data: { ending: "idle", swept: true } });
    expect(await eventsOf(t.db, "auth.session_expired", "sessionId", expired.sessionId)).toMatchObject([{ reason: "its lifetime ended", data: { ending: "lifetime", swept: true } }]);
    // The swept cookies are signed out, and not audited a second time.
    expect(await resolveSession(t.db, idle.token, new Date(), HOUR)).toBeNull();
    expect(await resolveSession(t.db, expired.token, new Date(), HOUR)).toBeNull();
    expect(await eventsOf(t.db, "auth.session_expired", "sessionId", idle.sessionId)).toHaveLength(1);
  });

  it("does not touch API keys: a key unused for hours still works", async () => {
    const admin = await makeUser(t.db, "admin");
    const { key, apiKey } = await createApiKey(t.db, admin.actor, { name: unique("idle-key"), role: "auditor" });
    await t.db.apiKey.update({ where: { id: apiKey.id }, data: { lastUsedAt: new Date(Date.now() - 5 * HOUR * 1000) } });
    expect(await authenticateApiKey(t.db, key)).toMatchObject({ kind: "api_key", apiKeyId: apiKey.id });
  });

  it("is configurable, an hour by default, and never longer than the session lifetime", () => {
    expect(loadAppConfig({}).sessionIdleSeconds).toBe(3600);
    expect(loadAppConfig({ BULKHEAD_SESSION_IDLE_MINUTES: "15" }).sessionIdleSeconds).toBe(900);
    // A lifetime shorter than the default idle limit bounds it.
    expect(loadAppConfig({ BULKHEAD_SESSION_HOURS: "0.5" }).sessionIdleSeconds).toBe(1800);
    expect(() => loadAppConfig({ BULKHEAD_SESSION_HOURS: "1", BULKHEAD_SESSION_IDLE_MINUTES: "61" })).toThrow(/BULKHEAD_SESSION_IDLE_MINUTES.*must not exceed the session lifetime/s);
    expect(() => loadAppConfig({ BULKHEAD_SESSION_IDLE_MINUTES: "1" })).toThrow(/BULKHEAD_SESSION_IDLE_MINUTES.*at least 5 minutes/s);
    expect(() => loadAppConfig({ BULKHEAD_SESSION_IDLE_MINUTES: "soon" })).toThrow(/BULKHEAD_SESSION_IDLE_MINUTES/);
  });
});

describe("where sessions come from, and a new sign-in replacing the browser's session", () => {
  let t: TestDatabase;
  let idp: OidcProvider;
  const env = (extra: Record<string, string> = {}) =>
    loadAppConfig({
      AUTH_SECRET: SECRET,
      BULKHEAD_PUBLIC_URL: "http://127.0.0.1:3999",
      BULKHEAD_INTERNAL_PEER_TOKEN: "peer-token",
      BULKHEAD_OIDC_ISSUER: idp.issuer,
      BULKHEAD_OIDC_CLIENT_ID: idp.clientId,
      BULKHEAD_OIDC_CLIENT_SECRET: idp.clientSecret,
      ...extra,
    });
  /** A browser: the dashboard builds next-auth's configuration per request (lib/auth/next-auth.ts). */
  const browser = (headers: Record<string, string>, extra: Record<string, string> = {}) => {
    const app = env(extra);
    return new AuthClient((request) => ({ ...buildAuthConfig(app, t.db, request), logger: { error: () => undefined } }), "http://127.0.0.1:3999", headers);
  };
  const tokenIn = (client: AuthClient) => sessionTokenOf(new Headers({ cookie: `authjs.session-token=${client.jar.get("authjs.session-token")}` }), env());

  beforeAll(async () => {
    t = await createTestDatabase();
    idp = await startOidcProvider();
  });
  afterAll(async () => {
    await idp.close();
    await t.drop();
  });

  it("records the client's address and User-Agent at password sign-in, ignoring X-Forwarded-For from an untrusted peer", async () => {
    const u = await makeUser(t.db, "auditor");
    const client = browser({ [PEER_HEADER]: "peer-token;203.0.113.7", "user-agent": "Mozilla/5.0 (lifecycle test)", "x-forwarded-for": "198.51.100.66" });
    expect((await client.signInWithPassword(u.email, TEST_PASSWORD)).status).toBe(302);
    const row = await t.db.session.findFirstOrThrow({ where: { userId: u.user.id } });
    expect(row).toMatchObject({ ip: "203.0.113.7", userAgent: "Mozilla/5.0 (lifecycle test)" });
    const signedInEvent = await t.db.auditEvent.findFirstOrThrow({ where: { type: "auth.signed_in", actorId: u.user.id } });
    expect(signedInEvent.data).toMatchObject({ method: "password", sessionId: row.id, address: "203.0.113.7" });
  });

  it("believes X-Forwarded-For only from a trusted proxy, read from the right", async () => {
    const u = await makeUser(t.db, "auditor");
    const client = browser({ [PEER_HEADER]: "peer-token;10.0.0.5", "user-agent": "behind-proxy", "x-forwarded-for": "192.0.2.99, 198.51.100.20" }, { BULKHEAD_TRUSTED_PROXIES: "10.0.0.0/8" });
    await client.signInWithPassword(u.email, TEST_PASSWORD);
    expect(await t.db.session.findFirstOrThrow({ where: { userId: u.user.id } })).toMatchObject({ ip: "198.51.100.20", userAgent: "behind-proxy" });
    // A peer header without the server's token is not believed at all.
    const v = await makeUser(t.db, "auditor");
    await browser({ [PEER_HEADER]: "forged;192.0.2.1", "user-agent": "forger" }).signInWithPassword(v.email, TEST_PASSWORD);
    expect(await t.db.session.findFirstOrThrow({ where: { userId: v.user.id } })).toMatchObject({ ip: null, userAgent: "forger" });
  });

  it("records them at OIDC sign-in too", async () => {
    const u = await makeUser(t.db, "approver");
    const client = browser({ [PEER_HEADER]: "peer-token;2001:db8::7", "user-agent": "sso-browser" });
    idp.nextLogin({ sub: unique("sub"), email: u.email, email_verified: true });
    await client.signInWithOidc(idp);
    expect(await t.db.session.findFirstOrThrow({ where: { userId: u.user.id } })).toMatchObject({ ip: "2001:db8::7", userAgent: "sso-browser", authMethod: "oidc" });
  });

  it("an OIDC re-authentication (step-up) deletes the old session row with the new one: the old cookie no longer resolves", async () => {
    const u = await makeUser(t.db, "admin");
    const sub = unique("sub");
    const client = browser({ [PEER_HEADER]: "peer-token;203.0.113.8", "user-agent": "stepping-up" });
    idp.nextLogin({ sub, email: u.email, email_verified: true, auth_time: Math.floor(Date.now() / 1000) - 3600 });
    await client.signInWithOidc(idp);
    const oldToken = (await tokenIn(client))!;
    expect(oldToken).toBeTruthy();
    const old = (await resolveSession(t.db, oldToken))!;
    expect(old).not.toBeNull();

    idp.nextLogin({ sub, email: u.email, email_verified: true, auth_time: Math.floor(Date.now() / 1000) });
    await client.signInWithOidc(idp, { prompt: "login", max_age: "0" });
    const newToken = (await tokenIn(client))!;
    expect(newToken).not.toBe(oldToken);
    expect(await resolveSession(t.db, oldToken), "the old cookie's token still resolves").toBeNull();
    const fresh = (await resolveSession(t.db, newToken))!;
    expect(fresh.sessionId).not.toBe(old.sessionId);
    expect(await t.db.session.count({ where: { userId: u.user.id } })).toBe(1);
    const event = await t.db.auditEvent.findFirstOrThrow({ where: { type: "auth.signed_in", actorId: u.user.id }, orderBy: { seq: "desc" } });
    expect(event.data).toMatchObject({ method: "oidc", sessionId: fresh.sessionId, replacedSessionId: old.sessionId });
  });

  it("a password sign-in in a browser that still holds a session replaces it as well", async () => {
    const u = await makeUser(t.db, "auditor");
    const client = browser({ [PEER_HEADER]: "peer-token;203.0.113.9" });
    await client.signInWithPassword(u.email, TEST_PASSWORD);
    const first = (await tokenIn(client))!;
    await client.signInWithPassword(u.email, TEST_PASSWORD);
    expect(await resolveSession(t.db, first)).toBeNull();
    expect(await t.db.session.count({ where: { userId: u.user.id } })).toBe(1);
  });
});

describe("your sessions, and signing out everywhere", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("lists only the person's own live sessions, marking the current one", async () => {
    const a = await signedIn(t.db);
    const aLaptop = await signedIn(t.db, "auditor", a);
    await t.db.session.update({ where: { id: aLaptop.sessionId }, data: { ip: "198.51.100.4", userAgent: "laptop" } });
    const aIdle = await signedIn(t.db, "auditor", a);
    await t.db.session.update({ where: { id: aIdle.sessionId }, data: { lastSeenAt: new Date(Date.now() - 2 * HOUR * 1000) } });
    const b = await signedIn(t.db);
    const listed = await listOwnSessions(t.db, a.actor, new Date(), HOUR);
    expect(listed.map((s) => s.id).sort()).toEqual([a.sessionId, aLaptop.sessionId].sort());
    expect(listed.find((s) => s.id === a.sessionId)!.current).toBe(true);
    expect(listed.find((s) => s.id === aLaptop.sessionId)).toMatchObject({ current: false, ip: "198.51.100.4", userAgent: "laptop" });
    expect((await listOwnSessions(t.db, b.actor)).map((s) => s.id)).toEqual([b.sessionId]);
  });

  it("never lets one person end another's session (IDOR): 404, and the session still works", async () => {
    const a = await signedIn(t.db, "admin");
    const b = await signedIn(t.db, "approver");
    for (const id of [a.sessionId, "not-a-uuid", "00000000-0000-4000-8000-000000000000"]) {
      expect((await refusal(endOwnSession(t.db, b.actor, id))).code, id).toBe("NOT_FOUND");
    }
    expect(await resolveSession(t.db, a.token)).toMatchObject({ userId: a.user.id, sessionId: a.sessionId });
    // "Everywhere else" is everywhere else of B only.
    await endOtherSessions(t.db, b.actor);
    expect(await resolveSession(t.db, a.token)).not.toBeNull();
  });

  it("ends one own session, and signs out everywhere else, keeping the current one; each audited", async () => {
    const a = await signedIn(t.db);
    const phone = await signedIn(t.db, "auditor", a);
    const laptop = await signedIn(t.db, "auditor", a);
    const tablet = await signedIn(t.db, "auditor", a);
    expect(await endOwnSession(t.db, a.actor, phone.sessionId)).toEqual({ id: phone.sessionId, current: false });
    expect(await resolveSession(t.db, phone.token)).toBeNull();
    expect(await eventsOf(t.db, "auth.session_ended", "sessionId", phone.sessionId)).toHaveLength(1);
    // Ending it twice: it is gone.
    expect((await refusal(endOwnSession(t.db, a.actor, phone.sessionId))).code).toBe("NOT_FOUND");

    expect(await endOtherSessions(t.db, a.actor)).toEqual({ ended: 2 });
    expect(await resolveSession(t.db, laptop.token)).toBeNull();
    expect(await resolveSession(t.db, tablet.token)).toBeNull();
    expect(await resolveSession(t.db, a.token)).not.toBeNull();
    const [event] = await eventsOf(t.db, "auth.other_sessions_ended", "keptSessionId", a.sessionId);
    expect(event!.data).toMatchObject({ ended: 2, sessionIds: expect.arrayContaining([laptop.sessionId, tablet.sessionId]) });
  });

  it("only people have sessions: an API key can neither list nor end any", async () => {
    const admin = await makeUser(t.db, "admin");
    const { key } = await createApiKey(t.db, admin.actor, { name: unique("k"), role: "admin" });
    const keyActor = (await authenticateApiKey(t.db, key))!;
    const a = await signedIn(t.db);
    expect((await refusal(listOwnSessions(t.db, keyActor))).code).toBe("FORBIDDEN");
    expect((await refusal(endOwnSession(t.db, keyActor, a.sessionId))).code).toBe("FORBIDDEN");
    expect((await refusal(endOtherSessions(t.db, keyActor))).code).toBe("FORBIDDEN");
    expect(await resolveSession(t.db, a.token)).not.toBeNull();
  });

  it("an admin ends every session of another user, audited; other roles cannot", async () => {
    const admin = await makeUser(t.db, "admin");
    const approver = await makeUser(t.db, "approver");
    const victim = await signedIn(t.db);
    const second = await signedIn(t.db, "auditor", victim);
    expect((await refusal(endUserSessions(t.db, approver.actor, victim.user.id))).code).toBe("FORBIDDEN");
    expect(await resolveSession(t.db, victim.token)).not.toBeNull();
    expect(await endUserSessions(t.db, admin.actor, victim.user.id)).toEqual({ ended: 2, email: victim.email });
    expect(await resolveSession(t.db, victim.token)).toBeNull();
    expect(await resolveSession(t.db, second.token)).toBeNull();
    expect(await eventsOf(t.db, "user.sessions_ended", "userId", victim.user.id)).toHaveLength(1);
    expect((await refusal(endUserSessions(t.db, admin.actor, "00000000-0000-4000-8000-000000000000"))).code).toBe("NOT_FOUND");
  });

  it("the CLI signs a user out everywhere by email", async () => {
    const victim = await signedIn(t.db);
    await signedIn(t.db, "auditor", victim);
    const run = await runCli(["user", "sign-out", victim.email.toUpperCase(), "--json"], { database: t });
    expect(run.code, run.stderr.join("\n")).toBe(0);
    expect(JSON.parse(run.stdout[0]!)).toEqual({ email: victim.email, ended: 2 });
    expect(await t.db.session.count({ where: { userId: victim.user.id } })).toBe(0);
    const event = (await eventsOf(t.db, "user.sessions_ended", "userId", victim.user.id))[0]!;
    expect(event).toMatchObject({ actorType: "system", actorId: "cli" });
    const unknown = await runCli(["user", "sign-out", "nobody@example.test"], { database: t });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr.join("\n")).toMatch(/No user with email nobody@example.test/);
  });
});

describe("password change", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("needs the current password: a wrong one changes nothing and ends nothing", async () => {
    const a = await signedIn(t.db);
    const other = await signedIn(t.db, "auditor", a);
    const error = await refusal(changeOwnPassword(t.db, a.actor, { currentPassword: "not the password", newPassword: NEW_PASSWORD }, CONTEXT));
    expect(error).toMatchObject({ code: "FORBIDDEN", userMessage: "Your current password is not correct." });
    expect(await authenticateLocal(t.db, a.email, TEST_PASSWORD)).toBe(a.user.id);
    expect(await resolveSession(t.db, other.token)).not.toBeNull();
    expect(await resolveSession(t.db, a.token)).not.toBeNull();
    // It counts against the sign-in throttle like a sign-in.
    const failed = await t.db.auditEvent.findFirst({ where: { type: "auth.sign_in_failed", reason: "wrong current password at password change" } });
    expect(failed).not.toBeNull();
  });

  it("follows the password rules and refuses the same password", async () => {
    const a = await signedIn(t.db);
    await expect(changeOwnPassword(t.db, a.actor, { currentPassword: TEST_PASSWORD, newPassword: "short" }, CONTEXT)).rejects.toThrow(/at least 12 characters/);
    expect((await refusal(changeOwnPassword(t.db, a.actor, { currentPassword: TEST_PASSWORD, newPassword: TEST_PASSWORD }, CONTEXT))).code).toBe("INVALID_INPUT");
    expect(await authenticateLocal(t.db, a.email, TEST_PASSWORD)).toBe(a.user.id);
  });

  it("ends every other session; the current one continues under a new token; audited", async () => {
    const a = await signedIn(t.db);
    const stolen = await signedIn(t.db, "auditor", a);
    const { sessionToken, endedSessions } = await changeOwnPassword(t.db, a.actor, { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD }, CONTEXT);
    expect(endedSessions).toBe(1);
    expect(await resolveSession(t.db, stolen.token)).toBeNull();
    // The old cookie of the current session no longer works either; the new token is the same session.
    expect(await resolveSession(t.db, a.token)).toBeNull();
    expect(await resolveSession(t.db, sessionToken)).toMatchObject({ sessionId: a.sessionId });
    expect(await authenticateLocal(t.db, a.email, NEW_PASSWORD)).toBe(a.user.id);
    expect(await authenticateLocal(t.db, a.email, TEST_PASSWORD)).toBeNull();
    const [event] = await eventsOf(t.db, "user.password_changed", "userId", a.user.id);
    expect(event!.data).toMatchObject({ endedSessions: 1, sessionId: a.sessionId, tokenRotated: true });
  });

  it("gives identity-provider users a clear error, and API keys cannot change a password", async () => {
    const sso = await signedIn(t.db);
    await t.db.user.update({ where: { id: sso.user.id }, data: { passwordHash: null } });
    const error = await refusal(changeOwnPassword(t.db, sso.actor, { currentPassword: "anything at all", newPassword: NEW_PASSWORD }, CONTEXT));
    expect(error).toMatchObject({ code: "CONFLICT", userMessage: "This account signs in through the identity provider: change your password there." });
    const admin = await makeUser(t.db, "admin");
    const { key } = await createApiKey(t.db, admin.actor, { name: unique("k"), role: "admin" });
    expect((await refusal(changeOwnPassword(t.db, (await authenticateApiKey(t.db, key))!, { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD }, CONTEXT))).code).toBe("FORBIDDEN");
  });

  it("an admin reset (the CLI) sets the password and ends all of the user's sessions", async () => {
    const victim = await signedIn(t.db);
    await signedIn(t.db, "auditor", victim);
    const run = await runCli(["user", "reset-password", victim.email, "--json"], { database: t, stdin: `${NEW_PASSWORD}\n` });
    expect(run.code, run.stderr.join("\n")).toBe(0);
    expect(JSON.parse(run.stdout[0]!)).toEqual({ email: victim.email, endedSessions: 2, password: null });
    expect(await t.db.session.count({ where: { userId: victim.user.id } })).toBe(0);
    expect(await authenticateLocal(t.db, victim.email, NEW_PASSWORD)).toBe(victim.user.id);
    expect(await eventsOf(t.db, "user.password_reset", "userId", victim.user.id)).toHaveLength(1);
    // From a stale dashboard session it needs step-up; it is refused for SSO-only users.
    const admin = await makeUser(t.db, "admin");
    const stale: Actor = { ...admin.actor, authenticatedAt: Date.now() - 60 * MINUTE } as Actor;
    expect((await refusal(resetUserPassword(t.db, stale, victim.user.id, "another long password"))).code).toBe("STEP_UP_REQUIRED");
    await t.db.user.update({ where: { id: victim.user.id }, data: { passwordHash: null } });
    expect((await refusal(resetUserPassword(t.db, admin.actor, victim.user.id))).code).toBe("CONFLICT");
  });
});

describe("disabling a user ends what they hold", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("revokes the API keys they created, so re-enabling does not bring them back; sessions end too", async () => {
    const admin = await makeUser(t.db, "admin");
    const creator = await signedIn(t.db, "admin");
    const { key, apiKey } = await createApiKey(t.db, creator.actor, { name: unique("ci-key"), role: "approver" });
    const othersKey = await createApiKey(t.db, admin.actor, { name: unique("admins-key"), role: "auditor" });
    expect(await authenticateApiKey(t.db, key)).not.toBeNull();

    await setUserDisabled(t.db, admin.actor, creator.user.id, true);
    expect(await authenticateApiKey(t.db, key)).toBeNull();
    expect(await resolveSession(t.db, creator.token)).toBeNull();
    expect((await t.db.apiKey.findUniqueOrThrow({ where: { id: apiKey.id } })).revokedAt).not.toBeNull();
    const [revoked] = await eventsOf(t.db, "api_key.revoked", "apiKeyId", apiKey.id);
    expect(revoked).toMatchObject({ reason: "its creator was disabled", actorId: admin.user.id });
    const [disabledEvent] = await eventsOf(t.db, "user.disabled", "userId", creator.user.id);
    expect(disabledEvent!.data).toMatchObject({ endedSessions: 1, revokedApiKeys: [apiKey.id] });

    await setUserDisabled(t.db, admin.actor, creator.user.id, false);
    expect(await authenticateApiKey(t.db, key), "re-enabling the user revived the key").toBeNull();
    // Keys other people created are untouched.
    expect(await authenticateApiKey(t.db, othersKey.key)).not.toBeNull();
  });

  it("re-enabling a user disabled before keys were revoked on disabling revokes their leftover keys", async () => {
    const admin = await makeUser(t.db, "admin");
    const creator = await makeUser(t.db, "admin");
    const { key, apiKey } = await createApiKey(t.db, creator.actor, { name: unique("old-key"), role: "auditor" });
    // Disabled the old way: only the flag.
    await t.db.user.update({ where: { id: creator.user.id }, data: { disabledAt: new Date() } });
    await setUserDisabled(t.db, admin.actor, creator.user.id, false);
    expect(await authenticateApiKey(t.db, key)).toBeNull();
    const [revoked] = await eventsOf(t.db, "api_key.revoked", "apiKeyId", apiKey.id);
    expect(revoked!.reason).toBe("created before its creator was disabled");
  });
});
