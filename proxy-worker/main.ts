import { startChainWatchdog } from "@/lib/audit/chain-watchdog";
import { once } from "node:events";
import os from "node:os";
import path from "node:path";
import { loadCommonConfig, requireRuntimeDatabaseUrl } from "@/lib/config/common";
import { loadIdentityConfig } from "@/lib/config/identity";
import { loadWorkerKeyConfig } from "@/lib/config/process-keys";
import { loadIsolationConfig } from "@/lib/config/isolation";
import { loadSiemConfig } from "@/lib/config/siem";
import { loadWorkerConfig } from "@/lib/config/worker";
import { createPrismaClient, WORKER_DB_TIMEOUTS } from "@/lib/db/client";
import { assertProcessKeysCurrent } from "@/lib/keys/generation";
import { workerKeysFrom } from "@/lib/keys/process-keys";
import { createLogger, droppedLogLines } from "@/lib/log";
import { auditHealth, createAuditMetrics } from "./audit/metrics";
import { watchSiem } from "./audit/siem-metrics";
import { AuditWriter } from "./audit/writer";
import { startEnforcementCore } from "./core";
import { createHealthServer } from "./health";
import { createMetrics } from "./metrics";
import { startIsolation } from "./isolation/service";
import { startProxyService } from "./proxy/service";
import type { AuditSink } from "./proxy/types";

/**
 * The proxy worker process: validated configuration, the policy snapshot kept current from
 * Postgres, the durable audit writer, the explicit and transparent proxy listeners, and the
 * health/metrics endpoint. Started by `npm start` (or `bulkhead worker`). Returns its stop
 * function: stop accepting, drain, flush the audit, release everything.
 *
 * Its secrets are its own keys only (BULKHEAD_WORKER_KEY); it signs no audit checkpoints (the launcher's signer does): never the
 * master key, the dashboard's key or the session secret.
 */
export async function runWorker(): Promise<() => Promise<void>> {
  const common = loadCommonConfig();
  const config = loadWorkerConfig();
  const identity = loadIdentityConfig();
  const isolationConfig = loadIsolationConfig(common.dataDir);
  const siemConfig = loadSiemConfig(common.dataDir);
  const databaseUrl = requireRuntimeDatabaseUrl("worker");
  const keys = workerKeysFrom(loadWorkerKeyConfig());
  // A decision line per request: standard output in batches (lib/log.ts).
  const log = createLogger("proxy-worker", common.logLevel, { bufferedStdout: true });
  // Every path in the listeners handles its own errors; anything that still escapes means the
  // process state can no longer be trusted: say why, exit, and let the launcher restart us.
  const fatal = (kind: string) => (error: unknown) => {
    log.fatal({ err: error instanceof Error ? error.stack : String(error) }, `${kind}: the proxy worker exits and the launcher restarts it`);
    process.exit(70);
  };
  process.once("uncaughtException", fatal("uncaught exception"));
  process.once("unhandledRejection", fatal("unhandled rejection"));
  if (config.restarts.count > 0) log.warn({ restarts: config.restarts }, "proxy worker restarted by the launcher after the previous one exited");
  const metrics = createMetrics();
  // Bounded like the dashboard's: a PostgreSQL that stops answering fails the query (and the
  // request that needed it is refused) instead of holding a pooled connection forever.
  const db = createPrismaClient(databaseUrl, 8, WORKER_DB_TIMEOUTS);
  const cleanups: Array<() => Promise<unknown>> = [() => db.$disconnect()];
  const cleanup = async () => {
    while (cleanups.length) await cleanups.pop()!().catch((e: unknown) => log.error({ err: String(e) }, "shutdown step failed"));
  };
  try {
    // Keys from another installation or from before a master-key rotation: stop now, not at the
    // first credential that does not open.
    await assertProcessKeysCurrent(db, { worker: keys.workerKey.fingerprint });
    const auditMetrics = createAuditMetrics(metrics);
    const audit = await AuditWriter.start({
      databaseUrl,
      walDir: config.auditWalDir ?? path.join(common.dataDir, "audit-wal"),
      legacySpoolDir: config.auditSpoolDir ?? path.join(common.dataDir, "audit-spool"),
      workerId: config.workerId,
      durability: config.auditDurability,
      fsyncIntervalMs: config.auditFsyncIntervalMs,
      softLimitBytes: config.auditWalSoftLimitBytes,
      hardLimitBytes: config.auditWalHardLimitBytes,
      log,
      ...auditMetrics,
    });
    auditMetrics.watch(audit);
    cleanups.push(() => audit.close());
    const core = await startEnforcementCore({ db, databaseUrl, log, identity, reconcileIntervalMs: config.reconcileIntervalMs });
    cleanups.push(() => core.close());
    // A session of the worker's role holding the audit chain's lock for seconds (one insert and an
    // open transaction, by whoever has this role's URL) blocks every kill switch: ended here, so a
    // worker run without the launcher has the watchdog too (lib/audit/chain-watchdog.ts).
    const watchdog = startChainWatchdog({ databaseUrl, say: (line) => log.warn(line) });
    cleanups.push(() => watchdog.stop());
    // The writer's promise as it is (its durability facts unused): no async wrapper and await
    // per event, two events a request.
    const auditSink: AuditSink = { record: (e, options) => audit.record(e, options) };
    const proxy = await startProxyService({ config, db, databaseUrl, workerKey: keys.workerKey, core, audit: auditSink, log, metrics, holderId: audit.logId, leavesPerMinute: isolationConfig.leavesPerMinute });
    cleanups.push(() => proxy.close());
    const isolation = await startIsolation({ config: isolationConfig, parts: proxy.parts, policy: core.policy, audit: auditSink, db, log, upstreamConnectTimeoutMs: config.upstreamConnectTimeoutMs, tunnelMaxLifetimeMs: config.tunnelMaxLifetimeMs, stateDir: common.dataDir });
    cleanups.push(() => isolation.close());

    metrics.gauges("bulkhead_policy_version", "Version of the policy snapshot in force (per worker)", () => core.policy.status().version);
    metrics.gauges("bulkhead_policy_listening", "1 while the worker hears policy notifications (its listening connection is open and answers)", () => (core.policy.status().listening ? 1 : 0));
    metrics.gauges("bulkhead_policy_stale", "1 while enforcing a last-known-good snapshot because Postgres is away", () => (core.policy.status().stale ? 1 : 0));
    metrics.gauges("bulkhead_token_cache_hits", "Task-token verifications served from the cache", () => core.tokens.stats().hits);
    metrics.gauges("bulkhead_token_cache_misses", "Task-token verifications that checked a signature", () => core.tokens.stats().misses);
    metrics.gauges("bulkhead_worker_restarts", "Times the launcher restarted this worker slot after it exited unexpectedly", () => config.restarts.count);
    metrics.gauges("bulkhead_proxy_in_flight_requests", "Requests being handled right now", () => proxy.status().inFlight);
    metrics.gauges("bulkhead_log_lines_dropped", "Operational log lines standard output would not take (a full disk, a closed pipe) since the worker started; the audit log is not affected", () => droppedLogLines().lines);
    watchSiem(metrics, { db, dataDir: common.dataDir, config: siemConfig });

    const health = createHealthServer({
      startedAt: new Date(),
      // As the dashboard's (scripts/request-guard.mjs): the machine's own name too, which no page can rebind.
      allowedHostNames: [...config.healthAllowedHostNames, os.hostname()],
      metrics: metrics.registry,
      readiness: () => {
        const policy = core.policy.status();
        const auditStats = audit.stats();
        const proxyStatus = proxy.status();
        // Not listening (or the listening connection does not answer): changes are only seen by polling.
        const degraded = policy.stale || !policy.listening || auditStats.backlog !== "ok" || proxyStatus.credentialError !== null;
        return {
          // Refusing every request for audit backlog: not ready for traffic.
          ready: policy.version > 0 && auditStats.backlog !== "refusing",
          status: policy.version === 0 ? "starting" : degraded ? "degraded" : "ready",
          enforcing: true,
          policy,
          audit: auditHealth(auditStats),
          proxy: proxyStatus,
          restarts: config.restarts,
          isolation: isolation.status(),
        };
      },
      // The sandbox launcher waits until this worker knows a new sandbox before starting its command.
      sandboxKnown: (address) => isolation.knows(address),
      sandboxConnections: (address) => isolation.openConnections(address),
    });
    health.listen(config.healthPort, config.healthHost);
    try {
      await once(health, "listening");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(code === "EADDRINUSE" ? `Port ${config.healthPort} (BULKHEAD_WORKER_HEALTH_PORT) is already in use.` : `Cannot listen on ${config.healthHost}:${config.healthPort}: ${String(error)}`);
    }
    health.on("error", (error: Error) => log.error({ err: error.message }, "health listener error"));
    cleanups.push(() => new Promise<void>((resolve) => health.close(() => resolve())));
    log.info(
      { proxy: `${config.proxyHost}:${config.proxyPort}`, transparent: [config.transparentHttpPort, config.transparentTlsPort], health: `http://${config.healthHost}:${config.healthPort}`, policy: core.policy.status() },
      "proxy worker started",
    );
  } catch (error) {
    await cleanup();
    throw error;
  }
  return async () => {
    log.info("proxy worker stopping: draining connections and flushing the audit");
    await cleanup();
  };
}
