/**
 * Reading sandboxes. Kept apart from registering and stopping them (./sandboxes.ts, with the audit
 * writer and the address parser): listing them, on the dashboard or from `bulkhead sandbox list`,
 * is one SQL query on either driver, so the CLI never starts Prisma's client (or the isolation
 * code the launcher needs) for it.
 */
import { z } from "zod";
import { auditSql, type AuditDb } from "@/lib/audit/sql";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { AppError } from "@/lib/errors/app-error";
import { everyPage, pageOf, readLimit, readTimeCursor, timeCursor, type ListPage, type PageRequest } from "@/lib/db/list-page";
import { dateOf, epochMs } from "@/lib/db/view-sql";

export interface SandboxView {
  id: string;
  name: string;
  kind: string;
  taskId: string;
  task: { id: string; purpose: string; status: string; expiresAt: Date; agent: { id: string; name: string } };
  sourceAddress: string | null;
  sourceAddressV6: string | null;
  addresses: string;
  instanceId: string | null;
  createdBy: string | null;
  blockedAttempts: number;
  createdAt: Date;
  removedAt: Date | null;
  removedReason: string | null;
  /** What a local sandbox could take, as recorded (RecordedLimits when isRecordedLimits); null for external ones. */
  limits: unknown;
}

const uuid = z.uuid();

interface SandboxRow {
  id: string;
  name: string;
  kind: string;
  task_id: string;
  source_address: string | null;
  source_address_v6: string | null;
  addresses: string;
  instance_id: string | null;
  created_by: string | null;
  blocked_attempts: string;
  created_at: string;
  removed_at: string | null;
  removed_reason: string | null;
  limits: string | null;
  task_purpose: string;
  task_status: string;
  task_expires_at: string;
  agent_id: string;
  agent_name: string;
}

const LIST_SQL = `SELECT s.id::text, s.name, s.kind, s.task_id::text, s.source_address, s.source_address_v6, s.addresses,
  s.instance_id, s.created_by, s.blocked_attempts::text, ${epochMs("s.created_at")} AS created_at,
  ${epochMs("s.removed_at")} AS removed_at, s.removed_reason, s.limits::text AS limits,
  t.purpose AS task_purpose, t.status::text AS task_status, ${epochMs("t.expires_at")} AS task_expires_at,
  a.id::text AS agent_id, a.name AS agent_name
FROM sandboxes s JOIN tasks t ON t.id = s.task_id JOIN agents a ON a.id = t.agent_id
WHERE ($1::boolean IS NOT TRUE OR s.removed_at IS NULL) AND ($2::uuid IS NULL OR s.task_id = $2::uuid)
  AND ($3::bigint IS NULL OR (s.created_at, s.id) < ('epoch'::timestamptz + $3::bigint * interval '1 millisecond', $4::uuid))
ORDER BY s.created_at DESC, s.id DESC LIMIT $5::int`;

export interface SandboxListFilter extends PageRequest {
  live?: boolean;
  taskId?: string;
}

/**
 * One page of sandboxes, newest first, optionally only live ones or one task's: at most `limit`
 * (default 500) and the cursor of the next page.
 */
export async function listSandboxesPage(db: AuditDb, actor: Actor, filter: SandboxListFilter = {}): Promise<ListPage<SandboxView>> {
  assertCan(actor, "read");
  // A task filter that is not a task's id is refused, never dropped (dropping it listed every
  // task's sandboxes, for a client that might then stop each one).
  if (filter.taskId && !uuid.safeParse(filter.taskId).success) {
    const message = "task must be a task's id (a uuid)";
    throw new AppError("INVALID_INPUT", message, { details: { fieldErrors: { task: [`${message}.`] } } });
  }
  const taskId = filter.taskId || null;
  const after = readTimeCursor("sandboxes", filter.cursor);
  const limit = readLimit(filter.limit);
  const rows = await auditSql(db).query<SandboxRow>(LIST_SQL, [filter.live === true, taskId, after?.atMs ?? null, after?.id ?? null, limit + 1]);
  return pageOf(rows, limit, sandboxOfRow, (r) => timeCursor("sandboxes", { atMs: r.created_at, id: r.id }));
}

/** Every sandbox matching the filter (page after page): the CLI's list and a task's page. */
export async function listSandboxes(db: AuditDb, actor: Actor, filter: { live?: boolean; taskId?: string } = {}): Promise<SandboxView[]> {
  return everyPage((cursor) => listSandboxesPage(db, actor, { ...filter, cursor }));
}

function sandboxOfRow(r: SandboxRow): SandboxView {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    taskId: r.task_id,
    task: { id: r.task_id, purpose: r.task_purpose, status: r.task_status, expiresAt: dateOf(r.task_expires_at), agent: { id: r.agent_id, name: r.agent_name } },
    sourceAddress: r.source_address,
    sourceAddressV6: r.source_address_v6,
    addresses: r.addresses,
    instanceId: r.instance_id,
    createdBy: r.created_by,
    blockedAttempts: Number(r.blocked_attempts),
    createdAt: dateOf(r.created_at),
    removedAt: dateOf(r.removed_at),
    removedReason: r.removed_reason,
    limits: r.limits === null ? null : (JSON.parse(r.limits) as unknown),
  };
}
