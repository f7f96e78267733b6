import type { TaskReport } from "./task-report";

/**
 * How a token of the report ended, or when it will: revoked, cut short by the task's end (a token
 * stops working with its task, as the task page says), expired, or still to expire when the
 * report was made.
 */
export function tokenEnd(t: TaskReport["tokens"][number], task: TaskReport["task"], generatedAt: Date): { word: "revoked" | "task ended" | "expired" | "expires"; at: Date } {
  const ended = task.endedAt && task.endedAt < t.expiresAt ? task.endedAt : null;
  if (t.revokedAt && (!ended || t.revokedAt <= ended)) return { word: "revoked", at: t.revokedAt };
  if (ended) return { word: "task ended", at: ended };
  return { word: t.expiresAt <= generatedAt ? "expired" : "expires", at: t.expiresAt };
}
