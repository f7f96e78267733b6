import { once } from "node:events";
import { readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { approvalSealKey } from "@/lib/approvals/seal";
import type { Db } from "@/lib/db/client";
import type { Logger } from "@/lib/log";
import type { WorkerConfig } from "@/lib/config/worker";
import type { BoxKeyPair } from "@/lib/crypto/sealed-box";
import { loadSqlParser } from "@/lib/semantics/sql";
import { expireTasks } from "@/lib/tasks/tasks";
import { loadCertificateAuthority, ensureCertificateAuthority } from "@/lib/tls/ca-store";
import { loadCredentialsForInjection } from "@/lib/vault/load-for-injection";
import { loadRetiredSecrets } from "@/lib/vault/retired-secrets";
import { PostgresHoldGate } from "../approvals/hold-gate";
import type { EnforcementCore } from "../core";
import type { Metrics } from "../metrics";
import { ownAddressChecker } from "@/lib/net/own-addresses";
import type { Lookup } from "@/lib/net/resolve";
import { LeafCertificateCache } from "../tls/leaf-cache";
import { McpSessions } from "./mcp-sessions";
import { LeafBudget } from "../isolation/leaf-budget";
import { ConnectionRegistry } from "./connections";
import { ServiceDestinations } from "./destinations";
import { EnforcementState, type EnforcementExtras } from "./enforcement-state";
import type { PolicyVersion } from "../policy/snapshot";
import { admitBySource, createExplicitListener, guardListener, refuseRaw, type ListenerDeps, type ListenerLimits } from "./explicit-listener";
import { SourceShare, type SourceShareStats } from "./source-share";
import { ProxyRefusal } from "./errors";
import { Forwarder } from "./forwarder";
import type { HandlerDeps } from "./handler";
import { cancelReasonFor, KillSwitch } from "./kill-switch";
import { ClientLimits } from "./limits";
import { admitWithinCap, refuseOverConnectionCap } from "../isolation/connection-cap";
import { SandboxConnections } from "../isolation/connections";
import { Pipeline } from "./pipeline";
import { RefusalAudit } from "./refusal-audit";
import { Tunnels } from "./tunnels";
import type { AuditSink } from "./types";

/** The status class label of a forwarded request, without building the string per request. */
const STATUS_CLASSES = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx"];

export interface ProxyServiceOptions {
  config: WorkerConfig;
  db: Db;
  databaseUrl: string;
  /** Opens credentials and the CA key (BULKHEAD_WORKER_KEY). */
  workerKey: BoxKeyPair;
  core: EnforcementCore;
  audit: AuditSink;
  log: Logger;
  metrics?: Metrics;
  /** DNS; tests inject one that maps test names to loopback. */
  lookup?: Lookup;
  /** This worker's identity across restarts (its audit log's id), recorded on the requests it holds. */
  holderId?: string;
  /** New leaf certificates a sandbox may have made a minute on the transparent TLS listener (BULKHEAD_SANDBOX_LEAVES_PER_MINUTE; default 120). */
  leavesPerMinute?: number;
}

/** What layer 3's sandbox listener and resolver share with the proxy (one pipeline, one DNS cache). */
export interface ProxyParts {
  pipeline: Pipeline;
  handler: HandlerDeps & ListenerDeps;
  connections: ConnectionRegistry;
  destinations: ServiceDestinations;
  /** The enforcement state in force (its registry, its CA's leaves...). */
  state: () => EnforcementState | null;
  limits: ListenerLimits;
  /**
   * Connection caps: `listener` per listening socket (BULKHEAD_MAX_CONNECTIONS), `perTask` the
   * most one task may hold (BULKHEAD_TASK_MAX_CONNECTIONS), which bounds a sandbox's connections
   * from the moment they are accepted, before anything on them is authenticated.
   */
  connectionCaps: { listener: number; perTask: number };
  /** Bulkhead's own ports (never destinations); isolation adds its listener's. */
  deniedPorts: number[];
}

export interface ProxyService {
  parts: ProxyParts;
  explicit: http.Server;
  transparentHttp: net.Server;
  transparentTls: net.Server;
  status(): { credentials: number; credentialError: string | null; pendingHolds: number; openConnections: number; inFlight: number; leafCache: unknown; limits: unknown; refusalAudit: unknown; sourceShare: SourceShareStats };
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

  // The interception CA first: every enforcement state carries the leaves it issues.
  await ensureCertificateAuthority(db, o.workerKey);
  const ca = await loadCertificateAuthority(db, o.workerKey);
  const firstLeaves = new LeafCertificateCache({ ca: { certPem: ca.certPem, privateKey: ca.privateKey } });

  // One immutable state per policy version, swapped whole (proxy/enforcement-state.ts).
  let state: EnforcementState | null = null;
  const current = () => state;
  const extras = (): EnforcementExtras => state ?? { credentials: new Map(), credentialError: null, leaves: firstLeaves, caId: ca.id };
  let credentialLoads = 0;
  let credentialsApplied = 0;
  const refresh = async (snapshot: PolicyVersion, initial = false) => {
    // The new version is enforced at once, with the credentials and CA in force until now.
    state = new EnforcementState(snapshot, extras(), log, state ?? undefined);
    // A task, agent or token applied row by row leaves the credentials as they were.
    if (!initial && snapshot.changed !== "all" && !snapshot.changed.has("credentials") && state.credentialError === null) return;
    const load = ++credentialLoads;
    let loaded: Partial<EnforcementExtras>;
    try {
      // The credentials first, then the retired secrets: a rotation committed in between is then
      // seen with its old secret current and retired at once (redacted twice), never with neither.
      const unusable: string[] = [];
      const credentials = await loadCredentialsForInjection(db, o.workerKey, unusable);
      const retired = await loadRetiredSecrets(db, o.workerKey, config.retiredSecrets);
      // A credential whose template this version refuses is left out (never injected), said in
      // health and the log; the others are injected (the whole set was lost to one before).
      if (unusable.length > 0) log.error({ unusable }, "credentials left out: their header template cannot be used; change or delete them");
      loaded = { credentials, retired, credentialError: unusable.length > 0 ? unusable.join("; ") : null };
    } catch (error) {
      // Keep injecting what was loaded before; say so loudly.
      const message = error instanceof Error ? error.message : String(error);
      log.error({ err: message }, "credentials could not be loaded; keeping the previous set");
      loaded = { credentialError: message };
    }
    // A slower, older load never replaces a newer one.
    if (load < credentialsApplied || !state) return;
    credentialsApplied = load;
    state = state.with(loaded);
  };
  // Every client connection by task, agent and jti; one whose owner is already revoked is closed.
  // Each source's share of a listener before its connections authenticate (source-share.ts).
  const sourceShare = new SourceShare(config.sourceMaxConnections);
  const shareGuard = { share: sourceShare, onEvicted: (listener: string) => o.metrics?.connectionsRefused.inc({ listener, reason: "source_connection_limit" }) };
  const connections = new ConnectionRegistry({ revoked: (owner) => core.tokens.revoked(owner), onOwned: (socket) => sourceShare.authenticated(socket) });
  let killSwitch: KillSwitch | null = null;
  // Right after the token verifier has taken the new snapshot, before anything slower.
  core.policy.onSnapshot(() => void killSwitch?.sweep());
  // A load that failed after the verifier took its revocations (verifier first, then what can
  // fail): what new requests are refused, open connections and held requests are too.
  core.policy.onLoadFailed(() => void killSwitch?.sweep());
  core.policy.onSnapshot((snapshot) => refresh(snapshot));
  const first = core.policy.current();
  if (first) await refresh(first, true);

  core.policy.onSnapshot(async (snapshot) => {
    if (!snapshot.caId || snapshot.caId === state?.caId) return;
    // The CA was rotated: new leaves come from the new CA at once, in a new state.
    try {
      const next = await loadCertificateAuthority(db, o.workerKey);
      const leaves = new LeafCertificateCache({ ca: { certPem: next.certPem, privateKey: next.privateKey } });
      if (state) state = state.with({ leaves, caId: next.id });
      log.info({ caId: next.id }, "interception CA rotated; new leaf certificates use it");
    } catch (error) {
      log.error({ err: error instanceof Error ? error.message : String(error) }, "the rotated interception CA could not be loaded; still using the previous one");
    }
  });

  const holds = new PostgresHoldGate(db, o.databaseUrl, log, config.holdTimeoutMs, {
    maxPendingPerTask: config.taskMaxPendingHolds,
    holder: o.holderId,
    sealKey: approvalSealKey(o.workerKey.privateKey),
    revoked: (authority) => {
      const why = core.tokens.revoked(authority);
      return why ? cancelReasonFor(why) : null;
    },
  });
  await holds.start();
  killSwitch = new KillSwitch({
    connections,
    holds,
    revoked: (authority, now) => core.tokens.revoked(authority, now),
    nextExpiry: (now) => core.tokens.nextTaskExpiry(now),
    recordExpiries: (now) => expireTasks(db, now),
    log,
  });
  killSwitch.sweep();
  // Bulkhead's own ports are never destinations on Bulkhead's own addresses; the listeners'
  // actual ports are added once bound.
  // PostgreSQL's too: the database's port, on this machine's addresses (a service declared
  // internal on localhost with that port tunnelled an agent to the audit log's server).
  const deniedPorts = [config.proxyPort, config.healthPort, config.transparentHttpPort, config.transparentTlsPort, config.appPort, databasePort(o.databaseUrl)].filter((p) => p > 0);
  const isOwnAddress = ownAddressChecker([config.proxyHost, config.transparentHost, config.healthHost]);
  const onDecision = (outcome: string, effect: string | null) => o.metrics?.decisions.inc({ outcome, effect: effect ?? "none" });
  const refusals = new RefusalAudit({ sink: o.audit, log, burst: config.refusalAudit.burst, windowMs: config.refusalAudit.windowMs, onDecision });
  const clientLimits = new ClientLimits(config.limits);
  const destinations = new ServiceDestinations(deniedPorts, o.lookup, isOwnAddress);
  // One record of which task opened each MCP session, read by the pipeline and written from the answers.
  const mcpSessions = new McpSessions();
  const pipeline = new Pipeline({
    mcpSessions,
    policyTooStale: () => core.policy.unconfirmedForMs() > config.policyStaleLimitMs,
    state: current,
    destinations,
    tokens: core.tokens,
    audit: o.audit,
    holds,
    connections,
    limits: clientLimits,
    refusals,
    observe: (stage, seconds) => o.metrics?.stage.observe(seconds, stage),
    onDecision,
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
  let inFlight = 0;
  const handler: HandlerDeps & { refusals: RefusalAudit } = {
    pipeline,
    refusals,
    inFlight: { begin: () => void inFlight++, end: () => void inFlight-- },
    forwarder,
    audit: o.audit,
    log,
    connections,
    maxBodyBytes: config.maxBodyBytes,
    clientBodyTimeoutMs: config.clientTimeoutMs,
    clientStallTimeoutMs: config.upstreamTimeoutMs,
    onCredentialUsed: (id) => used.add(id),
    mcpSessions,
    onForwarded: (status, seconds) => o.metrics?.request.observe(seconds, status ? STATUS_CLASSES[Math.floor(status / 100)] ?? `${Math.floor(status / 100)}xx` : "failed"),
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
    state: current,
    limits,
    log,
    connectTimeoutMs: config.upstreamConnectTimeoutMs,
    connections,
    tunnelIdleTimeoutMs: config.tunnelIdleTimeoutMs,
    tunnelMaxLifetimeMs: config.tunnelMaxLifetimeMs,
    leafBudget: new LeafBudget(o.leavesPerMinute ?? 120),
  });
  const explicit = createExplicitListener(handler, limits, tunnels.onConnect);
  const sandboxIdentity = (socket: net.Socket) => ({ kind: "sandbox" as const, sourceAddress: (socket.remoteAddress ?? "").replace(/^::ffff:/, "") });
  // A bound (external) sandbox holds at most the task's connection limit here, counted from the
  // accept (isolation/connection-cap.ts says why); unbound clients are refused at their request.
  const sandboxOpen = new SandboxConnections();
  const acceptTransparent = (socket: net.Socket, scheme: "http" | "https") => {
    const identity = sandboxIdentity(socket);
    const binding = current()?.snapshot.sandboxBindings.get(identity.sourceAddress);
    if (binding) {
      const admitted = admitWithinCap(sandboxOpen, binding, socket, config.limits.taskMaxConnections);
      if (!admitted.admitted) return refuseOverConnectionCap(refusals, current(), socket, binding, { client: identity.sourceAddress, open: admitted.open, cap: config.limits.taskMaxConnections });
      // Its address says whose it is: a refusal before its first request (a TLS handshake that
      // fails, a request that does not parse) is audited under the sandbox's task and agent.
      const agentId = current()?.snapshot.tasks.get(binding.taskId)?.agentId;
      if (agentId) connections.presume(socket, { taskId: binding.taskId, agentId, jti: null });
    } else if (scheme === "http") {
      // No sandbox owns the address: it gets its 407 at its request, and meanwhile holds no more
      // than any other source's share of the listener.
      admitBySource(shareGuard, handler, "transparent", socket, identity.sourceAddress);
    } else {
      // No sandbox owns the address, and nothing a TLS client sends can change that (the
      // transparent listeners know clients by address only): refused before the handshake, so a
      // stranger makes the worker mint no leaf for its SNI nor fill the leaf cache with them.
      // Plain HTTP gets its 407 at its request, as every unknown address does.
      // Closed at once, audited after (a flood of them is aggregated, refusal-audit.ts).
      socket.destroy();
      const refusal = new ProxyRefusal("identity", "sandbox_unknown", "this address belongs to no sandbox");
      refuseRaw(handler, socket, refusal, { listener: "transparent", client: identity.sourceAddress }, false).catch(() => undefined);
      return;
    }
    tunnels.accept(socket, { listener: "transparent", scheme, authority: null, identity, connection: socket });
  };
  // noDelay, as node:http's servers have it (sandbox-listener.ts says why).
  // allowHalfOpen: a client that half-closes after its request still gets the answer (the HTTP
  // server finishes it and then closes: createProxyServer).
  const transparentHttp = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => acceptTransparent(socket, "http"));
  const transparentTls = net.createServer({ noDelay: true }, (socket) => acceptTransparent(socket, "https"));

  await listen(explicit, config.proxyPort, config.proxyHost, "BULKHEAD_PROXY_PORT");
  await listen(transparentHttp, config.transparentHttpPort, config.transparentHost, "BULKHEAD_TRANSPARENT_HTTP_PORT");
  await listen(transparentTls, config.transparentTlsPort, config.transparentHost, "BULKHEAD_TRANSPARENT_TLS_PORT");
  for (const [server, listener] of [[explicit, "explicit"], [transparentHttp, "transparent"], [transparentTls, "transparent"]] as const) {
    // A transparent listener counts unbound sources itself (acceptTransparent); a bound one is a
    // sandbox, held to its own cap.
    guardListener(server, handler, listener, config.maxConnections, listener === "explicit" ? shareGuard : undefined);
    const bound = (server.address() as net.AddressInfo).port;
    if (!deniedPorts.includes(bound)) deniedPorts.push(bound);
  }
  o.metrics?.gauges("bulkhead_pending_holds", "Requests waiting for a human decision", () => holds.pending());
  o.metrics?.gauges("bulkhead_open_connections", "Client connections and tunnels registered under a task", () => connections.size);

  return {
    parts: { pipeline, handler, connections, destinations, state: current, limits, connectionCaps: { listener: config.maxConnections, perTask: config.limits.taskMaxConnections }, deniedPorts },
    explicit,
    transparentHttp,
    transparentTls,
    status: () => ({
      credentials: state?.credentials.size ?? 0,
      credentialError: state?.credentialError ?? null,
      pendingHolds: holds.pending(),
      openConnections: connections.size,
      inFlight,
      leafCache: (state?.leaves ?? firstLeaves).stats(),
      limits: clientLimits.stats(),
      refusalAudit: refusals.stats(),
      sourceShare: sourceShare.stats(),
    }),
    async close() {
      killSwitch?.stop();
      // Held requests first: answered and cancelled at once, not waited out below (a hold outlasts any drain).
      holds.stop();
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
      clientLimits.close();
      await refusals.close();
      await holds.close();
      await forwarder.close();
    },
  };
}

/** The port of the worker's database URL (PostgreSQL's 5432 when it names none), or 0 when it does not parse. */
function databasePort(url: string): number {
  try {
    const parsed = new URL(url);
    return parsed.port === "" ? 5432 : Number(parsed.port);
  } catch {
    return 0;
  }
}
