import { execFileSync } from "node:child_process";
import { recordReplayRun } from "@/lib/replay/runs";
import { cellKey, formatTable, matches, type CellResult } from "@/replay/matrix";
import { runReplay } from "@/replay/run";
import { startScratchBulkhead } from "@/cli/runtime/scratch-bulkhead";
import { parseFlags } from "../args";
import { CliError, type CommandHandler } from "../context";
import { CLI_ACTOR, withCliDatabase } from "../database";

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

/**
 * `bulkhead replay [--json] [--no-record]`: plays the incident replay's matrix (docs/replay.md)
 * against a throwaway Bulkhead in namespaces it creates, prints the table, records the run in this
 * installation's database, and exits 1 when any cell differs from the expected table.
 */
export const replayCommand: CommandHandler = async (args, ctx) => {
  const { values } = parseFlags(args, { "no-record": { type: "boolean" } });
  if (process.getuid?.() !== 0) {
    throw new CliError("bulkhead replay creates its own network namespaces (ip netns, nftables) and must run as root, e.g. `sudo npm run replay`.", 2);
  }
  const log = (line: string) => ctx.stderr(line);
  const startedAt = new Date();
  const scratch = await startScratchBulkhead(log);
  let results: CellResult[];
  try {
    results = await runReplay(scratch.bulkhead, { log });
  } finally {
    await scratch.close();
  }
  const finishedAt = new Date();
  const commit = currentCommit();
  const table = formatTable(results);
  const passed = results.every(matches);
  let runId: string | null = null;
  if (!values["no-record"]) {
    const run = await withCliDatabase(ctx, (db) => recordReplayRun(db, CLI_ACTOR, { startedAt, finishedAt, commit, tableMarkdown: table, cells: results.map(toRecord) }));
    runId = run.id;
  }
  if (ctx.json) {
    ctx.stdout(JSON.stringify({ runId, passed, commit, startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), table, cells: results.map(toRecord) }));
  } else {
    ctx.stdout(table);
    const differing = results.filter((r) => !matches(r));
    ctx.stdout(passed ? `\nEvery cell ends as expected (${results.length} cells).` : `\n${differing.length} cell(s) differ from the expected table: ${differing.map(cellKey).join("; ")}.`);
    if (runId) ctx.stdout(`Recorded as replay run ${runId}; the dashboard's Replay page shows it.`);
  }
  return passed ? 0 : 1;
};
