import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { AppError } from "@/lib/errors/app-error";
import { isFourEyesOn } from "./settings";

export const decideApprovalInput = z.object({ note: z.string().trim().max(500).optional() });

function deciderId(actor: Actor): string | null {
  if (actor.kind === "user") return actor.userId;
  if (actor.kind === "api_key") return actor.createdById;
  return null;
}

/**
 * Approves or denies a held request. Only a pending approval that has not timed out can be
 * decided, exactly once (a conditional update: two approvers at once, one wins); a late decision
 * changes nothing. With four-eyes on, the agent's owner cannot approve its requests.
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
  return db.$transaction(async (tx) => {
    const approval = await tx.approval.findUnique({
      where: { id },
      select: { id: true, status: true, expiresAt: true, taskId: true, agentId: true, method: true, url: true, agent: { select: { ownerId: true } } },
    });
    if (!approval) throw new AppError("NOT_FOUND", "No such approval.");
    if (verdict === "approve" && by && approval.agent.ownerId === by && (await isFourEyesOn(tx))) {
      throw new AppError("FORBIDDEN", "Four-eyes is on: the agent's owner cannot approve its requests. Ask another approver.");
    }
    const status = verdict === "approve" ? "approved" : "denied";
    const updated = await tx.approval.updateMany({
      where: { id, status: "pending", expiresAt: { gt: now } },
      data: { status, decidedById: by, decidedAt: now, decisionNote: note ?? null },
    });
    if (updated.count === 0) {
      const why = approval.status !== "pending" ? `it was already ${approval.status}` : "it timed out";
      throw new AppError("CONFLICT", `This request can no longer be decided: ${why}.`);
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
    return { id, status };
  });
}
