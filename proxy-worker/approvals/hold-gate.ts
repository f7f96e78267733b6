import { randomUUID } from "node:crypto";
import pg from "pg";
import { approvalAuthorityProblem, consumeApproval } from "@/lib/approvals/authority";
import { cancelApprovals, cancelReasonText, type CancelReason } from "@/lib/approvals/cancel";
import { approvalsNeeded, requiredByEffect } from "@/lib/approvals/required";
import { sealApproval, sealMatches } from "@/lib/approvals/seal";
import { storedRequest } from "@/lib/approvals/stored-request";
import { visible } from "@/lib/audit/view";
import { agentStripped } from "../proxy/headers";
import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import type { Logger } from "@/lib/log";
import { canonicalUrl } from "@/lib/semantics/canonical";
import type { Authority } from "../identity/token-verifier";
import type { CanonicalRequest, SemanticAction } from "@/lib/semantics/types";
import { actionsChanged } from "./actions-changed";
import { requestDigest } from "../proxy/digest";
import type { HoldStatus } from "./async-hold";
import type { HoldGate } from "../proxy/pipeline";

export const APPROVAL_CHANNEL = "bulkhead_approvals";

type HoldResult = Awaited<ReturnType<HoldGate["hold"]>>;

/** How the worker appears in the audit when it cancels an approval itself. */
const WORKER_ACTOR = { actorType: "system", actorId: "proxy-worker" } as const;

interface Waiter {
  authority: Authority;
  wake: () => void;
  cancel: (reason: CancelReason) => void;
}

export interface HoldGateOptions {
  /** How often a waiter re-reads its approval when no notification came (a safety net). */
  pollMs?: number;
  /** Whether the worker already knows the authority is gone (checked when a hold starts). */
  revoked?: (authority: Authority) => CancelReason | null;
  /** Pending holds one task may have at once (BULKHEAD_TASK_MAX_PENDING_HOLDS); unlimited when absent. */
  maxPendingPerTask?: number;
  /**
   * This worker's identity, stable across its restarts (its audit log's id): recorded on each
   * blocking hold, so that the next start cancels what a killed predecessor left pending.
   */
  holder?: string;
  /**
   * The key this worker seals the approvals it records with (`approvalSealKey` of the worker's
   * process key). When set, a 202 grant is released only from a row that carries its valid seal:
   * a row someone else inserted with the worker's database role releases nothing.
   */
  sealKey?: Buffer;
}

/** Advisory lock class for creating one task's holds (the task id's hash is the second key): "bhhl". */
const HOLD_LIMIT_LOCK = 0x6268_686c;

const cancelled = (approvalId: string, reason: string | null): HoldResult => ({
  outcome: "cancelled",
  approvalId,
  reason: `the approval was cancelled because ${cancelReasonText(reason)}`,
});

/**
 * Holds a request until a person decides. The approval row is bound to a digest of the exact
 * request and to the token that made it; the waiter wakes on NOTIFY (with a slow poll as a safety
 * net), and consumes an approval with one conditional update, so it is used once, only for this
 * request, only before it expires and only while the task, agent and token still stand. A hold
 * never outlives its authority: it ends at the hold timeout or when the task or token expires,
 * whichever is first, and a kill switch (`cancelWhere`, or a cancelled row) answers it at once.
 */
export class PostgresHoldGate implements HoldGate {
  private listener: pg.Client | null = null;
  private readonly waiters = new Map<string, Waiter>();
  private closed = false;
  /** Set once the worker stops: every hold is answered at once, and none waits any more. */
  private stopping = false;
  /** Cancellations being written (close waits for them before the database goes). */
  private readonly cancelling = new Set<Promise<void>>();
  private readonly pollMs: number;
  /** Whether the holds an earlier run left have been cancelled (see `cancelLeftBehind`). */
  private leftBehindCancelled = false;
  private leftBehindAttempt: Promise<void> | null = null;
  private leftBehindRetry: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Db,
    private readonly databaseUrl: string,
    private readonly log: Logger,
    private readonly timeoutMs: number,
    private readonly options: HoldGateOptions = {},
  ) {
    this.pollMs = options.pollMs ?? 2000;
  }

  async start(): Promise<void> {
    await this.cancelLeftBehind().catch(() => undefined);
    await this.listen();
  }

  /**
   * Cancels the blocking holds an earlier run of this worker left pending (or approved, unused):
   * it was killed or crashed while they waited, so the requests went with it and nobody can
   * release them. Each is audited as `approval.cancelled` (`worker_stopped`). Another worker's
   * holds are not touched (they carry its id); 202-and-poll holds carry none.
   *
   * This run's holds carry the same id, so the cancellation must be over before this run records
   * its first one: it runs at start and, when PostgreSQL was away then, again every 5 s and before
   * any blocking hold is recorded (one attempt at a time, awaited by every hold), never after.
   */
  private cancelLeftBehind(): Promise<void> {
    if (this.leftBehindCancelled || !this.options.holder || this.closed) return Promise.resolve();
    this.leftBehindAttempt ??= this.cancelLeftBehindNow(this.options.holder).finally(() => {
      this.leftBehindAttempt = null;
    });
    return this.leftBehindAttempt;
  }

  private async cancelLeftBehindNow(holder: string): Promise<void> {
    try {
      const { ids, unsealed } = await this.db.$transaction(async (tx) => ({
        ids: await cancelApprovals(tx, { heldBy: holder }, "worker_stopped", WORKER_ACTOR),
        // Rows without a seal (held before this version, or not by a worker) release nothing here:
        // settled now, not left for people to approve in vain. Every row this version holds is sealed
        // in the statement that inserts it.
        unsealed: this.options.sealKey ? await cancelApprovals(tx, { unsealed: true }, "unsealed", WORKER_ACTOR) : [],
      }));
      this.leftBehindCancelled = true;
      if (ids.length > 0) this.log.warn({ approvals: ids }, "cancelled the held requests an earlier run of this worker left waiting (it stopped without answering them)");
      if (unsealed.length > 0) this.log.warn({ approvals: unsealed }, "cancelled pending and approved approvals that carry no seal (held by an earlier version of Bulkhead, or not by a worker): they could release nothing");
    } catch (error) {
      // PostgreSQL away: the worker starts all the same (it enforces its last-known-good policy) and tries again.
      this.log.warn({ err: error instanceof Error ? error.message : String(error) }, "could not cancel the held requests an earlier run of this worker left waiting; trying again in 5 s");
      if (!this.leftBehindRetry) {
        this.leftBehindRetry = setTimeout(() => {
          this.leftBehindRetry = null;
          void this.cancelLeftBehind().catch(() => undefined);
        }, 5000).unref();
      }
      throw error;
    }
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 5000 });
    client.on("notification", (n) => {
      if (n.payload) this.waiters.get(n.payload)?.wake();
    });
    client.on("error", (error) => {
      this.log.warn({ err: error.message }, "approval listener lost its connection; waiters fall back to polling");
      this.listener = null;
      client.end().catch(() => undefined);
      setTimeout(() => void this.listen(), 1000).unref();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${APPROVAL_CHANNEL}`);
      this.listener = client;
      for (const waiter of this.waiters.values()) waiter.wake(); // catch up on anything missed
    } catch (error) {
      this.log.warn({ err: error instanceof Error ? error.message : String(error) }, "cannot listen for approvals yet");
      await client.end().catch(() => undefined);
      setTimeout(() => void this.listen(), 1000).unref();
    }
  }

  /** Creates the approval row for a request (null when the task is at its limit of pending holds). */
  private async createRow(input: Parameters<HoldGate["hold"]>[0], pollMode = false) {
    const { auth, request } = input;
    const digest = requestDigest(auth.taskId, auth.agentId, request);
    const now = Date.now();
    // The hold ends at the timeout, or when the task or its token expires, whichever is first.
    const limits: Array<{ at: number; reason: CancelReason | null }> = [
      { at: now + this.timeoutMs, reason: null },
      { at: auth.task.expiresAt.getTime(), reason: "task_expired" },
      ...(auth.token ? [{ at: auth.token.expiresAt.getTime(), reason: "token_expired" as const }] : []),
    ];
    const deadline = limits.reduce((a, b) => (b.at < a.at ? b : a));
    // An earlier run's holds are cancelled before this run records one under the same holder id
    // (when that fails, PostgreSQL is away and so would the insert: the hold fails the same way).
    if (!pollMode) await this.cancelLeftBehind();
    const approval = await this.createWithinLimit(auth.taskId, async () => {
      const card = {
        id: randomUUID(),
        taskId: auth.taskId,
        agentId: auth.agentId,
        jti: auth.jti,
        requestDigest: digest,
        method: request.method,
        url: canonicalUrl(request).slice(0, 4096),
        actions: input.actions as unknown as Prisma.InputJsonValue,
        reason: input.reason.slice(0, 2000),
        ...storedRequest(request, (name) => !agentStripped(name)),
        requiredApprovals: approvalsNeeded(await requiredByEffect(this.db), input.actions),
      };
      return {
        data: {
          ...card,
          seal: this.options.sealKey ? sealApproval(this.options.sealKey, card) : null,
          expiresAt: new Date(deadline.at),
          policyVersion: auth.task.policyVersion,
          pollMode,
          heldBy: pollMode ? null : (this.options.holder ?? null),
        },
        select: { id: true },
      };
    });
    return approval ? { id: approval.id, digest, deadline } : null;
  }

  private limited(): { outcome: "limited"; approvalId: null; reason: string } {
    return { outcome: "limited", approvalId: null, reason: `this task already has ${this.options.maxPendingPerTask} requests waiting for approval; decide or let them time out first` };
  }

  /** 202-and-poll: records the hold and returns at once; nobody waits on it. */
  async open(input: Parameters<HoldGate["hold"]>[0]): Promise<{ outcome: "opened"; approvalId: string; expiresAt: Date } | ReturnType<PostgresHoldGate["limited"]>> {
    const row = await this.createRow(input, true);
    if (!row) return this.limited();
    return { outcome: "opened", approvalId: row.id, expiresAt: new Date(row.deadline.at) };
  }

  /** Where a hold of this task stands (null when the task has no such hold: another task's is not shown). */
  async status(taskId: string, id: string, now = new Date()): Promise<HoldStatus | null> {
    const row = await this.db.approval.findFirst({ where: { id, taskId }, select: { status: true, expiresAt: true, cancelReason: true, decisionNote: true } });
    if (!row) return null;
    if (row.status === "pending" && row.expiresAt <= now) return { status: "expired", expiresAt: row.expiresAt, reason: "no one approved the request in time" };
    const reason = row.status === "cancelled" ? cancelReasonText(row.cancelReason) : row.status === "denied" ? (row.decisionNote ?? null) : null;
    return { status: row.status, expiresAt: row.expiresAt, reason };
  }

  /**
   * Uses a grant from 202-and-poll: the approval must be approved, unused, unexpired, for this
   * exact request (same digest, so the same task and agent), presented with the token that made
   * the request (the same jti; a sandbox's request has none) and its authority must still stand.
   * One conditional update, so a grant releases one request at most.
   */
  async redeem(input: { auth: Parameters<HoldGate["hold"]>[0]["auth"]; request: CanonicalRequest; grant: string; actions?: SemanticAction[] }): Promise<HoldResult> {
    const { auth, request, grant } = input;
    const id = /^[0-9a-f-]{36}$/i.test(grant) ? grant.toLowerCase() : null;
    if (!id) return { outcome: "denied", approvalId: grant.slice(0, 64), reason: "the approval grant is not an approval id" };
    const digest = requestDigest(auth.taskId, auth.agentId, request);
    const row = await this.db.approval.findFirst({ where: { id, taskId: auth.taskId }, select: { id: true, jti: true, actions: true, requestDigest: true } });
    if (!row) return { outcome: "denied", approvalId: id, reason: "no such approval for this task" };
    if (this.options.sealKey && !(await this.sealed(id, this.options.sealKey))) {
      this.log.error({ approvalId: id, taskId: auth.taskId }, "an approval grant was presented for a row that no Bulkhead worker sealed (inserted with the worker's database role?); nothing released");
      return { outcome: "denied", approvalId: id, reason: "the approval was not sealed by Bulkhead's proxy (it was not recorded by a worker holding the request), so it releases nothing" };
    }
    // Bound to the token that made the request (as a blocking hold is): another token of the same
    // task, minted or stolen meanwhile, cannot spend it. The jti never changes, so no race here.
    if (row.jti !== auth.jti) return { outcome: "denied", approvalId: id, reason: "the approval is bound to another task token (the one that made the request)" };
    // The same request, judged now, must still do what the card said it did when a person
    // approved it (the service registry or the inventory may have changed since): checked before
    // the grant is spent. Sealed, so the stored actions are the worker's own.
    const changed = input.actions && row.requestDigest === digest ? actionsChanged(Array.isArray(row.actions) ? (row.actions as unknown as SemanticAction[]) : [], input.actions) : null;
    if (changed) {
      return { outcome: "denied", approvalId: id, reason: `what the request does was judged differently since it was approved (the service registry or environment inventory changed): ${changed}; the grant releases only what it was given for, so nothing was forwarded; send the request without the grant to have it judged afresh` };
    }
    const settled = await this.settle(id, digest);
    if (settled?.outcome === "approved" || settled?.outcome === "cancelled" || settled?.outcome === "denied") return settled;
    if (settled === null) return { outcome: "denied", approvalId: id, reason: "the request is still waiting for a person; poll its status first" };
    // Approved but not consumable: used already, expired, or bound to another request.
    const current = await this.db.approval.findUnique({ where: { id }, select: { status: true, requestDigest: true } });
    if (current?.requestDigest !== digest) return { outcome: "denied", approvalId: id, reason: "the approval is bound to a different request (its method, URL, headers or body differ)" };
    return settled;
  }

  /** Whether the row carries this worker key's seal over exactly what it holds (seal.ts). */
  private async sealed(id: string, key: Buffer): Promise<boolean> {
    const row = await this.db.approval.findUnique({
      where: { id },
      select: { id: true, taskId: true, agentId: true, jti: true, requestDigest: true, method: true, url: true, actions: true, reason: true, requestHeaders: true, requestBody: true, requiredApprovals: true, seal: true },
    });
    return row !== null && sealMatches(key, { ...row, requestBody: row.requestBody ? new Uint8Array(row.requestBody) : null }, row.seal);
  }

  async hold(input: Parameters<HoldGate["hold"]>[0]): Promise<HoldResult> {
    const { auth } = input;
    const row = await this.createRow(input);
    if (!row) return this.limited();
    const { digest, deadline } = row;
    const approval = { id: row.id };
    const id = approval.id;
    const authority: Authority = { taskId: auth.taskId, agentId: auth.agentId, jti: auth.jti };
    return new Promise<HoldResult>((resolve) => {
      let settled = false;
      let checking = false;
      const finish = (result: HoldResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.delete(id);
        input.abandoned?.removeEventListener("abort", gone);
        resolve(result);
      };
      const check = async () => {
        if (settled || checking) return;
        checking = true;
        try {
          const result = await this.settle(id, digest);
          if (result) finish(result);
        } catch (error) {
          this.log.warn({ err: error instanceof Error ? error.message : String(error), approvalId: id }, "could not check approval");
        } finally {
          checking = false;
        }
      };
      const cancel = (reason: CancelReason) => {
        if (settled) return;
        // Answered at once; the row follows (a kill switch in the dashboard may have written it already).
        finish(cancelled(id, reason));
        const row = this.cancelRow(id, reason);
        this.cancelling.add(row);
        void row.finally(() => this.cancelling.delete(row));
      };
      // The client went away: nobody waits for the answer, so no person is asked to give one (an
      // approval given meanwhile would be recorded as allowing a request that is never sent).
      const gone = () => cancel("client_gone");
      this.waiters.set(id, { authority, wake: () => void check(), cancel });
      const poll = setInterval(() => void check(), this.pollMs);
      const timer = setTimeout(async () => {
        if (deadline.reason) return cancel(deadline.reason);
        // Expire it unless it was decided in the meantime; then settle whatever it is.
        await this.db.approval.updateMany({ where: { id, status: "pending" }, data: { status: "expired" } }).catch(() => undefined);
        const result = await this.settle(id, digest).catch(() => null);
        finish(result ?? { outcome: "expired", approvalId: id, reason: "no one approved the request in time" });
      }, Math.max(0, deadline.at - Date.now()));
      // A revocation this worker already knows of, or one committed (and notified) before this
      // waiter existed, is not waited out.
      const known = this.options.revoked?.(authority);
      if (known) cancel(known);
      else if (this.stopping) cancel("worker_stopped");
      else if (input.abandoned?.aborted) gone();
      else {
        input.abandoned?.addEventListener("abort", gone, { once: true });
        void check();
      }
    });
  }

  /**
   * Creates the approval row unless the task already has its limit of pending holds, counted in
   * the database across every worker. The count and the insert run under a transaction-scoped
   * advisory lock of the task, so holds of one task are created one at a time by all workers
   * together: a burst split between workers can neither slip one more past the limit nor be
   * refused while there is room.
   */
  private async createWithinLimit(
    taskId: string,
    build: () => Promise<Parameters<Db["approval"]["create"]>[0] & { select: { id: true } }>,
  ): Promise<{ id: string } | null> {
    const max = this.options.maxPendingPerTask;
    const row = await build();
    if (max === undefined) return this.db.approval.create(row);
    return this.db.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${HOLD_LIMIT_LOCK}::int, hashtext(${taskId}))`;
      // Pending and not yet timed out: a 202-and-poll hold nobody decided stops counting at its deadline.
      const pending = await tx.approval.count({ where: { taskId, status: "pending", expiresAt: { gt: new Date() } } });
      if (pending >= max) return null;
      return tx.approval.create(row);
    });
  }

  /** Answers and cancels the holds whose authority is gone; returns how many. */
  cancelWhere(reasonFor: (authority: Authority) => CancelReason | null): number {
    let n = 0;
    for (const waiter of [...this.waiters.values()]) {
      const reason = reasonFor(waiter.authority);
      if (!reason) continue;
      waiter.cancel(reason);
      n++;
    }
    return n;
  }

  private async cancelRow(id: string, reason: CancelReason): Promise<void> {
    try {
      await this.db.$transaction((tx) => cancelApprovals(tx, { ids: [id] }, reason, WORKER_ACTOR));
    } catch (error) {
      // The request was refused all the same; the approval API re-checks the task before deciding.
      this.log.warn({ err: error instanceof Error ? error.message : String(error), approvalId: id }, "could not record the approval's cancellation");
    }
  }

  /** The outcome if the approval has been decided (consuming an approval), else null. */
  private async settle(id: string, digest: string): Promise<HoldResult | null> {
    const row = await this.db.approval.findUnique({
      where: { id },
      select: { status: true, cancelReason: true, decisionNote: true, taskId: true, jti: true, decidedBy: { select: { email: true } } },
    });
    if (!row || row.status === "pending") return null;
    if (row.status === "cancelled") return cancelled(id, row.cancelReason);
    if (row.status === "approved") {
      const now = new Date();
      if (await consumeApproval(this.db, id, digest, now)) return { outcome: "approved", approvalId: id, decidedBy: row.decidedBy?.email ?? null };
      // Approved, but its authority went away first: cancelled, and said so.
      const problem = await approvalAuthorityProblem(this.db, row, now);
      if (problem) {
        await this.cancelRow(id, problem);
        return cancelled(id, problem);
      }
      return { outcome: "expired", approvalId: id, reason: "the approval arrived after the request timed out" };
    }
    // The note goes to the agent (it may say what to do instead), as visible text: a control or
    // direction-changing character in it reached the agent's terminal or context as it was.
    if (row.status === "denied") return { outcome: "denied", approvalId: id, reason: `a person denied the request${row.decisionNote ? `: ${visible(row.decisionNote)}` : ""}` };
    if (row.status === "consumed") return { outcome: "expired", approvalId: id, reason: "the approval was already used: it releases one request, once", used: true };
    return { outcome: "expired", approvalId: id, reason: "no one approved the request in time" };
  }

  pending(): number {
    return this.waiters.size;
  }

  /**
   * The worker is stopping: every request held here is answered now (`approval_cancelled`,
   * `worker_stopped`) and its approval cancelled, and so is any hold that starts from now on. A
   * held request lives in this process only; left waiting it would be cut off without an answer
   * when the worker exits, and its approval would stay pending for someone to grant a request
   * that nobody can release any more. Holds answered with 202 (poll mode) are left: any worker
   * redeems those.
   */
  stop(): number {
    this.stopping = true;
    return this.cancelWhere(() => "worker_stopped");
  }

  async close(): Promise<void> {
    this.stop();
    // The cancellations are written (and audited) before the database connection goes.
    await Promise.all([...this.cancelling]);
    this.closed = true;
    if (this.leftBehindRetry) clearTimeout(this.leftBehindRetry);
    this.leftBehindRetry = null;
    await this.listener?.end().catch(() => undefined);
    this.listener = null;
  }
}
