/**
 * Reading agents. Kept apart from registering and suspending them (./agents.ts, which pulls in
 * the audit writer, the approvals and the user schemas): listing agents, in the dashboard or from
 * `bulkhead agent list`, is one SQL query that runs on the dashboard's Prisma client or on a plain
 * pg connection, so the CLI never starts Prisma's client for it.
 */
import { z } from "zod";
import { auditSql, type AuditDb } from "@/lib/audit/sql";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { everyPage, nameCursor, pageOf, readLimit, readNameCursor, type ListPage, type PageRequest } from "@/lib/db/list-page";
import { containsPattern, dateOf, epochMs } from "@/lib/db/view-sql";

export interface AgentView {
  id: string;
  name: string;
  description: string;
  status: "active" | "suspended";
  suspendedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  owner: { id: string; email: string; name: string | null };
}

export const listAgentsInput = z.object({
  // PostgreSQL text cannot hold NUL: refused here as bad input rather than failing in the driver.
  query: z.string().trim().max(200).refine((q) => !q.includes("\0"), "The search cannot contain a NUL character.").optional(),
  status: z.enum(["active", "suspended"], { error: "status must be active or suspended" }).optional(),
});

interface AgentRow {
  id: string;
  name: string;
  description: string;
  status: AgentView["status"];
  suspended_at: string | null;
  created_at: string;
  updated_at: string;
  owner_id: string;
  owner_email: string;
  owner_name: string | null;
}

// The query matches name, description or the owner's email, case-insensitively, as a substring.
const LIST_SQL = `SELECT a.id::text, a.name, a.description, a.status::text,
  ${epochMs("a.suspended_at")} AS suspended_at, ${epochMs("a.created_at")} AS created_at, ${epochMs("a.updated_at")} AS updated_at,
  u.id::text AS owner_id, u.email AS owner_email, u.name AS owner_name
FROM agents a JOIN users u ON u.id = a.owner_id
WHERE ($1::text IS NULL OR a.status::text = $1::text)
  AND ($2::text IS NULL OR a.name ILIKE $2::text OR a.description ILIKE $2::text OR u.email ILIKE $2::text)
  AND ($3::text IS NULL OR a.name > $3::text)
ORDER BY a.name ASC LIMIT $4::int`;

/**
 * One page of agents by name (names are unique), optionally only those matching `query` or in one
 * status: at most `limit` (default 500) and the cursor of the next page.
 */
export async function listAgentsPage(db: AuditDb, actor: Actor, input: z.input<typeof listAgentsInput> & PageRequest = {}): Promise<ListPage<AgentView>> {
  assertCan(actor, "read");
  const { query, status } = listAgentsInput.parse({ query: input.query, status: input.status });
  const after = readNameCursor("agents", input.cursor);
  const limit = readLimit(input.limit);
  const rows = await auditSql(db).query<AgentRow>(LIST_SQL, [status ?? null, query ? containsPattern(query) : null, after?.name ?? null, limit + 1]);
  return pageOf(rows, limit, agentOfRow, (r) => nameCursor("agents", { name: r.name }));
}

/** Every agent matching the filter (page after page): the CLI's list, and pickers that must offer every agent. */
export async function listAgents(db: AuditDb, actor: Actor, input: z.input<typeof listAgentsInput> = {}): Promise<AgentView[]> {
  return everyPage((cursor) => listAgentsPage(db, actor, { ...input, cursor }));
}

function agentOfRow(r: AgentRow): AgentView {
  return {
    id: r.id,
    name: r.name,
    description: r.description,
    status: r.status,
    suspendedAt: dateOf(r.suspended_at),
    createdAt: dateOf(r.created_at),
    updatedAt: dateOf(r.updated_at),
    owner: { id: r.owner_id, email: r.owner_email, name: r.owner_name },
  };
}
