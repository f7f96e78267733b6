/**
 * `npx tsx bench/focus.ts`: two parts of `npm run bench` on their own, in the same environment
 * (bench/support/environment.ts), for when the whole suite cannot run or one number is wanted:
 *
 *   propagation  policy-change and revocation propagation through worker F under ~1k rps of probes
 *                (the suite's bench/support/propagation.ts), BENCH_CHANGES of each;
 *   profile      worker F at saturation (closed loop, BENCH_CONCURRENCY connections, BENCH_SAT_SECONDS)
 *                with a V8 CPU profile written to BENCH_CPU_PROF (default bench/results/profile) when
 *                it stops, then N (the minimal Node proxy) likewise, its profile in <that dir>/N; open it in Chrome DevTools or summarise it with bench/support/profile-summary.ts;
 *                with BENCH_ALLOC_PROF=<file> also an allocation profile of the same run (every sampled
 *                allocation, kept or collected), summarised by bench/support/allocation-summary.ts;
 *                with BENCH_PROFILE_RATE=<rps> both run open loop at that rate (BENCH_OPEN_CONNECTIONS,
 *                default 64) instead, for where the time goes below saturation;
 *   https        the intercepted-HTTPS paths at saturation, interleaved, BENCH_REPEATS times for
 *                BENCH_SECONDS each: Bulkhead and mitmdump, keep-alive and a new connection per
 *                request, and the bar's ratios between them;
 *   soak         the suite's memory soak (bench/support/soak.ts): F at 1k rps (BENCH_SOAK_RATE) for 15 s +
 *                BENCH_SOAK_SECONDS (default here 120), RSS and the audit log's backlog every 5 s;
 *   audit        the audit log's part of the suite (bench/audit-bench.ts as a child, with the
 *                suite's BENCH_AUDIT_SECONDS/_RATES/_BACKLOG) and its bar rows; needs no proxies;
 *   catchup      worker F at BENCH_CATCHUP_RATE (default 1000) rps while its PostgreSQL is frozen
 *                (SIGSTOP of the server's processes) for BENCH_FREEZE_SECONDS (15) from the 5th second,
 *                then for BENCH_CATCHUP_AFTER_SECONDS (25) while the shipper drains the backlog: the
 *                requests' latency over the whole run, and every 2.5 s the backlog and the worker's
 *                event-loop delay;
 *   latency      the open-loop rows of the suite for BENCH_LATENCY_PATHS (default N,F,F-noaudit) at
 *                BENCH_RATES (default 1000), interleaved, BENCH_REPEATS × BENCH_SECONDS, each audited
 *                worker's log shipped before every run as the suite does; prints each run, the
 *                median per path and F's p50 over N's per repeat.
 *
 * BENCH_PG_SQL runs statements (";"-separated) as the database's owner before the load.
 *
 * BENCH_FOCUS = "propagation,profile" by default (any comma-separated subset of the seven).
 * Prints results; writes bench/results/focus.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ClosedLoopSpec, LoadResult, OpenLoopSpec } from "./load";
import { auditLogBarItems, renderAuditLog, runAuditLogBench } from "./support/audit-log";
import { evaluateBar } from "./support/bar";
import { hasTaskset, installCleanupHandlers, pinSelf, runMain, stop } from "./support/children";
import { startEnvironment } from "./support/environment";
import { describeMachine } from "./support/machine";
import { measurePolicyPropagation, measureRevocation } from "./support/propagation";
import type { RunRecord } from "./support/report";
import { soak, SOAK_SETTLE_S } from "./support/soak";
import { childPids, round } from "./support/stats";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const int = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const focus = new Set((process.env.BENCH_FOCUS ?? "propagation,profile").split(","));
const changes = int("BENCH_CHANGES", 50);
const satSeconds = int("BENCH_SAT_SECONDS", 20);
const concurrency = int("BENCH_CONCURRENCY", 64);
const repeats = int("BENCH_REPEATS", 3);
const seconds = int("BENCH_SECONDS", 5);
const profileRate = int("BENCH_PROFILE_RATE", 0);
const openConnections = int("BENCH_OPEN_CONNECTIONS", 64);
const HTTPS_PATHS = ["H-F", "H-F-newconn", "H-mitm", "H-mitm-newconn"];
const pin = process.env.BENCH_PIN !== "0" && hasTaskset && os.availableParallelism() >= 2;
const cpus = pin ? { clientCpus: "0", proxyCpus: "1" } : {};
if (focus.has("profile")) process.env.BENCH_CPU_PROF ??= path.join(root, "bench", "results", "profile");

async function main(): Promise<void> {
  installCleanupHandlers();
  if (pin) pinSelf(cpus.clientCpus!);
  const machine = await describeMachine();
  console.log(`${machine.nproc} × ${machine.cpuModel}, Node ${machine.node}; background busy ${JSON.stringify(machine.backgroundBusy)}`);
  const out: Record<string, unknown> = { machine };
  if (focus.has("audit")) {
    const rates = (process.env.BENCH_AUDIT_RATES ?? "10000,20000").split(",").map(Number).filter((n) => n > 0);
    const settings = { seconds: int("BENCH_AUDIT_SECONDS", 5), rates, backlog: int("BENCH_AUDIT_BACKLOG", 100_000) };
    const a = await runAuditLogBench(root, { ...settings, cpus: pin ? `0-${os.availableParallelism() - 1}` : undefined, timeoutMs: 900_000 });
    if (a.result) console.log(renderAuditLog(a.result));
    if (a.error) console.log(`PROBLEM: ${a.error}`);
    for (const b of auditLogBarItems(a.result, a.error)) console.log(`bar: ${b.item}: ${b.measured} [${b.bar}] ${b.status}`);
    out.auditLog = a;
  }
  if (!["propagation", "profile", "https", "soak", "latency", "catchup"].some((f) => focus.has(f))) return write(out);
  const env = await startEnvironment({ ...cpus, coldTokens: { rate: 1, perRepeat: 1, repeats: 1 } });
  // BENCH_PG_SQL: statements (";"-separated) run as the database's owner before any load, to
  // compare PostgreSQL settings (a table's autovacuum parameters, an index's) on the same build.
  for (const statement of (process.env.BENCH_PG_SQL ?? "").split(";").map((x) => x.trim()).filter(Boolean)) {
    await env.seeded.db.$executeRawUnsafe(statement);
    console.log(`ran: ${statement}`);
  }
  const f = env.paths.find((p) => p.id === "F")!;
  const closed = (seconds: number, conns: number) => {
    const spec: ClosedLoopSpec = { scenario: f.scenario(0), concurrency: conns, durationMs: seconds * 1000, warmupMs: 1000, watch: f.watch() };
    return env.load.ipc.call<LoadResult>("closed", spec, seconds * 1000 + 60_000);
  };
  // The profiled runs: closed loop (saturation), or open loop at BENCH_PROFILE_RATE requests a second.
  const profiled = (p: (typeof env.paths)[number]) => {
    if (profileRate) {
      const spec: OpenLoopSpec = { scenario: p.scenario(0), rate: profileRate, durationMs: satSeconds * 1000, warmupMs: 1000, connections: openConnections, watch: p.watch() };
      return env.load.ipc.call<LoadResult>("open", spec, satSeconds * 1000 + 61_000);
    }
    const spec: ClosedLoopSpec = { scenario: p.scenario(0), concurrency, durationMs: satSeconds * 1000, warmupMs: 1000, watch: p.watch() };
    return env.load.ipc.call<LoadResult>("closed", spec, satSeconds * 1000 + 60_000);
  };
  const profiledAs = profileRate ? `open loop (${profileRate} rps, ${openConnections} conns` : `saturation (${concurrency} conns`;
  await closed(3, 8); // warm-up

  if (focus.has("propagation")) {
    const results = [
      await measurePolicyPropagation({ seeded: env.seeded, databaseUrl: env.databaseUrl, probe: env.probe, changes }),
      await measureRevocation({ seeded: env.seeded, databaseUrl: env.databaseUrl, masterKey: env.masterKey, probe: env.probe, changes }),
    ];
    for (const p of results) {
      console.log(`${p.kind}: p50 ${round(p.propagationMs.p50, 1)} ms, p90 ${round(p.propagationMs.p90, 1)} ms, p99 ${round(p.propagationMs.p99, 1)} ms, max ${round(p.propagationMs.max, 1)} ms; commit p50 ${round(p.commitMs.p50, 1)} ms; timeouts ${p.timeouts}, flaps ${p.flaps}, resets ${p.resets ?? 0} ${JSON.stringify(p.disagreeing ?? {})}`);
    }
    out.propagation = results;
  }

  if (focus.has("latency")) {
    const ids = (process.env.BENCH_LATENCY_PATHS ?? "N,F,F-noaudit").split(",");
    const rates = (process.env.BENCH_RATES ?? "1000").split(",").map(Number).filter((n) => n > 0);
    const paths = ids.map((id) => {
      const p = env.paths.find((x) => x.id === id);
      if (!p) throw new Error(`BENCH_LATENCY_PATHS: no path ${id} (${env.paths.map((x) => x.id).join(", ")})`);
      return p;
    });
    const runs: RunRecord[] = [];
    for (const rate of rates) {
      for (let repeat = 0; repeat < repeats; repeat++) {
        for (const p of paths) {
          for (const w of [env.worker, env.workerNoMetrics, env.workerStrict]) await w.ipc.call("flush");
          const spec: OpenLoopSpec = { scenario: p.scenario(repeat), rate, durationMs: seconds * 1000, warmupMs: 1000, connections: openConnections, watch: p.watch() };
          const r = await env.load.ipc.call<LoadResult>("open", spec, seconds * 1000 + 61_000);
          runs.push({ ...r, path: p.id, repeat });
          console.log(`${p.id.padEnd(10)} ${rate} rps #${repeat}: achieved ${r.achievedRps}, errors ${r.errors}, p50 ${round(r.latencyUs.p50)} µs, p90 ${round(r.latencyUs.p90)} µs, p99 ${round(r.latencyUs.p99)} µs, cpu ${JSON.stringify(r.cpu.processes)}`);
          if (r.secondsOver100ms) console.log(`  ${r.secondsOver100ms} of its seconds had a request over 100 ms; the slowest: ${slowest(r)}`);
        }
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      for (const p of paths) {
        const mine = runs.filter((r) => r.path === p.id && r.rate === rate);
        console.log(`${p.id.padEnd(10)} ${rate} rps, median of ${mine.length}: p50 ${round(median(mine.map((r) => r.latencyUs.p50)))} µs, p90 ${round(median(mine.map((r) => r.latencyUs.p90)))} µs, p99 ${round(median(mine.map((r) => r.latencyUs.p99)))} µs`);
      }
      const of = (id: string, repeat: number) => runs.find((r) => r.path === id && r.rate === rate && r.repeat === repeat)?.latencyUs.p50;
      if (ids.includes("F") && ids.includes("N")) {
        const ratios = Array.from({ length: repeats }, (_, i) => round(of("F", i)! / of("N", i)!, 2));
        console.log(`F p50 / N p50 at ${rate} rps per repeat: ${ratios.join(", ")}`);
      }
    }
    out.latency = runs;
  }

  if (focus.has("catchup")) {
    const rate = int("BENCH_CATCHUP_RATE", 1000);
    const freeze = int("BENCH_FREEZE_SECONDS", 15);
    const after = int("BENCH_CATCHUP_AFTER_SECONDS", 25);
    const lead = 5;
    await env.worker.ipc.call("flush");
    const watched = f.watch().postgres;
    const server = watched && "tree" in watched ? watched.tree : null;
    if (!server) throw new Error("catchup: no PostgreSQL process to freeze");
    const tree = (pid: number): number[] => [pid, ...childPids(pid).flatMap(tree)];
    const signal = (sig: NodeJS.Signals) => {
      for (const pid of tree(server)) {
        try {
          process.kill(pid, sig);
        } catch {
          // gone meanwhile
        }
      }
    };
    await env.worker.ipc.call("audit"); // starts the loop-delay window afresh
    const t0 = Date.now();
    const spec: OpenLoopSpec = { scenario: f.scenario(0), rate, durationMs: (lead + freeze + after) * 1000, warmupMs: 0, connections: openConnections, watch: f.watch() };
    const running = env.load.ipc.call<LoadResult>("open", spec, (lead + freeze + after) * 1000 + 61_000);
    const freezing = setTimeout(() => signal("SIGSTOP"), lead * 1000);
    const thawing = setTimeout(() => signal("SIGCONT"), (lead + freeze) * 1000);
    const samples: string[] = [];
    const timer = setInterval(() => {
      void env.worker.ipc
        .call<{ lagEvents: number; loopDelayMs: { p50: number; p99: number; max: number } } | null>("audit")
        .then((a) => {
          if (a) samples.push(`${round((Date.now() - t0) / 1000, 1)} s: backlog ${a.lagEvents} events, event-loop delay p99 ${round(a.loopDelayMs.p99, 1)} ms, max ${round(a.loopDelayMs.max, 1)} ms`);
        })
        .catch(() => undefined);
    }, 2_500);
    const r = await running.finally(() => {
      clearInterval(timer);
      clearTimeout(freezing);
      clearTimeout(thawing);
      signal("SIGCONT");
    });
    for (const line of samples) console.log(`  ${line}`);
    console.log(`F ${rate} rps, PostgreSQL frozen ${lead}-${lead + freeze} s of ${lead + freeze + after} s: achieved ${r.achievedRps}, errors ${r.errors}, p50 ${round(r.latencyUs.p50)} µs, p90 ${round(r.latencyUs.p90)} µs, p99 ${round(r.latencyUs.p99)} µs, p99.9 ${round(r.latencyUs.p999)} µs, max ${round(r.latencyUs.max)} µs, cpu ${JSON.stringify(r.cpu.processes)}`);
    out.catchup = { rate, freeze, after, samples, load: r };
  }

  if (focus.has("https")) {
    const paths = env.paths.filter((p) => HTTPS_PATHS.includes(p.id));
    for (const s of env.skipped) console.log(`SKIPPED: ${s}`);
    const closed: RunRecord[] = [];
    for (const p of paths) await env.load.ipc.call<LoadResult>("closed", { scenario: p.scenario(0), concurrency: 8, durationMs: 2000, warmupMs: 0, watch: p.watch() } satisfies ClosedLoopSpec, 62_000);
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (const p of paths) {
        const spec: ClosedLoopSpec = { scenario: p.scenario(repeat), concurrency, durationMs: seconds * 1000, warmupMs: 1000, watch: p.watch() };
        const r = await env.load.ipc.call<LoadResult>("closed", spec, seconds * 1000 + 61_000);
        closed.push({ ...r, path: p.id, repeat });
        console.log(`${p.id.padEnd(15)} ${concurrency} conns: achieved ${r.achievedRps} rps, errors ${r.errors}${r.errors ? ` ${JSON.stringify(r.errorKinds)}` : ""}, p50 ${round(r.latencyUs.p50)} µs, p99 ${round(r.latencyUs.p99)} µs, connections opened per request ${r.connectionsPerRequest}, cpu ${JSON.stringify(r.cpu.processes)}`);
      }
    }
    // Only the intercepted-HTTPS rows of the bar apply; the rest has no data in this mode.
    const bar = evaluateBar({ name: "focus", machine, versions: {}, config: {}, paths: [], skipped: env.skipped, open: [], closed, propagation: [], micro: { policy: null, tokens: null, errors: [] }, soak: null, audit: null, auditLog: null, durationSeconds: 0 });
    for (const b of bar.filter((x) => x.item.includes("HTTPS") && !x.item.includes("plain"))) console.log(`bar: ${b.item}: ${b.measured} [${b.bar}] ${b.status}`);
    out.https = { closed, bar };
  }

  if (focus.has("soak")) {
    const soakSeconds = int("BENCH_SOAK_SECONDS", 120);
    console.log(`memory soak: F at ${process.env.BENCH_SOAK_RATE ?? 1000} rps for ${SOAK_SETTLE_S + soakSeconds} s`);
    const r = await soak(env, f, { seconds: soakSeconds, connections: 64, rate: process.env.BENCH_SOAK_RATE ? Number(process.env.BENCH_SOAK_RATE) : undefined, onSample: (x) => console.log(`  ${x.atSeconds} s: RSS ${x.rss} MiB, audit backlog ${x.lagEvents ?? "?"} events, oldest ${x.lagSeconds ?? "?"} s; shipped ${x.shipped ?? "?"} events in ${x.batches ?? "?"} batches (${x.rows ?? "?"} rows); event-loop delay p99 ${x.loopDelayMs ? round(x.loopDelayMs.p99, 1) : "?"} ms, max ${x.loopDelayMs ? round(x.loopDelayMs.max, 1) : "?"} ms; batch statements ${x.shipStatements ? `${x.shipStatements.batches}, ${round(x.shipStatements.seconds, 2)} s in all, longest ${round(x.shipStatements.maxSeconds, 2)} s` : "?"}`) });
    console.log(`RSS after a full GC ${r.startMiB} → ${r.endMiB} MiB (${r.changePct} %), heap ${r.heapStartMiB} → ${r.heapEndMiB} MiB (the audit log shipped; when the load stopped ${r.backlogAtEnd?.events ?? "?"} events were not, and with them in memory RSS was ${r.backlogAtEnd?.rssMiB ?? "?"} MiB, heap ${r.backlogAtEnd?.heapMiB ?? "?"} MiB); achieved ${r.load.achievedRps} rps, errors ${r.load.errors}, p50 ${round(r.load.latencyUs.p50)} µs, p99 ${round(r.load.latencyUs.p99)} µs, cpu ${JSON.stringify(r.load.cpu.processes)}; flush lag ${JSON.stringify(r.flushLagMs)}`);
    if (r.load.secondsOver100ms) console.log(`${r.load.secondsOver100ms} of the soak's seconds had a request over 100 ms; the slowest: ${slowest(r.load)}`);
    out.soak = r;
  }

  if (focus.has("profile")) {
    // BENCH_ALLOC_PROF=<file>: also sample every allocation (kept or collected) during the run.
    const alloc = process.env.BENCH_ALLOC_PROF ? path.resolve(process.env.BENCH_ALLOC_PROF) : null;
    if (alloc) await env.worker.ipc.call("allocStart");
    const r = await profiled(f);
    if (alloc) console.log(`allocation profile in ${await env.worker.ipc.call<string>("allocStop", alloc)}`);
    console.log(`F ${profiledAs}, ${satSeconds} s, profiled): achieved ${r.achievedRps} rps, errors ${r.errors}, p50 ${round(r.latencyUs.p50)} µs, p99 ${round(r.latencyUs.p99)} µs, cpu ${JSON.stringify(r.cpu.processes)}`);
    out.saturation = r;
    await stop(env.worker.proc); // the profile is written as the worker exits
    console.log(`CPU profile in ${process.env.BENCH_CPU_PROF}`);
    // The floor beside it: N at saturation, profiled the same way (its profile in <dir>/N).
    const n = env.paths.find((p) => p.id === "N")!;
    const rn = await profiled(n);
    console.log(`N ${profiledAs}, ${satSeconds} s, profiled): achieved ${rn.achievedRps} rps, errors ${rn.errors}, p50 ${round(rn.latencyUs.p50)} µs, p99 ${round(rn.latencyUs.p99)} µs, cpu ${JSON.stringify(rn.cpu.processes)}`);
    out.saturationN = rn;
    const watched = n.watch().proxy;
    const nodeProxy = Array.isArray(watched) ? watched[0] : undefined;
    if (nodeProxy) process.kill(nodeProxy, "SIGTERM");
    await new Promise((resolve) => setTimeout(resolve, 2000));
    console.log(`N's CPU profile in ${path.join(process.env.BENCH_CPU_PROF!, "N")}`);
  }
  write(out);
  await env.seeded.db.$disconnect();
}

/** An open-loop run's slowest seconds, "second: max ms (p99 ms, requests over 100 ms, unfinished)". */
function slowest(r: LoadResult): string {
  return (r.slowSeconds ?? []).map((x) => `${x.second} s: ${x.maxMs} ms (p99 ${x.p99Ms}, ${x.over100ms} over 100 ms${x.unfinished ? `, ${x.unfinished} unfinished` : ""})`).join("; ");
}

function write(out: Record<string, unknown>): void {
  const file = path.join(root, "bench", "results", "focus.json");
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
}

runMain(main);
