/**
 * Reading tasks. Kept apart from creating them (./tasks.ts), which needs the policy parser and
 * the classifiers it checks a policy with (YAML, GraphQL, the PostgreSQL grammar): listing tasks,
 * in the dashboard or from `bulkhead task list`, loads none of that.
 */
import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import { uuidSchema } from "@/lib/agents/ids";
import { auditSql, type AuditDb } from "@/lib/audit/sql";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { AppError } from "@/lib/errors/app-error";
import { epochMs } from "@/lib/db/view-sql";
import { everyPage, pageOf, readLimit, readTimeCursor, timeCursor, type ListPage, type PageRequest } from "@/lib/db/list-page";

export const taskSelect = {
  id: true,
  purpose: true,
  policyYaml: true,
  policyVersion: true,
  scope: true,
  status: true,
  createdAt: true,
  expiresAt: true,
  endedAt: true,
  endedReason: true,
  agent: { select: { id: true, name: true, status: true } },
  createdBy: { select: { email: true } },
} as const satisfies Prisma.TaskSelect;

export type TaskView = Prisma.TaskGetPayload<{ select: typeof taskSelect }>;

/** A task past its expiry reads as expired even before the sweep records it. */
export function effective<T extends { status: string; expiresAt: Date }>(task: T, now: Date): T {
  return task.status === "active" && task.expiresAt <= now ? { ...task, status: "expired" } : task;
}

interface TaskRow {
  id: string;
  purpose: string;
  policy_yaml: string;
  policy_version: string;
  scope: string;
  status: string;
  created_at: string;
  expires_at: string;
  ended_at: string | null;
  ended_reason: string | null;
  agent_id: string;
  agent_name: string;
  agent_status: string;
  created_by_email: string | null;
}

// Times as epoch milliseconds (the columns keep milliseconds) and everything else as text: the
// Prisma client and a plain pg client then hand back the same JavaScript values (lib/db/view-sql.ts).
const LIST_SQL = `SELECT t.id::text, t.purpose, t.policy_yaml, t.policy_version::text, t.scope, t.status::text,
  ${epochMs("t.created_at")} AS created_at, ${epochMs("t.expires_at")} AS expires_at, ${epochMs("t.ended_at")} AS ended_at, t.ended_reason,
  a.id::text AS agent_id, a.name AS agent_name, a.status::text AS agent_status, u.email AS created_by_email
FROM tasks t JOIN agents a ON a.id = t.agent_id LEFT JOIN users u ON u.id = t.created_by_id
WHERE ($1::uuid IS NULL OR t.agent_id = $1::uuid)
  AND ($2::bigint IS NULL OR (t.created_at, t.id) < ('epoch'::timestamptz + $2::bigint * interval '1 millisecond', $3::uuid))
  AND ($5::text IS NULL
    OR ($5::text = 'active' AND t.status = 'active' AND t.expires_at > $6::timestamptz)
    OR ($5::text = 'expired' AND (t.status = 'expired' OR (t.status = 'active' AND t.expires_at <= $6::timestamptz)))
    OR ($5::text IN ('ended', 'revoked') AND t.status::text = $5::text))
ORDER BY t.created_at DESC, t.id DESC LIMIT $4::int`;

/** The statuses a task list can be narrowed to (as shown: a task past its expiry is expired). */
export const TASK_STATUSES = ["active", "expired", "ended", "revoked"] as const;

export interface TaskListFilter extends PageRequest {
  agentId?: string;
  /** Only tasks in this status, as the list shows it (`expired` includes an active task past its expiry). */
  status?: string;
}

/**
 * One page of tasks, newest first, optionally one agent's or in one status: at most `limit` (default 500) and the
 * cursor of the next page. One SQL query through either driver: the dashboard passes its Prisma
 * client; `bulkhead task list` a plain pg client, so a command that only reads a list does not
 * pay for starting Prisma's query compiler.
 */
export async function listTasksPage(db: AuditDb, actor: Actor, filter: TaskListFilter = {}, now = new Date()): Promise<ListPage<TaskView>> {
  assertCan(actor, "read");
  // A filter that names no agent is refused, never dropped (which would list every agent's tasks).
  const agentId = filter.agentId === undefined || filter.agentId === "" ? null : filter.agentId.trim().toLowerCase();
  if (agentId !== null && !uuidSchema.safeParse(agentId).success) {
    throw new AppError("INVALID_INPUT", "agent must be an agent's id (a uuid)", { details: { fieldErrors: { agent: ["agent must be an agent's id (a uuid)."] } } });
  }
  // A status that is not one is refused, never read as "every status".
  const status = filter.status === undefined || filter.status === "" ? null : filter.status;
  if (status !== null && !(TASK_STATUSES as readonly string[]).includes(status)) {
    const message = `status must be ${TASK_STATUSES.slice(0, -1).join(", ")} or ${TASK_STATUSES.at(-1)}`;
    throw new AppError("INVALID_INPUT", message, { details: { fieldErrors: { status: [`${message}.`] } } });
  }
  const after = readTimeCursor("tasks", filter.cursor);
  const limit = readLimit(filter.limit);
  const rows = await auditSql(db).query<TaskRow>(LIST_SQL, [agentId, after?.atMs ?? null, after?.id ?? null, limit + 1, status, now.toISOString()]);
  return pageOf(rows, limit, (r) => taskOfRow(r, now), (r) => timeCursor("tasks", { atMs: r.created_at, id: r.id }));
}

/** Every task (page after page), optionally one agent's or in one status: for the CLI, which prints them all. */
export async function listTasks(db: AuditDb, actor: Actor, filter: { agentId?: string; status?: string } = {}, now = new Date()): Promise<TaskView[]> {
  return everyPage((cursor) => listTasksPage(db, actor, { ...filter, cursor }, now));
}

function taskOfRow(r: TaskRow, now: Date): TaskView {
  return effective(
    {
      id: r.id,
      purpose: r.purpose,
      policyYaml: r.policy_yaml,
      policyVersion: Number(r.policy_version),
      scope: r.scope,
      status: r.status as TaskView["status"],
      createdAt: new Date(Number(r.created_at)),
      expiresAt: new Date(Number(r.expires_at)),
      endedAt: r.ended_at === null ? null : new Date(Number(r.ended_at)),
      endedReason: r.ended_reason,
      agent: { id: r.agent_id, name: r.agent_name, status: r.agent_status as TaskView["agent"]["status"] },
      createdBy: r.created_by_email === null ? null : { email: r.created_by_email },
    },
    now,
  );
}

export async function getTask(db: Db, actor: Actor, id: string, now = new Date()): Promise<TaskView> {
  assertCan(actor, "read");
  const parsed = uuidSchema.safeParse(id);
  const task = parsed.success ? await db.task.findUnique({ where: { id: parsed.data }, select: taskSelect }) : null;
  if (!task) throw new AppError("NOT_FOUND", "No such task.");
  return effective(task, now);
}
