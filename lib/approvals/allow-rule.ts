import { isMap, isSeq, parseDocument } from "yaml";
import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { AppError } from "@/lib/errors/app-error";
import { isGlob } from "@/lib/semantics/glob";
import { NO_RESOURCE, type SemanticAction } from "@/lib/semantics/types";
import { policyErrors, taskIsLive } from "@/lib/tasks/policy";
import { approverScope, scopeWhere, type ApproverScope } from "./approver-scope";
import { decideApproval, type DecideOutcome } from "./decide-approval";

/**
 * "Approve, and allow this operation on this resource for the rest of the task": the request is
 * approved, and the task's policy gains one allow rule per action, pinned to exactly that
 * service, environment, operation, resource and effect (with `waive_approval` for irreversible
 * ones). Policy globs have no escapes, so a value containing `*` or `?` cannot be pinned exactly
 * and the option is refused for it. The person sees the change as a diff before it is saved,
 * and it is audited as a policy change (`task.policy_changed`, with the approval's id). It needs
 * step-up (it lets future requests through without anyone), a single required approver, and
 * whatever approving needs (four-eyes, scope).
 */
export interface AllowPreview {
  possible: boolean;
  why: string | null;
  before: string;
  after: string;
  /** The added lines, in order. */
  added: string[];
}

/** SQL whose effect is code the request carries (a body, a procedure, a prepared statement): a rule pins its name, never its code. */
const OPAQUE_SQL = new Set(["DO", "CREATE FUNCTION", "CREATE PROCEDURE", "EXECUTE", "CALL", "LOAD", "COMMIT PREPARED", "UNKNOWN", "UNPARSEABLE"]);
const OPAQUE_NOTE = /cannot be analysed|not recognised|not classified|not known/i;

/**
 * Why no rule can stand for this action alone, or null. A rule pins service, environment,
 * operation, resource and effect: an action without a resource (`-`) would make the rule allow
 * the operation on anything (`delete_volume` approved as a dry run, then on `vol_prod`); SQL whose
 * effect lies in code would let any later code under the same name through (`CREATE FUNCTION
 * cleanup` approved with `SELECT 1` in it, then replaced by one that drops a table; a `DO` block).
 */
function unpinnable(a: SemanticAction): string | null {
  if (a.resource === NO_RESOURCE) return `\`${a.operation}\` names no resource, so a rule for it would allow it on anything`;
  const sql = typeof a.detail?.["statement"] === "number";
  if (sql && (OPAQUE_SQL.has(a.operation) || OPAQUE_NOTE.test(String(a.detail?.["note"] ?? "")))) return `\`${a.operation}\` runs code a rule cannot pin (only its name), so later code under that name would be allowed too`;
  return null;
}

function rulesFor(approvalId: string, actions: readonly SemanticAction[]): Array<Record<string, unknown>> | string {
  const rules: Array<Record<string, unknown>> = [];
  for (const [i, a] of actions.entries()) {
    const values = [a.environment, a.operation, a.resource];
    if (values.some((v) => typeof v !== "string" || v.length === 0 || isGlob(v))) return "an action's operation, resource or environment contains * or ?, which a rule cannot pin exactly";
    const why = unpinnable(a);
    if (why) return why;
    rules.push({
      id: `approved-${approvalId.slice(0, 8)}-${i + 1}`,
      description: `added when approval ${approvalId} was approved`,
      service: a.service,
      environments: [a.environment],
      operations: [a.operation],
      resources: [a.resource],
      effects: [a.effect],
      decision: "allow",
      ...(a.effect === "irreversible" ? { waive_approval: true } : {}),
    });
  }
  return rules.length > 0 ? rules : "the request has no actions to allow";
}

function appendRules(policyYaml: string, rules: Array<Record<string, unknown>>): string | null {
  const doc = parseDocument(policyYaml);
  if (doc.errors.length > 0 || !isMap(doc.contents)) return null;
  const existing = doc.get("rules");
  if (existing === undefined || existing === null) doc.set("rules", doc.createNode(rules));
  else if (isSeq(existing)) {
    existing.flow = false;
    for (const r of rules) existing.add(doc.createNode(r));
  } else return null;
  return doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function addedLines(before: string, after: string): string[] {
  const a = before.split("\n");
  const b = after.split("\n");
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  return [...a.slice(start, endA).map((l) => `- ${l}`), ...b.slice(start, endB).map((l) => `+ ${l}`)];
}

/**
 * The services of `actions` that a scoped approver does not answer for (none for an approver
 * without a scope, or scoped to the request's agent). A scope lets its holder decide a request
 * that touches one of their services, mixed ones included; but a standing allow rule for an
 * action of another service would let later requests of that service through without anyone,
 * requests this approver could not even see.
 */
export function servicesOutsideScope(scope: ApproverScope | null, agentId: string, actions: readonly SemanticAction[]): string[] {
  if (!scope || scope.agents.some((a) => a.toLowerCase() === agentId.toLowerCase())) return [];
  const mine = new Set(scope.services);
  return [...new Set(actions.map((a) => String(a.service)).filter((s) => !mine.has(s)))].sort();
}

function outsideScopeWhy(services: string[]): string {
  return `the request also acts on ${services.join(", ")}, outside your approver scope, so only an approver who answers for ${services.length === 1 ? "that service" : "those services"} can allow it for the rest of the task`;
}

export async function previewApproveAndAllow(db: Db, actor: Actor, id: string): Promise<AllowPreview> {
  assertCan(actor, "approvals:decide");
  // As decideApproval: an id that is not one is an approval that does not exist (the column is a
  // uuid, and PostgreSQL refused the query: a 500 for `POST /approvals/x/approve {"allowForTask": true}`).
  if (!z.uuid().safeParse(id).success) throw new AppError("NOT_FOUND", "No such approval.");
  const scope = await approverScope(db, actor);
  const approval = await db.approval.findFirst({ where: { id, ...scopeWhere(scope) }, select: { id: true, agentId: true, actions: true, requiredApprovals: true, task: { select: { policyYaml: true, status: true, expiresAt: true } } } });
  if (!approval) throw new AppError("NOT_FOUND", "No such approval.");
  const before = approval.task.policyYaml;
  const no = (why: string): AllowPreview => ({ possible: false, why, before, after: before, added: [] });
  if (approval.requiredApprovals > 1) return no(`this request needs ${approval.requiredApprovals} approvers, so one person cannot allow it for the rest of the task`);
  if (!taskIsLive(approval.task)) return no("the task is no longer active");
  const actions = (Array.isArray(approval.actions) ? approval.actions : []) as unknown as SemanticAction[];
  const outside = servicesOutsideScope(scope, approval.agentId, actions);
  if (outside.length > 0) return no(outsideScopeWhy(outside));
  const rules = rulesFor(approval.id, actions);
  if (typeof rules === "string") return no(rules);
  const after = appendRules(before, rules);
  if (after === null) return no("the task's policy cannot be extended automatically; edit it on the task's page");
  return { possible: true, why: null, before, after, added: addedLines(before, after) };
}

/** Approves (as `decideApproval`), then saves the previewed rule; the policy change is its own audit event. */
export async function approveAndAllow(db: Db, actor: Actor, id: string, note?: string): Promise<DecideOutcome & { policyVersion: number }> {
  const preview = await previewApproveAndAllow(db, actor, id);
  if (!preview.possible) throw new AppError("CONFLICT", `Cannot approve and allow: ${preview.why}. Approve once instead.`);
  const stepUp = requireStepUp(actor, "allow an operation for the rest of the task");
  const errors = await policyErrors(db, preview.after);
  if (errors) throw new AppError("CONFLICT", `Cannot approve and allow: the resulting policy is not valid (${errors.join("; ")}).`);
  const outcome = await decideApproval(db, actor, id, "approve", note);
  const changed = await db.$transaction(async (tx) => {
    const approval = await tx.approval.findUniqueOrThrow({ where: { id }, select: { taskId: true, agentId: true, actions: true } });
    // Taken in turn with other saves of this task's policy (as updateTaskPolicy), so the check below cannot go stale.
    await tx.$queryRaw`SELECT 1 FROM "tasks" WHERE "id" = ${approval.taskId}::uuid FOR UPDATE`;
    // The scope as it is now: narrowed since the preview, the rule is no longer this approver's to add.
    const outside = servicesOutsideScope(await approverScope(tx, actor), approval.agentId, (Array.isArray(approval.actions) ? approval.actions : []) as unknown as SemanticAction[]);
    if (outside.length > 0) throw new AppError("CONFLICT", `The request was approved once, but no rule was added: ${outsideScopeWhy(outside)}.`);
    const task = await tx.task.findUniqueOrThrow({ where: { id: approval.taskId }, select: { policyYaml: true, policyVersion: true, status: true, expiresAt: true } });
    // The policy the diff was made from must still be the one in force: no silent merge.
    if (task.policyYaml !== preview.before || !taskIsLive(task)) {
      throw new AppError("CONFLICT", "The request was approved once, but the task's policy changed meanwhile (or the task ended), so no rule was added. Review the policy on the task's page.");
    }
    const updated = await tx.task.update({ where: { id: approval.taskId }, data: { policyYaml: preview.after, policyVersion: { increment: 1 } }, select: { policyVersion: true } });
    await recordAuditEvent(tx, {
      type: "task.policy_changed",
      actor,
      agentId: approval.agentId,
      taskId: approval.taskId,
      reason: note ?? null,
      data: { fromVersion: task.policyVersion, toVersion: updated.policyVersion, before: preview.before, after: preview.after, viaApproval: id, added: preview.added, stepUp },
    });
    return updated.policyVersion;
  });
  return { ...outcome, policyVersion: changed };
}
