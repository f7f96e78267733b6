import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { Db } from "@/lib/db/client";
import type { Logger } from "@/lib/log";
import type { WorkerConfig } from "@/lib/config/worker";
import { loadSqlParser } from "@/lib/semantics/sql";
import { loadCertificateAuthority, ensureCertificateAuthority } from "@/lib/tls/ca-store";
import { loadCredentialsForInjection, type InjectableCredential } from "@/lib/vault/load-for-injection";
import { PostgresHoldGate } from "../approvals/hold-gate";
import type { EnforcementCore } from "../core";
import type { Metrics } from "../metrics";
import type { Lookup } from "../net/resolve";
import { LeafCertificateCache } from "../tls/leaf-cache";
import { ServiceDestinations } from "./destinations";
import { EnforcementView } from "./enforcement-view";
import { createExplicitListener, type ListenerLimits } from "./explicit-listener";
import { Forwarder } from "./forwarder";
import type { HandlerDeps } from "./handler";
import { Pipeline } from "./pipeline";
import { Tunnels } from "./tunnels";
import type { AuditSink } from "./types";

export interface ProxyServiceOptions {
  config: WorkerConfig;
  db: Db;
  databaseUrl: string;
  masterKey: Buffer;
  core: EnforcementCore;
  audit: AuditSink;
  log: Logger;
  metrics?: Metrics;
  /** DNS; tests inject one that maps test names to loopback. */
  lookup?: Lookup;
}

/** What layer 3's sandbox listener and resolver share with the proxy (one pipeline, one DNS cache). */
export interface ProxyParts {
  pipeline: Pipeline;
  handler: HandlerDeps;
  destinations: ServiceDestinations;
  leafCache: () => LeafCertificateCache;
  view: () => EnforcementView | null;
  limits: ListenerLimits;
  /** Bulkhead's own ports (never destinations); isolation adds its listener's. */
  deniedPorts: number[];
}

export interface ProxyService {
  parts: ProxyParts;
  explicit: http.Server;
  transparentHttp: net.Server;
  transparentTls: net.Server;
  status(): { credentials: number; credentialError: string | null; pendingHolds: number; leafCache: unknown };
  close(): Promise<void>;
}

async function listen(server: net.Server, port: number, host: string, variable: string): Promise<void> {
  server.listen(port, host);
  try {
    await once(server, "listening");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === "EADDRINUSE" ? `Port ${port} (${variable}) is already in use.` : `Cannot listen on ${host}:${port} (${variable}): ${String(error)}`);
  }
}

/** Builds the proxy from its parts and starts the explicit and transparent listeners. */
export async function startProxyService(o: ProxyServiceOptions): Promise<ProxyService> {
  const { config, db, log, core } = o;
  // Until the SQL parser is ready SQL counts as unparseable (irreversible); wait for it.
  await loadSqlParser();

  let view: EnforcementView | null = null;
  let credentials: ReadonlyMap<string, InjectableCredential> = new Map();
  let credentialError: string | null = null;
  const refresh = async (snapshot: Parameters<Parameters<typeof core.policy.onSnapshot>[0]>[0]) => {
    view = new EnforcementView(snapshot, log, view ?? undefined);
    try {
      credentials = await loadCredentialsForInjection(db, o.masterKey);
      credentialError = null;
    } catch (error) {
      // Keep injecting what was loaded before; say so loudly.
      credentialError = error instanceof Error ? error.message : String(error);
      log.error({ err: credentialError }, "credentials could not be loaded; keeping the previous set");
    }
  };
  core.policy.onSnapshot(refresh);
  const current = core.policy.current();
  if (current) await refresh(current);

  await ensureCertificateAuthority(db, o.masterKey);
  const ca = await loadCertificateAuthority(db, o.masterKey);
  const leafCache = new LeafCertificateCache({ ca: { certPem: ca.certPem, privateKey: ca.privateKey } });
  let caId = ca.id;
  core.policy.onSnapshot(async (snapshot) => {
    if (!snapshot.caId || snapshot.caId === caId) return;
    // The CA was rotated: new leaves come from the new CA at once.
    try {
      const next = await loadCertificateAuthority(db, o.masterKey);
      leafCache.replaceCertificateAuthority({ certPem: next.certPem, privateKey: next.privateKey });
      caId = next.id;
      log.info({ caId }, "interception CA rotated; new leaf certificates use it");
    } catch (error) {
      log.error({ err: error instanceof Error ? error.message : String(error) }, "the rotated interception CA could not be loaded; still using the previous one");
    }
  });

  const holds = new PostgresHoldGate(db, o.databaseUrl, log, config.holdTimeoutMs);
  await holds.start();
  // Bulkhead's own ports are never destinations; the listeners' actual ports are added once bound.
  const deniedPorts = [config.proxyPort, config.healthPort, config.transparentHttpPort, config.transparentTlsPort, config.appPort].filter((p) => p > 0);
  const destinations = new ServiceDestinations(deniedPorts, o.lookup);
  const pipeline = new Pipeline({
    view: () => view,
    destinations,
    tokens: core.tokens,
    audit: o.audit,
    holds,
    observe: (stage, seconds) => o.metrics?.stage.observe({ stage }, seconds),
    onDecision: (outcome, effect) => o.metrics?.decisions.inc({ outcome, effect: effect ?? "none" }),
  });
  const forwarder = new Forwarder(
    {
      connectTimeoutMs: config.upstreamConnectTimeoutMs,
      headersTimeoutMs: config.upstreamTimeoutMs,
      bodyTimeoutMs: config.upstreamTimeoutMs,
      keepAliveTimeoutMs: 30_000,
      connectionsPerPool: 64,
    },
    config.upstreamCaFile ? readFileSync(config.upstreamCaFile, "utf8") : undefined,
  );
  // When each credential was last injected, written at most every 30 s (metadata for people).
  const used = new Set<string>();
  const usageTimer = setInterval(() => {
    if (used.size === 0) return;
    const ids = [...used];
    used.clear();
    void db.credential.updateMany({ where: { id: { in: ids } }, data: { lastUsedAt: new Date() } }).catch(() => ids.forEach((id) => used.add(id)));
  }, 30_000);
  usageTimer.unref();
  const handler: HandlerDeps = {
    pipeline,
    forwarder,
    audit: o.audit,
    credentials: () => credentials,
    log,
    maxBodyBytes: config.maxBodyBytes,
    clientBodyTimeoutMs: config.clientTimeoutMs,
    onCredentialUsed: (id) => used.add(id),
    onForwarded: (status, seconds) => o.metrics?.request.observe({ status_class: status ? `${Math.floor(status / 100)}xx` : "failed" }, seconds),
  };
  const limits: ListenerLimits = {
    maxHeaderBytes: config.maxHeaderBytes,
    requestTimeoutMs: config.clientTimeoutMs,
    headersTimeoutMs: Math.min(config.clientTimeoutMs, 20_000),
    keepAliveTimeoutMs: 30_000,
  };
  const tunnels = new Tunnels({
    handler,
    pipeline,
    leafCache: () => leafCache,
    registry: () => view?.registry ?? null,
    limits,
    log,
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
  });
  const explicit = createExplicitListener(handler, limits, tunnels.onConnect);
  const sandboxIdentity = (socket: net.Socket) => ({ kind: "sandbox" as const, sourceAddress: (socket.remoteAddress ?? "").replace(/^::ffff:/, "") });
  const transparentHttp = net.createServer((socket) => tunnels.accept(socket, { listener: "transparent", scheme: "http", authority: null, identity: sandboxIdentity(socket) }));
  const transparentTls = net.createServer((socket) => tunnels.accept(socket, { listener: "transparent", scheme: "https", authority: null, identity: sandboxIdentity(socket) }));

  await listen(explicit, config.proxyPort, config.proxyHost, "BULKHEAD_PROXY_PORT");
  await listen(transparentHttp, config.transparentHttpPort, config.transparentHost, "BULKHEAD_TRANSPARENT_HTTP_PORT");
  await listen(transparentTls, config.transparentTlsPort, config.transparentHost, "BULKHEAD_TRANSPARENT_TLS_PORT");
  for (const server of [explicit, transparentHttp, transparentTls]) {
    const bound = (server.address() as net.AddressInfo).port;
    if (!deniedPorts.includes(bound)) deniedPorts.push(bound);
  }
  o.metrics?.gauges("bulkhead_pending_holds", "Requests waiting for a human decision", () => holds.pending());

  return {
    parts: { pipeline, handler, destinations, leafCache: () => leafCache, view: () => view, limits, deniedPorts },
    explicit,
    transparentHttp,
    transparentTls,
    status: () => ({ credentials: credentials.size, credentialError, pendingHolds: holds.pending(), leafCache: leafCache.stats() }),
    async close() {
      // Stop accepting, let in-flight requests finish (bounded), then release upstream pools.
      const closing = [explicit, transparentHttp, transparentTls, tunnels.inner].map(
        (s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())),
      );
      explicit.closeIdleConnections();
      tunnels.inner.closeIdleConnections();
      await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 10_000).unref())]);
      explicit.closeAllConnections();
      tunnels.inner.closeAllConnections();
      clearInterval(usageTimer);
      await holds.close();
      await forwarder.close();
    },
  };
}
