import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";

export async function listPendingApprovals(db: Db, actor: Actor) {
  assertCan(actor, "read");
  return db.approval.findMany({
    where: { status: "pending" },
    orderBy: { createdAt: "asc" },
    take: 200,
    select: { id: true, method: true, url: true, reason: true, createdAt: true, expiresAt: true, agent: { select: { name: true } } },
  });
}

export async function listCredentialSummaries(db: Db, actor: Actor) {
  assertCan(actor, "read");
  // The sealed secret is never selected for display.
  return db.credential.findMany({
    orderBy: { name: "asc" },
    select: { id: true, name: true, scheme: true, host: true, port: true, headerTemplate: true, createdAt: true, rotatedAt: true, lastUsedAt: true },
  });
}
