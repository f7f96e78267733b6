import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import { recordAuditEvent, type AuditActorRef } from "@/lib/audit/record";
import type { Actor } from "@/lib/auth/actor";

/**
 * Why a kill switch cancelled an approval (stored in `approvals.cancel_reason`), with the
 * sentence people and agents read. `task_inactive` is what a worker records when its snapshot no
 * longer has the task and it cannot tell which switch was pulled; `client_gone` what it records when
 * the connection of the request being held closed (nobody waits for the answer any more);
 * `policy_changed` what a policy save records for the held requests the new policy denies
 * (`policy-change.ts`);
 * `worker_stopped` what it records for the requests it held when it stops (or, after a crash, what
 * its next start records for them): the request waited in that process, and no other can release it.
 * `approver_removed` what disabling a person, or taking the right to approve from them, records for
 * the approvals they gave that are not used yet (`cancelApprovalsGivenBy`); `approver_key_revoked`
 * what revoking an API key records for the approvals with a vote cast through it that could still
 * release a request: approved and not used yet, or pending (`cancelApprovalsVotedThrough`).
 * `unsealed` what a worker that seals its holds records, when it starts, for pending and approved
 * rows that carry no seal: held by a version of Bulkhead before the seal (or inserted by something
 * other than a worker), they can release nothing, and were left for people to decide in vain.
 */
export const CANCEL_REASONS = {
  task_ended: "the task was ended",
  task_revoked: "the task was revoked",
  task_expired: "the task expired",
  agent_suspended: "the agent was suspended",
  token_revoked: "the task token was revoked",
  token_expired: "the task token expired",
  task_inactive: "the task is no longer active",
  client_gone: "the agent stopped waiting for the answer (its connection closed)",
  policy_changed: "the task's policy was changed and now denies the request",
  worker_stopped: "the proxy worker holding the request stopped before anyone decided (the request was not forwarded)",
  approver_removed: "a person who approved it was disabled or lost the right to approve it before it was used",
  approver_key_revoked: "an API key through which it was approved was revoked before it was used",
  unsealed: "it was held by an earlier version of Bulkhead (or recorded by something other than its proxy) and carries no seal, so no worker can release it; the agent asks again",
} as const;

export type CancelReason = keyof typeof CANCEL_REASONS;

export function isCancelReason(value: unknown): value is CancelReason {
  return typeof value === "string" && Object.hasOwn(CANCEL_REASONS, value);
}

/** The sentence for a stored reason (an unknown value reads as the generic one). */
export function cancelReasonText(reason: string | null | undefined): string {
  return isCancelReason(reason) ? CANCEL_REASONS[reason] : CANCEL_REASONS.task_inactive;
}

/** Which approvals a kill switch reaches. */
export type CancelScope = { taskIds: string[] } | { agentId: string } | { jti: string } | { ids: string[] } | { heldBy: string } | { unsealed: true };

function scopeWhere(scope: CancelScope) {
  if ("taskIds" in scope) return { taskId: { in: scope.taskIds } };
  if ("agentId" in scope) return { agentId: scope.agentId };
  if ("jti" in scope) return { jti: scope.jti };
  // A worker's blocking holds (202-and-poll holds carry no holder).
  if ("heldBy" in scope) return { heldBy: scope.heldBy, pollMode: false };
  if ("unsealed" in scope) return { seal: null };
  return { id: { in: scope.ids } };
}

/**
 * Cancels the approvals in `scope` that could still release a request (pending, or approved and
 * not yet used) and records one `approval.cancelled` event each. Call it inside the transaction
 * of the change that took the authority away, so the two commit together: the status change
 * wakes the worker holding the request (NOTIFY), and an approval recorded afterwards finds a
 * terminal state and releases nothing.
 */
export async function cancelApprovals(
  tx: Pick<Db, "approval" | "auditEvent">,
  scope: CancelScope,
  reason: CancelReason,
  actor: Actor | AuditActorRef,
  now = new Date(),
): Promise<string[]> {
  if (("taskIds" in scope && scope.taskIds.length === 0) || ("ids" in scope && scope.ids.length === 0)) return [];
  const rows = await tx.approval.updateManyAndReturn({
    where: { ...scopeWhere(scope), status: { in: ["pending", "approved"] } },
    data: { status: "cancelled", cancelledAt: now, cancelReason: reason },
    select: { id: true, taskId: true, agentId: true, method: true, url: true },
  });
  for (const row of rows) {
    await recordAuditEvent(tx, {
      type: "approval.cancelled",
      actor,
      agentId: row.agentId,
      taskId: row.taskId,
      outcome: "cancel",
      reason: CANCEL_REASONS[reason],
      data: { approvalId: row.id, cause: reason, method: row.method, url: row.url },
    });
  }
  return rows.map((r) => r.id);
}

/**
 * Cancels the approvals `userId` helped approve that are not used yet (a 202 grant waiting for
 * the agent's retry, a blocking hold a worker has not yet released): called in the transaction
 * that disables the person or takes the right to approve from them. An account found compromised
 * is disabled precisely so that what it approved does not happen; a grant left approved stayed
 * good until its deadline (the hold timeout, hours if so configured). Used approvals are history.
 */
export async function cancelApprovalsGivenBy(
  tx: Pick<Db, "approval" | "auditEvent">,
  userId: string,
  actor: Actor | AuditActorRef,
  now = new Date(),
  /** Only those outside this approver scope (the person's scope was narrowed): the rest still stand. */
  outside?: Prisma.ApprovalWhereInput,
): Promise<string[]> {
  const given: Prisma.ApprovalWhereInput = { status: "approved", OR: [{ decidedById: userId }, { votes: { some: { userId } } }] };
  const rows = await tx.approval.findMany({ where: outside ? { AND: [given, { NOT: outside }] } : given, select: { id: true } });
  return cancelApprovals(tx, { ids: rows.map((r) => r.id) }, "approver_removed", actor, now);
}

/**
 * Cancels every approval with a vote cast through one of `apiKeyIds` that could still release a
 * request: approved and not used yet (a 202 grant, a blocking hold a worker has not released), or
 * still pending (an N-of-M approval the key voted for). Called in the transaction that sets the
 * keys' `revoked_at`: a key is revoked (found stolen) precisely so that what it did does not take
 * effect. A pending approval is cancelled rather than its vote withdrawn: the vote row is the
 * key creator's one vote on it (insert-only, one per person), so a withdrawn vote would leave that
 * person unable to vote on the request themselves, and a request a stolen key voted for is better
 * judged afresh. Approvals the key's creator gave through a dashboard session stand; used ones are
 * history.
 */
export async function cancelApprovalsVotedThrough(
  tx: Pick<Db, "approval" | "auditEvent">,
  apiKeyIds: readonly string[],
  actor: Actor | AuditActorRef,
  now = new Date(),
): Promise<string[]> {
  if (apiKeyIds.length === 0) return [];
  const rows = await tx.approval.findMany({
    where: { status: { in: ["pending", "approved"] }, votes: { some: { apiKeyId: { in: [...apiKeyIds] } } } },
    select: { id: true },
  });
  return cancelApprovals(tx, { ids: rows.map((r) => r.id) }, "approver_key_revoked", actor, now);
}
