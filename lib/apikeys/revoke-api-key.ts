import type { Db } from "@/lib/db/client";
import type { Actor } from "@/lib/auth/actor";
import { recordAuditEvent } from "@/lib/audit/record";
import { cancelApprovalsVotedThrough } from "@/lib/approvals/cancel";
import { AppError } from "@/lib/errors/app-error";
import { assertCanManageApiKeys } from "./manage";
import { apiKeyIdSchema } from "./schemas";
import { apiKeySelect, toApiKeyView, type ApiKeyView } from "./view";

/**
 * Revokes a key at once (every request re-reads it). Revoking a revoked key changes nothing. In
 * the same transaction, every approval with a vote cast through the key that could still release
 * a request (approved and not used yet, or pending) is cancelled (`approver_key_revoked`, one
 * `approval.cancelled` each): a key found stolen is revoked so that what it approved does not
 * happen. What its creator approved through a session stands.
 */
export async function revokeApiKey(db: Db, actor: Actor, id: string): Promise<ApiKeyView> {
  assertCanManageApiKeys(actor);
  const parsed = apiKeyIdSchema.safeParse(id);
  if (!parsed.success) throw new AppError("NOT_FOUND", "No such API key.");
  return db.$transaction(async (tx) => {
    const now = new Date();
    const { count } = await tx.apiKey.updateMany({ where: { id: parsed.data, revokedAt: null }, data: { revokedAt: now } });
    const row = await tx.apiKey.findUnique({ where: { id: parsed.data }, select: apiKeySelect });
    if (!row) throw new AppError("NOT_FOUND", "No such API key.");
    if (count === 1) {
      const cancelledApprovals = (await cancelApprovalsVotedThrough(tx, [row.id], actor, now)).length;
      await recordAuditEvent(tx, { type: "api_key.revoked", actor, data: { apiKeyId: row.id, name: row.name, prefix: row.prefix, cancelledApprovals } });
    }
    return toApiKeyView(row, now);
  });
}
