import { z } from "zod";
import { host, parseEnv, port } from "./env";

const workerSchema = z.object({
  BULKHEAD_PROXY_HOST: host.default("127.0.0.1"),
  BULKHEAD_PROXY_PORT: port.default(8080),
  BULKHEAD_WORKER_HEALTH_HOST: host.default("127.0.0.1"),
  BULKHEAD_WORKER_HEALTH_PORT: port.default(8081),
  /** How often the worker reconciles its policy snapshot even without a notification. */
  BULKHEAD_POLICY_RECONCILE_SECONDS: z.coerce.number().positive().max(3600).default(30),
});

export interface WorkerConfig {
  proxyHost: string;
  proxyPort: number;
  healthHost: string;
  healthPort: number;
  reconcileIntervalMs: number;
}

export function loadWorkerConfig(source: Record<string, string | undefined> = process.env): WorkerConfig {
  const env = parseEnv(workerSchema, source);
  return {
    proxyHost: env.BULKHEAD_PROXY_HOST,
    proxyPort: env.BULKHEAD_PROXY_PORT,
    healthHost: env.BULKHEAD_WORKER_HEALTH_HOST,
    healthPort: env.BULKHEAD_WORKER_HEALTH_PORT,
    reconcileIntervalMs: Math.round(env.BULKHEAD_POLICY_RECONCILE_SECONDS * 1000),
  };
}
