import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { MAX_TOKEN_LIFETIME_SECONDS } from "@/lib/identity/token";

export const DEFAULT_TASK_TTL_SECONDS = 15 * 60;
/** Unless an admin changes it, no task lives longer than 8 hours. */
export const DEFAULT_MAX_TASK_TTL_SECONDS = 8 * 3600;
/** Tokens are shorter-lived than tasks: an agent on a long task mints again. */
export const MAX_TOKEN_TTL_SECONDS = MAX_TOKEN_LIFETIME_SECONDS;
const KEY = "tasks.max_ttl_seconds";

export async function getMaxTaskTtlSeconds(db: Pick<Db, "setting">): Promise<number> {
  const row = await db.setting.findUnique({ where: { key: KEY } });
  const parsed = z.number().int().positive().safeParse(row?.value);
  return parsed.success ? parsed.data : DEFAULT_MAX_TASK_TTL_SECONDS;
}

export const maxTtlInput = z.number().int().min(60, "At least 1 minute.").max(30 * 86400, "At most 30 days.");

export async function setMaxTaskTtlSeconds(db: Db, actor: Actor, seconds: number): Promise<void> {
  assertCan(actor, "settings:write");
  const value = maxTtlInput.parse(seconds);
  await db.$transaction(async (tx) => {
    const before = await getMaxTaskTtlSeconds(tx);
    await tx.setting.upsert({ where: { key: KEY }, create: { key: KEY, value }, update: { value } });
    await recordAuditEvent(tx, { type: "settings.changed", actor, data: { key: KEY, from: before, to: value } });
  });
}
