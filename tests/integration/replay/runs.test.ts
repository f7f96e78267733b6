import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { getLastReplayRun, recordReplayRun, type ReplayCellRecord } from "@/lib/replay/runs";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";

const cell = (over: Partial<ReplayCellRecord> = {}): ReplayCellRecord => ({
  identity: true,
  policy: true,
  isolation: true,
  behaviour: "incident",
  expected: "stopped",
  outcome: "stopped",
  layer: "identity",
  reason: "token_scope: irreversible `volumeDelete` on production volume vol_prod lies outside the task's scope (railway:staging:read)",
  bulkheadOnPath: true,
  volumesLeft: ["vol_prod", "vol_prod_backup", "vol_stg"],
  events: [{ id: "12", seq: "12", type: "proxy.decision", outcome: "deny", summary: "deny [identity] volumeDelete" }],
  upstream: [],
  ...over,
});

/** Replay runs as the dashboard's role stores and reads them. */
describe("replay runs", () => {
  let t: TestDatabase;
  let admin: Actor;
  let auditor: Actor;
  beforeAll(async () => {
    t = await createTestDatabase();
    admin = (await makeUser(t.db, "admin")).actor;
    auditor = (await makeUser(t.db, "auditor")).actor;
  });
  afterAll(async () => {
    await t?.drop();
  });

  it("shows nothing before the first run, then the newest run with its cells, and audits the recording", async () => {
    expect(await getLastReplayRun(t.db, auditor)).toBeNull();
    const base = { startedAt: new Date(Date.now() - 60_000), commit: "a".repeat(40), tableMarkdown: "| identity |" };
    await recordReplayRun(t.db, admin, { ...base, finishedAt: new Date(Date.now() - 30_000), cells: [cell()] });
    const second = await recordReplayRun(t.db, admin, { ...base, finishedAt: new Date(), cells: [cell(), cell({ behaviour: "evasive", outcome: "deleted", layer: "none" })] });
    const last = await getLastReplayRun(t.db, auditor);
    expect(last?.id).toBe(second.id);
    expect(last?.cells).toHaveLength(2);
    expect(last?.cells?.[0]?.events[0]?.seq).toBe("12");
    const audit = await t.db.auditEvent.findFirst({ where: { type: "replay.recorded" }, orderBy: { id: "desc" } });
    expect(audit?.outcome).toBe("fail");
    expect((audit?.data as { runId?: string }).runId).toBe(second.id);
  });

  it("derives `passed` from the cells: a caller cannot record a failing run as passing", async () => {
    const run = await recordReplayRun(t.db, admin, { startedAt: new Date(), finishedAt: new Date(), commit: null, tableMarkdown: "x", cells: [cell({ outcome: "deleted" })], ...({ passed: true } as object) });
    expect(run.passed).toBe(false);
    expect((await t.db.replayRun.findUnique({ where: { id: run.id } }))?.passed).toBe(false);
  });

  it("refuses a recording from a role that may not write settings, and malformed input, storing nothing", async () => {
    const before = await t.db.replayRun.count();
    await expect(recordReplayRun(t.db, auditor, { startedAt: new Date(), finishedAt: new Date(), commit: null, tableMarkdown: "x", cells: [cell()] })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(recordReplayRun(t.db, admin, { startedAt: new Date(), finishedAt: new Date(), commit: "not a commit", tableMarkdown: "x", cells: [cell()] })).rejects.toThrow();
    await expect(recordReplayRun(t.db, admin, { startedAt: new Date(), finishedAt: new Date(), commit: null, tableMarkdown: "x", cells: [] })).rejects.toThrow();
    expect(await t.db.replayRun.count()).toBe(before);
  });
});
