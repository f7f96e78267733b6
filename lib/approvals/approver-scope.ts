import type { Db } from "@/lib/db/client";
import type { Prisma } from "@/lib/generated/prisma/client";
import type { Actor } from "@/lib/auth/actor";

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
  if (!userId) return null;
  const rows = await db.approverScope.findMany({ where: { userId }, select: { kind: true, value: true } });
  if (rows.length === 0) return null;
  return { agents: rows.filter((r) => r.kind === "agent").map((r) => r.value), services: rows.filter((r) => r.kind === "service").map((r) => r.value) };
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
