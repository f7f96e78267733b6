/**
 * Audit writer benchmark (not a test): `npx tsx bench/audit-bench.ts`.
 *
 * Starts an embedded PostgreSQL in a temporary folder, migrates it, and drives one AuditWriter
 * (defaults: 500-event batches, 5 ms flush delay) with open-loop load at increasing rates for
 * AUDIT_BENCH_SECONDS (default 10) each. The lag of an event is measured from the moment it was
 * due to be sent (not when the generator got round to it, so a stalled generator cannot hide
 * latency) to the moment `record` resolved, i.e. the event was committed. Afterwards the run's
 * events are counted in the database: lost = acknowledged but not there, duplicates = there more
 * than once. A last run repeats the target rate with the database taken away for 3 s in the
 * middle (events go to the spool and are replayed), and the whole chain is verified at the end.
 * Prints a table and writes bench/results/audit.json. Load generator, writer and PostgreSQL share
 * this machine's cores.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { verifyAuditChain } from "@/lib/audit/verify";
import { startEmbeddedDatabase } from "@/lib/db/embedded";
import { migrate } from "@/lib/db/migrate";
import { createLogger } from "@/lib/log";
import { AuditWriter } from "@/proxy-worker/audit/writer";

const SECONDS = Number(process.env.AUDIT_BENCH_SECONDS ?? 10);
const RATES = (process.env.AUDIT_BENCH_RATES ?? "5000,10000,20000,30000,40000").split(",").map(Number);
const TARGET_RATE = 20_000;
// Writer settings (defaults are the writer's own): AUDIT_BENCH_BATCH, AUDIT_BENCH_DELAY_MS, AUDIT_BENCH_IN_FLIGHT.
const num = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);
const WRITER = { maxBatchSize: num("AUDIT_BENCH_BATCH"), maxDelayMs: num("AUDIT_BENCH_DELAY_MS"), maxInFlight: num("AUDIT_BENCH_IN_FLIGHT") };
const BARS = { ratePerSecond: TARGET_RATE, lagP99Ms: 100, lost: 0 };

interface Row {
  run: string;
  offered_per_s: number;
  achieved_per_s: number;
  events: number;
  lag_p50_ms: number;
  lag_p99_ms: number;
  lag_max_ms: number;
  spooled: number;
  /** Refused by record (not acknowledged). */
  failed: number;
  /** Acknowledged but not in the database. */
  lost: number;
  duplicates: number;
}

const pct = (sorted: Float64Array, q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const round = (x: number) => Math.round(x * 100) / 100;

interface DriveResult {
  lags: Float64Array;
  ackedIds: string[];
  failed: number;
  spooled: number;
  elapsedMs: number;
}

async function drive(writer: AuditWriter, run: string, rate: number, seconds: number, during?: (elapsedMs: number) => void): Promise<DriveResult> {
  const total = Math.round(rate * seconds);
  const lags = new Float64Array(total);
  let sent = 0;
  const ackedIds: string[] = [];
  let failed = 0;
  let spooled = 0;
  const start = performance.now();
  const pending: Array<Promise<void>> = [];
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      during?.(now - start);
      const due = Math.min(total, Math.floor(((now - start) / 1000) * rate));
      for (; sent < due; sent++) {
        const k = sent;
        const intended = start + (k * 1000) / rate;
        pending.push(
          writer
            .record({
              type: "proxy.decision",
              actorType: "agent",
              actorId: `agent-${k % 50}`,
              agentId: "0f8fad5b-d9cb-469f-a165-70867728950e",
              taskId: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
              outcome: k % 10 === 0 ? "deny" : "allow",
              effect: "read",
              reason: k % 10 === 0 ? "no rule allows DELETE /v1/volumes/{id}" : "rule read-volumes allows GET",
              ruleId: "read-volumes",
              data: { run, k, method: "GET", url: `https://backboard.railway.app/v1/volumes/${k}`, service: "railway", status: 200, bytes: 512 },
            })
            .then(
              (r) => {
                lags[k] = performance.now() - intended;
                ackedIds.push(r.eventId);
                if (r.durable === "spool") spooled++;
              },
              () => {
                failed++;
              },
            ),
        );
      }
      if (sent >= total) resolve();
      else setImmediate(tick);
    };
    tick();
  });
  await Promise.all(pending);
  return { lags: lags.sort(), ackedIds, failed, spooled, elapsedMs: performance.now() - start };
}

/** The run's rows, distinct event ids, and how many acknowledged ids are among them. */
async function count(pool: pg.Pool, run: string, acked: string[]): Promise<{ rows: number; distinct: number; ackedFound: number }> {
  const { rows } = await pool.query<{ rows: number; distinct: number; acked_found: number }>(
    `SELECT count(*)::int AS rows, count(DISTINCT data->>'eventId')::int AS distinct,
            count(DISTINCT data->>'eventId') FILTER (WHERE data->>'eventId' = ANY($2::text[]))::int AS acked_found
       FROM audit_events WHERE data->>'run' = $1`,
    [run, acked],
  );
  return { rows: rows[0]!.rows, distinct: rows[0]!.distinct, ackedFound: rows[0]!.acked_found };
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "bh-audit-bench-"));
  const db = await startEmbeddedDatabase({ dataDir: dir, port: 30000 + Math.floor(Math.random() * 20000) });
  const results: Row[] = [];
  let verify: { ok: boolean; events: number; ms: number } | null = null;
  try {
    await migrate(db.url);
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on("error", () => undefined); // idle connections cut during the outage run
    const writer = await AuditWriter.start({ databaseUrl: db.url, spoolDir: join(dir, "audit-spool"), workerId: "bench", log: createLogger("bench", "silent"), ...WRITER });
    // Warm-up: connections, prepared statement, JIT.
    await drive(writer, "warmup", 5000, 1);

    const runs: Array<{ name: string; rate: number; outage?: boolean }> = [
      ...RATES.map((rate) => ({ name: `${rate}/s`, rate })),
      { name: `${TARGET_RATE}/s, DB away 3 s`, rate: TARGET_RATE, outage: true },
    ];
    for (const r of runs) {
      const adminUrl = new URL(db.url);
      adminUrl.pathname = "/postgres";
      const admin = new pg.Client({ connectionString: adminUrl.toString() });
      let phase: "before" | "away" | "back" = "before";
      const dbName = new URL(db.url).pathname.slice(1);
      if (r.outage) await admin.connect();
      const outageStarts = (SECONDS * 1000) / 2 - 1500;
      const transitions: Array<Promise<unknown>> = [];
      const res = await drive(writer, r.name, r.rate, SECONDS, (ms) => {
        if (!r.outage) return;
        if (phase === "before" && ms >= outageStarts) {
          phase = "away";
          transitions.push(
            admin
              .query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS false`)
              .then(() => admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [dbName])),
          );
        } else if (phase === "away" && ms >= outageStarts + 3000) {
          phase = "back";
          transitions.push(admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`));
        }
      });
      await Promise.all(transitions);
      if (r.outage) {
        await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`);
        await admin.end();
        const deadline = Date.now() + 60_000;
        while (writer.stats().mode !== "database" && Date.now() < deadline) await new Promise((x) => setTimeout(x, 50));
      }
      const stored = await count(pool, r.name, res.ackedIds);
      results.push({
        run: r.name,
        offered_per_s: r.rate,
        achieved_per_s: Math.round(res.ackedIds.length / (res.elapsedMs / 1000)),
        events: res.ackedIds.length,
        lag_p50_ms: round(pct(res.lags, 0.5)),
        lag_p99_ms: round(pct(res.lags, 0.99)),
        lag_max_ms: round(res.lags[res.lags.length - 1] ?? 0),
        spooled: res.spooled,
        failed: res.failed,
        lost: res.ackedIds.length - stored.ackedFound,
        duplicates: stored.rows - stored.distinct,
      });
      console.log(`${r.name}: done`);
    }
    await writer.close();
    const t0 = performance.now();
    const v = await verifyAuditChain(pool, { checkpointKeys: [] });
    verify = { ok: v.ok, events: v.ok ? v.events : -1, ms: Math.round(performance.now() - t0) };
    await pool.end();
  } finally {
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  }

  console.log(`node ${process.version} ${process.platform}/${process.arch}, ${cpus().length} CPUs; ${SECONDS} s per run; one writer ${JSON.stringify(WRITER)}`);
  console.table(results);
  const target = results.find((r) => r.run === `${TARGET_RATE}/s`);
  const pass = Boolean(target && target.achieved_per_s >= 0.98 * TARGET_RATE && target.lag_p99_ms <= BARS.lagP99Ms) && results.every((r) => r.lost === 0 && r.duplicates === 0 && r.failed === 0);
  console.log(`chain verified: ${verify?.ok ? "OK" : "BROKEN"}, ${verify?.events} events in ${verify?.ms} ms`);
  console.log(`bar (${TARGET_RATE}/s sustained, flush lag p99 <= ${BARS.lagP99Ms} ms, 0 lost): ${pass ? "PASS" : "FAIL"}`);

  const out = join(dirname(fileURLToPath(import.meta.url)), "results", "audit.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify({ recordedAt: new Date().toISOString(), node: process.version, platform: `${process.platform}/${process.arch}`, cpus: cpus().length, secondsPerRun: SECONDS, writer: WRITER, bar: { ...BARS, pass }, verify, results }, null, 2)}\n`,
  );
  console.log(`wrote ${out}`);
}

await main();
