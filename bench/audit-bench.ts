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
 * Two event streams, each reported on its own:
 * - `decisions`: every event a decision of its own (one row each), the stream's worst case;
 * - `worker`: the stream a proxy worker writes: a decision for every request and, for each one
 *   forwarded (nine in ten here; the tenth is denied), its completion once the decision is
 *   durable, appended deferred as handler.ts does. The shipper folds a completion into its
 *   decision's row when both are in one batch (audit/fold.ts), so this stream costs PostgreSQL
 *   about one row per request, not per event. Its record lag is the decisions' (what a request
 *   waits for); its completions count as events like any other, and a folded one is found in
 *   its decision's row (`data.completion`).
 * Afterwards every acknowledged event is looked up (lost = acknowledged but not there,
 * duplicates = there more than once) and the whole chain is verified. Prints a table and writes
 * bench/results/audit.json. Load generator, writer and PostgreSQL share this machine's cores.
 */
import { randomUUID } from "node:crypto";
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

/** See the header: every event a decision of its own, or the stream a proxy worker writes. */
type Stream = "decisions" | "worker";

interface Row {
  run: string;
  mode: Durability;
  stream: Stream;
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
  /** Rows in PostgreSQL per event (1 for decisions; ~0.53 for the worker's stream when every completion folds). */
  rows_per_event: number;
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

/** A decision as the generator logs it: the k-th request of a run (one in ten is denied). */
function decisionEvent(run: string, k: number, eventId?: string) {
  return {
    type: "proxy.decision",
    actorType: "agent" as const,
    actorId: `agent-${k % 50}`,
    agentId: "0f8fad5b-d9cb-469f-a165-70867728950e",
    taskId: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    outcome: k % 10 === 0 ? "deny" : "allow",
    effect: "read",
    reason: k % 10 === 0 ? "no rule allows DELETE /v1/volumes/{id}" : "rule read-volumes allows GET",
    ruleId: "read-volumes",
    data: { ...(eventId ? { eventId } : {}), run, k, method: "GET", url: `https://backboard.railway.app/v1/volumes/${k}`, service: "railway", actions: [{ service: "railway", environment: "production", resource: `vol_${k}`, operation: "volumes.get", effect: "read" }] },
  };
}

/** The completion of a forwarded request, as handler.ts records it (deferred). */
function completionEvent(run: string, k: number, decisionId: string) {
  return {
    type: "proxy.completed",
    actorType: "agent" as const,
    actorId: `agent-${k % 50}`,
    agentId: "0f8fad5b-d9cb-469f-a165-70867728950e",
    taskId: "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    outcome: "forwarded",
    effect: "read",
    reason: "upstream answered 200",
    ruleId: null,
    data: { eventId: `${decisionId}:completed`, decisionEventId: decisionId, run, k, upstreamStatus: 200, durationMs: 1, credential: "railway-token" },
  };
}

/** Events a request of the `worker` stream adds on average: its decision, and nine times in ten its completion. */
const WORKER_EVENTS_PER_REQUEST = 1.9;

/**
 * Open-loop load: `rate` events a second for `seconds`; waits until everything is shipped. In the
 * `worker` stream requests are due at rate / 1.9 a second, so that their events come at `rate`.
 */
async function drive(writer: AuditWriter, run: string, rate: number, seconds: number, stream: Stream = "decisions"): Promise<DriveResult> {
  const requestRate = stream === "worker" ? rate / WORKER_EVENTS_PER_REQUEST : rate;
  const total = Math.round(requestRate * seconds);
  const recordLags = new Float64Array(total).fill(NaN);
  const recordedAt = new Float64Array(total);
  const lsnOf = new Float64Array(total).fill(NaN);
  const acked: string[] = [];
  /** Completions: when each was appended and its LSN, for the ship lag. */
  const completionAt: number[] = [];
  const completionLsn: number[] = [];
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
      const due = Math.min(total, Math.floor(((now - start) / 1000) * requestRate));
      for (; sent < due; sent++) {
        const k = sent;
        const intended = start + (k * 1000) / requestRate;
        const decision = decisionEvent(run, k, stream === "worker" ? randomUUID() : undefined);
        pending.push(
          writer.record(decision).then(
            (r) => {
              const done = performance.now();
              recordLags[k] = done - intended;
              recordedAt[k] = done;
              lsnOf[k] = r.lsn;
              acked.push(r.eventId);
              if (stream !== "worker" || decision.outcome !== "allow") return;
              // Forwarded: its completion follows, deferred (nothing waits for it).
              return writer.record(completionEvent(run, k, r.eventId), { deferred: true }).then(
                (c) => {
                  completionAt.push(performance.now());
                  completionLsn.push(c.lsn);
                  acked.push(c.eventId);
                },
                () => {
                  failed++;
                },
              );
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
  const events: Array<[lsn: number, at: number]> = [];
  for (let k = 0; k < total; k++) if (!Number.isNaN(lsnOf[k]!)) events.push([lsnOf[k]!, recordedAt[k]!]);
  completionLsn.forEach((lsn, i) => events.push([lsn, completionAt[i]!]));
  events.sort((a, b) => a[0] - b[0]);
  for (const [lsn, at] of events) {
    while (p < progress.length - 1 && progress[p]![1] < lsn) p++;
    shipLags.push(Math.max(0, progress[p]![0] - at));
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

/**
 * The run's events in PostgreSQL, distinct event ids, how many acknowledged ids are among them, and
 * its rows. A completion folded into its decision's row counts as an event of that row (its id is
 * the decision's followed by `:completed`), so a completion both folded and stored on its own
 * counts twice: a duplicate.
 */
async function count(pool: pg.Pool, run: string, acked: string[]): Promise<{ events: number; distinct: number; ackedFound: number; rows: number }> {
  const { rows } = await pool.query<{ events: number; distinct: number; acked_found: number; rows: number }>(
    `WITH r AS (SELECT data FROM audit_events WHERE data->>'run' = $1),
          e AS (SELECT data->>'eventId' AS id FROM r
                UNION ALL SELECT (data->>'eventId') || ':completed' FROM r WHERE data ? 'completion')
     SELECT count(*)::int AS events, count(DISTINCT id)::int AS distinct,
            count(DISTINCT id) FILTER (WHERE id = ANY($2::text[]))::int AS acked_found,
            (SELECT count(*)::int FROM r) AS rows
       FROM e`,
    [run, acked],
  );
  return { events: rows[0]!.events, distinct: rows[0]!.distinct, ackedFound: rows[0]!.acked_found, rows: rows[0]!.rows };
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

interface Drain {
  stream: Stream;
  events: number;
  seconds: number;
  perSecond: number;
  batches: number;
  rowsPerEvent: number;
  nodeCpuUsPerEvent: number;
  pgCpuUsPerEvent: number;
  pgCpuUsPerEventByKind: Record<PgKind, number>;
  lost: number;
  duplicates: number;
}

/**
 * The shipper's ceiling: BACKLOG events logged while the database refuses connections, then the
 * time until all are in PostgreSQL. In the worker's stream each forwarded request's completion is
 * appended (deferred) once its decision is acknowledged, as handler.ts does after the response.
 */
async function drainBacklog(url: string, pool: pg.Pool, pgDir: string, walDir: string, stream: Stream, log: ReturnType<typeof createLogger>): Promise<Drain> {
  const run = stream === "worker" ? "drain, worker's stream" : "drain";
  const writer = await AuditWriter.start({ databaseUrl: url, walDir, workerId: `bench-${stream === "worker" ? "drain-worker" : "drain"}`, log });
  await setConnections(url, false);
  const acked: string[] = [];
  // Decisions go 5,000 at a time; the worker's stream 64 requests at a time (as from 64 connections),
  // so that a completion is logged close behind its decision, as under load, not 5,000 records later.
  const perChunk = stream === "worker" ? 64 : 5000;
  for (let k = 0; acked.length < BACKLOG; ) {
    const chunk: Array<Promise<string[]>> = [];
    for (let i = 0; i < perChunk && acked.length + chunk.length * (stream === "worker" ? WORKER_EVENTS_PER_REQUEST : 1) < BACKLOG; i++, k++) {
      const decision = decisionEvent(run, k, stream === "worker" ? randomUUID() : undefined);
      chunk.push(
        writer.record(decision).then(async (r) => {
          if (stream !== "worker" || decision.outcome !== "allow") return [r.eventId];
          const c = await writer.record(completionEvent(run, k, r.eventId), { deferred: true });
          return [r.eventId, c.eventId];
        }),
      );
    }
    if (chunk.length === 0) break;
    for (const ids of await Promise.all(chunk)) acked.push(...ids);
  }
  await setConnections(url, true);
  const events = acked.length;
  const batchesBefore = writer.stats().batches;
  const cpu0 = cpuNow(pgDir);
  const t0 = performance.now();
  await writer.flush(900_000);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuNow(pgDir);
  const stored = await count(pool, run, acked);
  const batches = writer.stats().batches - batchesBefore;
  await writer.close();
  return {
    stream,
    events,
    seconds: round(seconds),
    perSecond: Math.round(events / seconds),
    batches,
    rowsPerEvent: round(stored.rows / Math.max(1, events)),
    nodeCpuUsPerEvent: round(((cpu1.node - cpu0.node) * 1e6) / events),
    pgCpuUsPerEvent: round(((cpu1.pg - cpu0.pg) * 1e6) / events),
    pgCpuUsPerEventByKind: perEvent(cpu0.pgByKind, cpu1.pgByKind, events),
    lost: events - stored.ackedFound,
    duplicates: stored.events - stored.distinct,
  };
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
  let drain: Drain | null = null;
  let drainWorker: Drain | null = null;
  let verify: { ok: boolean; events: number; ms: number } | null = null;
  try {
    await migrate(db.url);
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on("error", () => undefined); // idle connections cut while the database is away
    // Both streams in the default mode; strict fsync with the decisions' stream, beside it.
    const plan: Array<{ mode: Durability; streams: Stream[] }> = [
      { mode: "group", streams: ["decisions", "worker"] },
      { mode: "strict", streams: ["decisions"] },
    ];
    for (const { mode, streams } of plan) {
      const writer = await AuditWriter.start({ databaseUrl: db.url, walDir: join(dir, `wal-${mode}`), workerId: `bench-${mode}`, durability: mode, log });
      await drive(writer, `warmup-${mode}`, 5000, 1);
      for (const stream of streams) {
        for (const rate of RATES) {
          const run = `${mode} ${rate}/s${stream === "worker" ? ", worker's stream" : ""}`;
          const cpu0 = cpuNow(join(dir, "postgres"));
          const res = await drive(writer, run, rate, SECONDS, stream);
          const cpu1 = cpuNow(join(dir, "postgres"));
          const stored = await count(pool, run, res.acked);
          results.push({
            run,
            mode,
            stream,
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
            rows_per_event: round(stored.rows / Math.max(1, res.acked.length)),
            failed: res.failed,
            lost: res.acked.length - stored.ackedFound,
            duplicates: stored.events - stored.distinct,
          });
          console.log(`${run}: done`);
        }
      }
      await writer.close();
    }

    // Shipper throughput: a backlog logged while the database is away, then drained; both streams.
    drain = await drainBacklog(db.url, pool, join(dir, "postgres"), join(dir, "wal-drain"), "decisions", log);
    console.log("drain: done");
    drainWorker = await drainBacklog(db.url, pool, join(dir, "postgres"), join(dir, "wal-drain-worker"), "worker", log);
    console.log("drain of the worker's stream: done");

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
  for (const d of [drain, drainWorker]) {
    if (!d) continue;
    console.log(
      `shipper draining a backlog of ${d.events} events (${d.stream}): ${d.perSecond} events/s (${d.seconds} s, ${d.batches} batches, ${d.rowsPerEvent} rows per event; CPU per event: shipper ${d.nodeCpuUsPerEvent} µs, PostgreSQL ${d.pgCpuUsPerEvent} µs: ${Object.entries(d.pgCpuUsPerEventByKind).map(([k, v]) => `${k} ${v}`).join(", ")}), lost ${d.lost}, duplicates ${d.duplicates}`,
    );
  }
  // The bar, for each stream: its group run at the target rate keeps up, and its drain is at least as fast.
  const passes = (stream: Stream, d: Drain | null) => {
    const target = results.find((r) => r.mode === "group" && r.stream === stream && r.offered_per_s === TARGET_RATE);
    return Boolean(target && target.achieved_per_s >= 0.98 * TARGET_RATE && target.record_p99_ms <= BARS.recordLagP99Ms && target.ship_p99_ms <= BARS.shipLagP99Ms && (d?.perSecond ?? 0) >= TARGET_RATE);
  };
  const clean = results.every((r) => r.lost === 0 && r.duplicates === 0 && r.failed === 0) && [drain, drainWorker].every((d) => d !== null && d.lost === 0 && d.duplicates === 0);
  const pass = passes("decisions", drain) && clean;
  const passWorker = passes("worker", drainWorker) && clean;
  console.log(`chain verified: ${verify?.ok ? "OK" : "BROKEN"}, ${verify?.events} events in ${verify?.ms} ms`);
  const bar = `${TARGET_RATE}/s sustained, record lag p99 <= ${BARS.recordLagP99Ms} ms, ship lag p99 <= ${BARS.shipLagP99Ms} ms, drain >= ${TARGET_RATE}/s, 0 lost`;
  console.log(`bar (${bar}), decisions' stream: ${pass ? "PASS" : "FAIL"}; the worker's stream: ${passWorker ? "PASS" : "FAIL"}`);

  const out = join(dirname(fileURLToPath(import.meta.url)), "results", "audit.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ recordedAt: new Date().toISOString(), node: process.version, platform: `${process.platform}/${process.arch}`, cpus: cpus().length, secondsPerRun: SECONDS, bar: { ...BARS, pass, passWorker }, drain, drainWorker, verify, results }, null, 2)}\n`);
  console.log(`wrote ${out}`);
}

await main();
