import { createHash } from "node:crypto";
import type { IdentityConfig } from "@/lib/config/identity";
import { TokenError } from "@/lib/identity/errors";
import { VerificationKeySet } from "@/lib/identity/key-ring";
import { RevocationSet } from "@/lib/identity/revocation";
import { scopeWithin, type TaskScope } from "@/lib/identity/scope";
import type { VerifiedTaskToken } from "@/lib/identity/token";
import { VerifiedTokenCache } from "@/lib/identity/token-cache";
import type { IssuedTokenRecord, PolicyVersion, SnapshotTask } from "../policy/snapshot";

/** Who is acting, for which task, and how that was established. */
export interface AuthenticatedTask {
  task: SnapshotTask;
  agentId: string;
  taskId: string;
  /** The token's jti; null when identified by sandbox address. */
  jti: string | null;
  via: "token" | "sandbox";
  token: VerifiedTaskToken | null;
  /**
   * Layer 1: what this request may touch, checked before any policy. The token's own scope claim
   * (an older token keeps the scope it was minted with); for a sandbox, its task's scope.
   */
  scope: TaskScope;
}

/** Whose a connection or a held request is: what a kill switch is matched against. */
export interface Authority {
  taskId: string;
  agentId: string;
  /** The token's jti; null when the sandbox's address identified the task. */
  jti: string | null;
}

/**
 * The worker's view of task tokens: the one verification function behind a cache, fed from the
 * policy snapshot. Revocations only accumulate (until the tokens they cover have expired), so a
 * revocation the worker has seen is never forgotten, even if a later read of the database
 * somehow lacks it; agent suspension follows the database both ways.
 *
 * A token must also have been issued by Bulkhead: its jti must be a row of issued_tokens for the
 * same task and agent. The worker knows every unexpired jti from its snapshot (a Map lookup on
 * the hot path); a jti it has not seen yet (issued after the last snapshot) is looked up in the
 * database once, only after the signature verified, so only a holder of the signing key can make
 * the worker ask.
 */
export class TokenVerifier {
  private readonly keys = new VerificationKeySet();
  private readonly revocation = new RevocationSet();
  private readonly cache: VerifiedTokenCache;
  private keysFingerprint = "";
  private tasks = new Map<string, SnapshotTask>();
  private suspended = new Set<string>();
  private issued = new Map<string, IssuedTokenRecord>();
  /** Signing-key rows of the last snapshot that are not usable public keys (left out). */
  private unusable: Array<{ kid: string; reason: string }> = [];
  /** Told each time the snapshot's keys change, with the rows left out (none: an empty list). */
  onUnusableKeys: ((unusable: Array<{ kid: string; reason: string }>) => void) | null = null;

  constructor(
    config: IdentityConfig,
    /** Reads one issued_tokens row (null when there is none); without it, only the snapshot counts. */
    private readonly lookupIssued?: (jti: string) => Promise<IssuedTokenRecord | null>,
  ) {
    this.cache = new VerifiedTokenCache({ verify: { ...config, keys: this.keys.resolver, revocation: this.revocation } });
  }

  /** Signing-key rows the last snapshot held that are not usable public keys. */
  unusableKeys(): ReadonlyArray<{ kid: string; reason: string }> {
    return this.unusable;
  }

  async applySnapshot(snapshot: PolicyVersion, now = new Date()): Promise<void> {
    // Revocations first: they only ever refuse more, so they are taken even when the rest of the
    // snapshot cannot be (a key that will not import fails the load below, and every full load
    // after it, and a task ended meanwhile was never refused).
    for (const t of snapshot.revocation.revokedTasks) {
      if (typeof t === "string") this.revocation.revokeTask(t);
      else this.revocation.revokeTask(t.id, t.until);
    }
    for (const j of snapshot.revocation.revokedJtis) {
      if (typeof j === "string") this.revocation.revokeJti(j);
      else this.revocation.revokeJti(j.id, j.until);
    }
    for (const agentId of snapshot.suspendedAgents) this.revocation.suspendAgent(agentId);
    // Re-importing keys invalidates cached verifications; do it only when the keys changed. A key
    // that will not import is left out (its tokens find no key and are refused) and said by the
    // caller (onUnusableKeys); the rest of the snapshot is taken.
    const fingerprint = createHash("sha256").update(JSON.stringify(snapshot.keys)).digest("hex");
    if (fingerprint !== this.keysFingerprint) {
      const { unusable } = await this.keys.replace(snapshot.keys);
      this.keysFingerprint = fingerprint;
      this.unusable = unusable;
      this.onUnusableKeys?.(unusable);
    }
    // What widens comes last, once nothing can fail.
    for (const agentId of this.suspended) if (!snapshot.suspendedAgents.has(agentId)) this.revocation.reinstateAgent(agentId);
    this.suspended = new Set(snapshot.suspendedAgents);
    this.tasks = snapshot.tasks;
    this.issued = snapshot.issuedJtis;
    this.revocation.prune(now);
  }

  /**
   * Authenticates a task token: valid signature and claims, not revoked, bound to a task that is
   * active in the current snapshot for the same agent, and with a scope claim that lies within
   * that task's scope. Throws TokenError otherwise.
   */
  authenticate(token: string, now = new Date()): Promise<AuthenticatedTask> {
    // The usual request (twice each: authenticated, then confirmed before forwarding): a token
    // verified before, whose jti the snapshot holds. Every check is the same as below, without a
    // promise and an await per step.
    let hit: VerifiedTaskToken | undefined;
    try {
      hit = this.cache.hit(token, now);
      const record = hit === undefined ? undefined : this.issued.get(hit.jti);
      if (hit !== undefined && record !== undefined) {
        if (record.taskId !== hit.taskId || record.agentId !== hit.agentId) throw new TokenError("jti_unknown");
        return Promise.resolve(this.authorise(hit, now));
      }
    } catch (error) {
      // Refused as the async path refuses: a rejection, never a throw.
      return Promise.reject(error);
    }
    return this.verifyAndAuthorise(token, now, hit);
  }

  /** Verifies a token not in the cache (or found there with a jti the snapshot lacks), then authorises it. */
  private async verifyAndAuthorise(token: string, now: Date, cached: VerifiedTaskToken | undefined): Promise<AuthenticatedTask> {
    const verified = cached ?? (await this.cache.check(token, now));
    await this.assertIssued(verified);
    return this.authorise(verified, now);
  }

  /** A verified, issued token's task: active in the snapshot, for the same agent, unexpired, and the claim within its scope. */
  private authorise(verified: VerifiedTaskToken, now: Date): AuthenticatedTask {
    const task = this.tasks.get(verified.taskId);
    if (!task) throw new TokenError(this.missingTask(verified.taskId));
    if (task.agentId !== verified.agentId) throw new TokenError("claim_invalid", "sub");
    // The snapshot is only as fresh as its last reload; the clock is always current.
    if (task.expiresAt.getTime() <= now.getTime()) throw new TokenError("task_expired");
    // The claim is what counts, but a claim its task never had (a stored scope changed behind
    // Bulkhead's back, or unreadable) is not honoured.
    if (!task.scope || !scopeWithin(verified.scope, task.scope)) throw new TokenError("scope_mismatch");
    return { task, agentId: task.agentId, taskId: task.id, jti: verified.jti, via: "token", token: verified, scope: verified.scope };
  }

  /**
   * Why `authority` may no longer act (the same facts a new request is checked against: task
   * active in the snapshot and unexpired, agent not suspended, token not revoked), or null.
   * Synchronous and cheap: the kill switch asks it for every open connection and held request.
   */
  revoked(authority: Authority, now = new Date()): "task_revoked" | "task_expired" | "agent_suspended" | "jti_revoked" | null {
    if (this.revocation.isAgentSuspended(authority.agentId)) return "agent_suspended";
    if (authority.jti !== null && this.revocation.isJtiRevoked(authority.jti)) return "jti_revoked";
    const task = this.tasks.get(authority.taskId);
    if (!task) return this.missingTask(authority.taskId);
    if (task.agentId !== authority.agentId || this.revocation.isTaskRevoked(authority.taskId)) return "task_revoked";
    if (task.expiresAt.getTime() <= now.getTime()) return "task_expired";
    return null;
  }

  /**
   * Why a task the snapshot no longer holds is gone. The snapshot holds the active, unexpired
   * tasks of active agents; tasks are never deleted, and one ended or revoked while its lifetime
   * runs is in the revocation set (an agent's suspension revokes its tasks). So a missing task that
   * is not there has expired: said as such, not as a revocation (the expiry sweep drops it from the
   * snapshot while its tokens are still inside their clock tolerance).
   */
  private missingTask(taskId: string): "task_revoked" | "task_expired" {
    return this.revocation.isTaskRevoked(taskId) ? "task_revoked" : "task_expired";
  }

  /** The earliest expiry among the snapshot's tasks after `now` (when the next one must be stopped). */
  nextTaskExpiry(now = new Date()): Date | null {
    let next: Date | null = null;
    for (const task of this.tasks.values()) {
      if (task.expiresAt.getTime() > now.getTime() && (next === null || task.expiresAt < next)) next = task.expiresAt;
    }
    return next;
  }

  private async assertIssued(token: VerifiedTaskToken): Promise<void> {
    let record = this.issued.get(token.jti);
    if (!record && this.lookupIssued) {
      record = (await this.lookupIssued(token.jti)) ?? undefined;
      // Revoked already (its revocation not heard yet, or its notification lost): the row says so,
      // and the revocation is kept like one from a snapshot.
      if (record?.revokedAt) {
        this.revocation.revokeJti(token.jti, record.expiresAt ?? null);
        throw new TokenError("jti_revoked");
      }
      // Remembered until the next snapshot, which includes it.
      if (record) this.issued.set(token.jti, { taskId: record.taskId, agentId: record.agentId });
    }
    if (!record || record.taskId !== token.taskId || record.agentId !== token.agentId) throw new TokenError("jti_unknown");
  }

  stats(): { hits: number; misses: number; revocations: { tasks: number; agents: number; jtis: number } } {
    return { hits: this.cache.hits, misses: this.cache.misses, revocations: this.revocation.sizes };
  }
}
