/**
 * Layer 3 in the worker: the sandbox listener and resolver on the gateway addresses, the
 * connection registry that closes a sandbox's connections when its task or binding goes, and the
 * reader of the fence's drop counters. Started by the worker when isolation is on (or `auto` and
 * possible); the worker itself never creates namespaces.
 */
import path from "node:path";
import type { IsolationConfig } from "@/lib/config/isolation";
import type { Db } from "@/lib/db/client";
import type { Logger } from "@/lib/log";
import type { PolicyVersion } from "../policy/snapshot";
import type { PolicyStore } from "../policy/store";
import type { ProxyParts } from "../proxy/service";
import type { AuditSink } from "../proxy/types";
import { SandboxActivity } from "./activity";
import { ResolverMemory } from "./answers";
import { SandboxConnections } from "./connections";
import { hasNetAdmin } from "./exec";
import { COUNTER_MS, counterReadDue } from "./counters";
import { DropReader } from "./drop-reader";
import { ensureFence, readDrops } from "./fence";
import { refuseOverConnectionCap } from "./connection-cap";
import { removeFenceWithoutSandboxes } from "./launcher";
import { LeafBudget } from "./leaf-budget";
import { originalDestination } from "./original-destination";
import { SandboxListener } from "./sandbox-listener";
import { SandboxResolver } from "./resolver";
import { ToolHost } from "./tool-host";

export interface IsolationStatus {
  enabled: boolean;
  reason: string;
  connections: number;
  fenceCounters: boolean;
  lastCounterError: string | null;
}

export interface IsolationService {
  status(): IsolationStatus;
  /** True when the worker's current snapshot binds `address` to a live sandbox. */
  knows(address: string): boolean;
  /** Open connections of the sandbox bound to `address` (0 when none is bound). */
  openConnections(address: string): number;
  close(): Promise<void>;
}

export interface IsolationOptions {
  config: IsolationConfig;
  parts: ProxyParts;
  policy: PolicyStore;
  audit: AuditSink;
  db: Db;
  log: Logger;
  upstreamConnectTimeoutMs: number;
  /** BULKHEAD_TUNNEL_MAX_LIFETIME_SECONDS, in ms: no sandbox connection stays open longer. */
  tunnelMaxLifetimeMs: number;
  /** The worker's data folder: the fence's audited drop counts are kept there across restarts. */
  stateDir: string;
}

const SWEEP_MS = 200;
/** How long a stopping worker waits for its last read of the fence's drop counters. */
const FINAL_READ_MS = 3000;

function disabled(reason: string): IsolationService {
  return { status: () => ({ enabled: false, reason, connections: 0, fenceCounters: false, lastCounterError: null }), knows: () => false, openConnections: () => 0, close: async () => undefined };
}

export async function startIsolation(o: IsolationOptions): Promise<IsolationService> {
  const { config, log } = o;
  if (config.mode === "off") return disabled("BULKHEAD_ISOLATION=off");
  const privileged = process.platform === "linux" && hasNetAdmin();
  if (config.mode === "auto" && !privileged) {
    log.info("network isolation is off: the worker is not privileged (set BULKHEAD_ISOLATION=on to insist, with the fence installed by `bulkhead sandbox run`)");
    return disabled("not privileged (BULKHEAD_ISOLATION=auto)");
  }
  // Installing the fence also puts the gateway addresses on `lo`, which the listener binds to.
  if (privileged) await ensureFence(config);

  const gateways = [config.gatewayV4, config.gatewayV6];
  o.parts.deniedPorts.push(config.listenPort, config.dnsPort);
  const memory = new ResolverMemory();
  const connections = new SandboxConnections();
  const current = () => o.policy.current();
  // Blocked escape attempts: deltas of the fence's per-flow counters (they need CAP_NET_ADMIN to
  // read), attributed to the sandbox that sent them even when it ended before the read.
  let lastCounterError: string | null = null;
  let lastRead = { at: Date.now(), bound: false };
  // Started now, while the worker is small: every read after this forks the helper, not the worker.
  const tools = privileged ? new ToolHost(["nft"]) : null;
  tools?.prepare();
  const drops = tools
    ? new DropReader({
        read: () => readDrops(config, tools),
        bindings: () => current()?.sandboxBindings,
        onDrops: (binding, flow, delta) => activity.drops(binding, flow, delta),
        onRead: (error) => {
          lastCounterError = error === null ? null : error instanceof Error ? error.message : String(error);
        },
        countsFile: path.join(o.stateDir, `fence-drops-${config.instanceId}.json`),
        onStateError: (error) => log.warn({ err: error instanceof Error ? error.message : String(error) }, "the fence's audited drop counts could not be kept; a restart may audit some drops again"),
      })
    : null;
  const activity = new SandboxActivity(
    o.audit,
    (taskId) => current()?.tasks.get(taskId)?.agentId ?? null,
    log,
    async (sandboxId, attempts) => {
      await o.db.sandbox.updateMany({ where: { id: sandboxId }, data: { blockedAttempts: { increment: attempts } } });
    },
    undefined,
    drops,
  );
  const resolver = new SandboxResolver({ state: o.parts.state, destinations: o.parts.destinations, memory, activity, ttlSeconds: config.dnsTtlSeconds, gateways: { v4: config.gatewayV4, v6: config.gatewayV6 }, queriesPerSecond: config.dnsQueriesPerSecond,
    log,
    connections: {
      registry: connections,
      perTask: o.parts.connectionCaps.perTask,
      listener: o.parts.connectionCaps.listener,
      refuse: (socket, owner, source, open) => {
        const dst = originalDestination(socket);
        const where = dst ? `${dst.family === 6 ? `[${dst.address}]` : dst.address}:${dst.port}` : undefined;
        refuseOverConnectionCap(o.parts.handler.refusals, o.parts.state(), socket, owner, { client: source, open, cap: o.parts.connectionCaps.perTask, originalDestination: where });
      },
    },
  });
  const listener = new SandboxListener({
    state: o.parts.state,
    pipeline: o.parts.pipeline,
    handler: o.parts.handler,
    registry: o.parts.connections,
    audit: o.audit,
    memory,
    connections,
    limits: o.parts.limits,
    connectionCaps: o.parts.connectionCaps,
    leafBudget: new LeafBudget(config.leavesPerMinute),
    sniffMs: config.sniffMs,
    connectTimeoutMs: o.upstreamConnectTimeoutMs,
    maxLifetimeMs: o.tunnelMaxLifetimeMs,
    ownAddresses: new Set(gateways),
    log,
  });
  try {
    await resolver.listen(gateways, config.dnsPort);
    await listener.listen(gateways, config.listenPort);
  } catch (error) {
    await resolver.close().catch(() => undefined);
    await listener.close().catch(() => undefined);
    tools?.close();
    const message = error instanceof Error ? error.message : String(error);
    if (config.mode === "on") throw new Error(`network isolation could not start: ${message}`);
    log.warn({ err: message }, "network isolation is off: its listener could not bind the gateway addresses");
    return disabled(`could not bind: ${message}`);
  }
  activity.start();

  // What is open for a sandbox closes as soon as its binding, task or agent is gone, or the task expires.
  const stillAllowed = (snapshot: PolicyVersion | null, now: number) => {
    const live = new Set([...(snapshot?.sandboxBindings.values() ?? [])].map((b) => b.sandboxId));
    return (owner: { taskId: string; sandboxId: string }) => {
      const task = snapshot?.tasks.get(owner.taskId);
      return live.has(owner.sandboxId) && task !== undefined && task.expiresAt.getTime() > now;
    };
  };
  o.policy.onSnapshot((snapshot) => {
    const closed = connections.closeWhere(stillAllowed(snapshot, Date.now()));
    if (closed) log.info({ closed }, "closed sandbox connections whose task or sandbox ended");
    memory.retain(new Set([...snapshot.sandboxBindings.values()].map((b) => b.sandboxId)));
  });
  const sweep = setInterval(() => {
    if (connections.size() > 0) connections.closeWhere(stillAllowed(current(), Date.now()));
  }, SWEEP_MS);
  sweep.unref();

  if (drops) {
    drops.bindingsChanged(current()?.sandboxBindings ?? new Map());
    o.policy.onSnapshot((snapshot) => {
      // A sandbox left: its drops are read now, while they are still its own, and once more on
      // the clock (counted as bound) for any packet its namespace sent on the way out.
      if (drops.bindingsChanged(snapshot.sandboxBindings)) lastRead = { at: Date.now(), bound: true };
    });
  }
  const counters = drops
    ? setInterval(() => {
        const bound = (current()?.sandboxBindings.size ?? 0) > 0;
        if (!counterReadDue({ bound, boundAtLastRead: lastRead.bound, msSinceLastRead: Date.now() - lastRead.at })) return;
        lastRead = { at: Date.now(), bound };
        void drops.read();
      }, COUNTER_MS)
    : null;
  counters?.unref();
  log.info({ gateways, listenPort: config.listenPort, dnsPort: config.dnsPort, instance: config.instanceId }, "sandbox listener and resolver started");

  return {
    status: () => ({ enabled: true, reason: "on", connections: connections.size(), fenceCounters: privileged, lastCounterError }),
    knows: (address) => current()?.sandboxBindings.has(address) ?? false,
    openConnections: (address) => {
      const binding = current()?.sandboxBindings.get(address);
      return binding ? connections.countFor(binding.sandboxId) : 0;
    },
    async close() {
      clearInterval(sweep);
      if (counters) clearInterval(counters);
      // The drops since the last read are audited before the worker goes (a stuck read does not
      // hold the shutdown: at most FINAL_READ_MS).
      if (drops) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([drops.read(), new Promise((r) => (timer = setTimeout(r, FINAL_READ_MS)))]);
        clearTimeout(timer);
      }
      tools?.close();
      await listener.close();
      await resolver.close();
      connections.closeWhere(() => false);
      await activity.close();
      // A worker that stops leaves nothing behind in the host's network unless a sandbox still
      // needs the fence (then it stays, so that sandbox's traffic still cannot leave).
      if (privileged) {
        const removed = await removeFenceWithoutSandboxes(config).catch((error: unknown) => {
            log.warn({ err: error instanceof Error ? error.message : String(error) }, "could not remove the unused fence");
            return [] as string[];
          });
        if (removed.length > 0) log.info({ removed }, "removed the fence: no sandbox of this instance is left");
      }
    },
  };
}
