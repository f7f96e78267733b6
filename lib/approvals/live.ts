import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { approverScope, scopeWhere } from "./approver-scope";

/**
 * What the live list and the nav badge need to know changed: the number of approvals waiting
 * for this actor, and a fingerprint of the newest hold, decision, use and cancellation among the
 * approvals the actor may see. A new fingerprint means "read the list again".
 */
export async function approvalsPulse(db: Db, actor: Actor, now = new Date()): Promise<{ pending: number; fingerprint: string }> {
  assertCan(actor, "read");
  const where = scopeWhere(await approverScope(db, actor));
  const [pending, agg] = await Promise.all([
    db.approval.count({ where: { ...where, status: "pending", expiresAt: { gt: now } } }),
    db.approval.aggregate({ where, _max: { createdAt: true, decidedAt: true, consumedAt: true, cancelledAt: true, expiresAt: true }, _count: { _all: true } }),
  ]);
  const m = agg._max;
  // expiresAt passing `now` (a timeout) changes the pending count, so it is covered by it.
  const fingerprint = [pending, agg._count._all, m.createdAt?.getTime(), m.decidedAt?.getTime(), m.consumedAt?.getTime(), m.cancelledAt?.getTime()].join(":");
  return { pending, fingerprint };
}
