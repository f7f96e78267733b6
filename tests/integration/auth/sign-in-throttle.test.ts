import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticateLocal, checkPasswordAttempt, type PasswordAttemptContext } from "@/lib/auth/authenticate";
import { createSession, resolveSession } from "@/lib/auth/sessions";
import { SignInAudit, signInAudit } from "@/lib/auth/sign-in-audit";
import { reauthenticateWithPassword } from "@/lib/auth/step-up";
import type { SignInThrottleConfig } from "@/lib/config/app";
import { isAppError } from "@/lib/errors/app-error";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, TEST_PASSWORD, unique } from "../../support/factories";

const LIMITS: SignInThrottleConfig = { accountAttempts: 5, addressAttempts: 20, maxLockoutSeconds: 900 };
let nextAddress = 1;
/** A fresh client address per test, so tests do not throttle each other. */
const newAddress = () => `198.51.100.${nextAddress++}`;
const ctx = (address: string | null, throttle = LIMITS): PasswordAttemptContext => ({ address, throttle });

async function attempt(t: TestDatabase, email: string, password: string, context: PasswordAttemptContext) {
  try {
    return { userId: await authenticateLocal(t.db, email, password, context) };
  } catch (error) {
    if (isAppError(error) && error.code === "RATE_LIMITED") return { throttled: (error.details as { retryAfterSeconds: number }).retryAfterSeconds, message: error.userMessage };
    throw error;
  }
}

describe("sign-in throttling, from the attacker's side", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  const auditCount = (types: string[]) => t.db.auditEvent.count({ where: { type: { in: types } } });

  it("locks an account after 5 failures, from any address, even for the right password, and says how long", async () => {
    const victim = await makeUser(t.db, "admin");
    for (let i = 0; i < 5; i++) expect(await attempt(t, victim.email, `guess-${i}-wrong-password`, ctx(newAddress()))).toEqual({ userId: null });
    // Another address, the right password: still refused until the lock ends.
    const locked = await attempt(t, victim.email, TEST_PASSWORD, ctx(newAddress()));
    expect(locked).toMatchObject({ throttled: expect.any(Number) });
    expect((locked as { throttled: number }).throttled).toBeGreaterThan(50);
    expect((locked as { throttled: number }).throttled).toBeLessThanOrEqual(60);
    expect((locked as { message: string }).message).toMatch(/^Too many failed sign-in attempts .* Try again in a minute\.$/);
    // The email's case and spaces do not make a new account key.
    expect(await attempt(t, `  ${victim.email.toUpperCase()} `, TEST_PASSWORD, ctx(newAddress()))).toMatchObject({ throttled: expect.any(Number) });
    // Once the lock has passed, the right password works and clears the count.
    await t.db.signInThrottle.update({ where: { key: `account:${victim.email}` }, data: { lockedUntil: new Date(Date.now() - 1000) } });
    expect(await attempt(t, victim.email, TEST_PASSWORD, ctx(newAddress()))).toEqual({ userId: victim.user.id });
    expect(await t.db.signInThrottle.count({ where: { key: `account:${victim.email}` } })).toBe(0);
  });

  it("doubles the lock with each failure after a lock, up to the maximum", async () => {
    const victim = await makeUser(t.db, "auditor");
    const key = `account:${victim.email}`;
    const seen: number[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < (round === 0 ? 5 : 1); i++) await attempt(t, victim.email, "wrong password again", ctx(newAddress()));
      const row = await t.db.signInThrottle.findUniqueOrThrow({ where: { key } });
      seen.push(Math.round((row.lockedUntil!.getTime() - row.lastFailureAt.getTime()) / 1000));
      await t.db.signInThrottle.update({ where: { key }, data: { lockedUntil: new Date(Date.now() - 1000) } });
    }
    expect(seen).toEqual([60, 120, 240, 480, 900, 900]);
  });

  it("counts failures per address across many accounts (password spraying), and unknown emails count like real ones", async () => {
    const address = newAddress();
    const tight = { ...LIMITS, addressAttempts: 8 };
    for (let i = 0; i < 8; i++) expect(await attempt(t, `${unique("nobody")}@example.test`, "spray-password-1", ctx(address, tight))).toEqual({ userId: null });
    const real = await makeUser(t.db, "approver");
    expect(await attempt(t, real.email, TEST_PASSWORD, ctx(address, tight))).toMatchObject({ throttled: expect.any(Number) });
    // Other addresses are not affected.
    expect(await attempt(t, real.email, TEST_PASSWORD, ctx(newAddress(), tight))).toEqual({ userId: real.user.id });
    // IPv6 neighbours in the same /64 share the count.
    const v6 = { ...LIMITS, addressAttempts: 3 };
    for (let i = 1; i <= 3; i++) await attempt(t, `${unique("x")}@example.test`, "wrong", ctx(`2001:db8:77:1::${i}`, v6));
    expect(await attempt(t, real.email, TEST_PASSWORD, ctx("2001:db8:77:1:ffff::9", v6))).toMatchObject({ throttled: expect.any(Number) });
  });

  it("does no password hashing and writes no audit event for a throttled attempt: a flood costs a row update each", async () => {
    const victim = await makeUser(t.db, "admin");
    const address = newAddress();
    const before = await auditCount(["auth.sign_in_failed", "auth.sign_in_throttled"]);
    for (let i = 0; i < 5; i++) await attempt(t, victim.email, "nope nope nope", ctx(address));
    const afterLock = await auditCount(["auth.sign_in_failed", "auth.sign_in_throttled"]);
    // Four individual failures, then one event for the lock.
    expect(afterLock - before).toBe(5);
    const started = performance.now();
    const flood = await Promise.all(Array.from({ length: 200 }, () => attempt(t, victim.email, "flood", ctx(address))));
    const elapsed = performance.now() - started;
    expect(flood.every((r) => "throttled" in r)).toBe(true);
    // 200 argon2id hashes (19 MiB, 2 passes) would take many seconds on these machines.
    expect(elapsed).toBeLessThan(8000);
    expect(await auditCount(["auth.sign_in_failed", "auth.sign_in_throttled"])).toBe(afterLock);
    expect((await t.db.signInThrottle.findUniqueOrThrow({ where: { key: `account:${victim.email}` } })).refused).toBeGreaterThanOrEqual(200);

    // Refused attempts are reported once, in one summary, after the lock ends.
    await t.db.signInThrottle.update({ where: { key: `account:${victim.email}` }, data: { lockedUntil: new Date(Date.now() - 1000) } });
    const summaries = await auditCount(["auth.sign_in_failures_summarised"]);
    await signInAudit(t.db, LIMITS).flush();
    expect(await auditCount(["auth.sign_in_failures_summarised"])).toBe(summaries + 1);
    const summary = await t.db.auditEvent.findFirstOrThrow({ where: { type: "auth.sign_in_failures_summarised" }, orderBy: { id: "desc" } });
    expect((summary.data as { refusedWhileThrottled: number }).refusedWhileThrottled).toBeGreaterThanOrEqual(200);
    await signInAudit(t.db, LIMITS).flush();
    expect(await auditCount(["auth.sign_in_failures_summarised"])).toBe(summaries + 1);
  });

  it("counts concurrent failures exactly: a burst cannot slip past the limit", async () => {
    const email = `${unique("burst")}@example.test`;
    await Promise.all(Array.from({ length: 25 }, () => attempt(t, email, "burst guess", ctx(null, { ...LIMITS, accountAttempts: 1000 }))));
    expect((await t.db.signInThrottle.findUniqueOrThrow({ where: { key: `account:${email}` } })).failures).toBe(25);
  });

  it("bounds chained audit inserts from failures per process, folding the rest into one summary", async () => {
    const audit = new SignInAudit(t.db, LIMITS, 10);
    const before = await auditCount(["test.failure"]);
    const now = Date.now();
    for (let i = 0; i < 100; i++) await audit.record({ type: "test.failure", actor: { kind: "system", label: "test" } }, now);
    expect((await auditCount(["test.failure"])) - before).toBe(10);
    await audit.flush();
    const summary = await t.db.auditEvent.findFirstOrThrow({ where: { type: "auth.sign_in_failures_summarised" }, orderBy: { id: "desc" } });
    expect((summary.data as { foldedFailures: number }).foldedFailures).toBe(90);
    audit.stop();
  });

  it("re-authentication (step-up) shares the account's throttle: a stolen session cannot guess the password there", async () => {
    const victim = await makeUser(t.db, "admin");
    const token = await createSession(t.db, victim.user.id, 3600);
    const session = (await resolveSession(t.db, token))!;
    const actor = { kind: "user" as const, userId: victim.user.id, email: victim.email, role: "admin" as const, sessionId: session.sessionId, authenticatedAt: session.authenticatedAt };
    for (let i = 0; i < 5; i++) {
      await expect(reauthenticateWithPassword(t.db, actor, `wrong-${i}`, ctx(newAddress()))).rejects.toMatchObject({ code: "FORBIDDEN" });
    }
    await expect(reauthenticateWithPassword(t.db, actor, TEST_PASSWORD, ctx(newAddress()))).rejects.toMatchObject({ code: "RATE_LIMITED" });
    // And the password sign-in of that account is locked too.
    expect(await attempt(t, victim.email, TEST_PASSWORD, ctx(newAddress()))).toMatchObject({ throttled: expect.any(Number) });
  });
});

describe("sign-in throttling under a concurrent burst", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t.drop());

  it("checks at most 5 passwords of one account when 40 attempts arrive at once", async () => {
    const victim = await makeUser(t.db, "admin");
    let checked = 0;
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        checkPasswordAttempt(t.db, { email: victim.email, context: ctx(`203.0.113.${i + 1}`), label: "sign-in" }, async () => {
          checked += 1;
          await new Promise((resolve) => setTimeout(resolve, 50));
          return { ok: false as const, reason: "wrong password" };
        }),
      ),
    );
    expect(checked).toBeLessThanOrEqual(5);
    expect(results.filter((r) => r.status === "rejected" && isAppError(r.reason) && r.reason.code === "RATE_LIMITED")).toHaveLength(40 - checked);
    // End to end, with argon2: a burst of real sign-ins checks no more passwords than the limit.
    const other = await makeUser(t.db, "approver");
    const burst = await Promise.all(Array.from({ length: 40 }, (_, i) => attempt(t, other.email, `burst-guess-${i}`, ctx(`203.0.113.${100 + i}`))));
    expect(burst.filter((r) => "userId" in r).length).toBeLessThanOrEqual(5);
    expect((await t.db.signInThrottle.findUniqueOrThrow({ where: { key: `account:${other.email}` } })).failures).toBeLessThanOrEqual(5);
  });

  it("checks at most 20 passwords from one address when 40 attempts for different accounts arrive at once", async () => {
    const address = "198.18.0.7";
    let checked = 0;
    await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) =>
        checkPasswordAttempt(t.db, { email: `${unique(`spray${i}`)}@example.test`, context: ctx(address), label: "sign-in" }, async () => {
          checked += 1;
          await new Promise((resolve) => setTimeout(resolve, 50));
          return { ok: false as const, reason: "unknown email" };
        }),
      ),
    );
    expect(checked).toBeLessThanOrEqual(20);
    expect(checked).toBeGreaterThan(0);
  });

  it("step-up re-authentication is bounded the same way under a burst", async () => {
    const victim = await makeUser(t.db, "admin");
    const token = await createSession(t.db, victim.user.id, 3600);
    const session = (await resolveSession(t.db, token))!;
    const actor = { kind: "user" as const, userId: victim.user.id, email: victim.email, role: "admin" as const, sessionId: session.sessionId, authenticatedAt: session.authenticatedAt };
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => reauthenticateWithPassword(t.db, actor, `wrong-${i}`, ctx(`192.0.2.${i + 1}`))));
    const checked = results.filter((r) => r.status === "rejected" && (r.reason as { code?: string }).code === "FORBIDDEN").length;
    expect(checked).toBeLessThanOrEqual(5);
  });

  it("a correct password gives its reservation back: successful sign-ins do not lock the address", async () => {
    const user = await makeUser(t.db, "auditor");
    const address = "198.18.0.9";
    const tight = { ...LIMITS, addressAttempts: 3 };
    for (let i = 0; i < 6; i++) expect(await attempt(t, user.email, TEST_PASSWORD, ctx(address, tight))).toEqual({ userId: user.user.id });
    const row = await t.db.signInThrottle.findUnique({ where: { key: `address:${address}` } });
    expect(row?.failures ?? 0).toBe(0);
    expect(row?.lockedUntil ?? null).toBeNull();
  });
});
