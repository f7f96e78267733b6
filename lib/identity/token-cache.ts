/**
 * The hot path: remembers tokens that fully verified, until their `exp`.
 *
 * A hit is only returned after re-checking, on every call, what can change while a token is
 * cached: the signing key's status, and the task, agent and jti revocation Sets whenever they
 * changed since the token was last found unrevoked in them (a RevocationSet counts its changes;
 * a view that does not is asked on every call). So the cache can never outlive a revocation it
 * has been told about. Anything else falls back to the full `verifyTaskToken`.
 *
 * Failures are NOT cached: the cheap ones (shape, alg, headers, kid) are rejected before any
 * signature work anyway; caching attacker-chosen strings would let an attacker evict good
 * entries; and some failures are transient (a kid unknown until the key set reloads after a
 * rotation) and must not stick.
 *
 * Keyed by the token's last segment (its signature, 86 characters) and matched on the whole
 * string: a Map hashes its key on every lookup, and a request's token is a fresh string each time,
 * so hashing the 420-character token was a third of a hit; the signature is a fifth of it. A string
 * that shares the signature and differs anywhere else (a tampered header or payload) finds the
 * genuine entry, fails the comparison, goes to the full verification and leaves the entry alone.
 * Hashing with SHA-256 on every request would cost more than the rest of the hit path, and the
 * token is already in this process's memory for the request.
 */
import { createHash, type KeyObject } from "node:crypto";
import {
  resolveClockTolerance,
  verifyTaskToken,
  type VerifiedTaskToken,
  type VerifyTaskTokenOptions,
} from "@/lib/identity/token";

export const DEFAULT_TOKEN_CACHE_SIZE = 10_000;

/** SHA-256 of a token, base64url: to refer to a token (logs, audit) without storing it. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("base64url");
}

export interface VerifiedTokenCacheOptions {
  /** Everything `verifyTaskToken` needs except the time, which each call supplies. */
  verify: Omit<VerifyTaskTokenOptions, "now">;
  /** Upper bound on entries; eviction is LRU-ish (second chance for entries hit since insertion). */
  maxEntries?: number;
}

interface Entry {
  /** The whole token: the Map's key is only its signature segment. */
  token: string;
  result: VerifiedTaskToken;
  /** Cached only strictly before exp (no tolerance: past exp the full check decides). */
  expMs: number;
  /** Earliest time the token was acceptable (nbf/iat minus tolerance); guards a clock step back. */
  notBeforeMs: number;
  /** The exact key object that verified it; a reloaded or removed key forces re-verification. */
  key: CryptoKey | KeyObject;
  /** Second-chance bit: set on a hit, so eviction skips it once. */
  used: boolean;
  /** The revocation view's generation when this token was last found unrevoked (NaN: never). */
  unrevokedAt: number;
}

export class VerifiedTokenCache {
  private readonly entries = new Map<string, Entry>();
  private readonly options: Omit<VerifyTaskTokenOptions, "now">;
  private readonly maxEntries: number;
  private readonly toleranceMs: number;
  hits = 0;
  misses = 0;

  constructor(options: VerifiedTokenCacheOptions) {
    const max = options.maxEntries ?? DEFAULT_TOKEN_CACHE_SIZE;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError("maxEntries must be a positive integer");
    this.maxEntries = max;
    this.toleranceMs = resolveClockTolerance(options.verify.clockToleranceSeconds) * 1000;
    this.options = { ...options.verify };
  }

  /**
   * Synchronous hit path: the cached result if it is still valid at `now`, else undefined
   * (the entry is dropped). Never verifies; callers wanting a decision use `check`.
   */
  lookup(token: string, now: Date): VerifiedTaskToken | undefined {
    const key = cacheKey(token);
    const entry = this.entries.get(key);
    if (entry === undefined || entry.token !== token) return undefined;
    const nowMs = now.getTime();
    const { result } = entry;
    const revocation = this.options.revocation;
    const resolved = this.options.keys(result.kid, now);
    if (!(nowMs < entry.expMs && nowMs >= entry.notBeforeMs) || resolved === undefined || resolved.status === "retired" || resolved.key !== entry.key) {
      this.entries.delete(key);
      return undefined;
    }
    // The revocation Sets are asked again whenever they may have changed since this token was
    // last found unrevoked (always, for a view that does not count its changes).
    const generation = revocation.generation;
    if (generation === undefined || generation !== entry.unrevokedAt) {
      if (revocation.isTaskRevoked(result.taskId) || revocation.isAgentSuspended(result.agentId) || revocation.isJtiRevoked(result.jti)) {
        this.entries.delete(key);
        return undefined;
      }
      if (generation !== undefined) entry.unrevokedAt = generation;
    }
    // LRU-ish without touching the Map on the hot path: eviction gives used entries a second chance.
    entry.used = true;
    return result;
  }

  /**
   * The decision for `token` at `now`: a cached result when still valid, otherwise the full
   * verification (which throws `TokenError` with the precise reason, including revocations).
   */
  check(token: string, now: Date): Promise<VerifiedTaskToken> {
    const hit = this.hit(token, now);
    if (hit !== undefined) return Promise.resolve(hit);
    this.misses++;
    return this.verifyAndStore(token, now);
  }

  /** `check`'s synchronous half: the cached result (counted as a hit), else undefined and nothing counted. */
  hit(token: string, now: Date): VerifiedTaskToken | undefined {
    const hit = this.lookup(token, now);
    if (hit !== undefined) this.hits++;
    return hit;
  }

  private async verifyAndStore(token: string, now: Date): Promise<VerifiedTaskToken> {
    const result = await verifyTaskToken(token, { ...this.options, now });
    const resolved = this.options.keys(result.kid, now);
    if (resolved === undefined) return result; // key vanished meanwhile: answer, do not cache
    const { iat, nbf } = result.claims;
    this.store(cacheKey(token), {
      token,
      result,
      expMs: result.expiresAt.getTime(),
      notBeforeMs: Math.max(iat, nbf) * 1000 - this.toleranceMs,
      key: resolved.key,
      used: false,
      unrevokedAt: Number.NaN,
    });
    return result;
  }

  /**
   * Second-chance ("clock") eviction over the Map's insertion order: the oldest entry goes unless
   * it was hit since it was last considered, in which case it moves to the back. Terminates: each
   * entry is moved at most once per call before the bits run out.
   */
  private store(key: string, entry: Entry): void {
    this.entries.delete(key);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.entries().next();
      if (oldest.done) break;
      const [oldKey, old] = oldest.value;
      this.entries.delete(oldKey);
      if (old.used) {
        old.used = false;
        this.entries.set(oldKey, old);
      }
    }
    this.entries.set(key, entry);
  }

  /** Drops entries that expired by `now`; returns how many. Optional housekeeping. */
  sweep(now: Date): number {
    const nowMs = now.getTime();
    let removed = 0;
    for (const [key, entry] of this.entries) {
      if (nowMs >= entry.expMs) {
        this.entries.delete(key);
        removed++;
      }
    }
    return removed;
  }

  invalidate(token: string): void {
    const key = cacheKey(token);
    if (this.entries.get(key)?.token === token) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/** A token's Map key: what follows its last dot (the whole string when there is none). */
function cacheKey(token: string): string {
  return token.slice(token.lastIndexOf(".") + 1);
}
