import { once } from "node:events";
import { loadCommonConfig, requireDatabaseUrl } from "@/lib/config/common";
import { loadIdentityConfig } from "@/lib/config/identity";
import { loadWorkerConfig } from "@/lib/config/worker";
import { createPrismaClient } from "@/lib/db/client";
import { createLogger } from "@/lib/log";
import { createHealthServer } from "./health";
import { startEnforcementCore } from "./core";

/**
 * The proxy worker process: validates its configuration, loads the policy snapshot from Postgres
 * and keeps it current, and serves health. It is started by `npm start` (or `bulkhead worker`).
 */
export async function runWorker(): Promise<() => Promise<void>> {
  const common = loadCommonConfig();
  const config = loadWorkerConfig();
  const identity = loadIdentityConfig();
  const databaseUrl = requireDatabaseUrl();
  const log = createLogger("proxy-worker", common.logLevel);
  const db = createPrismaClient(databaseUrl, 5);
  const core = await startEnforcementCore({ db, databaseUrl, log, identity, reconcileIntervalMs: config.reconcileIntervalMs });
  const { policy } = core;
  const health = createHealthServer({ policy: () => policy.status(), startedAt: new Date() });
  health.listen(config.healthPort, config.healthHost);
  try {
    await once(health, "listening");
  } catch (error) {
    await core.close();
    await db.$disconnect();
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      code === "EADDRINUSE"
        ? `Port ${config.healthPort} (BULKHEAD_WORKER_HEALTH_PORT) is already in use.`
        : `Cannot listen on ${config.healthHost}:${config.healthPort}: ${String(error)}`,
    );
  }
  log.info({ health: `http://${config.healthHost}:${config.healthPort}`, policy: policy.status() }, "proxy worker started");
  return async () => {
    log.info("proxy worker stopping");
    await new Promise<void>((resolve) => health.close(() => resolve()));
    await core.close();
    await db.$disconnect();
  };
}
