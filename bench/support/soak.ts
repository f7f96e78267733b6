/**
 * The memory soak (a part of `npm run bench`, and `BENCH_FOCUS=soak` of bench/focus.ts): worker F
 * at 1k rps for SOAK_SETTLE_S + `seconds`, RSS sampled every 5 s and the audit log's backlog
 * (events logged and not yet in PostgreSQL, and the age of the oldest) beside it, so a worker
 * whose shipper falls behind shows when and by how much. RSS saws up and down with V8's major
 * collections, so what is retained is read after a full collection just before the load and just
 * after it (the run itself is not disturbed). The start is read with the audit log shipped (the
 * suite ships it before every run), so the end is read likewise: events a worker that fell behind
 * still holds in its log's memory are a backlog, not growth. The end is read twice, with the
 * backlog the load left and once it is shipped; the second is judged, both are reported.
 */
import type { LoadResult, OpenLoopSpec } from "../load";
import type { Environment, PathDef } from "./environment";
import type { Soak } from "./report";
import { round, rssMiB } from "./stats";

/** The first seconds of the soak are load but not latency samples (the heap is still adjusting). */
export const SOAK_SETTLE_S = 15;
/** The soak the bar asks for (BENCHMARKS.md: 10 minutes); a shorter one is labelled short. */
export const SOAK_BAR_SECONDS = 600;

interface AfterGc {
  collected: boolean;
  rssMiB: number;
  heapUsedMiB: number;
}

/**
 * Waits until `worker`'s audit log is in PostgreSQL. Its flush waits up to 30 s; a worker that
 * fell behind can hold more than that: wait for it (up to 15 minutes) rather than lose the run.
 */
export async function drainedWorkerLog(worker: Environment["worker"]): Promise<Record<string, unknown> | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await worker.ipc.call<Record<string, unknown> | null>("flush");
    } catch (error) {
      if (attempt >= 30 || !/not shipped/.test(String(error))) throw error;
    }
  }
}

export async function soak(env: Environment, f: PathDef, o: { seconds: number; connections: number; rate?: number; onSample?: (s: Soak["rssMiB"][number]) => void }): Promise<Soak> {
  const rate = o.rate ?? 1000;
  // After a collection V8 hands freed pages back over a few seconds: read RSS once it has.
  const collect = async () => {
    const r = await env.worker.ipc.call<AfterGc>("gc");
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    return { ...r, rssMiB: rssMiB(env.worker.pid) };
  };
  const before = await collect();
  const t0 = Date.now();
  const samples: Soak["rssMiB"] = [{ atSeconds: 0, rss: rssMiB(env.worker.pid) }];
  const total = SOAK_SETTLE_S + o.seconds;
  const spec: OpenLoopSpec = { scenario: f.scenario(0), rate, durationMs: o.seconds * 1000, warmupMs: SOAK_SETTLE_S * 1000, connections: o.connections, watch: f.watch() };
  const running = env.load.ipc.call<LoadResult>("open", spec, total * 1000 + 60_000);
  const settled = setTimeout(() => void env.worker.ipc.call("stats"), SOAK_SETTLE_S * 1000); // drops earlier flush-lag samples
  const sample = async () => {
    const audit = await env.worker.ipc
      .call<{ lagEvents: number; lagSeconds: number; batches: number; rows: number; shipped: number; loopDelayMs: { p50: number; p99: number; max: number }; shipStatements: { batches: number; seconds: number; maxSeconds: number } } | null>("audit")
      .catch(() => null);
    const s = {
      atSeconds: Math.round((Date.now() - t0) / 1000),
      rss: rssMiB(env.worker.pid),
      ...(audit ? { lagEvents: audit.lagEvents, lagSeconds: round(audit.lagSeconds, 2), shipped: audit.shipped, batches: audit.batches, rows: audit.rows, loopDelayMs: audit.loopDelayMs, shipStatements: audit.shipStatements } : {}),
    };
    samples.push(s);
    o.onSample?.(s);
  };
  const timer = setInterval(() => void sample(), 5_000);
  const load = await running.finally(() => {
    clearInterval(timer);
    clearTimeout(settled);
  });
  const stats = await env.worker.ipc.call<{ flushLagMs: Soak["flushLagMs"] }>("stats");
  const left = await env.worker.ipc.call<{ lagEvents: number; lagSeconds: number } | null>("audit").catch(() => null);
  const unshipped = await collect();
  const shipStarted = Date.now();
  await drainedWorkerLog(env.worker);
  const shipSeconds = round((Date.now() - shipStarted) / 1000, 1);
  const after = await collect();
  const raw = samples.map((x) => x.rss);
  return {
    seconds: total,
    rate,
    rssMiB: samples,
    rawMinMiB: Math.min(...raw),
    rawMaxMiB: Math.max(...raw),
    startMiB: before.rssMiB,
    endMiB: after.rssMiB,
    heapStartMiB: before.heapUsedMiB,
    heapEndMiB: after.heapUsedMiB,
    backlogAtEnd: left ? { events: left.lagEvents, oldestSeconds: round(left.lagSeconds, 2), shippedInSeconds: shipSeconds, rssMiB: unshipped.rssMiB, heapMiB: unshipped.heapUsedMiB } : null,
    collected: before.collected && after.collected,
    changePct: round((100 * (after.rssMiB - before.rssMiB)) / before.rssMiB, 1),
    load,
    flushLagMs: stats.flushLagMs,
  };
}
