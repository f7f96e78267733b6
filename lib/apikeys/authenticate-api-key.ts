import type { Db } from "@/lib/db/client";
import type { Actor } from "@/lib/auth/actor";
import { apiKeyMatches, apiKeyPrefix } from "./format";
import { apiKeyFailureAudit } from "./failure-audit";
import { lesserRole } from "./roles";

export type ApiKeyActor = Extract<Actor, { kind: "api_key" }>;

const LAST_USED_GRANULARITY_MS = 60_000;

/**
 * The actor for a presented API key, or null for anything that is not a live key: malformed,
 * unknown prefix, wrong secret, revoked, expired, or created by a user who is now disabled.
 *
 * The key acts with its role, lowered to its creator's current role, so demoting or disabling
 * a person takes effect on their keys at once, as it does on their sessions. Failures against a
 * real key (revoked, expired, wrong secret) are audited, the first per key and reason each minute
 * as its own event and the rest as a count in one summary (failure-audit.ts); malformed and
 * unknown ones are not, so noise cannot flood the trail.
 */
export async function authenticateApiKey(db: Db, presented: string | null | undefined, now = new Date()): Promise<ApiKeyActor | null> {
  if (typeof presented !== "string") return null;
  const prefix = apiKeyPrefix(presented);
  if (!prefix) return null;
  const row = await db.apiKey.findUnique({
    where: { prefix },
    select: {
      id: true,
      keyHash: true,
      role: true,
      createdById: true,
      expiresAt: true,
      revokedAt: true,
      lastUsedAt: true,
      createdBy: { select: { role: true, disabledAt: true } },
    },
  });
  if (!row) return null;
  const deny = async (reason: string) => {
    // On a budget: the prefix is public, so these failures cost the caller nothing (failure-audit.ts).
    await apiKeyFailureAudit(db).record(row.id, reason, now.getTime());
    return null;
  };
  // The hash comparison comes first and always runs, so timing says nothing about the key's state.
  if (!apiKeyMatches(presented, row.keyHash)) return deny("wrong secret");
  if (row.revokedAt) return deny("revoked");
  if (row.expiresAt && row.expiresAt <= now) return deny("expired");
  let role = row.role;
  if (row.createdById) {
    if (!row.createdBy || row.createdBy.disabledAt) return deny("creator disabled");
    const capped = lesserRole(row.role, row.createdBy.role);
    if (!capped) return deny("creator role");
    role = capped;
  }
  if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() >= LAST_USED_GRANULARITY_MS) {
    // Conditional, so concurrent requests write at most once a minute.
    await db.apiKey.updateMany({
      where: { id: row.id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lte: new Date(now.getTime() - LAST_USED_GRANULARITY_MS) } }] },
      data: { lastUsedAt: now },
    });
  }
  return { kind: "api_key", apiKeyId: row.id, role, createdById: row.createdById };
}
