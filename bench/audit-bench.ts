/**
 * Audit benchmark (not a test): `npx tsx bench/audit-bench.ts`.
 *
 * Starts an embedded PostgreSQL in a temporary folder, migrates it, and drives the worker's
 * AuditWriter (write-ahead log + shipper) with open-loop load for AUDIT_BENCH_SECONDS (default
 * 10) per run, in both durability modes:
 * - record lag: from the moment an event was due (not when the generator got round to it, so a
 *   stalled generator cannot hide latency) until `record` resolved, i.e. the event was durable
 *   in the log by the mode. This is what a request waits for before it is forwarded.
 * - ship lag: from record until the event was in PostgreSQL (the shipper's cursor passed its
 *   LSN; sampled every 5 ms), and the largest backlog seen.
 * - shipper throughput: the database away while AUDIT_BENCH_BACKLOG events (default 200,000) are
 *   logged, then back: events per second while the shipper drains the backlog (sustained, large
 *   batches), which is the shipper's ceiling on this machine.
 * Afterwards every acknowledged event is looked up (lost = acknowledged but not there,
 * duplicates = there more than once) and the whole chain is verified. Prints a table and writes
 * bench/results/audit.json. Load generator, writer and PostgreSQL share this machine's cores.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { verifyAuditChain } from "@/lib/audit/verify";
import { startEmbeddedDatabase } from "@/lib/db/embedded";
import { migrate } from "@/lib/db/migrate";
import { createLogger } from "@/lib/log";
import { AuditWriter, type Durability } from "@/proxy-worker/audit/writer";
import { processCpuSeconds, processTree, reapedChildrenCpuSeconds } from "./support/stats";

const SECONDS = Number(process.env.AUDIT_BENCH_SECONDS ?? 10);
const RATES = (process.env.AUDIT_BENCH_RATES ?? "5000,10000,20000").split(",").map(Number);
const BACKLOG = Number(process.env.AUDIT_BENCH_BACKLOG ?? 200_000);
const TARGET_RATE = 20_000;
/** The bar: 20k events/s sustained, durable (record) lag p99 <= 100 ms, the shipper keeping up (its lag p99 within a second), nothing lost. */
const BARS = { ratePerSecond: TARGET_RATE, recordLagP99Ms: 100, shipLagP99Ms: 1000, lost: 0 };

interface Row {
  run: string;
  mode: Durability;
  offered_per_s: number;
  /** Acknowledged (durable in the log) per second of the load. */
  achieved_per_s: number;
  /** In PostgreSQL per second, from the first event due to the last one shipped: what the shipper sustained. */
  shipped_per_s: number;
  events: number;
  record_p50_ms: number;
  record_p99_ms: number;
  ship_p50_ms: number;
  ship_p99_ms: number;
  max_backlog_events: number;
  /** CPU per event: this process (generator, log, shipper) and PostgreSQL (all its processes). */
  node_cpu_us: number;
  pg_cpu_us: number;
  /** Refused by record (not acknowledged). */
  failed: number;
  lost: number;
  duplicates: number;
}

const pct = (sorted: Float64Array, q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
const round = (x: number) => Math.round(x * 100) / 100;

interface DriveResult {
  recordLags: Float64Array;
  shipLags: Float64Array;
  acked: string[];
  failed: number;
  maxBacklog: number;
  elapsedMs: number;
  /** From the start until the last event was in PostgreSQL. */
  shippedMs: number;
}

/** Open-loop load: `rate` events a second for `seconds`; waits until everything is shipped. */
async function drive(writer: AuditWriter, run: string, rate: number, seconds: number): Promise<DriveResult> {
  const total = Math.round(rate * seconds);
  const recordLags = new Float64Array(total).fill(NaN);
  const recordedAt = new Float64Array(total);
  const lsnOf = new Float64Array(total).fill(NaN);
  const acked: string[] = [];
  let failed = 0;
  let sent = 0;
  // The shipper's progress over time, to tell when each LSN reached PostgreSQL.
  const progress: Array<[number, number]> = [];
  let maxBacklog = 0;
  const sampler = setInterval(() => {
    const s = writer.stats();
    progress.push([performance.now(), s.shippedLsn]);
    maxBacklog = Math.max(maxBacklog, s.lagEvents);
  }, 5);
  const start = performance.now();
  const pending: Array<Promise<void>> = [];
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
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
              data: { run, k, method: "GET", url: `https://backboard.railway.app/v1/volumes/${k}`, service: "railway", actions: [{ service: "railway", environment: "production", resource: `vol_${k}`, operation: "volumes.get", effect: "read" }] },
            })
            .then(
              (r) => {
                const done = performance.now();
                recordLags[k] = done - intended;
                recordedAt[k] = done;
                lsnOf[k] = r.lsn;
                acked.push(r.eventId);
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
  const elapsedMs = performance.now() - start;
  await writer.flush(900_000);
  const shippedMs = performance.now() - start;
  clearInterval(sampler);
  progress.push([performance.now(), writer.stats().shippedLsn]);
  // Ship lag: the first sample whose cursor covers the event's LSN (progress is monotonic).
  const shipLags: number[] = [];
  let p = 0;
  const order = Array.from({ length: total }, (_, k) => k).filter((k) => !Number.isNaN(lsnOf[k]!)).sort((a, b) => lsnOf[a]! - lsnOf[b]!);
  for (const k of order) {
    while (p < progress.length - 1 && progress[p]![1] < lsnOf[k]!) p++;
    shipLags.push(Math.max(0, progress[p]![0] - recordedAt[k]!));
  }
  return { recordLags: Float64Array.from(recordLags.filter((x) => !Number.isNaN(x))).sort(), shipLags: Float64Array.from(shipLags).sort(), acked, failed, maxBacklog, elapsedMs, shippedMs };
}

/**
 * CPU seconds used so far by this process and by PostgreSQL: on a machine shared with other work
 * the wall-clock figures wander, CPU per event much less.
 */
function cpuNow(pgDir: string): { node: number; pg: number; pgByKind: Record<PgKind, number> } {
  const postmaster = Number(readFileSync(join(pgDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const u = process.cpuUsage();
  const pgByKind: Record<PgKind, number> = { backends: 0, autovacuum: 0, walwriter: 0, checkpointer: 0, bgwriter: 0, io: 0, other: 0, exited: reapedChildrenCpuSeconds(postmaster) || 0 };
  for (const pid of processTree(postmaster)) pgByKind[pgKind(pid, postmaster)] += processCpuSeconds(pid) || 0;
  return { node: (u.user + u.system) / 1e6, pg: Object.values(pgByKind).reduce((a, b) => a + b, 0), pgByKind };
}

/**
 * Where PostgreSQL's CPU goes: the backends (the shipper's statement, the bench's own queries),
 * autovacuum (its passes over the new rows and the GIN indexes' pending-list merges), the WAL
 * writer, the checkpointer, the background writer, PostgreSQL 18's I/O workers, the rest; "exited" is what children that ended in between used
 * (autovacuum workers come and go), which sampling the live processes would miss.
 */
type PgKind = "backends" | "autovacuum" | "walwriter" | "checkpointer" | "bgwriter" | "io" | "other" | "exited";
function pgKind(pid: number, postmaster: number): PgKind {
  if (pid === postmaster) return "other";
  let title = "";
  try {
    title = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "other";
  }
  if (title.includes("autovacuum worker")) return "autovacuum";
  if (title.includes("walwriter")) return "walwriter";
  if (title.includes("checkpointer")) return "checkpointer";
  if (title.includes("background writer")) return "bgwriter";
  if (title.includes("io worker")) return "io";
  if (/launcher|logger|archiver|walsummarizer|stats/.test(title)) return "other";
  return "backends";
}

const perEvent = (a: Record<PgKind, number>, b: Record<PgKind, number>, events: number) =>
  Object.fromEntries((Object.keys(a) as PgKind[]).map((k) => [k, round(((b[k] - a[k]) * 1e6) / events)])) as Record<PgKind, number>;

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

async function setConnections(url: string, allow: boolean): Promise<void> {
  const admin = new URL(url);
  const name = admin.pathname.slice(1);
  admin.pathname = "/postgres";
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS ${allow}`);
    if (!allow) await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
  } finally {
    await c.end();
  }
}

async function main() {
  const dir = await mkdtemp(join(tmpdir(), "bh-audit-bench-"));
  const db = await startEmbeddedDatabase({ dataDir: dir, port: 30000 + Math.floor(Math.random() * 20000) });
  // Stopped from outside (the suite's time limit, Ctrl-C): take the embedded PostgreSQL down too.
  const onSignal = (code: number) => () => void db.stop().finally(() => rm(dir, { recursive: true, force: true }).finally(() => process.exit(code)));
  process.once("SIGTERM", onSignal(143));
  process.once("SIGINT", onSignal(130));
  const log = createLogger("bench", "silent");
  const results: Row[] = [];
  let drain: { events: number; seconds: number; perSecond: number; batches: number; nodeCpuUsPerEvent: number; pgCpuUsPerEvent: number; pgCpuUsPerEventByKind: Record<PgKind, number>; lost: number; duplicates: number } | null = null;
  let verify: { ok: boolean; events: number; ms: number } | null = null;
  try {
    await migrate(db.url);
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on("error", () => undefined); // idle connections cut while the database is away
    for (const mode of ["group", "strict"] as const) {
      const writer = await AuditWriter.start({ databaseUrl: db.url, walDir: join(dir, `wal-${mode}`), workerId: `bench-${mode}`, durability: mode, log });
      await drive(writer, `warmup-${mode}`, 5000, 1);
      for (const rate of RATES) {
        const run = `${mode} ${rate}/s`;
        const cpu0 = cpuNow(join(dir, "postgres"));
        const res = await drive(writer, run, rate, SECONDS);
        const cpu1 = cpuNow(join(dir, "postgres"));
        const stored = await count(pool, run, res.acked);
        results.push({
          run,
          mode,
          offered_per_s: rate,
          achieved_per_s: Math.round(res.acked.length / (res.elapsedMs / 1000)),
          shipped_per_s: Math.round(res.acked.length / (res.shippedMs / 1000)),
          events: res.acked.length,
          record_p50_ms: round(pct(res.recordLags, 0.5)),
          record_p99_ms: round(pct(res.recordLags, 0.99)),
          ship_p50_ms: round(pct(res.shipLags, 0.5)),
          ship_p99_ms: round(pct(res.shipLags, 0.99)),
          max_backlog_events: res.maxBacklog,
          node_cpu_us: Math.round(((cpu1.node - cpu0.node) * 1e6) / res.acked.length),
          pg_cpu_us: Math.round(((cpu1.pg - cpu0.pg) * 1e6) / res.acked.length),
          failed: res.failed,
          lost: res.acked.length - stored.ackedFound,
          duplicates: stored.rows - stored.distinct,
        });
        console.log(`${run}: done`);
      }
      await writer.close();
    }

    // Shipper throughput: a backlog logged while the database is away, then drained.
    const writer = await AuditWriter.start({ databaseUrl: db.url, walDir: join(dir, "wal-drain"), workerId: "bench-drain", log });
    await setConnections(db.url, false);
    const acked: string[] = [];
    for (let k = 0; k < BACKLOG; k += 5000) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(5000, BACKLOG - k) }, (_, i) =>
          writer.record({ type: "proxy.decision", actorType: "agent", outcome: "allow", effect: "read", reason: "rule read-volumes allows GET", ruleId: "read-volumes", data: { run: "drain", k: k + i, method: "GET", url: `https://backboard.railway.app/v1/volumes/${k + i}` } }),
        ),
      );
      acked.push(...batch.map((r) => r.eventId));
    }
    await setConnections(db.url, true);
    const batchesBefore = writer.stats().batches;
    const cpu0 = cpuNow(join(dir, "postgres"));
    const t0 = performance.now();
    await writer.flush(900_000);
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = cpuNow(join(dir, "postgres"));
    const stored = await count(pool, "drain", acked);
    drain = {
      events: BACKLOG,
      seconds: round(seconds),
      perSecond: Math.round(BACKLOG / seconds),
      batches: writer.stats().batches - batchesBefore,
      nodeCpuUsPerEvent: round(((cpu1.node - cpu0.node) * 1e6) / BACKLOG),
      pgCpuUsPerEvent: round(((cpu1.pg - cpu0.pg) * 1e6) / BACKLOG),
      pgCpuUsPerEventByKind: perEvent(cpu0.pgByKind, cpu1.pgByKind, BACKLOG),
      lost: acked.length - stored.ackedFound,
      duplicates: stored.rows - stored.distinct,
    };
    await writer.close();
    console.log("drain: done");

    const t1 = performance.now();
    const v = await verifyAuditChain(pool, { checkpointKeys: [] });
    verify = { ok: v.ok, events: v.ok ? v.events : -1, ms: Math.round(performance.now() - t1) };
    await pool.end();
  } finally {
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  }

  console.log(`node ${process.version} ${process.platform}/${process.arch}, ${cpus().length} CPUs; ${SECONDS} s per run`);
  console.table(results);
  console.log(
    `shipper draining a backlog of ${drain?.events} events: ${drain?.perSecond} events/s (${drain?.seconds} s, ${drain?.batches} batches; CPU per event: shipper ${drain?.nodeCpuUsPerEvent} µs, PostgreSQL ${drain?.pgCpuUsPerEvent} µs: ${Object.entries(drain?.pgCpuUsPerEventByKind ?? {}).map(([k, v]) => `${k} ${v}`).join(", ")}), lost ${drain?.lost}, duplicates ${drain?.duplicates}`,
  );
  const target = results.find((r) => r.run === `group ${TARGET_RATE}/s`);
  const pass =
    Boolean(target && target.achieved_per_s >= 0.98 * TARGET_RATE && target.record_p99_ms <= BARS.recordLagP99Ms && target.ship_p99_ms <= BARS.shipLagP99Ms && (drain?.perSecond ?? 0) >= TARGET_RATE) &&
    results.every((r) => r.lost === 0 && r.duplicates === 0 && r.failed === 0) &&
    drain?.lost === 0 &&
    drain.duplicates === 0;
  console.log(`chain verified: ${verify?.ok ? "OK" : "BROKEN"}, ${verify?.events} events in ${verify?.ms} ms`);
  console.log(`bar (${TARGET_RATE}/s sustained, record lag p99 <= ${BARS.recordLagP99Ms} ms, ship lag p99 <= ${BARS.shipLagP99Ms} ms, drain >= ${TARGET_RATE}/s, 0 lost): ${pass ? "PASS" : "FAIL"}`);

  const out = join(dirname(fileURLToPath(import.meta.url)), "results", "audit.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ recordedAt: new Date().toISOString(), node: process.version, platform: `${process.platform}/${process.arch}`, cpus: cpus().length, secondsPerRun: SECONDS, bar: { ...BARS, pass }, drain, verify, results }, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
