import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";

const FOUR_EYES = "approvals.four_eyes";

export async function isFourEyesOn(db: Pick<Db, "setting">): Promise<boolean> {
  const row = await db.setting.findUnique({ where: { key: FOUR_EYES } });
  return row?.value === true;
}

export async function setFourEyes(db: Db, actor: Actor, on: boolean): Promise<void> {
  assertCan(actor, "settings:write");
  await db.$transaction(async (tx) => {
    await tx.setting.upsert({ where: { key: FOUR_EYES }, create: { key: FOUR_EYES, value: on }, update: { value: on } });
    await recordAuditEvent(tx, { type: "settings.changed", actor, data: { key: FOUR_EYES, to: on } });
  });
}
