/**
 * `npm run bench`: Bulkhead's proxy benchmark suite, one run, every path side by side.
 *
 *   1. the existing micro-benchmarks (policy decision, token check) as child processes;
 *   2. open-loop latency at fixed rates, paths interleaved A N G F ... per repeat;
 *   3. closed-loop saturation (plain HTTP and intercepted HTTPS, keep-alive and a new connection
 *      per request, with mitmproxy as the peer);
 *   4. policy-change and revocation propagation through a running worker;
 *   5. a short memory soak at 1k rps, and a check that every forwarded request was audited;
 *   6. the audit log's own benchmark (bench/audit-bench.ts) as a child: the shipper's events/s;
 *   7. the approval round trip and layer 3's transparent path beside the explicit path, as
 *      children (bench/support/sidecars.ts; layer 3's needs root, `ip` and `nft`).
 * Prints Markdown tables, writes bench/results/<name>.json and the results block of
 * docs/benchmarks.md. Knobs (environment): BENCH_NAME, BENCH_REPEATS, BENCH_RATES, BENCH_SECONDS,
 * BENCH_SAT_SECONDS, BENCH_WARMUP_MS, BENCH_CONCURRENCY, BENCH_SOAK_SECONDS (0: no soak),
 * BENCH_CHANGES, BENCH_AUDIT (0: no audit-log part), BENCH_AUDIT_SECONDS, BENCH_AUDIT_RATES,
 * BENCH_AUDIT_BACKLOG, BENCH_SIDECARS (0: neither approvals nor layer 3), BENCH_PIN (0 to disable
 * CPU pinning), BENCH_DOC (0: do not touch docs/benchmarks.md).
 */
import { mkdirSync, statSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ClosedLoopSpec, LoadResult, OpenLoopSpec } from "./load";
import { runAuditLogBench } from "./support/audit-log";
import { runApprovalsBench, runSandboxBench } from "./support/sidecars";
import { evaluateBar } from "./support/bar";
import { hasTaskset, installCleanupHandlers, pinSelf, runMain, start } from "./support/children";
import { startEnvironment, type Environment, type PathDef } from "./support/environment";
import { describeMachine } from "./support/machine";
import { measurePolicyPropagation, measureRevocation } from "./support/propagation";
import { drainedWorkerLog, soak, SOAK_BAR_SECONDS, SOAK_SETTLE_S } from "./support/soak";
import { renderTables, writeDoc, type AuditCheck, type Results, type RunRecord, type Soak } from "./support/report";
import { round } from "./support/stats";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const int = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const config = {
  name: (process.env.BENCH_NAME ?? "proxy").replace(/[^a-zA-Z0-9_-]/g, "_"),
  repeats: int("BENCH_REPEATS", 3),
  rates: (process.env.BENCH_RATES ?? "500,1000,2000").split(",").map(Number).filter((n) => n > 0),
  seconds: int("BENCH_SECONDS", 5),
  satSeconds: int("BENCH_SAT_SECONDS", 5),
  warmupMs: int("BENCH_WARMUP_MS", 1000),
  concurrency: int("BENCH_CONCURRENCY", 64),
  openConnections: 64,
  soakSeconds: process.env.BENCH_SOAK_SECONDS === "0" ? 0 : int("BENCH_SOAK_SECONDS", 60),
  changes: int("BENCH_CHANGES", 50),
  // The audit log's part: shorter than audit-bench's own defaults (10 s, 5k/10k/20k, 200,000), still at the bar's 20k/s.
  audit: process.env.BENCH_AUDIT !== "0",
  auditSeconds: int("BENCH_AUDIT_SECONDS", 5),
  auditRates: (process.env.BENCH_AUDIT_RATES ?? "10000,20000").split(",").map(Number).filter((n) => n > 0),
  auditBacklog: int("BENCH_AUDIT_BACKLOG", 100_000),
  // The approval round trip and layer 3's bench (bench/support/sidecars.ts).
  sidecars: process.env.BENCH_SIDECARS !== "0",
};
const pin = process.env.BENCH_PIN !== "0" && hasTaskset && os.availableParallelism() >= 2;
const cpus = pin ? { clientCpus: "0", proxyCpus: "1" } : {};
const COLD_RATE = 1000;

const line = (r: LoadResult & { path: string }) =>
  `${r.path.padEnd(15)} ${r.mode === "open" ? `${r.rate} rps` : `${r.concurrency} conns`}`.padEnd(29) +
  `achieved ${String(r.achievedRps).padStart(6)} rps  errors ${r.errors}${r.errors ? ` ${JSON.stringify(r.errorKinds)}` : ""}  ` +
  `p50 ${round(r.latencyUs.p50)} p90 ${round(r.latencyUs.p90)} p99 ${round(r.latencyUs.p99)} max ${round(r.latencyUs.max)} µs  cpu ${JSON.stringify(r.cpu.processes)}`;

/** Runs the two existing micro-benchmarks as child processes on the proxy core and reads their JSON. */
async function runMicro(): Promise<Results["micro"]> {
  const out: Results["micro"] = { policy: null, tokens: null, errors: [] };
  for (const [key, script, file] of [["policy", "bench/policy-bench.ts", "policy.json"], ["tokens", "bench/token-bench.ts", "tokens.json"]] as const) {
    const since = Date.now();
    const s = start(`micro-${key}`, process.execPath, ["--import", "tsx", script], { cpus: cpus.proxyCpus });
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => s.proc.kill("SIGKILL"), 180_000);
      s.proc.once("exit", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    const json = path.join(root, "bench", "results", file);
    try {
      if (statSync(json).mtimeMs < since) throw new Error("no fresh result file");
      out[key] = JSON.parse(readFileSync(json, "utf8"));
      console.log(`  ${script}: exit ${code}, ${file} read`);
    } catch (error) {
      out.errors.push(`${script} exited ${code}: ${String(error)}; ${s.logTail(5)}`);
    }
  }
  return out;
}

/**
 * Before each measured run, every audited worker's log is shipped: the paths share the proxy CPU
 * with PostgreSQL, and PostgreSQL catching up on one run's audit backlog would otherwise take that
 * CPU from whichever path runs next (a run's own shipping, during the run, stays in its figures).
 */
async function settleAudit(env: Environment): Promise<void> {
  for (const w of [env.worker, env.workerNoMetrics, env.workerStrict]) await drained(w);
}

async function openLoop(env: Environment, p: PathDef, rate: number, repeat: number): Promise<RunRecord> {
  await settleAudit(env);
  const spec: OpenLoopSpec = { scenario: p.scenario(repeat), rate, durationMs: config.seconds * 1000, warmupMs: config.warmupMs, connections: config.openConnections, watch: p.watch() };
  const r = await env.load.ipc.call<LoadResult>("open", spec, config.seconds * 1000 + config.warmupMs + 60_000);
  return { ...r, path: p.id, repeat };
}

async function closedLoop(env: Environment, p: PathDef, repeat: number, seconds = config.satSeconds, concurrency = config.concurrency): Promise<RunRecord> {
  await settleAudit(env);
  const spec: ClosedLoopSpec = { scenario: p.scenario(repeat), concurrency, durationMs: seconds * 1000, warmupMs: config.warmupMs, watch: p.watch() };
  const r = await env.load.ipc.call<LoadResult>("closed", spec, seconds * 1000 + config.warmupMs + 60_000);
  return { ...r, path: p.id, repeat };
}

const drained = drainedWorkerLog;

/**
 * Every request the audited workers (F, F-nometrics, F-strict) forwarded must have its decision and
 * its completion in Postgres (folded into the decision's row, or a row of its own).
 */
async function auditCheck(env: Environment): Promise<AuditCheck> {
  const began = Date.now();
  const writer = await drained(env.worker);
  await new Promise((r) => setTimeout(r, 200)); // completions are recorded after the response
  await drained(env.worker);
  await drained(env.workerNoMetrics);
  await drained(env.workerStrict);
  const drainSeconds = round((Date.now() - began) / 1000, 1);
  if (drainSeconds > 5) console.log(`  the audited workers' logs took ${drainSeconds} s to ship to PostgreSQL after the load stopped`);
  const counts = await env.upstream.ipc.call<AuditCheck["upstream"]>("counts");
  const viaWorker = ["F", "F-nometrics", "F-strict", "F-nocred", "F-coldtoken", "H-F", "H-F-newconn", "probe"].reduce((s, k) => s + (counts[k]?.requests ?? 0), 0);
  const db = env.seeded.db;
  const folded = await db.$queryRawUnsafe<Array<{ n: number }>>("SELECT count(*)::int AS n FROM audit_events WHERE type = 'proxy.decision' AND data ? 'completion'");
  return {
    drainSeconds,
    upstreamHitsViaWorker: viaWorker,
    decisionsAllowed: await db.auditEvent.count({ where: { type: "proxy.decision", outcome: "allow" } }),
    completed: (await db.auditEvent.count({ where: { type: "proxy.completed" } })) + folded[0]!.n,
    writer,
    upstream: counts,
  };
}

async function main(): Promise<void> {
  installCleanupHandlers();
  const began = Date.now();
  if (pin) pinSelf(cpus.clientCpus!);
  console.log(`Bulkhead bench "${config.name}": ${pin ? "client side on CPU 0, proxies and Postgres on CPU 1" : "no CPU pinning"}`);
  const machine = await describeMachine();
  console.log(`${machine.nproc} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}; background busy ${JSON.stringify(machine.backgroundBusy)}`);

  console.log("\n== micro-benchmarks");
  const micro = await runMicro();

  console.log("\n== starting upstream, Postgres, Bulkhead workers, Node proxy, nginx, mitmdump, load generator");
  const perRepeat = COLD_RATE * (config.seconds + config.warmupMs / 1000) + 100;
  const env = await startEnvironment({ ...cpus, coldTokens: { rate: COLD_RATE, perRepeat, repeats: config.repeats } });
  for (const s of env.skipped) console.log(`  SKIPPED: ${s}`);
  const byId = (id: string) => env.paths.find((p) => p.id === id)!;

  console.log("\n== warm-up (not recorded)");
  for (const p of env.paths.filter((x) => x.saturate)) console.log(line(await closedLoop(env, p, 0, 2, 8)));

  const open: RunRecord[] = [];
  console.log(`\n== open loop, ${config.seconds} s per run after ${config.warmupMs} ms warm-up, ${config.repeats} repeats interleaved`);
  for (const rate of config.rates) {
    for (let repeat = 0; repeat < config.repeats; repeat++) {
      for (const p of env.paths.filter((x) => (x.rates ?? config.rates).includes(rate))) {
        const r = await openLoop(env, p, rate, repeat);
        open.push(r);
        console.log(line(r));
      }
    }
  }

  const closed: RunRecord[] = [];
  console.log(`\n== saturation, ${config.concurrency} connections, ${config.satSeconds} s per run, ${config.repeats} repeats interleaved`);
  for (let repeat = 0; repeat < config.repeats; repeat++) {
    for (const p of env.paths.filter((x) => x.saturate)) {
      const r = await closedLoop(env, p, repeat);
      closed.push(r);
      console.log(line(r));
    }
  }

  console.log(`\n== propagation (${config.changes} policy changes, ${config.changes} revocations)`);
  const propagation = [
    await measurePolicyPropagation({ seeded: env.seeded, databaseUrl: env.databaseUrl, probe: env.probe, changes: config.changes }),
    await measureRevocation({ seeded: env.seeded, databaseUrl: env.databaseUrl, masterKey: env.masterKey, probe: env.probe, changes: config.changes }),
  ];
  for (const p of propagation) console.log(`  ${p.kind}: p50 ${round(p.propagationMs.p50, 1)} ms, p99 ${round(p.propagationMs.p99, 1)} ms, max ${round(p.propagationMs.max, 1)} ms, timeouts ${p.timeouts}, flaps ${p.flaps}, resets ${p.resets ?? 0} ${JSON.stringify(p.disagreeing ?? {})}`);

  let soakResult: Soak | null = null;
  if (config.soakSeconds > 0) {
    console.log(`\n== memory soak: F at 1000 rps for ${SOAK_SETTLE_S + config.soakSeconds} s${SOAK_SETTLE_S + config.soakSeconds >= SOAK_BAR_SECONDS ? "" : " (short: the bar asks for 10 minutes)"}`);
    await settleAudit(env);
    soakResult = await soak(env, byId("F"), { seconds: config.soakSeconds, connections: config.openConnections });
    console.log(`  RSS after a full GC ${soakResult.startMiB} → ${soakResult.endMiB} MiB (${soakResult.changePct} %), heap ${soakResult.heapStartMiB} → ${soakResult.heapEndMiB} MiB; ${line({ ...soakResult.load, path: "F soak" })}`);
  } else console.log("\n== memory soak: skipped (BENCH_SOAK_SECONDS=0)");
  const audit = await auditCheck(env);

  let auditLog: Results["auditLog"] = null;
  if (config.audit) {
    // Its own PostgreSQL and both CPUs (generator, log, shipper and PostgreSQL share them, as in
    // docs/audit.md); the proxy environment stays up but idle.
    console.log(`\n== audit log and shipper (bench/audit-bench.ts): ${config.auditRates.join("/")} events/s offered, ${config.auditSeconds} s each: decisions in group and strict fsync, the worker's stream in group; a ${config.auditBacklog}-event backlog of each stream drained`);
    const budget = (config.auditRates.length * 3 * (config.auditSeconds + 60) + (2 * config.auditBacklog) / 1000 + 300) * 1000;
    auditLog = await runAuditLogBench(root, { seconds: config.auditSeconds, rates: config.auditRates, backlog: config.auditBacklog, cpus: pin ? `0-${os.availableParallelism() - 1}` : undefined, timeoutMs: budget });
    const r = auditLog.result;
    if (r) for (const x of r.results) console.log(`  ${x.run}: achieved ${x.achieved_per_s}/s, record lag p99 ${x.record_p99_ms} ms, ship lag p99 ${x.ship_p99_ms} ms, lost ${x.lost}`);
    for (const d of [r?.drain, r?.drainWorker]) if (d) console.log(`  drain (${d.stream ?? "decisions"}): ${d.perSecond} events/s over ${d.events} events, ${d.batches} batches`);
    if (auditLog.error) console.log(`  PROBLEM: ${auditLog.error}`);
  }

  let approvals: Results["approvals"] = null;
  let sandbox: Results["sandbox"] = null;
  if (config.sidecars) {
    console.log("\n== approval round trip (bench/approvals.bench-run.ts, its own embedded PostgreSQL)");
    approvals = await runApprovalsBench(root);
    console.log(approvals.result ? `  p50 ${approvals.result.p50Ms} ms, p99 ${approvals.result.p99Ms} ms over ${approvals.result.holds} holds` : `  PROBLEM: ${approvals.error}`);
    console.log("\n== layer 3: a sandbox's transparent path beside the explicit path (bench/sandbox-bench.ts, namespaces of its own)");
    sandbox = await runSandboxBench(root, config.repeats);
    const keep = sandbox.result?.rows.find((r) => r.measure === "keepAlive");
    console.log(keep ? `  keep-alive p50 ratio ${keep.ratioP50}×` : `  ${sandbox.error}`);
  }

  const versions: Record<string, string> = {};
  if (env.nginx) versions.nginx = env.nginx.version;
  if (env.mitm) versions.mitmproxy = env.mitm.version;
  const partial: Omit<Results, "bar"> = {
    name: config.name,
    machine,
    versions,
    config: { ...config, pinning: pin ? "client+upstream CPU0, proxies+Postgres CPU1" : "none" },
    paths: env.paths.map(({ id, what }) => ({ id, what })),
    skipped: env.skipped,
    open,
    closed,
    propagation,
    micro,
    soak: soakResult,
    audit,
    auditLog,
    approvals,
    sandbox,
    durationSeconds: Math.round((Date.now() - began) / 1000),
  };
  const results: Results = { ...partial, bar: evaluateBar(partial) };
  const tables = renderTables(results, config.rates);
  console.log(`\n${tables}\n`);
  const out = path.join(root, "bench", "results", `${config.name}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`wrote ${path.relative(root, out)}`);
  if (process.env.BENCH_DOC !== "0") {
    writeDoc(path.join(root, "docs", "benchmarks.md"), tables);
    console.log("updated docs/benchmarks.md");
  }
  await env.seeded.db.$disconnect();
}

/** Selectable parts: `npm run bench` runs the proxy suite; `npm run bench -- audit` the audit log's (or `audit-search`, `audit-report`); `-- sandbox` layer 3's; `-- approvals` the approval round trip; `-- deployment` the `bulkhead start` deployment; `-- cli` the CLI's start-up. */
const PARTS: Record<string, () => Promise<void>> = {
  proxy: main,
  "audit-search": async () => (await import("./audit-search-bench")).runAuditSearchBench(),
  "audit-report": async () => (await import("./audit-report-bench")).runAuditReportBench(),
  // The audit's whole part: search and exports at a million events, then reports.
  audit: async () => {
    await (await import("./audit-search-bench")).runAuditSearchBench();
    await (await import("./audit-report-bench")).runAuditReportBench();
  },
  // The approval round trip (a vitest project of its own); also `npm run bench:approvals`.
  approvals: async () => {
    const { execFileSync } = await import("node:child_process");
    execFileSync("npm", ["run", "bench:approvals"], { stdio: "inherit", cwd: root });
  },
  // Needs root and namespaces of its own; also `npm run bench:sandbox`.
  sandbox: async () => {
    const { execFileSync } = await import("node:child_process");
    execFileSync(process.execPath, ["--import", "tsx", path.join(root, "bench", "sandbox-bench.ts")], { stdio: "inherit" });
  },
  // The `bulkhead` command's start-up, next to a running embedded PostgreSQL.
  cli: async () => {
    const { execFileSync } = await import("node:child_process");
    execFileSync(process.execPath, ["--import", "tsx", path.join(root, "bench", "cli-bench.ts")], { stdio: "inherit" });
  },
  // `bulkhead start` as people run it, beside the minimal Node proxy (root: a namespace of its own).
  deployment: async () => {
    const { execFileSync } = await import("node:child_process");
    execFileSync(process.execPath, ["--import", "tsx", path.join(root, "bench", "deployment-bench.ts")], { stdio: "inherit" });
  },
};
const part = process.argv[2] ?? "proxy";
const runPart =
  PARTS[part] ??
  (async () => {
    throw new Error(`unknown bench part "${part}"; choose one of: ${Object.keys(PARTS).join(", ")}`);
  });

runMain(runPart);
