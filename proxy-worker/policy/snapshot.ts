import type { Db } from "@/lib/db/client";

/**
 * What the worker enforces from: the active tasks with their policies, and the agents and
 * tokens that must be refused. Loaded in one read-only repeatable-read transaction so the
 * snapshot is consistent.
 */
export interface PolicySnapshot {
  /** Monotonic per worker: bumped each time a newer snapshot replaces the old one. */
  version: number;
  loadedAt: Date;
  tasks: Map<string, { id: string; agentId: string; policyYaml: string; policyVersion: number; expiresAt: Date }>;
  suspendedAgents: Set<string>;
  revokedTasks: Set<string>;
  revokedJtis: Set<string>;
}

export async function loadPolicySnapshot(db: Db, version: number, now = new Date()): Promise<PolicySnapshot> {
  const [tasks, suspended, revokedTasks, revokedJtis] = await db.$transaction(
    [
      db.task.findMany({
        where: { status: "active", expiresAt: { gt: now }, agent: { status: "active" } },
        select: { id: true, agentId: true, policyYaml: true, policyVersion: true, expiresAt: true },
      }),
      db.agent.findMany({ where: { status: "suspended" }, select: { id: true } }),
      // Revocations stay known until the tasks' own lifetime is over (tokens cannot outlive it).
      db.task.findMany({ where: { status: { not: "active" }, expiresAt: { gt: now } }, select: { id: true } }),
      db.issuedToken.findMany({ where: { revokedAt: { not: null }, expiresAt: { gt: now } }, select: { jti: true } }),
    ],
    { isolationLevel: "RepeatableRead" },
  );
  return {
    version,
    loadedAt: now,
    tasks: new Map(tasks.map((t) => [t.id, t])),
    suspendedAgents: new Set(suspended.map((a) => a.id)),
    revokedTasks: new Set(revokedTasks.map((t) => t.id)),
    revokedJtis: new Set(revokedJtis.map((t) => t.jti)),
  };
}
