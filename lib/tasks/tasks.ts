import { z } from "zod";
import { readableText } from "@/lib/validation/text";
import type { Db } from "@/lib/db/client";
import { uuidSchema } from "@/lib/agents/ids";
import { cancelApprovals } from "@/lib/approvals/cancel";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp, type StepUpEvidence } from "@/lib/auth/step-up";
import { AlreadyDoneError, AppError } from "@/lib/errors/app-error";
import { parsePolicy } from "@/lib/policy/parse";
import { policyWidenings } from "@/lib/policy/widening";
import { normalizeLineEndings } from "@/lib/validation/line-endings";
import { policyErrors, scopeServiceErrors } from "./policy-errors";
import { formatDuration, parseDuration } from "./duration";
import { resolveTaskScope } from "./scope";
import { DEFAULT_TASK_TTL_SECONDS, getMaxTaskTtlSeconds } from "./settings";
import { effective, taskSelect, type TaskView } from "./view";

// Reading tasks lives in ./view (no policy parser, no YAML): `bulkhead task list` loads only that.
export { getTask, listTasks, listTasksPage, type TaskView } from "./view";

/** What no policy allows: a task without an explicit allowlist can do nothing. */
export const DENY_ALL_POLICY = "unlisted: deny\nrules: []\n";

export const createTaskInput = z.object({
  agentId: uuidSchema,
  purpose: readableText(z.string().trim().min(3, "Describe the purpose in a few words.").max(500, "At most 500 characters."), "The purpose"),
  policyYaml: z.string().max(200_000, "The policy is too large.").optional(),
  /**
   * Layer 1: entries `service:environment:effect` (e.g. "railway:staging:read"), separated by
   * spaces or commas, or "none". Fixed for the task's life. Omitted: exactly what the policy reaches.
   */
  scope: z
    .union([z.string().max(8192, "The scope is too long."), z.array(z.string().max(200)).max(32, "A scope has at most 32 entries.")])
    .optional()
    .meta({ description: "Entries service:environment:effect separated by spaces or commas (e.g. `railway:staging:read github:*:write`), or `none`. Fixed when the task is created. Omitted: derived from the policy (exactly what it reaches).", examples: ["railway:staging:read"] }),
  /** "15m", "2h", or seconds. */
  ttl: z.union([z.string(), z.number()]).optional(),
});
export type CreateTaskInput = z.input<typeof createTaskInput>;

export async function createTask(db: Db, actor: Actor, input: CreateTaskInput, now = new Date()): Promise<TaskView> {
  assertCan(actor, "tasks:write");
  const data = createTaskInput.parse(input);
  const ttl = data.ttl === undefined || data.ttl === "" ? DEFAULT_TASK_TTL_SECONDS : typeof data.ttl === "number" ? data.ttl : parseDuration(data.ttl);
  const max = await getMaxTaskTtlSeconds(db);
  // Every field is checked before anything is refused, so a form with several mistakes says all
  // of them at once (ttl, policy, scope), not one per try.
  const fieldErrors: Record<string, string[]> = {};
  if (ttl === null || !Number.isInteger(ttl) || ttl < 60 || ttl > max) {
    // A text that is no duration at all ("1h30m", "1e3", "PT30M") is told so: "between 1m and 8h"
    // alone would be wrong about "1h30m". A bare number counts seconds, which "30" surprises.
    const message =
      ttl === null
        ? `The time to live "${String(data.ttl).slice(0, 40)}" is not a duration: write a whole number and one unit, s, m, h or d (e.g. 90s, 15m, 2h), between 1m and ${formatDuration(max)}.`
        : !Number.isInteger(ttl) && ttl >= 60 && ttl <= max
          ? `The time to live is a whole number of seconds (${ttl} is not), between 60 and ${max}; or a duration such as 15m.`
          : `The time to live must be between 1m and ${formatDuration(max)} (e.g. 15m, 2h)${typeof data.ttl === "string" && /^\s*\d+\s*$/.test(data.ttl) ? `; a number alone counts seconds (${data.ttl.trim()}s)` : ""}.`;
    fieldErrors.ttl = [message];
  }
  const policyYaml = data.policyYaml?.trim() ? normalizeLineEndings(data.policyYaml) : DENY_ALL_POLICY;
  // Sent but empty (a form's blank textarea) is a mistake, not a choice: the task could do
  // nothing, for ever (its scope is fixed now). Leaving the policy out still means deny-all.
  const blank = typeof data.policyYaml === "string" && data.policyYaml.trim() === "";
  const errors = blank ? ["The policy is empty: write the rules this task may act under (docs/policy.md). A task created without any may do nothing, and its scope, fixed when it is created, would be none."] : await policyErrors(db, policyYaml);
  if (errors) fieldErrors.policyYaml = errors;
  // Layer 1, fixed for the task's life: the scope given, or exactly what the policy reaches now
  // (worked out only from a valid policy).
  const messages: Record<string, string> = {};
  if (fieldErrors.ttl) messages.ttl = fieldErrors.ttl[0] as string;
  if (errors) messages.policyYaml = "The policy is not valid.";
  let resolved: ReturnType<typeof resolveTaskScope> | null = null;
  const scopeGiven = Array.isArray(data.scope) ? data.scope.length > 0 : typeof data.scope === "string" && data.scope.trim() !== "";
  if (!errors || scopeGiven) {
    try {
      resolved = resolveTaskScope(data.scope, policyYaml, now);
    } catch (error) {
      const scope = error instanceof AppError ? (error.details as { fieldErrors?: Record<string, string[]> } | undefined)?.fieldErrors?.scope : undefined;
      if (!scope || !(error instanceof AppError)) throw error;
      fieldErrors.scope = scope;
      messages.scope = error.message;
    }
  }
  const scopeErrors = resolved && !resolved.derived ? await scopeServiceErrors(db, resolved.scope.entries.map((e) => e.service)) : null;
  if (scopeErrors) {
    fieldErrors.scope = scopeErrors;
    messages.scope = scopeErrors.join(" ");
  }
  const failed = Object.values(messages);
  if (failed.length > 0 || !resolved || ttl === null) {
    throw new AppError("INVALID_INPUT", failed.length === 1 ? (failed[0] as string) : "Several fields are not valid; each says why.", { details: { fieldErrors } });
  }
  const { scope, derived } = resolved;
  // A new task starts from nothing: a policy with dangerous grants is a widening like any other.
  const parsed = parsePolicy(policyYaml);
  const widenings = parsed.ok ? policyWidenings(null, parsed.policy) : [];
  const stepUp: StepUpEvidence | undefined = widenings.length > 0 ? requireStepUp(actor, `create a task whose policy ${widenings.join("; ")}`) : undefined;

  return db.$transaction(async (tx) => {
    // Suspending the agent updates this row, then revokes its active tasks: holding it shared
    // until the task is committed means a suspension either sees this task (and revokes it) or
    // has committed before it, and is read here.
    await tx.$queryRaw`SELECT 1 FROM "agents" WHERE "id" = ${data.agentId}::uuid FOR SHARE`;
    const agent = await tx.agent.findUnique({ where: { id: data.agentId }, select: { status: true } });
    if (!agent) throw new AppError("NOT_FOUND", "No such agent.", { details: { fieldErrors: { agentId: ["No such agent."] } } });
    if (agent.status !== "active") {
      throw new AppError("CONFLICT", "The agent is suspended; reactivate it first.", { details: { fieldErrors: { agentId: ["The agent is suspended."] } } });
    }
    const task = await tx.task.create({
      data: {
        agentId: data.agentId,
        purpose: data.purpose,
        policyYaml,
        // Never written again: a wider scope needs a new task (docs/identity.md, "Task scope").
        scope: scope.text,
        expiresAt: new Date(now.getTime() + ttl * 1000),
        createdById: actor.kind === "user" ? actor.userId : actor.kind === "api_key" ? actor.createdById : null,
      },
      select: taskSelect,
    });
    await recordAuditEvent(tx, { type: "task.created", actor, agentId: data.agentId, taskId: task.id, data: { purpose: task.purpose, ttlSeconds: ttl, scope: scope.text, scopeDerivedFromPolicy: derived, ...(stepUp ? { stepUp, widenings } : {}) } });
    return task;
  });
}

/**
 * Ends a task early: its tokens stop verifying everywhere (workers hear it through NOTIFY, and
 * close its connections), and its held requests are cancelled in the same transaction.
 */
export async function endTask(db: Db, actor: Actor, id: string, reason = "ended by a person", now = new Date()): Promise<TaskView> {
  assertCan(actor, "tasks:write");
  const parsed = uuidSchema.safeParse(id);
  if (!parsed.success) throw new AppError("NOT_FOUND", "No such task.");
  return db.$transaction(async (tx) => {
    // A task whose time ran out before the expiry sweep recorded it has expired, not been ended:
    // recorded as the sweep would (workers already refuse it by the clock), so its history says
    // what happened and an "End" pressed a moment too late does not rewrite it.
    const expiredNow = await recordExpiries(tx, { id: parsed.data }, now);
    const r = await tx.task.updateMany({
      where: { id: parsed.data, status: "active" },
      data: { status: "ended", endedAt: now, endedReason: reason.slice(0, 200) },
    });
    const task = await tx.task.findUnique({ where: { id: parsed.data }, select: taskSelect });
    if (!task) throw new AppError("NOT_FOUND", "No such task.");
    // Already over before this call (ended, revoked with its agent, expired): a second "end" says
    // what happened and when (AlreadyDoneError), rather than answered as if it had ended the task.
    if (r.count === 0 && expiredNow === 0) {
      const at = task.endedAt ? ` at ${task.endedAt.toISOString()}` : "";
      throw new AlreadyDoneError(`The task is already ${task.status}${at}${task.endedReason ? ` (${task.endedReason})` : ""}; nothing was changed.`, task, {
        status: task.status,
        endedAt: task.endedAt?.toISOString() ?? null,
      });
    }
    if (r.count === 1) {
      const cancelled = await cancelApprovals(tx, { taskIds: [task.id] }, "task_ended", actor, now);
      await recordAuditEvent(tx, { type: "task.ended", actor, agentId: task.agent.id, taskId: task.id, reason, data: { cancelledApprovals: cancelled.length } });
    }
    return effective(task, now);
  });
}

/** Who records expiry: nobody pressed anything, the time ran out. */
const EXPIRY_ACTOR = { actorType: "system", actorId: "expiry" } as const;

/**
 * Records the expiry of tasks whose time is up and cancels their held requests, in one
 * transaction per sweep. Enforcement never waits for this (workers compare expiresAt with the
 * clock on every request); it makes the state visible and wakes every worker through NOTIFY.
 * Workers run it when the earliest task in their snapshot expires; concurrent sweeps are safe
 * (a task is expired, and audited, once).
 */
export async function expireTasks(db: Db, now = new Date()): Promise<number> {
  return db.$transaction((tx) => recordExpiries(tx, {}, now));
}

/** Marks the active tasks matching `where` whose time is up as expired: approvals cancelled, each audited. */
async function recordExpiries(tx: Parameters<Parameters<Db["$transaction"]>[0]>[0], where: { id?: string }, now: Date): Promise<number> {
  const expired = await tx.task.updateManyAndReturn({
    where: { ...where, status: "active", expiresAt: { lte: now } },
    data: { status: "expired", endedAt: now, endedReason: "time to live reached" },
    select: { id: true, agentId: true },
  });
  if (expired.length === 0) return 0;
  await cancelApprovals(tx, { taskIds: expired.map((t) => t.id) }, "task_expired", EXPIRY_ACTOR, now);
  for (const task of expired) await recordAuditEvent(tx, { type: "task.expired", actor: EXPIRY_ACTOR, agentId: task.agentId, taskId: task.id, reason: "time to live reached" });
  return expired.length;
}
