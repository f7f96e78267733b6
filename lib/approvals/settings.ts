import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { EFFECTS } from "@/lib/semantics/types";
import { requiredByEffect, requiredByEffectInput, type RequiredByEffect } from "./required";

const FOUR_EYES = "approvals.four_eyes";
const REQUIRED = "approvals.required_by_effect";
const SETTINGS_LOCK = 0x6268_6170; // "bhap"

export async function isFourEyesOn(db: Pick<Db, "setting">): Promise<boolean> {
  const row = await db.setting.findUnique({ where: { key: FOUR_EYES } });
  return row?.value === true;
}

export interface ApprovalSettings {
  /** The agent's owner and the task's creator cannot approve its requests alone. */
  fourEyes: boolean;
  /** Distinct approvers needed, by the most severe effect of the request (1 when absent). */
  requiredByEffect: RequiredByEffect;
}

export const approvalSettingsInput = z
  .object({
    fourEyes: z.boolean().optional(),
    requiredByEffect: requiredByEffectInput.optional().meta({ description: "Distinct approvers per effect (1-10); an effect left out needs one." }),
  })
  .strict();

export async function getApprovalSettings(db: Db, actor: Actor): Promise<ApprovalSettings> {
  assertCan(actor, "read");
  const [fourEyes, required] = await Promise.all([isFourEyesOn(db), requiredByEffect(db)]);
  return { fourEyes, requiredByEffect: required };
}

function weakens(before: ApprovalSettings, after: ApprovalSettings): boolean {
  if (before.fourEyes && !after.fourEyes) return true;
  return EFFECTS.some((e) => (after.requiredByEffect[e] ?? 1) < (before.requiredByEffect[e] ?? 1));
}

/**
 * Changes who must approve. Asking for more (four-eyes on, more approvers) applies at once;
 * anything that lets fewer people release a request needs step-up. Requests already held keep
 * the number of approvers fixed when they were held. One audit event says what changed.
 */
export async function updateApprovalSettings(db: Db, actor: Actor, input: unknown): Promise<ApprovalSettings> {
  assertCan(actor, "settings:write");
  const change = approvalSettingsInput.parse(input);
  // Changes are taken one at a time, each merged into and judged against the settings as they
  // are when it commits: read before the lock, a change of one setting (more approvers) wrote
  // back the other as it was read, so it turned four-eyes off again, without step-up, when
  // another admin had just turned it on.
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${SETTINGS_LOCK}::int)`;
    // One after the other: a transaction is one connection, which runs one query at a time.
    const fourEyes = await isFourEyesOn(tx);
    const requiredNow = await requiredByEffect(tx);
    const before: ApprovalSettings = { fourEyes, requiredByEffect: requiredNow };
    const after: ApprovalSettings = {
      fourEyes: change.fourEyes ?? before.fourEyes,
      requiredByEffect: change.requiredByEffect
        ? Object.fromEntries(EFFECTS.filter((e) => (change.requiredByEffect![e] ?? 1) > 1).map((e) => [e, change.requiredByEffect![e]!]))
        : before.requiredByEffect,
    };
    const stepUp = weakens(before, after) ? requireStepUp(actor, "let fewer people approve held requests") : undefined;
    await tx.setting.upsert({ where: { key: FOUR_EYES }, create: { key: FOUR_EYES, value: after.fourEyes }, update: { value: after.fourEyes } });
    const required = after.requiredByEffect as Record<string, number>;
    await tx.setting.upsert({ where: { key: REQUIRED }, create: { key: REQUIRED, value: required }, update: { value: required } });
    await recordAuditEvent(tx, { type: "settings.changed", actor, data: { key: "approvals", from: { ...before }, to: { ...after }, ...(stepUp ? { stepUp } : {}) } });
    return after;
  });
}

/** Four-eyes on or off (kept for the CLI and older callers). */
export async function setFourEyes(db: Db, actor: Actor, on: boolean): Promise<void> {
  await updateApprovalSettings(db, actor, { fourEyes: on });
}
