import v8 from "node:v8";
import vm from "node:vm";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Actor } from "@/lib/auth/actor";
import { startAuditExport } from "@/lib/audit/export";
import { bulkProxyDecisions } from "../../support/audit-events";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser } from "../../support/factories";
import { makeFleet } from "./fleet";

const EVENTS = 200_000;

// A full collection on demand, so that what is measured is what the export retains, not garbage
// the collector has not got round to yet.
v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const retained = () => {
  gc();
  return process.memoryUsage().heapUsed;
};

/**
 * Exports of a log far larger than anything the process should hold: the heap stays flat while
 * ~100 MB of CSV streams through, and a slow reader slows the database cursor instead of
 * filling memory.
 */
describe("audit export streams in constant memory", () => {
  let t: TestDatabase;
  let pool: pg.Pool;
  let auditor: Actor;

  beforeAll(async () => {
    t = await createTestDatabase();
    pool = new pg.Pool({ connectionString: t.url, max: 2 });
    const admin = await makeUser(t.db, "admin");
    auditor = (await makeUser(t.db, "auditor")).actor;
    const fleet = await makeFleet(t.db, admin.user.id, 5, 4);
    await bulkProxyDecisions(pool, fleet, EVENTS, { chunk: 50_000 });
  }, 600_000);
  afterAll(async () => {
    await pool.end();
    await t.drop();
  });

  it(`streams ${EVENTS.toLocaleString("en")} events as CSV with a flat heap`, async () => {
    const exp = await startAuditExport(t.db, auditor, { format: "csv" }, { via: "api" });
    const expected = await t.db.auditEvent.count({ where: { seq: { lte: BigInt(exp.throughSeq) } } });
    let bytes = 0;
    let lines = 0;
    let peak = 0;
    let baseline = 0;
    let chunks = 0;
    for await (const chunk of exp.chunks) {
      bytes += chunk.length;
      for (let i = chunk.indexOf("\r\n"); i >= 0; i = chunk.indexOf("\r\n", i + 2)) lines++;
      chunks++;
      if (chunks === 10) baseline = retained(); // after warm-up: compiled code, the pool, the first batches
      if (chunks > 10 && chunks % 10 === 0) peak = Math.max(peak, retained());
    }
    expect(expected).toBeGreaterThanOrEqual(EVENTS);
    expect(lines).toBe(expected + 1);
    expect(bytes).toBeGreaterThan(60 * 1024 * 1024);
    // Holding the export (or the rows behind it) would retain at least `bytes` of heap.
    const growth = peak - baseline;
    expect(growth, `heap grew ${Math.round(growth / 1048576)} MiB while ${Math.round(bytes / 1048576)} MiB streamed`).toBeLessThan(16 * 1024 * 1024);
  }, 300_000);

  it("a reader that pauses pauses the database cursor; stopping releases it", async () => {
    const activity = async () =>
      (
        await pool.query<{ state: string }>(
          "SELECT state FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'",
        )
      ).rows.map((r) => r.state);
    const exp = await startAuditExport(t.db, auditor, { format: "jsonl" }, { via: "api", batchSize: 1000 });
    await exp.chunks.next();
    // Unpaced, the whole export would be fetched and its transaction over within this pause.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(await activity()).toContain("idle in transaction");
    await exp.chunks.return(undefined);
    expect(await activity()).not.toContain("idle in transaction");
    const finished = await t.db.auditEvent.findFirst({ where: { type: "audit.exported" }, orderBy: { seq: "desc" } });
    expect(finished!.data).toMatchObject({ status: "cancelled", rows: 1000 });
  }, 120_000);
});
