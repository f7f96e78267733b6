import { isIP } from "node:net";
import { hostname } from "node:os";
import { z } from "zod";
import { host, optionalString, parseEnv, port } from "./env";
import { listenerClashes, type Listener } from "./listen-ports";
import { retiredSecretsConfigOf, retiredSecretsEnv, type RetiredSecretsConfig } from "./retired-secrets";

const seconds = (max: number) => z.coerce.number().positive("must be a positive number of seconds").max(max);
const count = (max: number) => z.coerce.number().int("must be a whole number").min(1, "must be at least 1").max(max);

/** The ports the worker listens on, and the dashboard's (never a permitted destination). */
const listenPorts = {
  BULKHEAD_PROXY_PORT: port.default(8080),
  BULKHEAD_TRANSPARENT_HTTP_PORT: port.default(8082),
  BULKHEAD_TRANSPARENT_TLS_PORT: port.default(8443),
  BULKHEAD_WORKER_HEALTH_PORT: port.default(8081),
  BULKHEAD_APP_PORT: port.default(3000),
};

const workerSchema = z.object({
  ...listenPorts,
  BULKHEAD_PROXY_HOST: host.default("127.0.0.1"),
  /** Transparent listeners for sandboxes (agents that do not know a proxy exists). */
  BULKHEAD_TRANSPARENT_HOST: host.default("127.0.0.1"),
  BULKHEAD_WORKER_HEALTH_HOST: host.default("127.0.0.1"),
  /** DNS names the health endpoint answers to besides IP addresses and localhost (comma-separated). */
  BULKHEAD_WORKER_HEALTH_ALLOWED_HOSTS: z
    .string()
    .optional()
    .transform((v) => (v ?? "").split(",").map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9.])?$/, "must be DNS names (letters, digits, '.' and '-'), separated by commas"))),
  /** How often the worker reconciles its policy snapshot even without a notification. */
  BULKHEAD_POLICY_RECONCILE_SECONDS: seconds(3600).default(30),
  /** Request bodies are buffered up to this size to classify them; larger ones get 413. */
  BULKHEAD_MAX_BODY_BYTES: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Larger request heads get 431. */
  BULKHEAD_MAX_HEADER_BYTES: z.coerce.number().int().min(1024).max(1024 * 1024).default(16 * 1024),
  BULKHEAD_CLIENT_TIMEOUT_SECONDS: seconds(600).default(30),
  BULKHEAD_UPSTREAM_CONNECT_TIMEOUT_SECONDS: seconds(120).default(10),
  BULKHEAD_UPSTREAM_TIMEOUT_SECONDS: seconds(3600).default(60),
  /** How long a held request waits for a human before it is denied. */
  BULKHEAD_HOLD_TIMEOUT_SECONDS: seconds(24 * 3600).default(300),
  /** How long a stale policy snapshot (PostgreSQL not answering) is enforced before every request is refused. */
  BULKHEAD_POLICY_STALE_LIMIT_SECONDS: seconds(24 * 3600).default(5),
  /** Pending held requests one task may have at once; beyond it requests that would be held are refused. */
  BULKHEAD_TASK_MAX_PENDING_HOLDS: count(10_000).default(10),
  /** A passthrough (uninspected) tunnel with no traffic either way for this long is closed. */
  BULKHEAD_TUNNEL_IDLE_SECONDS: seconds(24 * 3600).default(300),
  /** No tunnel or sandbox connection stays open longer; one hour is also a task token's longest life. */
  BULKHEAD_TUNNEL_MAX_LIFETIME_SECONDS: seconds(7 * 24 * 3600).default(3600),
  /** Extra CA certificate(s) (PEM file) trusted for upstream TLS, besides the system's. */
  BULKHEAD_UPSTREAM_CA_FILE: optionalString,
  /** The audit write-ahead log, the commit point of every decision (default: <data dir>/audit-wal). */
  BULKHEAD_AUDIT_WAL_DIR: optionalString,
  /** group: fsync every few ms for many events (a crash loses nothing); strict: fsync before forwarding. */
  BULKHEAD_AUDIT_DURABILITY: z.enum(["group", "strict"], { error: "must be group or strict" }).default("group"),
  /** Group mode: the longest a logged event waits for its fsync. */
  BULKHEAD_AUDIT_FSYNC_INTERVAL_MS: z.coerce.number().int().min(1).max(1000).default(10),
  /** Unshipped audit log above this: health and metrics say the shipper is behind. */
  BULKHEAD_AUDIT_WAL_SOFT_LIMIT_MB: z.coerce.number().int().min(1).default(64),
  /** Unshipped audit log above this: new requests are refused (503 audit_backlog). */
  BULKHEAD_AUDIT_WAL_HARD_LIMIT_MB: z.coerce.number().int().min(1).default(2048),
  /** Where earlier versions spooled events (default: <data dir>/audit-spool); moved into the log at start. */
  BULKHEAD_AUDIT_SPOOL_DIR: optionalString,
  /** Stable per worker slot on a machine: a restarted worker ships what its predecessor logged. */
  BULKHEAD_WORKER_ID: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be letters, digits, - and _ (at most 64)").default("worker-0"),
  /** Open client connections per listener; beyond it new connections are dropped (and audited). */
  BULKHEAD_MAX_CONNECTIONS: count(1_000_000).default(4096),
  /**
   * Connections one source address (an IPv6 /64) may hold on a listener before they authenticate;
   * a new one beyond it closes the source's oldest (audited). Authenticated ones count for their
   * task instead. A quarter of the listener's cap: a burst from one host's agents is not cut.
   */
  BULKHEAD_SOURCE_MAX_CONNECTIONS: count(1_000_000).default(1024),
  /** Concurrent client connections one task / one agent may hold (429 beyond). */
  BULKHEAD_TASK_MAX_CONNECTIONS: count(1_000_000).default(256),
  BULKHEAD_AGENT_MAX_CONNECTIONS: count(1_000_000).default(512),
  /** Sustained requests per second per task / per agent, with a burst of one second's worth (429 beyond). */
  BULKHEAD_TASK_REQUESTS_PER_SECOND: count(10_000_000).default(1000),
  BULKHEAD_AGENT_REQUESTS_PER_SECOND: count(10_000_000).default(2000),
  /** Refusals recorded one by one per client and reason per window; the rest become one aggregate event. */
  BULKHEAD_REFUSAL_AUDIT_BURST: count(100_000).default(20),
  BULKHEAD_REFUSAL_AUDIT_WINDOW_SECONDS: seconds(3600).default(10),
  /** Set by the launcher when it restarts a crashed worker (reported in /readyz and metrics). */
  BULKHEAD_WORKER_RESTARTS: z.coerce.number().int().min(0).default(0),
  BULKHEAD_WORKER_LAST_EXIT: optionalString,
  BULKHEAD_WORKER_LAST_EXIT_AT: optionalString,
  /** Retired credential secrets redacted: only those younger than this, the newest this many per service. */
  ...retiredSecretsEnv,
}).refine((env) => env.BULKHEAD_AUDIT_WAL_HARD_LIMIT_MB > env.BULKHEAD_AUDIT_WAL_SOFT_LIMIT_MB, {
  path: ["BULKHEAD_AUDIT_WAL_HARD_LIMIT_MB"],
  message: "must be larger than BULKHEAD_AUDIT_WAL_SOFT_LIMIT_MB",
}).superRefine((env, ctx) => {
  // The worker's own listeners (the launcher also checks them against the dashboard's and the database's).
  for (const { variable, message } of listenerClashes(workerListeners(env))) ctx.addIssue({ code: "custom", path: [variable], message });
});

function workerListeners(env: { BULKHEAD_PROXY_HOST: string; BULKHEAD_PROXY_PORT: number; BULKHEAD_TRANSPARENT_HOST: string; BULKHEAD_TRANSPARENT_HTTP_PORT: number; BULKHEAD_TRANSPARENT_TLS_PORT: number; BULKHEAD_WORKER_HEALTH_HOST: string; BULKHEAD_WORKER_HEALTH_PORT: number }): Listener[] {
  return [
    { variable: "BULKHEAD_PROXY_PORT", host: env.BULKHEAD_PROXY_HOST, port: env.BULKHEAD_PROXY_PORT },
    { variable: "BULKHEAD_TRANSPARENT_HTTP_PORT", host: env.BULKHEAD_TRANSPARENT_HOST, port: env.BULKHEAD_TRANSPARENT_HTTP_PORT },
    { variable: "BULKHEAD_TRANSPARENT_TLS_PORT", host: env.BULKHEAD_TRANSPARENT_HOST, port: env.BULKHEAD_TRANSPARENT_TLS_PORT },
    { variable: "BULKHEAD_WORKER_HEALTH_PORT", host: env.BULKHEAD_WORKER_HEALTH_HOST, port: env.BULKHEAD_WORKER_HEALTH_PORT },
  ];
}

export interface WorkerConfig {
  proxyHost: string;
  proxyPort: number;
  transparentHost: string;
  transparentHttpPort: number;
  transparentTlsPort: number;
  healthHost: string;
  healthPort: number;
  /** Names the health endpoint answers to besides IP addresses and localhost: the listed ones and healthHost when it is a name. */
  healthAllowedHostNames: string[];
  appPort: number;
  reconcileIntervalMs: number;
  maxBodyBytes: number;
  maxHeaderBytes: number;
  clientTimeoutMs: number;
  upstreamConnectTimeoutMs: number;
  upstreamTimeoutMs: number;
  holdTimeoutMs: number;
  policyStaleLimitMs: number;
  taskMaxPendingHolds: number;
  tunnelIdleTimeoutMs: number;
  tunnelMaxLifetimeMs: number;
  upstreamCaFile: string | undefined;
  auditWalDir: string | undefined;
  auditDurability: "group" | "strict";
  auditFsyncIntervalMs: number;
  auditWalSoftLimitBytes: number;
  auditWalHardLimitBytes: number;
  auditSpoolDir: string | undefined;
  workerId: string;
  maxConnections: number;
  /** Unauthenticated connections per source address on a listener (BULKHEAD_SOURCE_MAX_CONNECTIONS). */
  sourceMaxConnections: number;
  limits: ClientLimitsConfig;
  refusalAudit: { burst: number; windowMs: number };
  /** What the launcher said about earlier runs of this worker slot. */
  restarts: { count: number; lastExit: string | null; lastExitAt: string | null };
  /** Retired credential secrets redacted: younger than retentionDays, the newest perService per service. */
  retiredSecrets: RetiredSecretsConfig;
}

export interface ClientLimitsConfig {
  taskMaxConnections: number;
  agentMaxConnections: number;
  taskRequestsPerSecond: number;
  agentRequestsPerSecond: number;
}

/** The worker's listening ports (proxy, transparent, health) and the dashboard's, as the worker is configured. */
export function workerListenPorts(source: Record<string, string | undefined> = process.env): number[] {
  const env = parseEnv(z.object(listenPorts), source);
  return [env.BULKHEAD_PROXY_PORT, env.BULKHEAD_TRANSPARENT_HTTP_PORT, env.BULKHEAD_TRANSPARENT_TLS_PORT, env.BULKHEAD_WORKER_HEALTH_PORT, env.BULKHEAD_APP_PORT];
}

/**
 * Where an agent sends its requests (the explicit proxy), as `host:port` for a proxy URL, read from
 * the same variables the worker reads; a wildcard listen address becomes this machine's name. Null
 * when they are invalid (the worker refuses to start then, and says why).
 */
export function agentProxyAddress(source: Record<string, string | undefined> = process.env): string | null {
  try {
    const env = parseEnv(z.object({ BULKHEAD_PROXY_HOST: host.default("127.0.0.1"), BULKHEAD_PROXY_PORT: listenPorts.BULKHEAD_PROXY_PORT }), source);
    const h = env.BULKHEAD_PROXY_HOST === "0.0.0.0" || env.BULKHEAD_PROXY_HOST === "::" ? hostname() : env.BULKHEAD_PROXY_HOST;
    return `${isIP(h) === 6 ? `[${h}]` : h}:${env.BULKHEAD_PROXY_PORT}`;
  } catch {
    return null;
  }
}

export function loadWorkerConfig(source: Record<string, string | undefined> = process.env): WorkerConfig {
  const env = parseEnv(workerSchema, source);
  return {
    proxyHost: env.BULKHEAD_PROXY_HOST,
    proxyPort: env.BULKHEAD_PROXY_PORT,
    transparentHost: env.BULKHEAD_TRANSPARENT_HOST,
    transparentHttpPort: env.BULKHEAD_TRANSPARENT_HTTP_PORT,
    transparentTlsPort: env.BULKHEAD_TRANSPARENT_TLS_PORT,
    healthHost: env.BULKHEAD_WORKER_HEALTH_HOST,
    healthPort: env.BULKHEAD_WORKER_HEALTH_PORT,
    healthAllowedHostNames: [...env.BULKHEAD_WORKER_HEALTH_ALLOWED_HOSTS, ...(isIP(env.BULKHEAD_WORKER_HEALTH_HOST) === 0 ? [env.BULKHEAD_WORKER_HEALTH_HOST] : [])],
    appPort: env.BULKHEAD_APP_PORT,
    reconcileIntervalMs: Math.round(env.BULKHEAD_POLICY_RECONCILE_SECONDS * 1000),
    maxBodyBytes: env.BULKHEAD_MAX_BODY_BYTES,
    maxHeaderBytes: env.BULKHEAD_MAX_HEADER_BYTES,
    clientTimeoutMs: Math.round(env.BULKHEAD_CLIENT_TIMEOUT_SECONDS * 1000),
    upstreamConnectTimeoutMs: Math.round(env.BULKHEAD_UPSTREAM_CONNECT_TIMEOUT_SECONDS * 1000),
    upstreamTimeoutMs: Math.round(env.BULKHEAD_UPSTREAM_TIMEOUT_SECONDS * 1000),
    holdTimeoutMs: Math.round(env.BULKHEAD_HOLD_TIMEOUT_SECONDS * 1000),
    policyStaleLimitMs: Math.round(env.BULKHEAD_POLICY_STALE_LIMIT_SECONDS * 1000),
    taskMaxPendingHolds: env.BULKHEAD_TASK_MAX_PENDING_HOLDS,
    tunnelIdleTimeoutMs: Math.round(env.BULKHEAD_TUNNEL_IDLE_SECONDS * 1000),
    tunnelMaxLifetimeMs: Math.round(env.BULKHEAD_TUNNEL_MAX_LIFETIME_SECONDS * 1000),
    upstreamCaFile: env.BULKHEAD_UPSTREAM_CA_FILE,
    auditWalDir: env.BULKHEAD_AUDIT_WAL_DIR,
    auditDurability: env.BULKHEAD_AUDIT_DURABILITY,
    auditFsyncIntervalMs: env.BULKHEAD_AUDIT_FSYNC_INTERVAL_MS,
    auditWalSoftLimitBytes: env.BULKHEAD_AUDIT_WAL_SOFT_LIMIT_MB * 1024 * 1024,
    auditWalHardLimitBytes: env.BULKHEAD_AUDIT_WAL_HARD_LIMIT_MB * 1024 * 1024,
    auditSpoolDir: env.BULKHEAD_AUDIT_SPOOL_DIR,
    workerId: env.BULKHEAD_WORKER_ID,
    maxConnections: env.BULKHEAD_MAX_CONNECTIONS,
    sourceMaxConnections: env.BULKHEAD_SOURCE_MAX_CONNECTIONS,
    limits: {
      taskMaxConnections: env.BULKHEAD_TASK_MAX_CONNECTIONS,
      agentMaxConnections: env.BULKHEAD_AGENT_MAX_CONNECTIONS,
      taskRequestsPerSecond: env.BULKHEAD_TASK_REQUESTS_PER_SECOND,
      agentRequestsPerSecond: env.BULKHEAD_AGENT_REQUESTS_PER_SECOND,
    },
    refusalAudit: { burst: env.BULKHEAD_REFUSAL_AUDIT_BURST, windowMs: Math.round(env.BULKHEAD_REFUSAL_AUDIT_WINDOW_SECONDS * 1000) },
    restarts: { count: env.BULKHEAD_WORKER_RESTARTS, lastExit: env.BULKHEAD_WORKER_LAST_EXIT ?? null, lastExitAt: env.BULKHEAD_WORKER_LAST_EXIT_AT ?? null },
    retiredSecrets: retiredSecretsConfigOf(env),
  };
}
