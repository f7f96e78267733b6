import { z } from "zod";
import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { actorStillValid } from "@/lib/auth/actor-still-valid";
import { requireStepUp, type StepUpEvidence } from "@/lib/auth/step-up";
import { AppError } from "@/lib/errors/app-error";
import { maxEffectOf, isEffect } from "@/lib/semantics/types";
import { actorUserId, approverScope, scopeWhere } from "./approver-scope";
import { approvalAuthorityProblem } from "./authority";
import { cancelApprovals, cancelReasonText, type CancelReason } from "./cancel";
import { countedVotes } from "./counted-votes";
import { approvalsLog } from "./log";
import { isFourEyesOn } from "./settings";

export const decideApprovalInput = z.object({
  note: z.string().trim().max(500).optional().meta({ description: "Kept on the approval and in the audit." }),
  allowForTask: z
    .boolean()
    .optional()
    .meta({ description: "Approve only: also add an allow rule for exactly these actions to the task's policy for the rest of the task (audited as a policy change; needs step-up)." }),
});

/** A denial takes a note only: `allowForTask` sent to deny is refused, not ignored. */
export const denyApprovalInput = decideApprovalInput.pick({ note: true });

/** The answer to deciding an approval a kill switch has cancelled: said plainly, with the reason. */
function cancelledError(reason: string | null): AppError {
  return new AppError("CONFLICT", `This request can no longer be decided: it was cancelled because ${cancelReasonText(reason)}. Nothing was forwarded.`, {
    details: { status: "cancelled", reason: reason ?? "task_inactive" },
  });
}

function noLongerDecidable(status: string, reason: string | null, decidedBy: string | null): AppError {
  if (status === "cancelled") return cancelledError(reason);
  const by = decidedBy ? ` by ${decidedBy}` : "";
  return new AppError("CONFLICT", `This request can no longer be decided: ${status === "pending" || status === "expired" ? "it timed out" : `it was already ${status}${by}`}.`, {
    details: { status, decidedBy },
  });
}

/**
 * Takes share locks, in id order, on the rows that say who may decide: the decider's user (or API
 * key and its creator, or session) and every earlier voter. Disabling a user, changing a role or
 * approver scope, revoking a key or signing out write those rows, so they wait for this decision
 * or this decision waits for them and then reads what they committed: a decision is never
 * recorded for someone an admin had already stopped.
 */
async function lockDecider(tx: Pick<Db, "$queryRaw">, actor: Actor, userIds: string[]): Promise<void> {
  const ids = [...new Set(userIds)].sort();
  if (ids.length > 0) await tx.$queryRaw`SELECT 1 FROM "users" WHERE "id" = ANY(${ids}::uuid[]) ORDER BY "id" FOR SHARE`;
  if (actor.kind === "api_key") await tx.$queryRaw`SELECT 1 FROM "api_keys" WHERE "id" = ${actor.apiKeyId}::uuid FOR SHARE`;
  if (actor.kind === "user" && actor.sessionId) await tx.$queryRaw`SELECT 1 FROM "sessions" WHERE "id" = ${actor.sessionId}::uuid FOR SHARE`;
}

/** A decider whose sign-in, role or key changed between authentication and the decision's lock. */
class StaleAuthorityError extends AppError {
  constructor() {
    super("FORBIDDEN", "Your sign-in, role or API key changed while this decision was on its way; nothing was decided.", {
      userMessage: "Your access changed meanwhile: nothing was decided. Sign in again if you still may decide approvals.",
    });
  }
}

function staleAuthority(): StaleAuthorityError {
  return new StaleAuthorityError();
}

/**
 * Runs the decision's transaction. A decision refused because the decider's authority was gone
 * by then rolls everything back, so it is recorded after, on its own: a security team sees that
 * someone just disabled, demoted or signed out tried to decide (the window is short: their next
 * request no longer authenticates).
 */
async function decideInTransaction<T>(db: Db, actor: Actor, id: string, verdict: "approve" | "deny", fn: (tx: Prisma.TransactionClient) => Promise<T>): Promise<T> {
  try {
    return await db.$transaction(fn);
  } catch (error) {
    if (error instanceof StaleAuthorityError) {
      // The refusal stands whatever happens to its record; a record that cannot be written is
      // logged, so the attempt is not lost without a trace.
      await recordAuditEvent(db, { type: "approval.decision_refused", actor, outcome: "deny", reason: "the decider's sign-in, role or API key changed before the decision", data: { approvalId: id, verdict } }).catch(
        (auditError: unknown) => {
          approvalsLog.error(
            { approvalId: id, verdict, actorKind: actor.kind, err: (auditError instanceof Error ? auditError.message : String(auditError)).trim().split("\n").at(-1) },
            "approval.decision_refused could not be recorded in the audit log",
          );
        },
      );
    }
    throw error;
  }
}

/** The most severe effect among an approval's stored actions. */
export function approvalEffect(actions: unknown) {
  const list = Array.isArray(actions) ? actions : [];
  return maxEffectOf(list.map((a: { effect?: unknown }) => (isEffect(a?.effect) ? a.effect : "irreversible")));
}

export type DecideOutcome = { id: string; status: "approved" | "denied" | "pending"; approvals: number; required: number };

/**
 * Approves or denies a held request. Only a pending approval that has not timed out can be
 * decided; the row is locked for the decision, so two approvers at once are taken in turn: one
 * decides, the other is told who did. A request that needs N distinct approvers records each
 * approval as a vote and is released by the N-th; an earlier vote counts only while its voter is
 * still active, still in a role that may approve and still scoped to this approval, checked here
 * under the row lock (votes that no longer count are listed as withdrawn in the audit). Four-eyes: the agent's owner and the task's
 * creator may add their vote but never make the one that completes an approval alone. An
 * approver scoped to some agents or services cannot see (NOT_FOUND) anything else. Approving an
 * irreversible action needs a recent sign-in (step-up). When the authority behind the request is
 * gone the approval is cancelled instead, and the caller is told so.
 */
export async function decideApproval(
  db: Db,
  actor: Actor,
  id: string,
  verdict: "approve" | "deny",
  note?: string,
  requestedAt = new Date(),
): Promise<DecideOutcome> {
  let now = requestedAt;
  assertCan(actor, "approvals:decide");
  if (!z.uuid().safeParse(id).success) throw new AppError("NOT_FOUND", "No such approval.");
  const by = actorUserId(actor);
  const scope = await approverScope(db, actor);
  const visible = await db.approval.findFirst({ where: { id, ...scopeWhere(scope) }, select: { actions: true } });
  if (!visible) throw new AppError("NOT_FOUND", "No such approval.");
  let stepUp: StepUpEvidence | null = null;
  if (verdict === "approve" && approvalEffect(visible.actions) === "irreversible") stepUp = requireStepUp(actor, "approve an irreversible action", now.getTime());

  const outcome = await decideInTransaction(db, actor, id, verdict, async (tx): Promise<DecideOutcome | { cancelled: CancelReason }> => {
    // One decision at a time per approval: the second approver waits here, then sees the first's result.
    await tx.$queryRaw`SELECT 1 FROM "approvals" WHERE "id" = ${id}::uuid FOR UPDATE`;
    // The decision happens now, not when it was asked for: waiting for the lock (another decider,
    // a kill switch) may have taken it past the deadline, and a late approval must do nothing.
    now = new Date(Math.max(requestedAt.getTime(), Date.now()));
    // Step-up is judged at that moment too, not when the form was loaded or the request began.
    if (stepUp) stepUp = requireStepUp(actor, "approve an irreversible action", now.getTime());
    const approval = await tx.approval.findUnique({
      where: { id },
      select: {
        id: true, status: true, cancelReason: true, expiresAt: true, taskId: true, agentId: true, jti: true, method: true, url: true, requiredApprovals: true,
        agent: { select: { ownerId: true } }, task: { select: { createdById: true } }, decidedBy: { select: { email: true } },
        votes: { select: { userId: true, apiKeyId: true } },
      },
    });
    if (!approval) throw new AppError("NOT_FOUND", "No such approval.");
    // The decider's own authority, as the database says now: the request was authenticated
    // before this transaction, and an admin may have disabled, demoted or narrowed them since.
    await lockDecider(tx, actor, [...(by ? [by] : []), ...approval.votes.map((v) => v.userId)]);
    if (!(await actorStillValid(tx, actor, "approvals:decide", now))) throw staleAuthority();
    const scopeNow = await approverScope(tx, actor);
    if (scopeNow && (await tx.approval.count({ where: { id, ...scopeWhere(scopeNow) } })) !== 1) throw new AppError("NOT_FOUND", "No such approval.");
    if (approval.status !== "pending") throw noLongerDecidable(approval.status, approval.cancelReason, approval.decidedBy?.email ?? null);
    if (approval.expiresAt <= now) throw noLongerDecidable("expired", null, null);
    // A kill switch nobody has applied yet (expiry is a matter of time) is applied now.
    const problem = await approvalAuthorityProblem(tx, approval, now);
    if (problem) {
      await cancelApprovals(tx, { ids: [id] }, problem, actor, now);
      return { cancelled: problem };
    }
    const required = Math.max(1, approval.requiredApprovals);
    const base = { approvalId: id, method: approval.method, url: approval.url };
    // Earlier votes count only while their voters may still approve this request (counted-votes.ts).
    const { counted, withdrawn } = await countedVotes(tx, id, approval.votes.filter((v) => v.userId !== by));
    const withdrawnData = withdrawn.length > 0 ? { withdrawnVotes: withdrawn } : {};
    if (verdict === "deny") {
      await tx.approval.update({ where: { id }, data: { status: "denied", decidedById: by, decidedAt: now, decisionNote: note ?? null }, select: { id: true } });
      await recordAuditEvent(tx, { type: "approval.denied", actor, agentId: approval.agentId, taskId: approval.taskId, outcome: "reject", reason: note ?? null, data: { ...base, note: note ?? null, ...withdrawnData } });
      return { id, status: "denied", approvals: counted.length, required };
    }

    // An approval is a person's: N-of-M counts people and four-eyes compares them with the agent's
    // owner and the task's creator. An actor no person stands behind (an API key whose creator is
    // unknown) would otherwise complete any approval alone, past both; it may still deny.
    if (!by) throw new AppError("FORBIDDEN", "No person stands behind this API key (it has no creator), so it cannot approve; it can deny.");
    const interested = new Set([approval.agent.ownerId, approval.task.createdById].filter((x): x is string => Boolean(x)));
    if (approval.votes.some((v) => v.userId === by)) {
      throw new AppError("CONFLICT", "You have already approved this request; it needs another person.", { details: { status: "pending", approvals: counted.length + 1, required } });
    }
    const voters = [...counted, by];
    const completes = voters.length >= required;
    if (completes && interested.has(by) && (await isFourEyesOn(tx)) && voters.every((v) => interested.has(v))) {
      throw new AppError("FORBIDDEN", "Four-eyes is on: the agent's owner and the task's creator cannot approve its requests alone. Ask another approver.");
    }
    // The key it was cast through, if any: revoking that key takes back what it approved (cancel.ts).
    await tx.approvalVote.create({ data: { approvalId: id, userId: by, apiKeyId: actor.kind === "api_key" ? actor.apiKeyId : null, note: note ?? null, createdAt: now } });
    if (!completes) {
      await recordAuditEvent(tx, {
        type: "approval.vote", actor, agentId: approval.agentId, taskId: approval.taskId, outcome: "approve", reason: note ?? null,
        data: { ...base, note: note ?? null, approvals: voters.length, required, ...withdrawnData, ...(stepUp ? { stepUp } : {}) },
      });
      return { id, status: "pending", approvals: voters.length, required };
    }
    // Nothing read back: an update returns every column by default, the held body included.
    await tx.approval.update({ where: { id }, data: { status: "approved", decidedById: by, decidedAt: now, decisionNote: note ?? null }, select: { id: true } });
    await recordAuditEvent(tx, {
      type: "approval.approved", actor, agentId: approval.agentId, taskId: approval.taskId, outcome: "approve", reason: note ?? null,
      data: { ...base, note: note ?? null, approvers: voters, required, ...withdrawnData, ...(stepUp ? { stepUp } : {}) },
    });
    return { id, status: "approved", approvals: voters.length, required };
  });
  // The cancellation is committed; only then is the caller told.
  if ("cancelled" in outcome) throw cancelledError(outcome.cancelled);
  return outcome;
}
