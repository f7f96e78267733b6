import type { ApiKeyThrottleConfig } from "@/lib/config/app";
import type { Db } from "@/lib/db/client";
import { AuditBudget, perDatabase } from "@/lib/audit/budget";
import { recordAuditEvent } from "@/lib/audit/record";
import { addressThrottleKey } from "@/lib/http/client-address";

/**
 * Failed API key authentications, counted per client address (an IPv6 client by its /64).
 *
 * A key is 256 random bits, so this is not about guessing one: it is about what an
 * unauthenticated client may make the dashboard do unnoticed. Without it, anyone could send
 * Bearer values without end and be told 401 each time, and malformed or unknown keys left no
 * trace at all (lib/apikeys/failure-audit.ts records failures against real keys only). So, as
 * for sign-in (lib/auth/sign-in-throttle.ts): at `failures` failures an address is locked for a
 * minute, doubling with each failure after a lock ends, up to `maxLockoutSeconds`, after which
 * quiet failures are forgotten. While it is locked its failures are answered 429 with Retry-After
 * (apiRoute); a valid key from it still passes, so a shared address's bad values cannot lock its
 * legitimate clients out. One lock event is recorded when a lock starts, and the attempts refused
 * meanwhile are reported in one summary when it ends.
 *
 * Counted in the dashboard process, as the failure audit's budget is: a key's secret cannot be
 * guessed, so a count that a restart forgets costs nothing but a few more 401s, and checking it
 * costs no query on the path every API request takes.
 */
interface Entry {
  failures: number;
  lastFailureAt: number;
  lockedUntil: number;
  lockedAt: number;
  /** Attempts refused during the current (or last) lock, not yet reported. */
  refused: number;
}

export interface ApiKeyLock {
  address: string;
  failures: number;
  lockedUntil: Date;
}

export interface RefusedWhileLocked {
  address: string;
  refused: number;
  from: Date;
  to: Date;
}

/** More addresses than this are not remembered: the oldest unlocked one makes room. */
const MAX_ADDRESSES = 10_000;

export class ApiKeyFailureThrottle {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly config: ApiKeyThrottleConfig) {}

  /** Seconds until `address` may present a key again (0: now). A refused attempt is counted for the summary. */
  lockedFor(address: string, now = Date.now()): number {
    const entry = this.entries.get(addressThrottleKey(address));
    if (!entry || entry.lockedUntil <= now) return 0;
    entry.refused += 1;
    return Math.max(1, Math.ceil((entry.lockedUntil - now) / 1000));
  }

  /** Counts one failed authentication from `address`; returns the lock it started, if it started one. */
  fail(address: string, now = Date.now()): ApiKeyLock | null {
    const key = addressThrottleKey(address);
    let entry = this.entries.get(key);
    if (!entry || now - entry.lastFailureAt > this.config.maxLockoutSeconds * 1000) {
      if (entry) this.entries.delete(key);
      entry = { failures: 0, lastFailureAt: now, lockedUntil: 0, lockedAt: 0, refused: entry?.refused ?? 0 };
      this.makeRoom();
      this.entries.set(key, entry);
    }
    if (entry.lockedUntil > now) return null; // already locked: apiRoute asks lockedFor first
    entry.failures += 1;
    entry.lastFailureAt = now;
    if (entry.failures < this.config.failures) return null;
    const seconds = Math.min(60 * 2 ** Math.min(entry.failures - this.config.failures, 20), this.config.maxLockoutSeconds);
    entry.lockedAt = now;
    entry.lockedUntil = now + seconds * 1000;
    return { address: key, failures: entry.failures, lockedUntil: new Date(entry.lockedUntil) };
  }

  /** The refused attempts of locks that have ended (each reported once), and forgets quiet addresses. */
  sweep(now = Date.now()): RefusedWhileLocked[] {
    const out: RefusedWhileLocked[] = [];
    for (const [address, entry] of this.entries) {
      if (entry.lockedUntil > now) continue;
      if (entry.refused > 0) {
        out.push({ address, refused: entry.refused, from: new Date(entry.lockedAt), to: new Date(entry.lockedUntil) });
        entry.refused = 0;
      }
      if (now - entry.lastFailureAt > this.config.maxLockoutSeconds * 1000) this.entries.delete(address);
    }
    return out;
  }

  private makeRoom(): void {
    if (this.entries.size < MAX_ADDRESSES) return;
    const now = Date.now();
    for (const [address, entry] of this.entries) {
      if (entry.lockedUntil <= now) {
        this.entries.delete(address);
        return;
      }
    }
    this.entries.delete(this.entries.keys().next().value!);
  }
}

/**
 * The throttle's audit trail: one `api_key.auth_throttled` event when an address is locked, and
 * one `api_key.auth_throttle_summarised` event per minute for the attempts refused on locks
 * that have ended. Lock events are on a budget too (at most `perMinute` a minute; the rest are
 * counted into the summary), so a client with many addresses cannot grind the audit chain.
 */
export class ApiKeyThrottleAudit {
  private readonly budget: AuditBudget;

  constructor(
    private readonly db: Db,
    readonly throttle: ApiKeyFailureThrottle,
    perMinute = 60,
  ) {
    this.budget = new AuditBudget(perMinute, () => this.flush(), "the API key throttle summary");
  }

  async locked(lock: ApiKeyLock, now = Date.now()): Promise<void> {
    if (!this.budget.take(now)) return;
    await recordAuditEvent(this.db, {
      type: "api_key.auth_throttled",
      actor: { kind: "system", label: "api-key" },
      outcome: "deny",
      reason: `address locked after ${lock.failures} failed API key authentications`,
      data: { address: lock.address, failures: lock.failures, lockedUntil: lock.lockedUntil.toISOString() },
    });
  }

  /** Writes one summary when any lock went unrecorded or refused attempts since the last one. */
  async flush(now = Date.now()): Promise<void> {
    const folded = this.budget.takeFolded();
    const refused = this.throttle.sweep(now);
    const total = refused.reduce((n, r) => n + r.refused, 0);
    if (folded === 0 && total === 0) return;
    await recordAuditEvent(this.db, {
      type: "api_key.auth_throttle_summarised",
      actor: { kind: "system", label: "api-key" },
      outcome: "deny",
      reason: `${total} API key authentication${total === 1 ? "" : "s"} refused while throttled, ${folded} lock${folded === 1 ? "" : "s"} beyond the audit budget`,
      // The 50 busiest addresses; the totals cover all of them.
      data: {
        refusedWhileThrottled: total,
        foldedLocks: folded,
        addresses: refused
          .sort((a, b) => b.refused - a.refused)
          .slice(0, 50)
          .map((r) => ({ address: r.address, refused: r.refused, from: r.from.toISOString(), to: r.to.toISOString() })),
      },
    });
  }

  stop(): void {
    this.budget.stop();
  }
}

/** The process's API key throttle (and its audit) for `db`. */
export const apiKeyThrottle = perDatabase((db: Db, config: ApiKeyThrottleConfig) => new ApiKeyThrottleAudit(db, new ApiKeyFailureThrottle(config)));
