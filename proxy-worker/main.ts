import { once } from "node:events";
import path from "node:path";
import { loadCommonConfig, requireDatabaseUrl } from "@/lib/config/common";
import { loadIdentityConfig } from "@/lib/config/identity";
import { loadIsolationConfig } from "@/lib/config/isolation";
import { loadWorkerConfig } from "@/lib/config/worker";
import { createPrismaClient } from "@/lib/db/client";
import { masterKeyFromEnv } from "@/lib/identity/master-key";
import { createLogger } from "@/lib/log";
import { startAuditCheckpointer } from "./audit/checkpointer";
import { AuditWriter } from "./audit/writer";
import { startEnforcementCore } from "./core";
import { createHealthServer } from "./health";
import { createMetrics } from "./metrics";
import { startIsolation } from "./isolation/service";
import { startProxyService } from "./proxy/service";

/**
 * The proxy worker process: validated configuration, the policy snapshot kept current from
 * Postgres, the durable audit writer, the explicit and transparent proxy listeners, and the
 * health/metrics endpoint. Started by `npm start` (or `bulkhead worker`). Returns its stop
 * function: stop accepting, drain, flush the audit, release everything.
 */
export async function runWorker(): Promise<() => Promise<void>> {
  const common = loadCommonConfig();
  const config = loadWorkerConfig();
  const identity = loadIdentityConfig();
  const isolationConfig = loadIsolationConfig(common.dataDir);
  const databaseUrl = requireDatabaseUrl();
  const masterKey = masterKeyFromEnv(common.masterKey);
  const log = createLogger("proxy-worker", common.logLevel);
  const metrics = createMetrics();
  const db = createPrismaClient(databaseUrl, 8);
  const cleanups: Array<() => Promise<unknown>> = [() => db.$disconnect()];
  const cleanup = async () => {
    while (cleanups.length) await cleanups.pop()!().catch((e: unknown) => log.error({ err: String(e) }, "shutdown step failed"));
  };
  try {
    const audit = await AuditWriter.start({
      databaseUrl,
      spoolDir: config.auditSpoolDir ?? path.join(common.dataDir, "audit-spool"),
      workerId: config.workerId,
      log,
      onFlushLag: (ms) => metrics.auditLag.observe(ms / 1000),
    });
    cleanups.push(() => audit.close());
    const core = await startEnforcementCore({ db, databaseUrl, log, identity, reconcileIntervalMs: config.reconcileIntervalMs });
    cleanups.push(() => core.close());
    const checkpointer = startAuditCheckpointer({ db, masterKey, log });
    cleanups.push(() => checkpointer.stop());
    const auditSink = { record: async (e: Parameters<typeof audit.record>[0]) => void (await audit.record(e)) };
    const proxy = await startProxyService({ config, db, databaseUrl, masterKey, core, audit: auditSink, log, metrics });
    cleanups.push(() => proxy.close());
    const isolation = await startIsolation({ config: isolationConfig, parts: proxy.parts, policy: core.policy, audit: auditSink, db, log, upstreamConnectTimeoutMs: config.upstreamConnectTimeoutMs });
    cleanups.push(() => isolation.close());

    metrics.gauges("bulkhead_policy_version", "Version of the policy snapshot in force (per worker)", () => core.policy.status().version);
    metrics.gauges("bulkhead_policy_stale", "1 while enforcing a last-known-good snapshot because Postgres is away", () => (core.policy.status().stale ? 1 : 0));
    metrics.gauges("bulkhead_audit_queued_events", "Audit events waiting to be written", () => audit.stats().queued);
    metrics.gauges("bulkhead_audit_spooling", "1 while audit events go to the local spool", () => (audit.stats().mode === "spool" ? 1 : 0));
    metrics.gauges("bulkhead_token_cache_hits", "Task-token verifications served from the cache", () => core.tokens.stats().hits);
    metrics.gauges("bulkhead_token_cache_misses", "Task-token verifications that checked a signature", () => core.tokens.stats().misses);

    const health = createHealthServer({
      startedAt: new Date(),
      metrics: metrics.registry,
      readiness: () => {
        const policy = core.policy.status();
        const auditStats = audit.stats();
        const proxyStatus = proxy.status();
        const degraded = policy.stale || auditStats.mode === "spool" || proxyStatus.credentialError !== null;
        return {
          ready: policy.version > 0,
          status: policy.version === 0 ? "starting" : degraded ? "degraded" : "ready",
          enforcing: true,
          policy,
          audit: { mode: auditStats.mode, queued: auditStats.queued, lastError: auditStats.lastError ?? null },
          proxy: proxyStatus,
          isolation: isolation.status(),
        };
      },
      // The sandbox launcher waits until this worker knows a new sandbox before starting its command.
      sandboxKnown: (address) => isolation.knows(address),
    });
    health.listen(config.healthPort, config.healthHost);
    try {
      await once(health, "listening");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new Error(code === "EADDRINUSE" ? `Port ${config.healthPort} (BULKHEAD_WORKER_HEALTH_PORT) is already in use.` : `Cannot listen on ${config.healthHost}:${config.healthPort}: ${String(error)}`);
    }
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
