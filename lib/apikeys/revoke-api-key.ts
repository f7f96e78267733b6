import type { Db } from "@/lib/db/client";
import type { Actor } from "@/lib/auth/actor";
import { recordAuditEvent } from "@/lib/audit/record";
import { AppError } from "@/lib/errors/app-error";
import { assertCanManageApiKeys } from "./manage";
import { apiKeyIdSchema } from "./schemas";
import { apiKeySelect, toApiKeyView, type ApiKeyView } from "./view";

/** Revokes a key at once (every request re-reads it). Revoking a revoked key changes nothing. */
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
      await recordAuditEvent(tx, { type: "api_key.revoked", actor, data: { apiKeyId: row.id, name: row.name, prefix: row.prefix } });
    }
    return toApiKeyView(row, now);
  });
}
