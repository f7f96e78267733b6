import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { wholeNumber } from "@/lib/validation/whole-number";
import type { Effect, SemanticAction } from "@/lib/semantics/types";

const REQUIRED = "approvals.required_by_effect";

/** How many distinct people must approve a held request, by the most severe effect it carries. */
export type RequiredByEffect = Partial<Record<Effect, number>>;

/** Distinct approvers for one effect: 1 to 10. */
export const approversNeeded = () => wholeNumber(1, 10, { type: "The number of approvers must be a whole number.", range: "The number of approvers must be between 1 and 10." });

export const requiredByEffectInput = z
  .object({
    read: approversNeeded().optional(),
    write: approversNeeded().optional(),
    destructive: approversNeeded().optional(),
    irreversible: approversNeeded().optional(),
  })
  .strict();

export async function requiredByEffect(db: Pick<Db, "setting">): Promise<RequiredByEffect> {
  const row = await db.setting.findUnique({ where: { key: REQUIRED } });
  const parsed = requiredByEffectInput.safeParse(row?.value ?? {});
  return parsed.success ? parsed.data : {};
}

/**
 * Approvers needed for these actions: the largest number configured for any of their effects
 * (one when nothing is configured). Fixed on the approval when the request is held, so changing
 * the setting later does not move the goalposts for requests already waiting.
 */
export function approvalsNeeded(config: RequiredByEffect, actions: readonly Pick<SemanticAction, "effect">[]): number {
  let needed = 1;
  for (const action of actions) needed = Math.max(needed, config[action.effect] ?? 1);
  return needed;
}
