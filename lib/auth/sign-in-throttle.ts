import type { Db } from "@/lib/db/client";
import { Prisma } from "@/lib/generated/prisma/client";
import type { SignInThrottleConfig } from "@/lib/config/app";
import { addressThrottleKey } from "@/lib/http/client-address";

/**
 * Sign-in throttling, per account and per client address. Each key's failures are one row,
 * updated in place. Once a key reaches its limit it is locked for a minute, doubling with each
 * failure after the lock ends, up to BULKHEAD_SIGNIN_LOCKOUT_MINUTES; failures older than that
 * are forgotten. While a key is locked, attempts are refused before any password is checked,
 * so a refused attempt costs one indexed read and one row update: no argon2, no audit insert.
 *
 * Accounts are counted by the email typed, whether or not such an account exists, so the
 * throttle does not reveal which emails have accounts. Locking an account lets an attacker
 * keep its owner out for a while (the price of stopping password guessing); the backoff is
 * capped so that the owner is never kept out for long, and per-address limits stop one client
 * from locking many accounts.
 */
export interface ThrottleKey {
  key: string;
  kind: "account" | "address";
  /** The email or the address (an IPv6 /64), for the audit. */
  subject: string;
  limit: number;
}

export function throttleKeys(subject: { email: string | null; address: string | null }, config: SignInThrottleConfig): ThrottleKey[] {
  const keys: ThrottleKey[] = [];
  if (subject.email) keys.push({ key: `account:${subject.email}`, kind: "account", subject: subject.email, limit: config.accountAttempts });
  if (subject.address) {
    const address = addressThrottleKey(subject.address);
    keys.push({ key: `address:${address}`, kind: "address", subject: address, limit: config.addressAttempts });
  }
  return keys;
}

/** Seconds until every key is unlocked (0: none is locked). Counts the attempt as refused on the locked keys. */
export async function lockedFor(db: Db, keys: readonly ThrottleKey[], now = new Date()): Promise<number> {
  if (keys.length === 0) return 0;
  const locked = await db.$queryRaw<Array<{ locked_until: Date }>>`
    UPDATE sign_in_throttles SET refused = refused + 1
    WHERE key = ANY(${keys.map((k) => k.key)}::text[]) AND locked_until > ${now}
    RETURNING locked_until`;
  if (locked.length === 0) return 0;
  const until = Math.max(...locked.map((r) => r.locked_until.getTime()));
  return Math.max(1, Math.ceil((until - now.getTime()) / 1000));
}

export interface FailureOutcome {
  key: ThrottleKey;
  failures: number;
  /** Set when this failure started a lock. */
  lockedUntil: Date | null;
}

/** Thrown inside the reservation's transaction when a key is locked, to undo the keys reserved before it. */
class KeyLocked extends Error {}

/**
 * Reserves one password attempt against every key, atomically and BEFORE any password is
 * checked: each key's row is counted as a failure in one upsert that only applies while the key
 * is not locked, and the upsert that reaches the limit starts the lock itself. Concurrent
 * attempts queue on the row lock, so a burst cannot pass the check before any failure is
 * recorded: at most `limit` attempts per key get through before the lock. Returns null (and
 * counts the attempt as refused) when a key is locked; nothing is reserved then.
 * A failed attempt keeps its reservation; a successful one gives it back (releaseAttempt).
 */
export async function reserveAttempt(db: Db, keys: readonly ThrottleKey[], config: SignInThrottleConfig, now = new Date()): Promise<FailureOutcome[] | null> {
  if (keys.length === 0) return [];
  const forgetBefore = new Date(now.getTime() - config.maxLockoutSeconds * 1000);
  try {
    // Keys are always taken in the same order (account, then address), so two reservations never deadlock.
    return await db.$transaction(async (tx) => {
      const outcomes: FailureOutcome[] = [];
      for (const key of keys) {
        // In DO UPDATE every reference to the table is the row before this attempt, so `next` is
        // the new count (reset when the last failure is older than the longest lockout); at the
        // limit the lock is min(60 s * 2^(count - limit), max).
        const next = Prisma.sql`(CASE WHEN sign_in_throttles.last_failure_at < ${forgetBefore} THEN 1 ELSE sign_in_throttles.failures + 1 END)`;
        const firstLock = key.limit <= 1 ? new Date(now.getTime() + Math.min(60, config.maxLockoutSeconds) * 1000) : null;
        const rows = await tx.$queryRaw<Array<{ failures: number; locked_until: Date | null }>>`
          INSERT INTO sign_in_throttles (key, failures, last_failure_at, locked_until)
          VALUES (${key.key}, 1, ${now}, ${firstLock}::timestamptz)
          ON CONFLICT (key) DO UPDATE SET
            failures = ${next},
            last_failure_at = EXCLUDED.last_failure_at,
            locked_until = CASE WHEN ${next} >= ${key.limit}
              THEN EXCLUDED.last_failure_at + make_interval(secs => LEAST(60 * power(2, LEAST(${next} - ${key.limit}, 20)), ${config.maxLockoutSeconds}))
              ELSE sign_in_throttles.locked_until END
          WHERE sign_in_throttles.locked_until IS NULL OR sign_in_throttles.locked_until <= ${now}
          RETURNING failures, locked_until`;
        const row = rows[0];
        if (!row) throw new KeyLocked();
        outcomes.push({ key, failures: row.failures, lockedUntil: row.failures >= key.limit ? row.locked_until : null });
      }
      return outcomes;
    });
  } catch (error) {
    if (error instanceof KeyLocked) return null;
    throw error;
  }
}

/**
 * Gives back a successful attempt's reservation: one failure less on every key, and the lock
 * lifted where this very attempt started it. The account's count is then cleared
 * (clearAccountFailures); the address keeps its other failures.
 */
export async function releaseAttempt(db: Db, reserved: readonly FailureOutcome[]): Promise<void> {
  for (const { key, lockedUntil } of reserved) {
    await db.$executeRaw`
      UPDATE sign_in_throttles SET
        failures = GREATEST(failures - 1, 0),
        locked_until = CASE WHEN locked_until = ${lockedUntil}::timestamptz THEN NULL ELSE locked_until END
      WHERE key = ${key.key}`;
  }
  await clearAccountFailures(db, reserved.map((r) => r.key));
}

/** Seconds until every key is unlocked, without counting an attempt (for messages). */
export async function remainingLock(db: Db, keys: readonly ThrottleKey[], now = new Date()): Promise<number> {
  if (keys.length === 0) return 0;
  const [row] = await db.$queryRaw<Array<{ until: Date | null }>>`
    SELECT max(locked_until) AS until FROM sign_in_throttles WHERE key = ANY(${keys.map((k) => k.key)}::text[]) AND locked_until > ${now}`;
  return row?.until ? Math.max(1, Math.ceil((row.until.getTime() - now.getTime()) / 1000)) : 0;
}

/** A correct password clears the account's failures (never the address's: one good account must not reset a guesser's count). */
export async function clearAccountFailures(db: Db, keys: readonly ThrottleKey[]): Promise<void> {
  const accounts = keys.filter((k) => k.kind === "account").map((k) => k.key);
  if (accounts.length > 0) await db.$executeRaw`DELETE FROM sign_in_throttles WHERE key = ANY(${accounts}::text[]) AND (locked_until IS NULL OR locked_until <= now())`;
}

export interface RefusedCount {
  key: string;
  refused: number;
}

/**
 * Collects the attempts refused on locks that have ended (for one summarising audit event) and
 * forgets keys whose failures are old, so the table holds only recent guessing.
 */
export async function sweepThrottles(db: Db, config: SignInThrottleConfig, now = new Date()): Promise<RefusedCount[]> {
  const refused = await db.$queryRaw<RefusedCount[]>`
    UPDATE sign_in_throttles AS t SET refused = 0
    FROM (SELECT key, refused FROM sign_in_throttles WHERE refused > 0 AND (locked_until IS NULL OR locked_until <= ${now}) FOR UPDATE) AS old
    WHERE t.key = old.key
    RETURNING t.key, old.refused`;
  const forgetBefore = new Date(now.getTime() - config.maxLockoutSeconds * 1000);
  await db.$executeRaw`
    DELETE FROM sign_in_throttles
    WHERE last_failure_at < ${forgetBefore} AND refused = 0 AND (locked_until IS NULL OR locked_until <= ${now})`;
  return refused;
}
