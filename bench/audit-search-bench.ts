/**
 * `npm run bench -- audit-search`: the audit log at a million events.
 *
 *   1. a fresh embedded PostgreSQL, migrated, with BENCH_AUDIT_EVENTS (default 1,000,000) proxy
 *      decisions generated inside the database, then ANALYZE;
 *   2. search latency of the page query (a page of 50 with names, as the dashboard and the API
 *      run it) for typical filters, each run BENCH_AUDIT_RUNS times with varied values, p50/p99;
 *   3. export throughput for CSV, JSON Lines and OCSF over the whole log, with the heap retained
 *      (after full collections) and the process RSS;
 *   4. what the search columns and their indexes cost a write: µs per event for 500-row inserts
 *      with and without them, interleaved, each inside a transaction that is rolled back.
 * Prints a Markdown table, writes bench/results/audit-search.json and the audit block of
 * docs/benchmarks.md (BENCH_DOC=0: not).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import pg from "pg";
import { startAuditExport, type ExportFormat } from "@/lib/audit/export";
import { searchAuditEvents } from "@/lib/audit/query";
import type { AuditFilterInput } from "@/lib/audit/filter";
import { createPrismaClient } from "@/lib/db/client";
import { startEmbeddedDatabase } from "@/lib/db/embedded";
import { migrate } from "@/lib/db/migrate";
import { bulkProxyDecisions, insertEvents, proxyDecisions, random, type Fleet } from "../tests/support/audit-events";
import { describeMachine } from "./support/machine";
import { freePort } from "./support/ports";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const int = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const EVENTS = int("BENCH_AUDIT_EVENTS", 1_000_000);
const RUNS = int("BENCH_AUDIT_RUNS", 40);
const BEGIN = "<!-- bench:audit-search:begin (written by `npm run bench -- audit-search`; edit outside the markers) -->";
const END = "<!-- bench:audit-search:end -->";

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;
const retainedMiB = () => {
  gc();
  return process.memoryUsage().heapUsed / 1048576;
};

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const r1 = (n: number) => Math.round(n * 10) / 10;

interface SearchRow {
  name: string;
  filter: string;
  p50: number;
  p99: number;
  max: number;
  rows: number;
}

export async function runAuditSearchBench(): Promise<void> {
  const began = Date.now();
  const machine = await describeMachine();
  console.log(`audit-search bench: ${EVENTS.toLocaleString("en")} events, ${RUNS} runs per filter; ${machine.nproc} × ${machine.cpuModel}`);
  const dir = mkdtempSync(path.join(tmpdir(), "bh-audit-bench-"));
  const pgServer = await startEmbeddedDatabase({ dataDir: dir, port: await freePort(), database: "bulkhead_audit_bench" });
  try {
    await migrate(pgServer.url);
    const db = createPrismaClient(pgServer.url, 4);
    const pool = new pg.Pool({ connectionString: pgServer.url, max: 2 });
    const owner = await db.user.create({ data: { email: "bench@example.test", role: "auditor" } });
    const fleet: Fleet = { agents: [], tasks: [] };
    for (let a = 0; a < 20; a++) {
      const agent = await db.agent.create({ data: { name: `bench-agent-${a}`, ownerId: owner.id } });
      fleet.agents.push({ id: agent.id, name: agent.name });
      for (let k = 0; k < 10; k++) {
        const task = await db.task.create({ data: { agentId: agent.id, purpose: `bench task ${a}.${k}`, policyYaml: "rules: []\n", expiresAt: new Date(Date.now() + 86_400_000) } });
        fleet.tasks.push({ id: task.id, agentId: agent.id });
      }
    }
    // One event a second, ending now: a million events span ~11.6 days.
    let t0 = Date.now();
    await bulkProxyDecisions(pool, fleet, EVENTS, { chunk: 50_000, start: new Date(Date.now() - EVENTS * 1000), stepMs: 1000 });
    const loadSeconds = (Date.now() - t0) / 1000;
    await pool.query("VACUUM ANALYZE audit_events");
    const size = (await pool.query<{ table: string; search: string; facets: string }>(
      "SELECT pg_size_pretty(pg_table_size('audit_events')) AS table, pg_size_pretty(pg_relation_size('audit_events_search_text_idx')) AS search, pg_size_pretty(pg_relation_size('audit_events_facets_idx')) AS facets",
    )).rows[0]!;
    console.log(`  loaded in ${Math.round(loadSeconds)} s (${Math.round(EVENTS / loadSeconds)} events/s through the chain trigger); table ${size.table}, trigram index ${size.search}, facets index ${size.facets}`);

    // 2. Search latency.
    const rnd = random(42);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const [{ max_seq: maxSeq }] = (await pool.query<{ max_seq: string }>("SELECT max(seq)::text AS max_seq FROM audit_events")).rows as [{ max_seq: string }];
    const range = (await pool.query<{ lo: Date; hi: Date }>("SELECT min(at) AS lo, max(at) AS hi FROM audit_events")).rows[0]!;
    const spanMs = range.hi.getTime() - range.lo.getTime();
    const filters: Array<{ name: string; describe: string; make: () => AuditFilterInput & { cursor?: string } }> = [
      { name: "newest page", describe: "no filter", make: () => ({}) },
      { name: "agent + outcome", describe: "agent=<name>&outcome=deny", make: () => ({ agent: pick(fleet.agents).name, outcome: "deny" }) },
      { name: "free text", describe: "q=vol_<4 digits> (a few dozen matches)", make: () => ({ q: `vol_${String(Math.floor(rnd() * 10_000)).padStart(4, "0")}` }) },
      { name: "service + env + effect + outcome", describe: "service=railway&environment=production&effect=irreversible&outcome=hold", make: () => ({ service: "railway", environment: "production", effect: "irreversible", outcome: "hold" }) },
      {
        name: "task + time range",
        describe: "task=<id>&from=…&to=… (six hours)",
        make: () => {
          const from = new Date(range.lo.getTime() + rnd() * (spanMs - 21_600_000));
          return { task: pick(fleet.tasks).id, from: from.toISOString(), to: new Date(from.getTime() + 21_600_000).toISOString() };
        },
      },
      { name: "deep page", describe: "outcome=deny&cursor=<random seq>", make: () => ({ outcome: "deny", cursor: String(1 + Math.floor(rnd() * Number(maxSeq))) }) },
    ];
    const search: SearchRow[] = [];
    for (const f of filters) {
      for (let w = 0; w < 3; w++) await searchAuditEvents(db, { ...f.make(), limit: 50 }); // warm
      const times: number[] = [];
      let rows = 0;
      for (let i = 0; i < RUNS; i++) {
        const input = { ...f.make(), limit: 50 };
        const t = process.hrtime.bigint();
        const page = await searchAuditEvents(db, input);
        times.push(Number(process.hrtime.bigint() - t) / 1e6);
        rows += page.events.length;
      }
      times.sort((a, b) => a - b);
      const row = { name: f.name, filter: f.describe, p50: r1(pct(times, 50)), p99: r1(pct(times, 99)), max: r1(times[times.length - 1]!), rows: r1(rows / RUNS) };
      search.push(row);
      console.log(`  search ${row.name.padEnd(34)} p50 ${row.p50} ms  p99 ${row.p99} ms  max ${row.max} ms  (${row.rows} rows/page)`);
    }

    // 3. Export throughput and memory.
    const auditor = { kind: "system", label: "bench" } as const;
    const exportsOut: Array<{ format: ExportFormat; events: number; seconds: number; eventsPerSecond: number; mibPerSecond: number; heapGrowthMiB: number; rssMaxMiB: number }> = [];
    for (const format of ["csv", "jsonl", "ocsf"] as const) {
      const exp = await startAuditExport(db, auditor, { format }, { via: "cli" });
      let bytes = 0;
      let lines = 0;
      let chunks = 0;
      let base = 0;
      let peak = 0;
      let rss = 0;
      t0 = Date.now();
      for await (const chunk of exp.chunks) {
        bytes += Buffer.byteLength(chunk);
        chunks++;
        for (let i = chunk.indexOf("\n"); i >= 0; i = chunk.indexOf("\n", i + 1)) lines++;
        if (chunks === 10) base = retainedMiB();
        if (chunks > 10 && chunks % 100 === 0) peak = Math.max(peak, retainedMiB());
        if (chunks % 20 === 0) rss = Math.max(rss, process.memoryUsage().rss / 1048576);
      }
      const seconds = (Date.now() - t0) / 1000;
      const events = format === "csv" ? lines - 1 : lines;
      const row = { format, events, seconds: r1(seconds), eventsPerSecond: Math.round(events / seconds), mibPerSecond: r1(bytes / 1048576 / seconds), heapGrowthMiB: r1(Math.max(0, peak - base)), rssMaxMiB: Math.round(rss) };
      exportsOut.push(row);
      console.log(`  export ${format.padEnd(5)} ${events} events in ${row.seconds} s: ${row.eventsPerSecond} events/s, ${row.mibPerSecond} MiB/s, heap retained +${row.heapGrowthMiB} MiB, RSS max ${row.rssMaxMiB} MiB`);
    }

    // 4. Write cost of the search columns and indexes.
    const writeCost = { withSearch: [] as number[], without: [] as number[] };
    const client = await pool.connect();
    try {
      for (let rep = 0; rep < 3; rep++) {
        for (const variant of ["withSearch", "without"] as const) {
          await client.query("BEGIN");
          if (variant === "without") {
            await client.query("DROP INDEX audit_events_search_text_idx, audit_events_facets_idx");
            await client.query("ALTER TABLE audit_events DROP COLUMN search_text, DROP COLUMN facets");
          }
          const samples: number[] = [];
          for (let b = 0; b < 20; b++) {
            const batch = proxyDecisions(fleet, 500, { seed: 1000 + rep * 100 + b });
            const t = process.hrtime.bigint();
            await insertEvents(client, batch);
            samples.push(Number(process.hrtime.bigint() - t) / 1e3 / 500);
          }
          await client.query("ROLLBACK");
          samples.sort((a, b) => a - b);
          writeCost[variant].push(pct(samples, 50));
        }
      }
    } finally {
      client.release();
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const write = { withSearchUs: r1(med(writeCost.withSearch)), withoutUs: r1(med(writeCost.without)) };
    console.log(`  write cost per event (500-row inserts, median of 3 interleaved): ${write.withSearchUs} µs with the search columns and indexes, ${write.withoutUs} µs without`);

    await pool.end();
    await db.$disconnect();
    const results = { name: "audit-search", at: new Date().toISOString(), machine, events: EVENTS, runs: RUNS, loadSeconds: Math.round(loadSeconds), sizes: size, search, exports: exportsOut, write, durationSeconds: Math.round((Date.now() - began) / 1000) };
    const out = path.join(root, "bench", "results", "audit-search.json");
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
    const table = render(results);
    console.log(`\n${table}\nwrote ${path.relative(root, out)}`);
    if (process.env.BENCH_DOC !== "0") writeBlock(path.join(root, "docs", "benchmarks.md"), table);
  } finally {
    await pgServer.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function render(r: {
  at: string;
  machine: Awaited<ReturnType<typeof describeMachine>>;
  events: number;
  runs: number;
  loadSeconds: number;
  sizes: { table: string; search: string; facets: string };
  search: SearchRow[];
  exports: Array<{ format: string; events: number; seconds: number; eventsPerSecond: number; mibPerSecond: number; heapGrowthMiB: number; rssMaxMiB: number }>;
  write: { withSearchUs: number; withoutUs: number };
}): string {
  const lines = [
    `Run on ${r.at.slice(0, 16).replace("T", " ")} UTC: ${r.machine.nproc} × ${r.machine.cpuModel}, Node ${r.machine.node}, embedded PostgreSQL 18, ${r.events.toLocaleString("en")} events (generated in ${r.loadSeconds} s); table ${r.sizes.table}, trigram index ${r.sizes.search}, facets index ${r.sizes.facets}. Background load from other tenants before the run: ${JSON.stringify(r.machine.backgroundBusy)}.`,
    "",
    `#### Search: one page of 50 events with names, ${r.runs} runs per filter with varied values (ms)`,
    "",
    "| filter | query | p50 | p99 | max | rows/page |",
    "| --- | --- | --- | --- | --- | --- |",
    ...r.search.map((s) => `| ${s.name} | \`${s.filter}\` | ${s.p50} | ${s.p99} | ${s.max} | ${s.rows} |`),
    "",
    "#### Export of the whole log (one stream each, consumed as fast as it comes)",
    "",
    "| format | events | seconds | events/s | MiB/s | heap retained (growth) | RSS max |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...r.exports.map((e) => `| ${e.format} | ${e.events.toLocaleString("en")} | ${e.seconds} | ${e.eventsPerSecond.toLocaleString("en")} | ${e.mibPerSecond} | +${e.heapGrowthMiB} MiB | ${e.rssMaxMiB} MiB |`),
    "",
    `Write cost of the search columns and their indexes: ${r.write.withSearchUs} µs per event with them, ${r.write.withoutUs} µs without (500-row inserts through the chain trigger, median of 3 interleaved repeats, rolled back).`,
  ];
  return lines.join("\n");
}

function writeBlock(file: string, table: string): void {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n";
  const block = `${BEGIN}\n${table}\n${END}`;
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  writeFileSync(file, a >= 0 && b > a ? `${text.slice(0, a)}${block}${text.slice(b + END.length)}` : `${text.trimEnd()}\n\n## Audit search and export\n\n${block}\n`);
  console.log("updated docs/benchmarks.md");
}
