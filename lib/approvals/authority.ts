import type { Db } from "@/lib/db/client";
import type { CancelReason } from "./cancel";

/**
 * Why the authority behind a held request is gone, read from the database: the task is not
 * active or its time is up, its agent is suspended, or the token that made the request was
 * revoked or has expired. Null while all of them still stand. The approval API and the worker
 * ask this before an approval may release anything.
 */
export async function approvalAuthorityProblem(
  db: Pick<Db, "task" | "issuedToken">,
  approval: { taskId: string; jti: string | null },
  now = new Date(),
): Promise<CancelReason | null> {
  const task = await db.task.findUnique({ where: { id: approval.taskId }, select: { status: true, expiresAt: true, agent: { select: { status: true } } } });
  if (!task) return "task_inactive";
  if (task.agent.status !== "active") return "agent_suspended";
  if (task.status === "ended") return "task_ended";
  if (task.status === "revoked") return "task_revoked";
  if (task.status === "expired" || task.expiresAt <= now) return "task_expired";
  if (approval.jti) {
    const token = await db.issuedToken.findUnique({ where: { jti: approval.jti }, select: { revokedAt: true, expiresAt: true } });
    if (!token || token.revokedAt) return "token_revoked";
    if (token.expiresAt <= now) return "token_expired";
  }
  return null;
}

/**
 * Uses an approved approval for the request it is bound to: one conditional update that succeeds
 * only if it is still approved, for this digest, before its deadline, and only while the task is
 * active and unexpired, its agent active and its token neither revoked nor expired, all as the
 * database sees them at that instant. A kill switch committed first leaves nothing to consume.
 */
export async function consumeApproval(db: Pick<Db, "$executeRaw">, id: string, digest: string, now = new Date()): Promise<boolean> {
  const count = await db.$executeRaw`
    UPDATE "approvals" AS a SET "status" = 'consumed', "consumed_at" = ${now}
     WHERE a."id" = ${id}::uuid AND a."status" = 'approved' AND a."request_digest" = ${digest} AND a."expires_at" > ${now}
       AND EXISTS (SELECT 1 FROM "tasks" t JOIN "agents" g ON g."id" = t."agent_id"
                    WHERE t."id" = a."task_id" AND t."status" = 'active' AND t."expires_at" > ${now} AND g."status" = 'active')
       AND (a."jti" IS NULL OR EXISTS (SELECT 1 FROM "issued_tokens" k
                    WHERE k."jti" = a."jti" AND k."revoked_at" IS NULL AND k."expires_at" > ${now}))`;
  return count === 1;
}
