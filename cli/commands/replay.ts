import { execFileSync } from "node:child_process";
import { recordReplayRun } from "@/lib/replay/runs";
import { cellKey, formatTable, matches, type CellResult } from "@/replay/matrix";
import { runReplay } from "@/replay/run";
import { startScratchBulkhead } from "@/cli/runtime/scratch-bulkhead";
import { parseFlags } from "../args";
import { CliError, type CliContext, type CommandHandler } from "../context";
import { CLI_ACTOR, withCliDatabase } from "../database";
import type { Db } from "@/lib/db/client";
import { describeError } from "../errors";

/** The commit this checkout is at, when it is a git checkout (recorded with the run). */
function currentCommit(): string | null {
  try {
    const out = execFileSync("git", ["rev-parse", "HEAD"], { stdio: ["ignore", "pipe", "ignore"], timeout: 5000 }).toString().trim();
    return /^[0-9a-f]{40}$/.test(out) ? out : null;
  } catch {
    return null;
  }
}

const toRecord = (c: CellResult) => ({
  identity: c.identity,
  policy: c.policy,
  isolation: c.isolation,
  behaviour: c.behaviour,
  expected: c.expected,
  outcome: c.outcome,
  layer: c.layer,
  reason: c.reason,
  bulkheadOnPath: c.bulkheadOnPath,
  volumesLeft: c.volumesLeft,
  // The events live in the replay's throwaway Bulkhead, not in this installation's audit chain:
  // keep what they said, but no position that would point at an unrelated event here.
  events: c.events.map((e) => ({ ...e, seq: null })),
  upstream: c.upstream,
});

/** Exit status when every cell ended as expected but the run could not be recorded. */
export const REPLAY_NOT_RECORDED = 3;

/**
 * `bulkhead replay [--json] [--no-record]`: plays the incident replay's matrix (docs/replay.md)
 * against a throwaway Bulkhead in namespaces it creates, prints the table, records the run in this
 * installation's database, and exits 1 when any cell differs from the expected table, 3 when every
 * cell ended as expected but the run could not be recorded.
 *
 * The installation's database is opened before anything plays (a database that cannot be reached
 * is said at once, not after the replay's minute) and held until the run is recorded; the table is
 * printed whether or not recording then works, so a failure to record never loses a run.
 */
export const replayCommand: CommandHandler = async (args, ctx) => {
  const { values } = parseFlags(args, { "no-record": { type: "boolean" } });
  if (process.getuid?.() !== 0) {
    throw new CliError("bulkhead replay creates its own network namespaces (ip netns, nftables) and must run as root, e.g. `sudo npm run replay`.", 2);
  }
  if (values["no-record"]) return playReplay(ctx, null);
  let opened = false;
  try {
    return await withCliDatabase(ctx, (db) => {
      opened = true;
      return playReplay(ctx, db);
    });
  } catch (error) {
    if (opened) throw error;
    throw new CliError(`nothing was played: this installation's database, where the run is recorded, could not be opened (${describeError(error).replace(/\.$/, "")}). Fix that, or play without recording: bulkhead replay --no-record.`, 2);
  }
};

/** What playing needs: the throwaway Bulkhead and the matrix's runner (tests give their own). */
export interface ReplayParts {
  start: typeof startScratchBulkhead;
  run: typeof runReplay;
}

/** Plays, prints the table and the verdict, records into `db` (none: not recorded); the exit status. */
export async function playReplay(ctx: CliContext, db: Db | null, parts: ReplayParts = { start: startScratchBulkhead, run: runReplay }): Promise<number> {
  const log = (line: string) => ctx.stderr(line);
  const startedAt = new Date();
  const scratch = await parts.start(log);
  let results: CellResult[];
  try {
    results = await parts.run(scratch.bulkhead, { log });
  } finally {
    await scratch.close();
  }
  const finishedAt = new Date();
  const commit = currentCommit();
  const table = formatTable(results);
  const passed = results.every(matches);
  let runId: string | null = null;
  let recordError: string | null = null;
  if (db) {
    try {
      runId = (await recordReplayRun(db, CLI_ACTOR, { startedAt, finishedAt, commit, tableMarkdown: table, cells: results.map(toRecord) })).id;
    } catch (error) {
      recordError = describeError(error).slice(0, 500);
    }
  }
  if (ctx.json) {
    ctx.stdout(JSON.stringify({ runId, recorded: runId !== null, ...(recordError ? { recordError } : {}), passed, commit, startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), table, cells: results.map(toRecord) }));
  } else {
    ctx.stdout(table);
    const differing = results.filter((r) => !matches(r));
    ctx.stdout(passed ? `\nEvery cell ends as expected (${results.length} cells).` : `\n${differing.length} cell(s) differ from the expected table: ${differing.map(cellKey).join("; ")}.`);
    if (runId) ctx.stdout(`Recorded as replay run ${runId}; the dashboard's Replay page shows it.`);
  }
  if (recordError) {
    const message = `the run was not recorded in this installation's database (its table is printed above): ${recordError}`;
    ctx.stderr(ctx.json ? JSON.stringify({ error: { code: "not_recorded", message, exitCode: passed ? REPLAY_NOT_RECORDED : 1 } }) : `bulkhead replay: ${message}`);
  }
  if (!passed) return 1;
  return recordError ? REPLAY_NOT_RECORDED : 0;
}
