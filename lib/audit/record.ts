import type { Prisma } from "@/lib/generated/prisma/client";
import type { Db } from "@/lib/db/client";
import { auditActor, type Actor } from "@/lib/auth/actor";

/** The stable shape of an audit event; the hash chain is added by the audit writer later. */
export interface AuditEventInput {
  type: string;
  /** An Actor, or a plain reference when only the id is known (e.g. at sign-in). */
  actor: Actor | AuditActorRef;
  agentId?: string | null;
  taskId?: string | null;
  outcome?: string | null;
  effect?: string | null;
  reason?: string | null;
  ruleId?: string | null;
  data?: Prisma.InputJsonValue;
}

export interface AuditActorRef {
  actorType: "user" | "agent" | "api_key" | "system";
  actorId: string;
}

type Tx = Pick<Db, "auditEvent">;

/** Writes one audit event; call it inside the transaction of the change it records. */
export async function recordAuditEvent(tx: Tx, event: AuditEventInput): Promise<bigint> {
  const row = await tx.auditEvent.create({
    data: {
      type: event.type,
      ...("kind" in event.actor ? auditActor(event.actor) : event.actor),
      agentId: event.agentId ?? null,
      taskId: event.taskId ?? null,
      outcome: event.outcome ?? null,
      effect: event.effect ?? null,
      reason: event.reason ?? null,
      ruleId: event.ruleId ?? null,
      data: event.data ?? {},
    },
    select: { id: true },
  });
  return row.id;
}
