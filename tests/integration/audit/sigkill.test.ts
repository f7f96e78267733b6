import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
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
 * once they are durable in its log; it is killed mid-load (with the database away, or while it
 * ships); a new writer on the same log ships what is left, from the cursor; every acknowledged
 * event is then in the database exactly once, in log order, and the chain verifies.
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

  async function run(killWhen: "database away" | "shipping", durability: "group" | "strict") {
    const walDir = await mkdtemp(path.join(tmpdir(), "bh-audit-kill-"));
    const workerId = `kill-${killWhen.replace(/\W/g, "-")}-${durability}`;
    const acked = new Map<number, string>();
    const errors: string[] = [];
    let shippedByChild = 0;
    const outage = new DatabaseOutage(t.adminUrl);
    if (killWhen === "database away") await outage.begin();
    const child: ChildProcess = fork(path.resolve("tests/integration/audit/writer-child.ts"), [], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, BULKHEAD_WORKER_DATABASE_URL: t.workerUrl, WAL_DIR: walDir, WORKER_ID: workerId, DURABILITY: durability },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.on("message", (m: { ack?: string; lsn?: number; shipped?: number; error?: string }) => {
      if (m.ack) acked.set(m.lsn!, m.ack);
      shippedByChild = Math.max(shippedByChild, m.shipped ?? 0);
      if (m.error) errors.push(m.error);
    });
    try {
      await until(() => acked.size >= 3000, 60_000, "load through the log");
      if (killWhen === "shipping") await until(() => shippedByChild > 0, 30_000, "shipping");
      child.kill("SIGKILL");
      await exited;
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await outage.end();
    }
    expect(errors).toEqual([]);

    // The replacement process: same log directory and worker id.
    const writer = await AuditWriter.start({ databaseUrl: t.workerUrl, walDir, workerId, log: createLogger("t", "silent") });
    let stats;
    try {
      await writer.flush(60_000);
      stats = writer.stats();
    } finally {
      await writer.close();
    }
    await rm(walDir, { recursive: true, force: true });

    const ids = [...acked.entries()].sort((a, b) => a[0] - b[0]).map(([, id]) => id);
    const rows = await withClient(t.url, async (c) =>
      (await c.query<{ id: string }>("SELECT data->>'eventId' AS id FROM audit_events WHERE data->>'eventId' = ANY($1::text[]) ORDER BY seq", [ids])).rows,
    );
    // Every acknowledged event, once, in the order of the log.
    expect(rows.map((r) => r.id)).toEqual(ids);
    const dupes = await withClient(t.url, (c) => c.query("SELECT data->>'eventId' FROM audit_events GROUP BY 1 HAVING count(*) > 1"));
    expect(dupes.rows).toEqual([]);
    expect(await verifyAuditChain(t.db, { checkpointKeys: [] })).toMatchObject({ ok: true });
    return { acked: acked.size, shippedByChild, stats };
  }

  it("while the database is away (everything still only in the log)", async () => {
    const n = await run("database away", "group");
    expect(n.shippedByChild).toBe(0);
    expect(n.stats.shipped).toBeGreaterThanOrEqual(3000);
  });

  it("while it ships (the replacement starts at the cursor)", async () => {
    const n = await run("shipping", "group");
    expect(n.shippedByChild).toBeGreaterThan(0);
  });

  it("in strict mode", async () => {
    await run("shipping", "strict");
  });
});
