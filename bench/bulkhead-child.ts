/**
 * Path F: the real Bulkhead proxy worker in its own process, assembled as proxy-worker/main.ts
 * assembles it (enforcement core, durable AuditWriter, Prometheus metrics,
 * startProxyService) with two differences: ports are picked by the OS, and DNS is an injected
 * lookup that sends the bench's service names to loopback (as the integration tests do).
 *
 *   env: DATABASE_URL, BULKHEAD_WORKER_KEY (the worker's own key;
 *        the database must be migrated and seeded),
 *        BENCH_UPSTREAM_CA_FILE (the test CA that signed the HTTPS upstream's certificate),
 *        BENCH_AUDIT = "writer" (default; the product) | "none" (variant F-noaudit: a sink that
 *        resolves at once, so nothing is logged or shipped),
 *        BENCH_AUDIT_DURABILITY = "group" (default) | "strict" (fsync before forwarding),
 *        BENCH_METRICS = "on" (default) | "off" (variant F-nometrics: no Prometheus observations;
 *        startProxyService takes metrics as optional), BENCH_WAL_DIR, BENCH_WORKER_ID,
 *        BENCH_LOG_LEVEL (default "error").
 * IPC: announces { port, pid, caPem }; answers "stats", "audit", "flush", "gc" and "allocStart"/"allocStop"; "stop" shuts down like SIGTERM.
 */
import { loadIdentityConfig } from "@/lib/config/identity";
import { loadWorkerKeyConfig } from "@/lib/config/process-keys";
import { loadWorkerConfig } from "@/lib/config/worker";
import { createPrismaClient } from "@/lib/db/client";
import { workerKeysFrom } from "@/lib/keys/process-keys";
import { createLogger } from "@/lib/log";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { AuditWriter } from "@/proxy-worker/audit/writer";
import { startEnforcementCore } from "@/proxy-worker/core";
import { createMetrics } from "@/proxy-worker/metrics";
import type { Lookup } from "@/lib/net/resolve";
import { startProxyService } from "@/proxy-worker/proxy/service";
import type { AuditSink } from "@/proxy-worker/proxy/types";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { announce, serve } from "./support/ipc";
import { AllocationSampler } from "./support/allocations";
import { percentiles } from "./support/stats";

/** The bench's names (the *.test services and api.github.com) are loopback; nothing else resolves. */
const benchLookup: Lookup = async (name) => {
  const host = name.replace(/\.$/, "");
  if (host.endsWith(".test") || host === "api.github.com") return [{ address: "127.0.0.1", family: 4 }];
  throw Object.assign(new Error(`no such host ${host}`), { code: "ENOTFOUND" });
};

const databaseUrl = process.env.DATABASE_URL!;
const keys = workerKeysFrom(loadWorkerKeyConfig());
const auditMode = process.env.BENCH_AUDIT === "none" ? "none" : "writer";
const workerId = process.env.BENCH_WORKER_ID ?? "bench-0";
const log = createLogger(`bench-${workerId}`, process.env.BENCH_LOG_LEVEL ?? "error");
const metrics = createMetrics();
const db = createPrismaClient(databaseUrl, 8);

const shipping = { batches: 0, seconds: 0, maxSeconds: 0 };
const writer =
  auditMode === "writer"
    ? await AuditWriter.start({
        databaseUrl,
        walDir: process.env.BENCH_WAL_DIR!,
        workerId,
        durability: process.env.BENCH_AUDIT_DURABILITY === "strict" ? "strict" : "group",
        // BENCH_AUDIT_MEMORY_MB: the log's in-memory tail (default: the writer's own), to compare sizes.
        // BENCH_AUDIT_SMALL_BATCH_PAUSE_MS: the shipper's pause after a small batch (default: its own).
        smallBatchPauseMs: process.env.BENCH_AUDIT_SMALL_BATCH_PAUSE_MS ? Number(process.env.BENCH_AUDIT_SMALL_BATCH_PAUSE_MS) : undefined,
        memoryBytes: process.env.BENCH_AUDIT_MEMORY_MB ? Number(process.env.BENCH_AUDIT_MEMORY_MB) * 1024 * 1024 : undefined,
        log,
        onFlushLag: (ms) => metrics.auditLag.observe(ms / 1000),
        // How long each batch's statement took (between "audit" calls): the database's side of shipping.
        onShipped: (events, seconds) => {
          shipping.batches++;
          shipping.seconds += seconds;
          shipping.maxSeconds = Math.max(shipping.maxSeconds, seconds);
        },
      })
    : null;
const sink: AuditSink = writer ? { record: (e, options) => writer.record(e, options) } : { record: async () => undefined };
const core = await startEnforcementCore({ db, databaseUrl, log, identity: loadIdentityConfig({}), reconcileIntervalMs: 30_000 });
// The benchmark drives one task far beyond the default per-task budgets: measure the proxy, not its limiter.
const unlimited = { BULKHEAD_TASK_REQUESTS_PER_SECOND: "10000000", BULKHEAD_AGENT_REQUESTS_PER_SECOND: "10000000", BULKHEAD_TASK_MAX_CONNECTIONS: "1000000", BULKHEAD_AGENT_MAX_CONNECTIONS: "1000000" };
// The catchup focus freezes PostgreSQL for longer than the product enforces a stale snapshot (5 s)
// to measure how the shipper drains what piled up: the bench's workers keep serving meanwhile.
const staleLimit = { BULKHEAD_POLICY_STALE_LIMIT_SECONDS: process.env.BULKHEAD_POLICY_STALE_LIMIT_SECONDS ?? "3600" };
const config = { ...loadWorkerConfig({ BULKHEAD_UPSTREAM_CA_FILE: process.env.BENCH_UPSTREAM_CA_FILE, ...unlimited, ...staleLimit }), proxyPort: 0, transparentHttpPort: 0, transparentTlsPort: 0 };
const withMetrics = process.env.BENCH_METRICS !== "off";
const proxy = await startProxyService({ config, db, databaseUrl, workerKey: keys.workerKey, core, audit: sink, log, metrics: withMetrics ? metrics : undefined, lookup: benchLookup });

const sampler = new AllocationSampler();
// Event-loop delay between "audit" calls: a blocked loop (a long GC, a synchronous write) shows here.
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
serve(
  {
    stats: () => ({
      audit: writer?.stats() ?? null,
      flushLagMs: writer ? percentiles(writer.takeFlushLagSamples()) : null,
      tokens: core.tokens.stats(),
      policy: core.policy.status(),
      proxy: proxy.status(),
      memory: process.memoryUsage(),
    }),
    /** The audit writer's state alone (unlike "stats", it leaves the flush-lag samples alone). */
    audit: () => {
      const delay = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
      loopDelay.reset();
      const ship = { ...shipping };
      Object.assign(shipping, { batches: 0, seconds: 0, maxSeconds: 0 });
      return writer ? { ...writer.stats(), loopDelayMs: delay, shipStatements: ship } : null;
    },
    /** Full garbage collection (the worker runs with --expose-gc), then memory: what is really retained. */
    gc: () => {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      const m = process.memoryUsage();
      return { collected: gc !== undefined, rssMiB: Math.round((m.rss / 2 ** 20) * 10) / 10, heapUsedMiB: Math.round((m.heapUsed / 2 ** 20) * 10) / 10 };
    },
    /** Allocation sampling (every object, kept or collected): start, then stop writing a .heapprofile. */
    allocStart: () => sampler.start(),
    allocStop: (file: unknown) => sampler.stop(String(file)),
    flush: async () => {
      await writer?.flush();
      return writer?.stats() ?? null;
    },
  },
  async () => {
    await proxy.close();
    await core.close();
    await writer?.close();
    await db.$disconnect();
  },
);
const address = proxy.explicit.address();
announce({
  pid: process.pid,
  port: typeof address === "object" && address ? address.port : 0,
  auditMode,
  metrics: withMetrics,
  caPem: (await getCaCertificatePem(db))?.certPem ?? null,
});
