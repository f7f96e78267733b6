import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "@/lib/audit/verify";
import { createLogger } from "@/lib/log";
import { AuditWriter } from "@/proxy-worker/audit/writer";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { DatabaseOutage, until, withClient } from "./helpers";

/**
 * Nothing acknowledged is lost on SIGKILL: a writer in a child process acknowledges events only
 * once durable; it is killed mid-load, with the database taken away for part of the run; a new
 * writer on the same spool replays what is left; every acknowledged event is then in the
 * database exactly once.
 */
describe("the audit writer killed with SIGKILL", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase();
  });
  afterAll(async () => {
    await new DatabaseOutage(t.adminUrl).end();
    await t.drop();
  });

  async function run(killWhen: "database away" | "replaying") {
    const spoolDir = await mkdtemp(path.join(tmpdir(), "bh-audit-kill-"));
    const workerId = `kill-${killWhen.replace(/\W/g, "-")}`;
    const acked = { database: new Set<string>(), spool: new Set<string>() };
    const errors: string[] = [];
    let replayedByChild = 0;
    const child: ChildProcess = fork(path.resolve("tests/integration/audit/writer-child.ts"), [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, BULKHEAD_WORKER_DATABASE_URL: t.workerUrl, SPOOL_DIR: spoolDir, WORKER_ID: workerId },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.on("message", (m: { ack?: string; durable?: "database" | "spool"; replayed?: number; error?: string }) => {
      if (m.ack) acked[m.durable!].add(m.ack);
      replayedByChild = m.replayed ?? replayedByChild;
      if (m.error) errors.push(m.error);
    });
    const outage = new DatabaseOutage(t.adminUrl);
    let segmentsAtKill: string[] = [];
    let replayedAtKill = 0;
    try {
      await until(() => acked.database.size >= 3000, 30_000, "load through the database");
      await outage.begin();
      await until(() => acked.spool.size >= 3000, 30_000, "load through the spool");
      if (killWhen === "replaying") {
        await outage.end();
        // Kill it while it moves the spool into the database (100 events per transaction).
        await until(() => replayedByChild > 0, 30_000, "replay");
      }
      child.kill("SIGKILL");
      await exited;
      replayedAtKill = replayedByChild;
      segmentsAtKill = (await readdir(spoolDir)).filter((f) => f.endsWith(".jsonl"));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await outage.end();
    }
    expect(errors).toEqual([]);
    expect(segmentsAtKill.length).toBeGreaterThan(0);

    // The replacement process: same spool directory and worker id.
    const writer = await AuditWriter.start({ databaseUrl: t.workerUrl, spoolDir, workerId, replayIntervalMs: 20, log: createLogger("t", "silent") });
    let duplicatesSkipped = 0;
    try {
      await until(() => writer.stats().mode === "database", 30_000, "replay of the dead writer's spool");
      duplicatesSkipped = writer.stats().duplicatesSkipped;
    } finally {
      await writer.close();
    }
    expect((await readdir(spoolDir)).filter((f) => f.endsWith(".jsonl"))).toEqual([]);
    await rm(spoolDir, { recursive: true, force: true });

    const all = [...acked.database, ...acked.spool];
    const counts = await withClient(t.url, async (c) =>
      (await c.query<{ id: string; n: number }>(
        "SELECT data->>'eventId' AS id, count(*)::int AS n FROM audit_events WHERE data->>'eventId' = ANY($1::text[]) GROUP BY 1",
        [all],
      )).rows,
    );
    expect(counts.length).toBe(all.length);
    expect(counts.every((r) => r.n === 1)).toBe(true);
    const dupes = await withClient(t.url, (c) => c.query("SELECT data->>'eventId' FROM audit_events GROUP BY 1 HAVING count(*) > 1"));
    expect(dupes.rows).toEqual([]);
    expect(await verifyAuditChain(t.db, { checkpointKeys: [] })).toMatchObject({ ok: true });
    return { database: acked.database.size, spool: acked.spool.size, replayedAtKill, duplicatesSkipped };
  }

  it("while the database is away", async () => {
    const n = await run("database away");
    expect(n.spool).toBeGreaterThanOrEqual(3000);
  });

  it("while it replays its spool (committed chunks are replayed again and skipped)", async () => {
    const n = await run("replaying");
    expect(n.replayedAtKill).toBeGreaterThan(0);
    expect(n.duplicatesSkipped).toBeGreaterThan(0);
  });
});
