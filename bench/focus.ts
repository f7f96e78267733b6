/**
 * `npx tsx bench/focus.ts`: two parts of `npm run bench` on their own, in the same environment
 * (bench/support/environment.ts), for when the whole suite cannot run or one number is wanted:
 *
 *   propagation  policy-change and revocation propagation through worker F under ~1k rps of probes
 *                (the suite's bench/support/propagation.ts), BENCH_CHANGES of each;
 *   profile      worker F at saturation (closed loop, BENCH_CONCURRENCY connections, BENCH_SAT_SECONDS)
 *                with a V8 CPU profile written to BENCH_CPU_PROF (default bench/results/profile) when
 *                it stops; open it in Chrome DevTools or summarise it with bench/support/profile-summary.ts.
 *
 * BENCH_FOCUS = "propagation,profile" (default both). Prints results; writes bench/results/focus.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ClosedLoopSpec, LoadResult } from "./load";
import { cleanupAll, hasTaskset, installCleanupHandlers, interrupted, pinSelf, stop } from "./support/children";
import { startEnvironment } from "./support/environment";
import { describeMachine } from "./support/machine";
import { measurePolicyPropagation, measureRevocation } from "./support/propagation";
import { round } from "./support/stats";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const int = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};
const focus = new Set((process.env.BENCH_FOCUS ?? "propagation,profile").split(","));
const changes = int("BENCH_CHANGES", 50);
const satSeconds = int("BENCH_SAT_SECONDS", 20);
const concurrency = int("BENCH_CONCURRENCY", 64);
const pin = process.env.BENCH_PIN !== "0" && hasTaskset && os.availableParallelism() >= 2;
const cpus = pin ? { clientCpus: "0", proxyCpus: "1" } : {};
if (focus.has("profile")) process.env.BENCH_CPU_PROF ??= path.join(root, "bench", "results", "profile");

async function main(): Promise<void> {
  installCleanupHandlers();
  if (pin) pinSelf(cpus.clientCpus!);
  const machine = await describeMachine();
  console.log(`${machine.nproc} × ${machine.cpuModel}, Node ${machine.node}; background busy ${JSON.stringify(machine.backgroundBusy)}`);
  const env = await startEnvironment({ ...cpus, coldTokens: { rate: 1, perRepeat: 1, repeats: 1 } });
  const f = env.paths.find((p) => p.id === "F")!;
  const out: Record<string, unknown> = { machine };
  const closed = (seconds: number, conns: number) => {
    const spec: ClosedLoopSpec = { scenario: f.scenario(0), concurrency: conns, durationMs: seconds * 1000, warmupMs: 1000, watch: f.watch() };
    return env.load.ipc.call<LoadResult>("closed", spec, seconds * 1000 + 60_000);
  };
  await closed(3, 8); // warm-up

  if (focus.has("propagation")) {
    const results = [
      await measurePolicyPropagation({ seeded: env.seeded, databaseUrl: env.databaseUrl, probe: env.probe, changes }),
      await measureRevocation({ seeded: env.seeded, databaseUrl: env.databaseUrl, masterKey: env.masterKey, probe: env.probe, changes }),
    ];
    for (const p of results) {
      console.log(`${p.kind}: p50 ${round(p.propagationMs.p50, 1)} ms, p90 ${round(p.propagationMs.p90, 1)} ms, p99 ${round(p.propagationMs.p99, 1)} ms, max ${round(p.propagationMs.max, 1)} ms; commit p50 ${round(p.commitMs.p50, 1)} ms; timeouts ${p.timeouts}, flaps ${p.flaps}`);
    }
    out.propagation = results;
  }

  if (focus.has("profile")) {
    const r = await closed(satSeconds, concurrency);
    console.log(`F saturation (${concurrency} conns, ${satSeconds} s, profiled): achieved ${r.achievedRps} rps, errors ${r.errors}, p50 ${round(r.latencyUs.p50)} µs, p99 ${round(r.latencyUs.p99)} µs, cpu ${JSON.stringify(r.cpu.processes)}`);
    out.saturation = r;
    await stop(env.worker.proc); // the profile is written as the worker exits
    console.log(`CPU profile in ${process.env.BENCH_CPU_PROF}`);
  }
  const file = path.join(root, "bench", "results", "focus.json");
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  await env.seeded.db.$disconnect();
}

main()
  .catch((error: unknown) => {
    if (interrupted()) return;
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exitCode = 1;
  })
  .finally(async () => {
    if (interrupted()) return;
    await cleanupAll();
    process.exit();
  });
