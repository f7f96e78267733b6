import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { uuidSchema } from "@/lib/agents/agents";
import { cancelHoldsTheNewPolicyDenies } from "@/lib/approvals/policy-change";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp, type StepUpEvidence } from "@/lib/auth/step-up";
import { AppError } from "@/lib/errors/app-error";
import { NO_SCOPE, parseCanonicalScope } from "@/lib/identity/scope";
import { explainRequest, type ExplainResult } from "@/lib/policy/explain";
import { parsePolicy } from "@/lib/policy/parse";
import { policyWidenings } from "@/lib/policy/widening";
import { loadRegistry } from "@/lib/services/registry-source";
import { normalizeLineEndings } from "@/lib/validation/line-endings";
import { formatPolicyErrors, policyErrors } from "./policy-errors";

export { formatPolicyErrors, policyErrors };

/** Whether a task still runs: active in its row and inside its time to live (the clock decides, not the sweep). */
export function taskIsLive(task: { status: string; expiresAt: Date }, now = new Date()): boolean {
  return task.status === "active" && task.expiresAt > now;
}

export const updatePolicyInput = z.object({
  id: uuidSchema,
  policyYaml: z.string().max(200_000, "The policy is too large."),
  /** The version the editor started from: a save over a newer one is refused (two editors, one task). */
  baseVersion: z.coerce.number({ error: "The policy's version must be a whole number." }).int("The policy's version must be a whole number.").min(1).optional(),
});

/**
 * Replaces an active task's policy. The version goes up, so every worker recompiles it on the
 * NOTIFY that the commit sends; the old and new YAML are kept in the audit event. A policy that
 * widens what the task can do without a human (lib/policy/widening.ts) needs step-up; the
 * comparison is made against the stored policy inside the transaction that replaces it. Held
 * requests of the task that the new policy denies are cancelled in the same commit
 * (`policy_changed`, lib/approvals/policy-change.ts); the caller is told how many.
 */

export async function updateTaskPolicy(db: Db, actor: Actor, taskId: string, sentYaml: string, baseVersion?: number): Promise<{ policyVersion: number; cancelledApprovals: number }> {
  assertCan(actor, "tasks:write");
  const policyYaml = normalizeLineEndings(sentYaml);
  if (!uuidSchema.safeParse(taskId).success) throw new AppError("NOT_FOUND", "No such task.");
  // Checked against the registry as stored now; a service removed after this check makes the
  // worker refuse the task (policy_invalid) rather than enforce a rule that names nothing.
  const errors = await policyErrors(db, policyYaml);
  if (errors) throw new AppError("INVALID_INPUT", "The policy is not valid.", { details: { fieldErrors: { policyYaml: errors } } });
  const parsed = parsePolicy(policyYaml);
  if (!parsed.ok) throw new AppError("INVALID_INPUT", "The policy is not valid.", { details: { fieldErrors: { policyYaml: formatPolicyErrors(parsed.errors) } } });
  return db.$transaction(async (tx) => {
    // One save at a time per task: a concurrent save (or approve-and-allow) commits first, and
    // this one is then judged against, and recorded as changing, the policy it left.
    await tx.$queryRaw`SELECT 1 FROM "tasks" WHERE "id" = ${taskId}::uuid FOR UPDATE`;
    const task = await tx.task.findUnique({ where: { id: taskId }, select: { status: true, expiresAt: true, agentId: true, policyYaml: true, policyVersion: true } });
    if (!task) throw new AppError("NOT_FOUND", "No such task.");
    // A task past its time to live is over (workers judge it by the clock) even while its row
    // still says active, until the expiry sweep records it: its policy is history, as an ended one's.
    if (!taskIsLive(task)) throw new AppError("CONFLICT", "Only an active task's policy can change.");
    // Saved over a version the editor never saw (another person's save, an approve-and-allow),
    // the edit would silently undo it, a deny rule added meanwhile included.
    if (baseVersion !== undefined && task.policyVersion !== baseVersion) {
      throw new AppError("CONFLICT", `The policy changed since you opened it (you edited version ${baseVersion}; it is now version ${task.policyVersion}). Nothing was saved: reload to see the current policy, then apply your change to it.`, { details: { fieldErrors: { policyYaml: [`The policy is now version ${task.policyVersion}; you edited version ${baseVersion}. Nothing was saved.`] } } });
    }
    const before = parsePolicy(task.policyYaml);
    const widenings = policyWidenings(before.ok ? before.policy : null, parsed.policy);
    const stepUp: StepUpEvidence | undefined = widenings.length > 0 ? requireStepUp(actor, `save a policy that widens what the task can do (${widenings.join("; ")})`) : undefined;
    const updated = await tx.task.update({ where: { id: taskId }, data: { policyYaml, policyVersion: { increment: 1 } }, select: { policyVersion: true } });
    await recordAuditEvent(tx, {
      type: "task.policy_changed",
      actor,
      agentId: task.agentId,
      taskId,
      data: { fromVersion: task.policyVersion, toVersion: updated.policyVersion, before: task.policyYaml, after: policyYaml, ...(stepUp ? { stepUp, widenings } : {}) },
    });
    const cancelled = await cancelHoldsTheNewPolicyDenies(tx, taskId, parsed.policy, actor);
    return { policyVersion: updated.policyVersion, cancelledApprovals: cancelled.length };
  });
}

export const simulateInput = z.object({
  policyYaml: z.string().max(200_000),
  method: z.string().trim().min(1, "Enter a method.").max(16),
  // A path alone was "simulated" as the proxy's refusal of it (deny, not_absolute), read as a decision.
  url: z
    .string()
    .trim()
    .min(1, "Enter an absolute URL.")
    .max(16_000)
    .refine((u) => /^[A-Za-z][A-Za-z0-9+.-]*:/.test(u), "Enter an absolute URL, with its scheme and host, such as https://api.github.com/repos/acme/app."),
  body: z.string().max(1_000_000).optional(),
  contentType: z.string().max(200).optional(),
  /** When given, the task's scope is checked first, as the proxy does. */
  taskId: uuidSchema.optional(),
});

/** The simulator: what the proxy would decide for this request under this policy, with the live services and inventory. */
export async function simulateRequest(db: Db, actor: Actor, input: z.input<typeof simulateInput>): Promise<ExplainResult> {
  assertCan(actor, "read");
  const data = simulateInput.parse(input);
  const { registry, inventory } = await loadRegistry(db);
  const task = data.taskId ? await db.task.findUnique({ where: { id: data.taskId }, select: { scope: true } }) : null;
  // An unreadable stored scope allows nothing, as in the proxy.
  const scope = task ? (parseCanonicalScope(task.scope) ?? NO_SCOPE) : undefined;
  return explainRequest({
    policyYaml: data.policyYaml,
    method: data.method,
    url: data.url,
    headers: data.body ? { "content-type": data.contentType || "application/json" } : {},
    body: data.body || undefined,
    registry,
    inventory,
    now: new Date(),
    ...(scope ? { scope } : {}),
  });
}
