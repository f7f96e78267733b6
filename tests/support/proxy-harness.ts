import type { AddressInfo } from "node:net";
import { stringify } from "yaml";
import type { Actor } from "@/lib/auth/actor";
import { recordAuditEvent } from "@/lib/audit/record";
import { loadWorkerConfig } from "@/lib/config/worker";
import { createPrismaClient } from "@/lib/db/client";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { createLogger, type Logger } from "@/lib/log";
import { builtInDescriptors } from "@/lib/semantics/descriptors";
import type { ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";
import { createTask } from "@/lib/tasks/tasks";
import { addCredential } from "@/lib/vault/add-credential";
import { startEnforcementCore, type EnforcementCore } from "@/proxy-worker/core";
import type { Lookup } from "@/lib/net/resolve";
import type { AuditSink, DecisionEvent } from "@/proxy-worker/proxy/types";
import { startProxyService, type ProxyService } from "@/proxy-worker/proxy/service";
import { createTestDatabase, type TestDatabase } from "./database";
import { makeUser, unique } from "./factories";
import { establishTestKeys, type TestKeys } from "./keys";

export const identity = { issuer: "bulkhead", audience: "bulkhead-proxy" };

/** Test names resolve to loopback; everything else fails, so no test can reach a real host. */
export const loopbackLookup: Lookup = async (name) => {
  const hostname = name.replace(/\.$/, "");
  if (hostname.endsWith(".test") || hostname.endsWith(".com") || hostname.endsWith(".app")) return [{ address: "127.0.0.1", family: 4 }];
  throw Object.assign(new Error(`no such host ${hostname}`), { code: "ENOTFOUND" });
};

/** Built-in descriptor `id`, made reachable on loopback at `port` (tests only). */
export function onLoopback(id: string, port: number, overrides: Partial<ServiceDescriptorInput> = {}): ServiceDescriptorInput {
  const base = builtInDescriptors.find((d) => d.id === id);
  if (!base) throw new Error(`no built-in ${id}`);
  return { ...base, ports: [port], proxy: { internalAddresses: ["127.0.0.1/32"] }, ...overrides };
}

export interface ProxyHarness {
  t: TestDatabase;
  admin: Actor;
  /** Every process key (the test plays the launcher); the proxy gets only the worker's. */
  keys: TestKeys;
  core: EnforcementCore;
  proxy: ProxyService;
  proxyPort: number;
  transparentHttpPort: number;
  transparentTlsPort: number;
  events: () => Promise<Array<{ type: string; outcome: string | null; reason: string | null; data: Record<string, unknown> }>>;
  /** A task (for a new agent, or for `agentId`) and a token issued for it. `scope` as `bulkhead task create --scope` takes it; omitted: the product's default (what the policy reaches). */
  newTask(policyYaml: string, options?: { ttl?: string; agentId?: string; scope?: string }): Promise<{ taskId: string; agentId: string; token: string }>;
  addService(descriptor: ServiceDescriptorInput): Promise<void>;
  /** `environments` defaults to "*" (every environment of the host's service). */
  addCredential(input: { name: string; scheme: "http" | "https"; host: string; port: number; headerTemplate: string; secret: string; serviceId?: string; environments?: string }): Promise<void>;
  /** Waits until the worker's snapshot has caught up with the database. */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Records decisions directly with recordAuditEvent (one insert per event). */
class DatabaseAuditSink implements AuditSink {
  constructor(private readonly db: TestDatabase["db"]) {}
  async record(e: DecisionEvent): Promise<void> {
    await recordAuditEvent(this.db, {
      type: e.type,
      actor: { actorType: e.actorType, actorId: e.actorId ?? "proxy-worker" },
      agentId: e.agentId,
      taskId: e.taskId,
      outcome: e.outcome,
      effect: e.effect,
      reason: e.reason,
      ruleId: e.ruleId,
      data: e.data as never,
    });
  }
}

export async function startProxyHarness(
  options: {
    upstreamCaPem?: string;
    env?: Record<string, string>;
    /** The worker's resolver (default loopbackLookup). */
    lookup?: Lookup;
    audit?: (db: TestDatabase["db"]) => AuditSink;
    beforeStart?: (workerDatabaseUrl: string) => Promise<void>;
    /** The worker's logger (e.g. one that captures lines: tests/support/log-capture.ts). */
    log?: Logger;
    /** New leaf certificates a task (or sandbox) may have made per minute (default 120). */
    leavesPerMinute?: number;
  } = {},
): Promise<ProxyHarness> {
  const t = await createTestDatabase();
  await options.beforeStart?.(t.workerUrl);
  const keys = await establishTestKeys(t.db);
  const admin = (await makeUser(t.db, "admin")).actor;
  const log = options.log ?? createLogger("proxy-test", process.env.BULKHEAD_TEST_LOG ?? "silent");
  // The worker's half runs as the worker's database role, the dashboard's half (t.db) as the
  // dashboard's, so every proxy test also proves each role's grants are enough.
  const workerDb = createPrismaClient(t.workerUrl, 8);
  const core = await startEnforcementCore({ db: workerDb, databaseUrl: t.workerUrl, log, identity, reconcileIntervalMs: 60_000 });
  const config = { ...loadWorkerConfig({ BULKHEAD_HOLD_TIMEOUT_SECONDS: "3", ...options.env }), proxyPort: 0, transparentHttpPort: 0, transparentTlsPort: 0 };
  let caDir: string | null = null;
  if (options.upstreamCaPem) {
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    caDir = mkdtempSync(`${tmpdir()}/bh-ca-`);
    const file = `${caDir}/ca.pem`;
    writeFileSync(file, options.upstreamCaPem);
    config.upstreamCaFile = file;
  }
  const proxy = await startProxyService({
    config,
    db: workerDb,
    databaseUrl: t.workerUrl,
    workerKey: keys.workerKey,
    core,
    audit: options.audit?.(workerDb) ?? new DatabaseAuditSink(workerDb),
    log,
    lookup: options.lookup ?? loopbackLookup,
    leavesPerMinute: options.leavesPerMinute,
  });
  const port = (s: { address(): unknown }) => (s.address() as AddressInfo).port;

  const sync = async () => {
    // A reload started after the last commit includes it.
    await core.policy.reload();
  };

  return {
    t,
    admin,
    keys,
    core,
    proxy,
    proxyPort: port(proxy.explicit),
    transparentHttpPort: port(proxy.transparentHttp),
    transparentTlsPort: port(proxy.transparentTls),
    events: async () =>
      (await t.db.auditEvent.findMany({ where: { type: { startsWith: "proxy." } }, orderBy: { id: "asc" } })).map((e) => ({
        type: e.type,
        outcome: e.outcome,
        reason: e.reason,
        data: e.data as Record<string, unknown>,
      })),
    async newTask(policyYaml, o = {}) {
      const agentId = o.agentId ?? (await t.db.agent.create({ data: { name: unique("agent"), ownerId: (admin as { userId: string }).userId } })).id;
      const task = await createTask(t.db, admin, { agentId, purpose: "proxy test", policyYaml, scope: o.scope, ttl: o.ttl ?? "30m" });
      const issued = await issueTaskToken(t.db, admin, keys.dashboardKey, identity, task.id);
      await sync();
      return { taskId: task.id, agentId, token: issued.token };
    },
    async addService(descriptor) {
      await t.db.service.create({ data: { name: String(descriptor.id), descriptorYaml: stringify(descriptor) } });
      await sync();
    },
    async addCredential(input) {
      const { environments = "*", ...rest } = input;
      await addCredential(t.db, admin, keys.workerKey, { ...rest, environments } as never);
      await sync();
    },
    sync,
    async close() {
      await proxy.close();
      await core.close();
      await workerDb.$disconnect();
      await t.drop();
      if (caDir) await import("node:fs/promises").then(({ rm }) => rm(caDir!, { recursive: true, force: true }));
    },
  };
}
