import type { Db } from "@/lib/db/client";

/**
 * Who did something, in words, from the actor an audit event recorded: a user's email, the
 * bulkhead CLI, an API key, or a part of Bulkhead. Tasks, policy versions and the like keep a
 * user reference only; done from the CLI they have none, and showed "unknown" for the most
 * ordinary way of creating a task (the README's).
 */
export function actorLabel(actorType: string | null | undefined, actorId: string | null | undefined, email: string | null): string | null {
  if (email) return email;
  switch (actorType) {
    case "system":
      return actorId === "cli" ? "the bulkhead CLI" : `Bulkhead (${actorId ?? "system"})`;
    case "api_key":
      return `an API key (${actorId ?? "unknown id"})`;
    case "user":
      return "a user who no longer exists";
    default:
      return null;
  }
}

/** Who created a task: its creator's email, or else the actor of its task.created event. */
export async function taskCreatorLabel(db: Pick<Db, "auditEvent">, taskId: string, email: string | null): Promise<string | null> {
  if (email) return email;
  const created = await db.auditEvent.findFirst({ where: { taskId, type: "task.created" }, orderBy: { id: "asc" }, select: { actorType: true, actorId: true } });
  return actorLabel(created?.actorType, created?.actorId, null);
}
