import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { everyPage, nameCursor, pageOf, readLimit, readNameCursor, type ListPage, type PageRequest } from "@/lib/db/list-page";
import type { Prisma } from "@/lib/generated/prisma/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { cancelApprovalsGivenBy } from "./cancel";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { requireStepUp } from "@/lib/auth/step-up";
import { AppError } from "@/lib/errors/app-error";
import { closest } from "@/lib/policy/suggest";
import { loadRegistry } from "@/lib/services/registry-source";

/**
 * Approvers responsible for some agents or services only. A person with scope rows sees and
 * decides the approvals of those agents, or whose actions touch those services; a person with
 * none answers for all. The filter is part of the query's `where`, so an approval outside the
 * scope looks exactly like one that does not exist.
 */
export interface ApproverScope {
  agents: string[];
  services: string[];
}

/** The user behind an actor (an API key acts for whoever created it). */
export function actorUserId(actor: Actor): string | null {
  if (actor.kind === "user") return actor.userId;
  if (actor.kind === "api_key") return actor.createdById;
  return null;
}

/** The actor's scope, or null when it may see every approval. */
export async function approverScope(db: Pick<Db, "approverScope">, actor: Actor): Promise<ApproverScope | null> {
  const userId = actorUserId(actor);
  return userId ? scopeOfUser(db, userId) : null;
}

async function scopeOfUser(db: Pick<Db, "approverScope">, userId: string): Promise<ApproverScope | null> {
  const rows = await db.approverScope.findMany({ where: { userId }, select: { kind: true, value: true } });
  if (rows.length === 0) return null;
  // Agent ids in PostgreSQL's spelling (lower case), also for rows saved before ids were lower-cased on save.
  return { agents: rows.filter((r) => r.kind === "agent").map((r) => r.value.toLowerCase()), services: rows.filter((r) => r.kind === "service").map((r) => r.value) };
}

/** A `where` fragment limiting approvals to the scope (actions hold `[{service, …}]`). */
export function scopeWhere(scope: ApproverScope | null): Prisma.ApprovalWhereInput {
  if (!scope) return {};
  return {
    OR: [
      ...(scope.agents.length > 0 ? [{ agentId: { in: scope.agents } }] : []),
      ...scope.services.map((service) => ({ actions: { array_contains: [{ service }] } })),
    ],
  };
}

export const approverScopeInput = z
  .object({
    agents: z.array(z.uuid()).max(200).default([]).meta({ description: "Agent ids this approver answers for." }),
    services: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "Each service is a service id such as github or railway: lower-case letters, digits, - and _."))
      .max(200)
      .default([])
      .meta({ description: "Service ids (as in descriptors) this approver answers for." }),
  })
  .strict();

/** A user's approver scope as stored (empty lists: answers for everything). */
export async function getApproverScope(db: Db, actor: Actor, userId: string): Promise<{ agents: string[]; services: string[] }> {
  assertCan(actor, "users:read");
  if (!z.uuid().safeParse(userId).success) throw new AppError("NOT_FOUND", "No such user.");
  const user = await db.user.findUnique({ where: { id: userId }, select: { id: true } });
  if (!user) throw new AppError("NOT_FOUND", "No such user.");
  return (await scopeOfUser(db, userId)) ?? { agents: [], services: [] };
}

/**
 * Replaces the agents and services a user answers for as an approver. Narrowing what a person
 * may release is never a risk; widening it (or removing the scope: everything) needs step-up.
 * The agents must exist; an approver cannot be scoped to an agent that is not there.
 */
export async function setApproverScope(db: Db, actor: Actor, userId: string, input: unknown): Promise<{ agents: string[]; services: string[] }> {
  assertCan(actor, "users:write");
  const next = approverScopeInput.parse(input);
  const current = await getApproverScope(db, actor, userId); // 404 for a user that does not exist
  // Stored as PostgreSQL spells a uuid (lower case): an id sent in capitals is the same agent, and
  // kept as sent it showed as a raw id on Settings and counted as a widening of the scope.
  const agents = [...new Set(next.agents.map((a) => a.toLowerCase()))];
  const services = [...new Set(next.services)];
  const found = await db.agent.count({ where: { id: { in: agents } } });
  if (found !== agents.length) throw new AppError("INVALID_INPUT", "Some of these agents do not exist.", { details: { fieldErrors: { agents: ["Some of these agents do not exist."] } } });
  // The services must exist too, as the names in a policy must (docs/policy.md): a typo
  // ("githbu") was stored, and the approver then saw and decided nothing, silently. A service
  // already in the scope stays allowed (it may have been deleted since), and so does `unknown`
  // (hosts no service claims).
  const { registry } = await loadRegistry(db);
  const known = new Set(["unknown", ...registry.services.map((d) => d.id), ...current.services]);
  const missing = services.filter((s) => !known.has(s));
  if (missing.length > 0) {
    const hint = (name: string) => {
      const best = closest(name, known, 3);
      return best === null ? "" : ` (did you mean "${best}"?)`;
    };
    const message = `No service is called ${missing.slice(0, 5).map((name) => `"${name}"${hint(name)}`).join(", ")}; the services are ${[...known].sort().join(", ")}.`;
    throw new AppError("INVALID_INPUT", message, { details: { fieldErrors: { services: [message] } } });
  }
  await db.$transaction(async (tx) => {
    // The user's row is what a decision in progress holds a share lock on (decide-approval.ts):
    // a narrowed scope is in force for every decision that commits after this one. Changes of
    // one person's scope are taken in turn under it, each judged against the scope in force when
    // it commits: judged against a scope read before, a change that looked like no change
    // (re-saving the old scope) undid a narrowing committed meanwhile, without step-up.
    await tx.$queryRaw`SELECT 1 FROM "users" WHERE "id" = ${userId}::uuid FOR UPDATE`;
    const stored = await scopeOfUser(tx, userId);
    const before = { agents: stored?.agents ?? [], services: stored?.services ?? [] };
    const wasScoped = before.agents.length + before.services.length > 0;
    const widens = !wasScoped ? false : agents.length + services.length === 0 || agents.some((a) => !before.agents.includes(a)) || services.some((s) => !before.services.includes(s));
    const stepUp = widens ? requireStepUp(actor, "widen what an approver may decide") : undefined;
    await tx.approverScope.deleteMany({ where: { userId } });
    await tx.approverScope.createMany({ data: [...agents.map((value) => ({ userId, kind: "agent", value })), ...services.map((value) => ({ userId, kind: "service", value }))] });
    // What they approved outside their new scope, and is not used yet, is not released: the
    // scope says which requests they may answer for (their votes are withdrawn the same way).
    const scoped = agents.length + services.length > 0;
    const cancelledApprovals = scoped ? (await cancelApprovalsGivenBy(tx, userId, actor, new Date(), scopeWhere({ agents, services }))).length : 0;
    await recordAuditEvent(tx, { type: "user.approver_scope_changed", actor, data: { userId, from: before, to: { agents, services }, ...(stepUp ? { stepUp } : {}), ...(cancelledApprovals ? { cancelledApprovals } : {}) } });
  });
  return { agents, services };
}

/**
 * One page of the people who may decide approvals, by email (unique), each with their scope in
 * words: at most `limit` (default 500) and the cursor of the next page.
 */
export async function listApproversPage(db: Db, actor: Actor, page: PageRequest = {}): Promise<ListPage<{ id: string; email: string; scope: string }>> {
  assertCan(actor, "users:read");
  const after = readNameCursor("approvers", page.cursor);
  const limit = readLimit(page.limit);
  const users = await db.user.findMany({
    where: { role: { in: ["admin", "approver"] }, disabledAt: null, ...(after ? { email: { gt: after.name } } : {}) },
    orderBy: { email: "asc" },
    take: limit + 1,
    select: { id: true, email: true, approverScopes: { select: { kind: true, value: true } } },
  });
  const agentIds = users.flatMap((u) => u.approverScopes.filter((s) => s.kind === "agent").map((s) => s.value.toLowerCase()));
  const names = new Map((await db.agent.findMany({ where: { id: { in: agentIds } }, select: { id: true, name: true } })).map((a) => [a.id, a.name]));
  const view = (u: (typeof users)[number]) => ({
    id: u.id,
    email: u.email,
    scope:
      u.approverScopes.length === 0
        ? "all agents and services"
        : u.approverScopes.map((s) => (s.kind === "agent" ? `agent ${names.get(s.value.toLowerCase()) ?? s.value}` : `service ${s.value}`)).join(", "),
  });
  return pageOf(users, limit, view, (u) => nameCursor("approvers", { name: u.email }));
}

/** Every person who may decide approvals, each with their scope in words (Settings' picker offers them all). */
export async function listApproversWithScopes(db: Db, actor: Actor): Promise<Array<{ id: string; email: string; scope: string }>> {
  return everyPage((cursor) => listApproversPage(db, actor, { cursor }));
}
