import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { AppError } from "@/lib/errors/app-error";
import { approvalAuthorityProblem } from "./authority";
import { cancelApprovals, cancelReasonText, type CancelReason } from "./cancel";
import { isFourEyesOn } from "./settings";

export const decideApprovalInput = z.object({ note: z.string().trim().max(500).optional() });

function deciderId(actor: Actor): string | null {
  if (actor.kind === "user") return actor.userId;
  if (actor.kind === "api_key") return actor.createdById;
  return null;
}

/** The answer to deciding an approval a kill switch has cancelled: said plainly, with the reason. */
function cancelledError(reason: string | null): AppError {
  return new AppError("CONFLICT", `This request can no longer be decided: it was cancelled because ${cancelReasonText(reason)}. Nothing was forwarded.`, {
    details: { status: "cancelled", reason: reason ?? "task_inactive" },
  });
}

function noLongerDecidable(status: string, reason: string | null): AppError {
  if (status === "cancelled") return cancelledError(reason);
  return new AppError("CONFLICT", `This request can no longer be decided: ${status === "pending" ? "it timed out" : `it was already ${status}`}.`, { details: { status } });
}

/**
 * Approves or denies a held request. Only a pending approval that has not timed out can be
 * decided, exactly once (a conditional update: two approvers at once, one wins); a late decision
 * changes nothing. With four-eyes on, the agent's owner cannot approve its requests. When the
 * authority behind the request is gone (task ended, expired or revoked, agent suspended, token
 * revoked or expired) the approval is cancelled instead, and the caller is told so.
 */
export async function decideApproval(
  db: Db,
  actor: Actor,
  id: string,
  verdict: "approve" | "deny",
  note?: string,
  now = new Date(),
): Promise<{ id: string; status: "approved" | "denied" }> {
  assertCan(actor, "approvals:decide");
  if (!z.uuid().safeParse(id).success) throw new AppError("NOT_FOUND", "No such approval.");
  const by = deciderId(actor);
  const outcome = await db.$transaction(async (tx): Promise<{ status: "approved" | "denied" } | { cancelled: CancelReason }> => {
    const approval = await tx.approval.findUnique({
      where: { id },
      select: { id: true, status: true, cancelReason: true, expiresAt: true, taskId: true, agentId: true, jti: true, method: true, url: true, agent: { select: { ownerId: true } } },
    });
    if (!approval) throw new AppError("NOT_FOUND", "No such approval.");
    if (approval.status !== "pending") throw noLongerDecidable(approval.status, approval.cancelReason);
    // A kill switch nobody has applied yet (expiry is a matter of time) is applied now.
    const problem = await approvalAuthorityProblem(tx, approval, now);
    if (problem) {
      await cancelApprovals(tx, { ids: [id] }, problem, actor, now);
      return { cancelled: problem };
    }
    if (verdict === "approve" && by && approval.agent.ownerId === by && (await isFourEyesOn(tx))) {
      throw new AppError("FORBIDDEN", "Four-eyes is on: the agent's owner cannot approve its requests. Ask another approver.");
    }
    const status = verdict === "approve" ? "approved" : "denied";
    const updated = await tx.approval.updateMany({
      where: { id, status: "pending", expiresAt: { gt: now } },
      data: { status, decidedById: by, decidedAt: now, decisionNote: note ?? null },
    });
    if (updated.count === 0) {
      // Someone (another approver, a kill switch, the timeout) got there first: say who.
      const current = await tx.approval.findUnique({ where: { id }, select: { status: true, cancelReason: true } });
      throw noLongerDecidable(current?.status ?? "pending", current?.cancelReason ?? null);
    }
    await recordAuditEvent(tx, {
      type: verdict === "approve" ? "approval.approved" : "approval.denied",
      actor,
      agentId: approval.agentId,
      taskId: approval.taskId,
      outcome: verdict === "approve" ? "approve" : "reject",
      reason: note ?? null,
      data: { approvalId: id, method: approval.method, url: approval.url },
    });
    return { status };
  });
  // The cancellation is committed; only then is the caller told.
  if ("cancelled" in outcome) throw cancelledError(outcome.cancelled);
  return { id, status: outcome.status };
}
