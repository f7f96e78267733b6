import type { Db } from "@/lib/db/client";
import { parseCanonicalScope } from "@/lib/identity/scope";
import type { PolicyChange } from "./changes";
import type { PolicyVersion, SnapshotPart, SnapshotTask } from "./snapshot";

/** Beyond this many changes in one go, one full reload is cheaper than reading row by row. */
export const MAX_INCREMENTAL_CHANGES = 64;

type TaskRow = { id: string; agentId: string; policyYaml: string; policyVersion: number; expiresAt: Date; scope: string; status: string; agent: { status: string } };

function enforceable(row: TaskRow, now: Date): boolean {
  return row.status === "active" && row.agent.status === "active" && row.expiresAt > now;
}

function snapshotTask(row: TaskRow): SnapshotTask {
  return { id: row.id, agentId: row.agentId, policyYaml: row.policyYaml, policyVersion: row.policyVersion, expiresAt: row.expiresAt, scope: parseCanonicalScope(row.scope) };
}

const TASK_SELECT = { id: true, agentId: true, policyYaml: true, policyVersion: true, expiresAt: true, scope: true, status: true, agent: { select: { status: true } } } as const;

/**
 * The snapshot after `changes`, read row by row: the named tasks, agents and tokens (one query
 * per kind of change, by primary key), never every task, service or credential. The result is a
 * new snapshot (the old one is never mutated: requests in flight keep a consistent view) that
 * says which parts changed, so listeners redo only what depends on them: the credentials are
 * re-read only when one changed, the service registry is not rebuilt at all.
 *
 * Revocations only widen, as in a full load: an ended task, a suspended agent or a revoked token
 * is added to the revocation lists the verifier keeps.
 */
export async function applyPolicyChanges(db: Db, base: PolicyVersion, changes: readonly PolicyChange[], version: number, now = new Date()): Promise<PolicyVersion> {
  const ids = (kind: PolicyChange["kind"]) => [...new Set(changes.flatMap((c) => (c.kind !== kind ? [] : c.kind === "token" ? [c.jti] : [c.id])))];
  const taskIds = ids("task");
  const agentIds = ids("agent");
  const jtis = ids("token");
  const changed = new Set<SnapshotPart>();
  if (changes.some((c) => c.kind === "credential")) changed.add("credentials");

  let tasks = base.tasks;
  let suspended = base.suspendedAgents;
  let issued = base.issuedJtis;
  const revokedTasks: Array<{ id: string; until: Date }> = [];
  const revokedJtis: Array<{ id: string; until: Date }> = [];
  const writableTasks = () => (tasks === base.tasks ? (tasks = new Map(base.tasks)) : tasks);

  if (agentIds.length > 0) {
    changed.add("tasks").add("revocations");
    const agents = await db.agent.findMany({ where: { id: { in: agentIds } }, select: { id: true, status: true } });
    const status = new Map(agents.map((a) => [a.id, a.status]));
    suspended = new Set(base.suspendedAgents);
    const reinstated: string[] = [];
    for (const id of agentIds) {
      if (status.get(id) === "active") {
        if (suspended.delete(id)) reinstated.push(id);
        continue;
      }
      if (status.get(id) === "suspended") suspended.add(id);
      // Suspended or gone: none of its tasks is enforceable any more.
      for (const [taskId, task] of base.tasks) if (task.agentId === id) writableTasks().delete(taskId);
    }
    if (reinstated.length > 0) {
      const rows = await db.task.findMany({ where: { agentId: { in: reinstated }, status: "active", expiresAt: { gt: now } }, select: TASK_SELECT });
      for (const row of rows) if (enforceable(row, now)) writableTasks().set(row.id, snapshotTask(row));
    }
  }

  if (taskIds.length > 0) {
    changed.add("tasks");
    const rows = await db.task.findMany({ where: { id: { in: taskIds } }, select: TASK_SELECT });
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const id of taskIds) {
      const row = byId.get(id);
      if (row && enforceable(row, now)) {
        writableTasks().set(id, snapshotTask(row));
        continue;
      }
      if (tasks.has(id)) writableTasks().delete(id);
      if (row && (row.status === "ended" || row.status === "revoked") && row.expiresAt > now) revokedTasks.push({ id, until: row.expiresAt });
    }
  }

  if (jtis.length > 0) {
    changed.add("tokens");
    const rows = await db.issuedToken.findMany({ where: { jti: { in: jtis } }, select: { jti: true, taskId: true, agentId: true, expiresAt: true, revokedAt: true } });
    const byJti = new Map(rows.map((r) => [r.jti, r]));
    issued = new Map(base.issuedJtis);
    for (const jti of jtis) {
      const row = byJti.get(jti);
      if (!row || row.expiresAt <= now) {
        issued.delete(jti);
        continue;
      }
      issued.set(jti, { taskId: row.taskId, agentId: row.agentId });
      if (row.revokedAt) revokedJtis.push({ id: jti, until: row.expiresAt });
    }
  }

  if (revokedTasks.length > 0 || revokedJtis.length > 0 || suspended !== base.suspendedAgents) changed.add("revocations");
  return {
    ...base,
    version,
    loadedAt: now,
    tasks,
    suspendedAgents: suspended,
    issuedJtis: issued,
    revocation: {
      revokedTasks: revokedTasks.length > 0 ? [...base.revocation.revokedTasks, ...revokedTasks] : base.revocation.revokedTasks,
      revokedJtis: revokedJtis.length > 0 ? [...base.revocation.revokedJtis, ...revokedJtis] : base.revocation.revokedJtis,
      suspendedAgents: suspended,
    },
    changed,
  };
}
