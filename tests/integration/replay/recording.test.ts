/**
 * Where `bulkhead replay` records its run, and what it does when it cannot (cli/commands/replay.ts):
 * the installation's database is opened before anything plays, and a run that could not be
 * recorded still prints its table and says so, exiting 3 (1 when a cell differs, whatever the
 * record). The matrix itself is played for real by replay.test.ts; here the play is a canned set of
 * cells so that what is asserted is the record and the report, against a real database.
 */
import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { playReplay, REPLAY_NOT_RECORDED, type ReplayParts } from "@/cli/commands/replay";
import type { CliContext } from "@/cli/context";
import { CELLS, type CellResult } from "@/replay/matrix";
import type { ReplayBulkhead } from "@/replay/run";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { freePort } from "../../support/free-port";

function cells(options: { differ?: boolean } = {}): CellResult[] {
  return CELLS.map((c, i) => {
    const outcome = options.differ && i === 0 ? (c.expected === "deleted" ? "stopped" : "deleted") : c.expected;
    return { ...c, outcome, volumesLeft: [], layer: outcome === "deleted" ? "none" : "policy", reason: "canned cell", bulkheadOnPath: c.policy || c.isolation, events: [], upstream: [], attempts: [], durationMs: 1 };
  });
}

function canned(results: CellResult[]): ReplayParts & { closed: () => boolean } {
  let closed = false;
  return {
    start: () => Promise.resolve({ bulkhead: {} as ReplayBulkhead, close: () => Promise.resolve(void (closed = true)) }),
    run: () => Promise.resolve(results),
    closed: () => closed,
  };
}

function capture(json: boolean): { ctx: CliContext; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, ctx: { json, stdout: (l) => out.push(l), stderr: (l) => err.push(l), readStdin: () => Promise.resolve(""), stdinIsTTY: false } };
}

describe("bulkhead replay's record of a run", () => {
  let t: TestDatabase;
  const runs = () => t.db.replayRun.count();

  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(() => t?.drop());

  /** Makes every insert into replay_runs fail in the database while `fn` runs. */
  async function withRecordingBroken<T>(fn: () => Promise<T>): Promise<T> {
    const name = `refuse_replay_runs_${randomUUID().replace(/-/g, "")}`;
    const admin = t.adminDb();
    await admin.$executeRawUnsafe(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no space left on device'; END $$`);
    await admin.$executeRawUnsafe(`CREATE TRIGGER ${name} BEFORE INSERT ON replay_runs FOR EACH ROW EXECUTE FUNCTION ${name}()`);
    try {
      return await fn();
    } finally {
      await admin.$executeRawUnsafe(`DROP TRIGGER ${name} ON replay_runs`);
      await admin.$executeRawUnsafe(`DROP FUNCTION ${name}()`);
    }
  }

  it("records a run in the installation's database and says where it is", async () => {
    const { ctx, out } = capture(false);
    const before = await runs();
    const parts = canned(cells());
    expect(await playReplay(ctx, t.db, parts)).toBe(0);
    expect(parts.closed()).toBe(true);
    expect(await runs()).toBe(before + 1);
    expect(out.join("\n")).toMatch(/Every cell ends as expected \(16 cells\)\.\nRecorded as replay run [0-9a-f-]{36}/);
  });

  it("a run it could not record keeps its table and verdict, says why it was not recorded, and exits 3", async () => {
    const { ctx, out, err } = capture(false);
    const before = await runs();
    const code = await withRecordingBroken(() => playReplay(ctx, t.db, canned(cells())));
    expect(code).toBe(REPLAY_NOT_RECORDED);
    expect(code).toBe(3);
    const printed = out.join("\n");
    expect(printed).toMatch(/^\| identity \| policy \| isolation \|/);
    expect(printed).toContain("stopped by policy: canned cell");
    expect(printed).toContain("Every cell ends as expected (16 cells).");
    expect(printed).not.toContain("Recorded as");
    expect(err.at(-1)).toMatch(/^bulkhead replay: the run was not recorded in this installation's database \(its table is printed above\): .*no space left on device/);
    expect(await runs()).toBe(before);
  });

  it("with --json: the run's JSON says recorded false and why, and the error is one JSON line", async () => {
    const { ctx, out, err } = capture(true);
    expect(await withRecordingBroken(() => playReplay(ctx, t.db, canned(cells())))).toBe(3);
    expect(out).toHaveLength(1);
    const run = JSON.parse(out[0]!) as { runId: string | null; recorded: boolean; recordError?: string; passed: boolean; cells: unknown[] };
    expect(run).toMatchObject({ runId: null, recorded: false, passed: true });
    expect(run.recordError).toMatch(/no space left on device/);
    expect(run.cells).toHaveLength(16);
    expect(JSON.parse(err.at(-1)!)).toMatchObject({ error: { code: "not_recorded", exitCode: 3 } });
  });

  it("a cell that differs exits 1, recorded or not", async () => {
    const differing = cells({ differ: true });
    const first = capture(false);
    expect(await playReplay(first.ctx, t.db, canned(differing))).toBe(1);
    expect(first.out.join("\n")).toMatch(/1 cell\(s\) differ from the expected table/);
    const second = capture(false);
    expect(await withRecordingBroken(() => playReplay(second.ctx, t.db, canned(differing)))).toBe(1);
    expect(second.out.join("\n")).toContain("UNEXPECTED");
  });

  it("refuses at once, playing nothing, when the installation's database cannot be opened", async () => {
    // A port nothing listens on: the database the run would be recorded in is not there.
    const closed = await freePort();
    const url = (role: string) => `postgresql://${role}:secret@127.0.0.1:${closed}/bulkhead`;
    const run = spawnSync(process.execPath, ["bin/bulkhead.mjs", "replay"], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: url("bulkhead_owner"), BULKHEAD_DASHBOARD_DATABASE_URL: url("bulkhead_dashboard"), BULKHEAD_WORKER_DATABASE_URL: url("bulkhead_worker") } as unknown as NodeJS.ProcessEnv,
      timeout: 60_000,
    });
    const stderr = run.stderr.toString();
    expect(run.status, stderr).toBe(2);
    expect(stderr).toMatch(/^bulkhead replay: nothing was played: this installation's database, where the run is recorded, could not be opened \(.+\)\. Fix that, or play without recording: bulkhead replay --no-record\.$/m);
    expect(stderr).not.toMatch(/Replay database ready/);
    expect(run.stdout.toString()).toBe("");
  });
});
