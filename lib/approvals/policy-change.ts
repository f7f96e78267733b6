import { z } from "zod";
import type { Db } from "@/lib/db/client";
import type { AuditActorRef } from "@/lib/audit/record";
import type { Actor } from "@/lib/auth/actor";
import { compilePolicy } from "@/lib/policy/compiled";
import { decide } from "@/lib/policy/decide";
import type { Policy } from "@/lib/policy/schema";
import { isEffect, type Effect, type SemanticAction } from "@/lib/semantics/types";
import { cancelApprovals } from "./cancel";

/** The actions a worker stored on an approval (`SemanticAction[]`), read back; null when unreadable. */
const storedActions = z.array(
  z.object({
    service: z.string(),
    environment: z.string(),
    resource: z.string(),
    operation: z.string(),
    effect: z.custom<Effect>(isEffect),
  }),
);

export function readStoredActions(value: unknown): SemanticAction[] | null {
  const parsed = storedActions.safeParse(value);
  return parsed.success && parsed.data.length > 0 ? parsed.data : null;
}

/**
 * A task's policy was just replaced (inside that transaction): every request of the task still
 * waiting for a human (pending, or approved and not yet released) that the new policy denies is
 * cancelled with `policy_changed`, in the same commit. Approving it could release nothing (the
 * worker judges a held request again at release, docs/proxy.md step 8), so leaving it on the
 * approvers' queue would only ask them to decide a request that is already refused; cancelling it
 * wakes the worker holding it, which answers the agent at once (403 `approval_cancelled`). A
 * request the new policy still holds or now allows stays as it is. An approval whose stored
 * actions cannot be read is left to the worker's check at release.
 */
export async function cancelHoldsTheNewPolicyDenies(
  tx: Pick<Db, "approval" | "auditEvent">,
  taskId: string,
  policy: Policy,
  actor: Actor | AuditActorRef,
  now = new Date(),
): Promise<string[]> {
  const waiting = await tx.approval.findMany({ where: { taskId, status: { in: ["pending", "approved"] } }, select: { id: true, actions: true }, orderBy: { createdAt: "asc" } });
  if (waiting.length === 0) return [];
  const compiled = compilePolicy(policy);
  const denied = waiting.filter((approval) => {
    const actions = readStoredActions(approval.actions);
    return actions !== null && decide(compiled, actions, now).decision === "deny";
  });
  return cancelApprovals(tx, { ids: denied.map((a) => a.id) }, "policy_changed", actor, now);
}
