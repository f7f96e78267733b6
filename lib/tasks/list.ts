import type { Db } from "@/lib/db/client";
import { approverScope, scopeWhere } from "@/lib/approvals/approver-scope";
import { cancelReasonText } from "@/lib/approvals/cancel";
import { assertCan, type Actor } from "@/lib/auth/actor";

/** Held requests a kill switch cancelled in the last hour, newest first, with the reason in words. */
export async function listRecentlyCancelledApprovals(db: Db, actor: Actor, now = new Date()) {
  assertCan(actor, "read");
  const rows = await db.approval.findMany({
    where: { ...scopeWhere(await approverScope(db, actor)), status: "cancelled", cancelledAt: { gt: new Date(now.getTime() - 3600_000) } },
    orderBy: { cancelledAt: "desc" },
    take: 50,
    select: { id: true, method: true, url: true, cancelReason: true, cancelledAt: true, agent: { select: { name: true } } },
  });
  return rows.map((r) => ({ ...r, why: cancelReasonText(r.cancelReason) }));
}

export async function listCredentialSummaries(db: Db, actor: Actor) {
  assertCan(actor, "read");
  // The sealed secret is never selected for display.
  return db.credential.findMany({
    orderBy: { name: "asc" },
    select: { id: true, name: true, scheme: true, host: true, port: true, headerTemplate: true, createdAt: true, rotatedAt: true, lastUsedAt: true },
  });
}
