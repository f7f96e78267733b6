/**
 * Turns a run's raw results into medians, ratios against the bar (docs BENCHMARKS.md) and
 * Markdown tables: printed to the console and written between the markers in docs/benchmarks.md.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { LoadResult } from "../load";
import { renderAuditLog, type AuditLogResult } from "./audit-log";
import type { Machine } from "./machine";
import { renderSidecars, type ApprovalsResult, type SandboxResult, type Sidecar } from "./sidecars";
import type { PropagationResult } from "./propagation";
import { median, round, type Percentiles } from "./stats";
import { SOAK_BAR_SECONDS } from "./soak";

export interface RunRecord extends LoadResult {
  path: string;
  repeat: number;
}

export interface Soak {
  /** Seconds of load (the latency samples exclude the first settling seconds). */
  seconds: number;
  rate: number;
  /** RSS every 5 s, with the audit log's backlog then (events not yet in PostgreSQL, age of the oldest) and the shipper's totals. */
  rssMiB: Array<{ atSeconds: number; rss: number; lagEvents?: number; lagSeconds?: number; shipped?: number; batches?: number; rows?: number; loopDelayMs?: { p50: number; p99: number; max: number }; shipStatements?: { batches: number; seconds: number; maxSeconds: number } }>;
  rawMinMiB: number;
  rawMaxMiB: number;
  /** RSS and V8 heap after a full collection, just before the load and after it once the audit log is shipped. */
  startMiB: number;
  endMiB: number;
  heapStartMiB: number;
  heapEndMiB: number;
  /**
   * The audit log's backlog when the load stopped, how long it took to ship, and RSS and heap
   * after a full collection before it was (the end above is read once it was). Absent in older results.
   */
  backlogAtEnd?: { events: number; oldestSeconds: number; shippedInSeconds: number; rssMiB: number; heapMiB: number } | null;
  collected: boolean;
  changePct: number;
  load: LoadResult;
  flushLagMs: Percentiles | null;
}

export interface AuditCheck {
  /** Seconds from the end of the load until every audited worker's log was in PostgreSQL. */
  drainSeconds: number;
  upstreamHitsViaWorker: number;
  decisionsAllowed: number;
  completed: number;
  writer: Record<string, unknown> | null;
  /** Requests the upstream saw per path, and how many carried the injected credential. */
  upstream: Record<string, { requests: number; withCredential: number }>;
}

export interface BarItem {
  item: string;
  measured: string;
  bar: string;
  /** "reported": a figure the bar asks to see, with no threshold of its own. */
  status: "met" | "NOT met" | "not measured" | "reported";
  note?: string;
}

export interface Results {
  name: string;
  machine: Machine;
  versions: Record<string, string>;
  config: Record<string, unknown>;
  paths: Array<{ id: string; what: string }>;
  skipped: string[];
  open: RunRecord[];
  closed: RunRecord[];
  propagation: PropagationResult[];
  micro: { policy: unknown; tokens: unknown; errors: string[] };
  soak: Soak | null;
  audit: AuditCheck | null;
  /** bench/audit-bench.ts run as a child after the proxy parts (null: skipped with BENCH_AUDIT=0). */
  auditLog: { result: AuditLogResult | null; error: string | null } | null;
  /** The approval round trip and layer 3's bench, run as children after the proxy parts (bench/support/sidecars.ts; absent in older results, null with BENCH_SIDECARS=0). */
  approvals?: Sidecar<ApprovalsResult> | null;
  sandbox?: Sidecar<SandboxResult> | null;
  bar: BarItem[];
  durationSeconds: number;
}

export interface Summary {
  runs: number;
  achievedRps: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  proxyCpu: number;
  /** Connections the client opened per request (median): ~1 with a new connection per request. */
  connectionsPerRequest: number;
  /** Median % of one core per watched process group (proxy, postgres, upstream, loadgen). */
  processes: Record<string, number>;
  cores: Record<string, number>;
}

export function summarise(runs: RunRecord[]): Summary | null {
  if (runs.length === 0) return null;
  const m = (f: (r: RunRecord) => number) => median(runs.map(f));
  const cores: Record<string, number> = {};
  for (const core of Object.keys(runs[0]!.cpu.cores)) cores[core] = m((r) => r.cpu.cores[core] ?? NaN);
  const processes: Record<string, number> = {};
  for (const k of Object.keys(runs[0]!.cpu.processes)) processes[k] = m((r) => r.cpu.processes[k] ?? NaN);
  return {
    runs: runs.length,
    achievedRps: m((r) => r.achievedRps),
    errors: runs.reduce((s, r) => s + r.errors, 0),
    p50: m((r) => r.latencyUs.p50),
    p90: m((r) => r.latencyUs.p90),
    p99: m((r) => r.latencyUs.p99),
    max: m((r) => r.latencyUs.max),
    proxyCpu: m((r) => r.cpu.processes.proxy ?? NaN),
    // Results written before the field existed have none.
    connectionsPerRequest: m((r) => r.connectionsPerRequest ?? NaN), // older results have none
    processes,
    cores,
  };
}

export const openRuns = (res: Pick<Results, "open">, path: string, rate: number) => res.open.filter((r) => r.path === path && r.rate === rate);
export const closedRuns = (res: Pick<Results, "closed">, path: string) => res.closed.filter((r) => r.path === path);

/** A ratio of medians, plus the same ratio per repeat (each pair was measured back to back). */
export function ratio(num: RunRecord[], den: RunRecord[], pick: (r: LoadResult) => number): { value: number; perRepeat: number[] } {
  const value = median(num.map(pick)) / median(den.map(pick));
  const perRepeat = num.flatMap((n) => {
    const d = den.find((x) => x.repeat === n.repeat);
    return d ? [round(pick(n) / pick(d), 2)] : [];
  });
  return { value: round(value, 2), perRepeat };
}

const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
const table = (head: string[], rows: string[][]) =>
  [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");

export function renderTables(res: Results, rates: number[]): string {
  const out: string[] = [];
  const m = res.machine;
  out.push(
    `Run \`${res.name}\` on ${m.date.slice(0, 16).replace("T", " ")} UTC, ${Math.round(res.durationSeconds / 60)} min: ` +
      `${m.nproc} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}, Linux ${m.kernel}, Node ${m.node}` +
      (Object.keys(res.versions).length ? `, ${Object.entries(res.versions).map(([k, v]) => `${k} ${v}`).join(", ")}` : "") +
      `. Background load from other tenants before the run: ${Object.entries(m.backgroundBusy).map(([c, v]) => `${c} ${v}%`).join(", ") || "unknown"}.`,
  );
  out.push(`Settings: ${Object.entries(res.config).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("/") : String(v)}`).join(", ")}.`);
  if (res.skipped.length) out.push(`Skipped: ${res.skipped.join("; ")}.`);

  out.push("\n#### Against the bar\n");
  out.push(table(["bar item", "measured", "bar", "status"], res.bar.map((b) => [b.item, b.measured + (b.note ? ` (${b.note})` : ""), b.bar, b.status === "met" || b.status === "reported" ? b.status : `**${b.status}**`])));

  out.push(`\n#### Open loop: latency from the intended send time (µs), median of ${res.config.repeats} interleaved repeats\n`);
  const openRows: string[][] = [];
  for (const rate of rates) {
    for (const p of res.paths) {
      const s = summarise(openRuns(res, p.id, rate));
      if (!s) continue;
      openRows.push([p.id, String(rate), fmt(s.achievedRps), String(s.errors), fmt(s.p50), fmt(s.p90), fmt(s.p99), fmt(s.max), fmt(s.proxyCpu)]);
    }
  }
  out.push(table(["path", "rate", "achieved rps", "errors", "p50", "p90", "p99", "max", "proxy CPU %"], openRows));

  out.push(`\n#### Saturation: closed loop, ${res.config.concurrency} connections (keep-alive; the -newconn paths a new one per request), median of ${res.config.repeats} interleaved repeats\n`);
  const satRows: string[][] = [];
  const perRequest = (pct: number, rps: number) => (Number.isFinite(pct) && rps > 0 ? fmt((pct * 1e4) / rps) : "–");
  for (const p of res.paths) {
    const s = summarise(closedRuns(res, p.id));
    if (!s) continue;
    const pg = s.processes.postgres ?? NaN;
    satRows.push([
      p.id,
      fmt(s.achievedRps),
      String(s.errors),
      fmt(s.p50),
      fmt(s.p99),
      `${fmt(s.proxyCpu)} / ${perRequest(s.proxyCpu, s.achievedRps)}`,
      Number.isFinite(pg) ? `${fmt(pg)} / ${perRequest(pg, s.achievedRps)}` : "–",
      `${fmt((s.processes.loadgen ?? NaN) + (s.processes.upstream ?? NaN))} / ${fmt(s.cores.cpu0 ?? NaN)}`,
      fmt(s.cores.cpu1 ?? NaN),
      fmt(s.connectionsPerRequest, 2),
    ]);
  }
  out.push(
    table(["path", "throughput rps", "errors", "p50 µs", "p99 µs", "proxy CPU % / µs per req", "Postgres CPU % / µs per req", "client side: ours % / CPU0 busy %", "CPU1 busy %", "connections opened per request"], satRows),
  );
  out.push("\nCPU figures are % of one core over the measured window; core busy % includes other tenants of the machine.");

  out.push("\nPaths: " + res.paths.map((p) => `**${p.id}** ${p.what}`).join("; ") + ".");

  if (res.propagation.length) {
    out.push("\n#### Propagation: commit in Postgres → first request enforcing it (ms, probes every ~1 ms)\n");
    out.push(
      table(
        ["change", "n", "p50", "p90", "p99", "max", "timeouts", "flaps", "resets", "COMMIT round trip p50"],
        res.propagation.map((p) => [p.kind, String(p.changes), fmt(p.propagationMs.p50, 1), fmt(p.propagationMs.p90, 1), fmt(p.propagationMs.p99, 1), fmt(p.propagationMs.max, 1), String(p.timeouts), String(p.flaps), String(p.resets ?? "–"), fmt(p.commitMs.p50, 1)]),
      ),
    );
  }

  if (res.soak) {
    const s = res.soak;
    out.push(`\n#### Memory: worker F at ${s.rate} rps for ${s.seconds} s${s.seconds >= SOAK_BAR_SECONDS ? "" : ", a SHORT run (the bar asks for 10 minutes)"}\n`);
    out.push(
      table(
        ["RSS 3 s after a full GC: before → after (the audit log shipped both times)", "change", "V8 heap after a full GC: before → after", "raw RSS during the run: min – max", "achieved rps", "errors", "p50 µs", "p99 µs", "audit flush lag p50 / p99 ms"],
        [[`${fmt(s.startMiB, 1)} → ${fmt(s.endMiB, 1)} MiB`, `${fmt(s.changePct, 1)} %`, `${fmt(s.heapStartMiB, 1)} → ${fmt(s.heapEndMiB, 1)} MiB`, `${fmt(s.rawMinMiB, 1)} – ${fmt(s.rawMaxMiB, 1)} MiB`, fmt(s.load.achievedRps), String(s.load.errors), fmt(s.load.latencyUs.p50), fmt(s.load.latencyUs.p99), s.flushLagMs ? `${fmt(s.flushLagMs.p50, 1)} / ${fmt(s.flushLagMs.p99, 1)}` : "–"]],
      ),
    );
    if (s.backlogAtEnd) {
      const b = s.backlogAtEnd;
      out.push(`\nWhen the load stopped the audit log held ${b.events} events not yet in PostgreSQL (the oldest ${b.oldestSeconds} s old), shipped in ${b.shippedInSeconds} s; after a full GC with them still in memory: RSS ${fmt(b.rssMiB, 1)} MiB, V8 heap ${fmt(b.heapMiB, 1)} MiB.`);
    }
    out.push(`\nRaw RSS samples (s: MiB), which saw up and down with V8's major collections: ${s.rssMiB.map((x) => `${x.atSeconds}: ${x.rss}`).join(", ")}.`);
  }

  if (res.audit) {
    const a = res.audit;
    out.push(
      `\nAudit completeness (the audited workers F, F-nometrics and F-strict, whole run): ${a.upstreamHitsViaWorker} requests reached the upstream through them; ` +
        `${a.decisionsAllowed} \`proxy.decision\` allow events and ${a.completed} completions (folded into the decision or a \`proxy.completed\` row) are in Postgres` +
        (a.writer ? `; worker F's writer: ${Object.entries(a.writer).filter(([, v]) => typeof v === "number" || typeof v === "string").map(([k, v]) => `${k} ${String(v)}`).join(", ")}` : "") +
        ".",
    );
    out.push(
      `\nInjected credential as seen by the upstream (whole run, warm-ups included): ${Object.entries(a.upstream)
        .map(([k, v]) => `${k} ${v.withCredential}/${v.requests}`)
        .join(", ")}.`,
    );
  }

  if (res.auditLog?.result) {
    out.push("\n#### Audit log and shipper (bench/audit-bench.ts, a child process after the proxy parts, its own embedded PostgreSQL, both CPUs)\n");
    out.push(renderAuditLog(res.auditLog.result));
  }
  if (res.auditLog?.error) out.push(`\nAudit log benchmark problems: ${res.auditLog.error}`);
  const sidecars = renderSidecars(res.approvals ?? null, res.sandbox ?? null);
  if (sidecars) out.push(sidecars);

  const micro = res.micro as { policy?: { rows?: Array<{ name: string; p50_us: number; p99_us: number }> }; tokens?: { results?: Array<{ name: string; p50_us: number; p99_us: number }> }; errors: string[] };
  const microRows = [...(micro.policy?.rows ?? []), ...(micro.tokens?.results ?? [])].map((r) => [r.name, fmt(r.p50_us, 2), fmt(r.p99_us, 2)]);
  if (microRows.length) {
    out.push("\n#### Micro-benchmarks (bench/policy-bench.ts, bench/token-bench.ts, run as child processes)\n");
    out.push(table(["case", "p50 µs", "p99 µs"], microRows));
  }
  if (micro.errors.length) out.push(`\nMicro-benchmark problems: ${micro.errors.join("; ")}`);
  return out.join("\n");
}

const BEGIN = "<!-- bench:results:begin (written by `npm run bench`; edit outside the markers) -->";
const END = "<!-- bench:results:end -->";

/** Replaces the results block of docs/benchmarks.md, keeping the hand-written text around it. */
export function writeDoc(file: string, tables: string): void {
  const block = `${BEGIN}\n${tables}\n${END}`;
  if (!existsSync(file)) {
    writeFileSync(file, `# Benchmarks\n\nRun \`npm run bench\`.\n\n## Latest results\n\n${block}\n`);
    return;
  }
  const text = readFileSync(file, "utf8");
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  writeFileSync(file, a >= 0 && b > a ? `${text.slice(0, a)}${block}${text.slice(b + END.length)}` : `${text.trimEnd()}\n\n## Latest results\n\n${block}\n`);
}
