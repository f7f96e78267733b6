import type { Db } from "@/lib/db/client";
import type { RevocationSnapshot } from "./revocation";

/**
 * What verifiers must refuse, read from Postgres: suspended agents, tasks that ended or were
 * revoked while their lifetime runs, and individually revoked tokens. Entries carry the time
 * after which no token they apply to can be valid, so verifiers can prune them.
 */
export async function loadRevocationSnapshot(db: Pick<Db, "agent" | "task" | "issuedToken">, now = new Date()): Promise<RevocationSnapshot> {
  // Sequential on purpose: inside an interactive transaction there is one connection.
  const suspended = await db.agent.findMany({ where: { status: "suspended" }, select: { id: true } });
  const tasks = await db.task.findMany({ where: { status: { in: ["ended", "revoked"] }, expiresAt: { gt: now } }, select: { id: true, expiresAt: true } });
  const jtis = await db.issuedToken.findMany({ where: { revokedAt: { not: null }, expiresAt: { gt: now } }, select: { jti: true, expiresAt: true } });
  return {
    suspendedAgents: suspended.map((a) => a.id),
    revokedTasks: tasks.map((t) => ({ id: t.id, until: t.expiresAt })),
    revokedJtis: jtis.map((t) => ({ id: t.jti, until: t.expiresAt })),
  };
}
