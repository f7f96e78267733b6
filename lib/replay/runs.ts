import { z } from "zod";
import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { assertCan, type Actor } from "@/lib/auth/actor";

/**
 * Runs of the incident replay (docs/replay.md): recorded by `bulkhead replay`, shown on the
 * Replay page. The cells are stored as played; this schema is what the page relies on, so a row
 * written by another version that does not fit it is shown as unreadable rather than guessed at.
 */
const onPath = z.object({ id: z.string(), seq: z.string().nullable(), type: z.string(), outcome: z.string().nullable(), summary: z.string() });

export const replayCellSchema = z.object({
  identity: z.boolean(),
  policy: z.boolean(),
  isolation: z.boolean(),
  behaviour: z.enum(["incident", "evasive"]),
  expected: z.enum(["stopped", "deleted"]),
  outcome: z.enum(["stopped", "deleted"]),
  layer: z.string(),
  reason: z.string(),
  bulkheadOnPath: z.boolean(),
  volumesLeft: z.array(z.string()),
  events: z.array(onPath),
  upstream: z.array(z.string()),
});

export type ReplayCellRecord = z.infer<typeof replayCellSchema>;

export const recordReplayRunInput = z.object({
  startedAt: z.date(),
  finishedAt: z.date(),
  commit: z.string().regex(/^[0-9a-f]{7,64}$/).nullable(),
  tableMarkdown: z.string().max(100_000),
  cells: z.array(replayCellSchema).min(1).max(64),
});

export type RecordReplayRunInput = z.input<typeof recordReplayRunInput>;

export interface ReplayRunView {
  id: string;
  startedAt: Date;
  finishedAt: Date;
  commit: string | null;
  passed: boolean;
  tableMarkdown: string;
  /** null when the stored cells do not fit today's shape. */
  cells: ReplayCellRecord[] | null;
}

/** Stores one run; `passed` is derived here from the cells, never taken from the caller. */
export async function recordReplayRun(db: Db, actor: Actor, input: RecordReplayRunInput): Promise<ReplayRunView> {
  assertCan(actor, "settings:write");
  const data = recordReplayRunInput.parse(input);
  const passed = data.cells.every((c) => c.outcome === c.expected);
  const row = await db.$transaction(async (tx) => {
    const created = await tx.replayRun.create({ data: { ...data, passed, cells: data.cells } });
    await recordAuditEvent(tx, {
      type: "replay.recorded",
      actor,
      outcome: passed ? "pass" : "fail",
      data: { runId: created.id, commit: data.commit, cells: data.cells.length, differing: data.cells.filter((c) => c.outcome !== c.expected).length },
    });
    return created;
  });
  return { ...row, cells: data.cells };
}

/** The newest run, or null when the replay never ran here. */
export async function getLastReplayRun(db: Db, actor: Actor): Promise<ReplayRunView | null> {
  assertCan(actor, "read");
  const row = await db.replayRun.findFirst({ orderBy: { finishedAt: "desc" } });
  if (!row) return null;
  const cells = z.array(replayCellSchema).safeParse(row.cells);
  return { ...row, cells: cells.success ? cells.data : null };
}
