/**
 * The audit write-ahead log and its shipper inside the suite: `bench/audit-bench.ts` run as a child
 * process after the proxy parts, with shorter settings than its own defaults, and its JSON read
 * back for the bar ("audit sustains 20k events/s in batches", strict fsync beside the default)
 * and for a table of its own.
 */
import type { BarItem } from "./report";
import { runJsonChild } from "./children";

/** One open-loop run of audit-bench (its `Row`). */
export interface AuditLogRun {
  run: string;
  mode: "group" | "strict";
  /** Absent in results written before the worker's stream was measured: decisions. */
  stream?: "decisions" | "worker";
  rows_per_event?: number;
  offered_per_s: number;
  achieved_per_s: number;
  /** Absent in results written before it existed. */
  shipped_per_s?: number;
  events: number;
  record_p50_ms: number;
  record_p99_ms: number;
  ship_p50_ms: number;
  ship_p99_ms: number;
  max_backlog_events: number;
  node_cpu_us: number;
  pg_cpu_us: number;
  failed: number;
  lost: number;
  duplicates: number;
}

/** bench/results/audit.json as audit-bench writes it. */
export interface AuditLogDrain {
  stream?: "decisions" | "worker";
  events: number;
  seconds: number;
  perSecond: number;
  batches: number;
  rowsPerEvent?: number;
  nodeCpuUsPerEvent: number;
  pgCpuUsPerEvent: number;
  pgCpuUsPerEventByKind?: Record<string, number>;
  lost: number;
  duplicates: number;
}

export interface AuditLogResult {
  recordedAt: string;
  secondsPerRun: number;
  /** `pass`: the decisions' stream; `passWorker`: the worker's (absent in older results). */
  bar: { ratePerSecond: number; recordLagP99Ms: number; shipLagP99Ms: number; lost: number; pass: boolean; passWorker?: boolean };
  drain: AuditLogDrain | null;
  /** The drain of the worker's stream (absent in older results). */
  drainWorker?: AuditLogDrain | null;
  verify: { ok: boolean; events: number; ms: number } | null;
  results: AuditLogRun[];
}

export interface AuditLogSettings {
  seconds: number;
  rates: number[];
  backlog: number;
}

/**
 * Runs audit-bench to the end (it starts and stops its own embedded PostgreSQL) on `cpus`, and
 * returns its JSON, or why there is none. A run that overstays `timeoutMs` is killed.
 */
export function runAuditLogBench(root: string, o: AuditLogSettings & { cpus?: string; timeoutMs: number }): Promise<{ result: AuditLogResult | null; error: string | null }> {
  return runJsonChild<AuditLogResult>(root, "audit-bench", [process.execPath, "--import", "tsx", "bench/audit-bench.ts"], "audit.json", {
    cpus: o.cpus,
    timeoutMs: o.timeoutMs,
    env: { AUDIT_BENCH_SECONDS: String(o.seconds), AUDIT_BENCH_RATES: o.rates.join(","), AUDIT_BENCH_BACKLOG: String(o.backlog) },
  });
}

const n = (v: number) => Math.round(v).toLocaleString("en-US");
const TARGET = 20_000;

/**
 * The audit rows of the bar: the 20k events/s target in the default (group) mode for each stream
 * (every event a decision of its own; the worker's stream of decisions and completions, which the
 * shipper folds into one row per request), and strict fsync reported beside them.
 */
export function auditLogBarItems(a: AuditLogResult | null, error: string | null): BarItem[] {
  const item = "audit sustains 20k events/s in batches (group fsync, the default): every event a decision of its own";
  const workerItem = "audit sustains 20k events/s in batches (group fsync): the worker's stream (each forwarded request's decision and completion, folded into one row)";
  const strictItem = "audit at 20k events/s with strict fsync (fsync before forwarding), beside the default";
  const bar = "20k events/s sustained; record lag p99 ≤ 100 ms; shipper keeps up (ship lag p99 ≤ 1 s); 0 lost";
  if (!a) {
    const why = error ?? "not run (BENCH_AUDIT=0)";
    return [
      { item, measured: why, bar, status: "not measured" },
      { item: workerItem, measured: why, bar, status: "not measured" },
      { item: strictItem, measured: why, bar: "reported", status: "not measured" },
    ];
  }
  const streamOf = (r: AuditLogRun) => r.stream ?? "decisions";
  const at = (mode: "group" | "strict", stream: "decisions" | "worker") => a.results.find((r) => r.mode === mode && streamOf(r) === stream && r.offered_per_s === TARGET);
  const lostAll = a.results.reduce((s, r) => s + r.lost, 0) + (a.drain?.lost ?? 0) + (a.drainWorker?.lost ?? 0);
  const dupAll = a.results.reduce((s, r) => s + r.duplicates, 0) + (a.drain?.duplicates ?? 0) + (a.drainWorker?.duplicates ?? 0);
  const drained = (d: AuditLogDrain | null | undefined) =>
    d ? `; shipper draining a ${n(d.events)}-event backlog: ${n(d.perSecond)} events/s in ${d.batches} batches${d.rowsPerEvent === undefined ? "" : ` (${d.rowsPerEvent} rows per event)`}` : "";
  const tail = `; lost ${lostAll}, duplicates ${dupAll} (all runs), chain ${a.verify?.ok ? "verified" : "NOT verified"} (${a.secondsPerRun} s per run)`;
  // Sustained = into PostgreSQL: logged events the shipper has not caught up with are not counted as sustained.
  const describe = (r: AuditLogRun) =>
    `${r.shipped_per_s === undefined ? "–" : n(r.shipped_per_s)} events/s sustained into PostgreSQL (${n(r.achieved_per_s)}/s logged) at ${n(r.offered_per_s)}/s offered, record lag p50 ${r.record_p50_ms} / p99 ${r.record_p99_ms} ms, ship lag p99 ${r.ship_p99_ms} ms, max backlog ${n(r.max_backlog_events)}` +
    (r.rows_per_event === undefined ? "" : `, ${r.rows_per_event} rows per event`) +
    (r.failed ? `, ${r.failed} refused` : "");
  const group = at("group", "decisions");
  const worker = at("group", "worker");
  const strict = at("strict", "decisions");
  const groupRow: BarItem = group
    ? { item, measured: describe(group) + drained(a.drain) + tail, bar, status: a.bar.pass ? "met" : "NOT met" }
    : { item, measured: `no run at ${n(TARGET)}/s (BENCH_AUDIT_RATES)${drained(a.drain)}${tail}`, bar, status: "not measured" };
  const workerRow: BarItem = worker
    ? { item: workerItem, measured: describe(worker) + drained(a.drainWorker), bar, status: a.bar.passWorker ? "met" : "NOT met" }
    : { item: workerItem, measured: `no run of the worker's stream at ${n(TARGET)}/s`, bar, status: "not measured" };
  const strictRow: BarItem = strict
    ? { item: strictItem, measured: describe(strict) + (group ? ` (group: record lag p99 ${group.record_p99_ms} ms)` : ""), bar: "reported", status: "reported" }
    : { item: strictItem, measured: `no run at ${n(TARGET)}/s (BENCH_AUDIT_RATES)`, bar: "reported", status: "not measured" };
  return [groupRow, workerRow, strictRow];
}

const fmt = (v: number) => (Number.isFinite(v) ? String(v) : "–");

/** The child's own figures, one row per run plus the drain (docs/audit.md explains each column). */
export function renderAuditLog(a: AuditLogResult): string {
  const head = ["run", "offered /s", "logged /s", "in PostgreSQL /s", "record lag p50 / p99 ms", "ship lag p50 / p99 ms", "max backlog", "rows per event", "CPU µs per event: bench process / PostgreSQL", "refused / lost / duplicates"];
  const perEvent = (v: number | undefined) => (v === undefined ? "–" : String(v));
  const rows = a.results.map((r) => [r.run, n(r.offered_per_s), n(r.achieved_per_s), r.shipped_per_s === undefined ? "–" : n(r.shipped_per_s), `${fmt(r.record_p50_ms)} / ${fmt(r.record_p99_ms)}`, `${fmt(r.ship_p50_ms)} / ${fmt(r.ship_p99_ms)}`, n(r.max_backlog_events), perEvent(r.rows_per_event), `${r.node_cpu_us} / ${r.pg_cpu_us}`, `${r.failed} / ${r.lost} / ${r.duplicates}`]);
  for (const d of [a.drain, a.drainWorker]) {
    if (!d) continue;
    const what = d.stream === "worker" ? "events of the worker's stream" : "logged events";
    rows.push([`drain of ${n(d.events)} ${what} (${d.batches} batches)`, "–", "–", n(d.perSecond), "", "", "", perEvent(d.rowsPerEvent), `shipper ${d.nodeCpuUsPerEvent} / ${d.pgCpuUsPerEvent}`, `– / ${d.lost} / ${d.duplicates}`]);
  }
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)];
  const verify = a.verify ? `chain ${a.verify.ok ? "verified" : "BROKEN"}, ${n(a.verify.events)} events in ${a.verify.ms} ms` : "chain not verified";
  const split = a.drain?.pgCpuUsPerEventByKind;
  const where = split ? ` PostgreSQL's CPU per event during the drain, by process: ${Object.entries(split).map(([k, v]) => `${k} ${v} µs`).join(", ")} ("exited": children that ended meanwhile, mostly autovacuum workers).` : "";
  return `${lines.join("\n")}\n\n${a.secondsPerRun} s per run; ${verify}; audit-bench's own verdict: ${a.bar.pass ? "PASS" : "FAIL"}.${where}`;
}
