import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { loadAppConfig, type SignInThrottleConfig } from "@/lib/config/app";
import { AppError } from "@/lib/errors/app-error";
import { emailSchema } from "@/lib/users/users";
import { verifyPassword } from "./password";
import { signInAudit } from "./sign-in-audit";
import { lockedFor, releaseAttempt, remainingLock, reserveAttempt, throttleKeys } from "./sign-in-throttle";

/** Where a password attempt comes from: the client's address (null when unknown) and the limits. */
export interface PasswordAttemptContext {
  address: string | null;
  throttle: SignInThrottleConfig;
}

function defaultContext(): PasswordAttemptContext {
  return { address: null, throttle: loadAppConfig().signInThrottle };
}

export function throttledError(retryAfterSeconds: number): AppError {
  const minutes = Math.ceil(retryAfterSeconds / 60);
  return new AppError("RATE_LIMITED", "Too many failed sign-in attempts.", {
    userMessage: `Too many failed sign-in attempts for this account or from your network. Try again in ${minutes === 1 ? "a minute" : `${minutes} minutes`}.`,
    details: { retryAfterSeconds },
  });
}

/** Seconds until a password attempt for `email` from this context may be made (0: now); counts nothing. */
export async function passwordAttemptWait(db: Db, email: unknown, context: PasswordAttemptContext): Promise<number> {
  const parsed = emailSchema.safeParse(email);
  return remainingLock(db, throttleKeys({ email: parsed.success ? parsed.data : null, address: context.address }, context.throttle));
}

/**
 * Runs one password check under the sign-in throttle: the attempt is reserved (counted) on the
 * account and the address atomically before any hashing, and refused while either is locked
 * (RATE_LIMITED with the seconds to wait); audited on a budget when wrong
 * (lib/auth/sign-in-audit.ts); given back, and the account's count cleared, when right.
 */
export async function checkPasswordAttempt<T>(
  db: Db,
  attempt: { email: string | null; context: PasswordAttemptContext; label: string },
  check: () => Promise<{ ok: true; value: T } | { ok: false; reason: string; data?: Record<string, string> }>,
): Promise<T | null> {
  const keys = throttleKeys({ email: attempt.email, address: attempt.context.address }, attempt.context.throttle);
  // The attempt is counted before the password is hashed, so a concurrent burst queues on the
  // throttle rows instead of passing the check together (lib/auth/sign-in-throttle.ts).
  const outcomes = await reserveAttempt(db, keys, attempt.context.throttle);
  if (!outcomes) throw throttledError(Math.max(await lockedFor(db, keys), 1));
  let result: Awaited<ReturnType<typeof check>>;
  try {
    result = await check();
  } catch (error) {
    // Nothing was decided (e.g. the database failed): the attempt is given back.
    await releaseAttempt(db, outcomes).catch(() => undefined);
    throw error;
  }
  if (result.ok) {
    await releaseAttempt(db, outcomes);
    return result.value;
  }
  const audit = signInAudit(db, attempt.context.throttle);
  const base = { actor: { kind: "system", label: attempt.label }, outcome: "deny" } as const;
  const locks = outcomes.filter((o) => o.lockedUntil !== null);
  for (const lock of locks) {
    await audit.record({
      ...base,
      type: "auth.sign_in_throttled",
      reason: `${lock.key.kind} locked after ${lock.failures} failed attempts`,
      data: { [lock.key.kind]: lock.key.subject, failures: lock.failures, lockedUntil: lock.lockedUntil!.toISOString(), lastReason: result.reason },
    });
  }
  // Below every limit, each failure is its own event; at or past one, the lock event speaks for it.
  if (locks.length === 0 && outcomes.every((o) => o.failures < o.key.limit)) {
    await audit.record({
      ...base,
      type: "auth.sign_in_failed",
      // Which part was wrong is recorded for the audit trail only, never shown to the client.
      reason: result.reason,
      data: { ...(attempt.email ? { email: attempt.email } : {}), ...(attempt.context.address ? { address: attempt.context.address } : {}), ...result.data },
    });
  }
  return null;
}

/**
 * Checks a local account's email and password. Every failure (unknown email, wrong password,
 * disabled account, SSO-only account) returns null, so callers cannot tell which part was wrong;
 * a throttled attempt throws RATE_LIMITED before any password is checked.
 */
export async function authenticateLocal(
  db: Db,
  email: unknown,
  password: unknown,
  context: PasswordAttemptContext = defaultContext(),
): Promise<string | null> {
  const parsedEmail = emailSchema.safeParse(email);
  return checkPasswordAttempt(db, { email: parsedEmail.success ? parsedEmail.data : null, context, label: "sign-in" }, async () => {
    if (!parsedEmail.success || typeof password !== "string" || password.length === 0 || password.length > 1024) {
      await verifyPassword(null, "");
      return { ok: false, reason: "malformed email or password" };
    }
    const user = await db.user.findUnique({
      where: { email: parsedEmail.data },
      select: { id: true, passwordHash: true, disabledAt: true },
    });
    const ok = await verifyPassword(user?.passwordHash, password);
    if (!user || !ok || user.disabledAt) {
      return { ok: false, reason: !user ? "unknown email" : !ok ? "wrong password" : "account disabled" };
    }
    return { ok: true, value: user.id };
  });
}

/** What an OIDC sign-in asserts: the issuer and subject (the identity), and the email claims from the ID token. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
  email: unknown;
  /** The raw `email_verified` claim; only the boolean `true` counts. */
  emailVerified: unknown;
}

/** Accounts are keyed by issuer and subject: a subject is only unique within its identity provider. */
export function oidcProviderKey(issuer: string): string {
  return `oidc:${issuer}`;
}

/**
 * Maps an OIDC sign-in to an existing Bulkhead user. Users are provisioned by an admin (Users
 * page or CLI) with a role. Nothing is linked or signed in unless the identity provider asserts
 * `email_verified: true` (a missing claim, `false`, or the string "true" are refused: an
 * unverified email is not proof that this person owns the pre-created account). A first sign-in
 * links the identity (issuer and subject) to the user with that verified email; later ones
 * follow the link, even when the provider's email claim changes.
 */
export async function authenticateOidc(db: Db, identity: OidcIdentity, throttle: SignInThrottleConfig = loadAppConfig().signInThrottle): Promise<string | null> {
  const provider = oidcProviderKey(identity.issuer);
  const email = emailSchema.safeParse(typeof identity.email === "string" ? identity.email : "");
  const refuse = async (reason: string) => {
    await signInAudit(db, throttle).record({
      type: "auth.sign_in_failed",
      actor: { kind: "system", label: "sign-in" },
      outcome: "deny",
      reason,
      data: { provider, subject: identity.subject.slice(0, 200), ...(email.success ? { email: email.data } : {}) },
    });
    return null;
  };
  if (identity.emailVerified !== true) return refuse("the identity provider did not assert a verified email (email_verified is not true)");
  const linked = await db.account.findUnique({
    where: { provider_providerAccountId: { provider, providerAccountId: identity.subject } },
    select: { user: { select: { id: true, disabledAt: true } } },
  });
  if (linked) return linked.user.disabledAt ? refuse("account disabled") : linked.user.id;
  if (!email.success) return refuse("the identity provider sent no usable email");
  const user = await db.user.findUnique({ where: { email: email.data }, select: { id: true, disabledAt: true } });
  if (!user || user.disabledAt) return refuse(user ? "account disabled" : "no Bulkhead account for this identity");
  await db.$transaction(async (tx) => {
    await tx.account.create({ data: { userId: user.id, provider, providerAccountId: identity.subject } });
    await recordAuditEvent(tx, { type: "auth.identity_linked", actor: { actorType: "user", actorId: user.id }, data: { provider, subject: identity.subject, email: email.data } });
  });
  return user.id;
}
