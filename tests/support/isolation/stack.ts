/**
 * Bulkhead for real, in a private topology: the worker (`bulkhead worker`) running in the host
 * namespace against the test's PostgreSQL, a Railway imitation (HTTPS), a plain HTTP API and a raw
 * TCP echo "database" outside, canaries outside, and helpers to create tasks and run sandboxes
 * with the real CLI (`bulkhead sandbox run`).
 */
import { writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { stringify } from "yaml";
import type { Actor } from "@/lib/auth/actor";
import { workerKeyEnvironment } from "@/lib/keys/process-keys";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { builtInDescriptors } from "@/lib/semantics/descriptors";
import type { ServiceDescriptorInput } from "@/lib/semantics/descriptors/schema";
import { createTask } from "@/lib/tasks/tasks";
import { ensureCertificateAuthority } from "@/lib/tls/ca-store";
import { addCredential } from "@/lib/vault/add-credential";
import { createTestDatabase, type TestDatabase } from "../database";
import { establishTestKeys } from "../keys";
import { railwayResponder } from "../fake-services";
import { makeUser, unique } from "../factories";
import { createTestPki } from "../upstreams";
import { NetnsHelper, serveCanary, serveCanaryResolver, serveHttp, Topology, type ServedHit } from "./topology";

export const RAILWAY = "10.78.0.10";
export const PLAIN = "10.78.0.11";
export const RAWDB = "10.78.0.12";
export const CANARY4 = "192.0.2.10";
export const CANARY6 = "2001:db8::10";
export const CANARY_ULA = "fd00::10";
export const CANARY_RESOLVER = "192.0.2.53";
export const GATEWAY4 = "10.213.0.1";
export const RAILWAY_SECRET = "railway-secret-7f3a9c";
export const PLAIN_SECRET = "plain-secret-41be07";

const internal = { internalAddresses: ["10.78.0.0/24"] };

export const SERVICES: ServiceDescriptorInput[] = [
  { ...builtInDescriptors.find((d) => d.id === "railway")!, proxy: internal },
  { id: "plainapi", hosts: ["plain.example.test"], scheme: "http", ports: [80], protocol: "rest", proxy: internal },
  { id: "rawdb", hosts: ["db.example.test"], scheme: "https", ports: [5432], protocol: "rest", proxy: { tls: "passthrough", ...internal } },
];

export interface Stack {
  t: TestDatabase;
  admin: Actor;
  topo: Topology;
  outside: NetnsHelper;
  host: NetnsHelper;
  railway: { hits: ServedHit[]; executed: string[] };
  plain: { hits: ServedHit[] };
  rawdb: { connections: number };
  canary: { tcpHits: number; udpHits: number };
  canary6: { tcpHits: number; udpHits: number };
  resolver: { queries: number };
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** `extra`: environment for the worker on top of the stack's. */
  startWorker(extra?: Record<string, string>): Promise<void>;
  killWorker(): void;
  /** SIGTERM: the worker stops as an operator stops it, and this resolves once it has exited. */
  stopWorker(): Promise<void>;
  /** What the worker wrote to stderr (its log), for failure messages. */
  workerLog(): string;
  /** `scope` omitted: the product's default (what the policy reaches). */
  newTask(policyYaml: string, ttl?: string, scope?: string): Promise<{ taskId: string; agentId: string }>;
  /** A task token for `taskId`, as `bulkhead token mint` issues it. */
  mintToken(taskId: string): Promise<string>;
  /** Waits until `launcher` says its sandbox for `taskId` is ready; returns its row. */
  liveSandbox(taskId: string, launcher: ReturnType<Topology["spawnBulkhead"]>, timeoutMs?: number): Promise<{ id: string; name: string; sourceAddress: string | null; sourceAddressV6: string | null }>;
  close(): Promise<void>;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Sends one raw HTTP request on a socket and resolves with what came back until close or `ms`. */
export function exchangeOn(socket: net.Socket, request: string, ms = 3000): Promise<string> {
  return new Promise((resolve) => {
    let data = "";
    const done = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      resolve(data);
    };
    const onData = (c: Buffer) => {
      data += c.toString("latin1");
      const m = /\r\ncontent-length: *(\d+)/i.exec(data);
      const head = data.indexOf("\r\n\r\n");
      if (m && head >= 0 && data.length >= head + 4 + Number(m[1])) done();
    };
    const timer = setTimeout(done, ms);
    socket.on("data", onData);
    socket.once("close", done);
    socket.write(request);
  });
}

export async function startStack(): Promise<Stack> {
  const t = await createTestDatabase();
  const keys = await establishTestKeys(t.db);
  await ensureCertificateAuthority(t.db, keys.workerKey);
  const admin = (await makeUser(t.db, "admin")).actor;
  for (const s of SERVICES) await t.db.service.create({ data: { name: String(s.id), descriptorYaml: stringify(s) } });
  await addCredential(t.db, admin, keys.workerKey, { name: unique("railway"), scheme: "https", host: "backboard.railway.com", port: 443, headerTemplate: "Authorization: Bearer {secret}", secret: RAILWAY_SECRET, environments: "*" });
  await addCredential(t.db, admin, keys.workerKey, { name: unique("plain"), scheme: "http", host: "plain.example.test", port: 80, headerTemplate: "X-Api-Key: {secret}", secret: PLAIN_SECRET, environments: "*" });

  const topo = new Topology({
    database: t,
    hosts: { "backboard.railway.com": RAILWAY, "plain.example.test": PLAIN, "db.example.test": RAWDB },
    outsideAddresses: [RAILWAY, PLAIN, RAWDB, CANARY4, CANARY_RESOLVER, CANARY6, CANARY_ULA],
  });
  const closers: Array<() => unknown> = [];
  try {
    await topo.setUp();
    const outside = await topo.helper(topo.outside);
    const host = await topo.helper(topo.host);
    const pki = await createTestPki();
    const caFile = path.join(topo.dir, "upstream-ca.pem");
    writeFileSync(caFile, pki.caPem);
    const executed: string[] = [];
    const railwayServer = await serveHttp(outside, RAILWAY, 443, { tls: await pki.serverCert("backboard.railway.com").then((c) => ({ cert: c.certPem, key: c.keyPem })), respond: railwayResponder(executed) });
    const plainServer = await serveHttp(outside, PLAIN, 80);
    const rawdb = { connections: 0 };
    const echo = net.createServer((socket) => {
      rawdb.connections++;
      socket.on("error", () => socket.destroy());
      socket.pipe(socket);
    });
    echo.listen(await outside.listenTcp(RAWDB, 5432));
    const canary = await serveCanary(outside, CANARY4, [80, 443, 853], 9999);
    const canary6 = await serveCanary(outside, CANARY6, [80], 9999);
    const canaryUla = await serveCanary(outside, CANARY_ULA, [80], 9999);
    const resolver = await serveCanaryResolver(outside, CANARY_RESOLVER);
    closers.push(() => railwayServer.close(), () => plainServer.close(), () => echo.close(), () => canary.close(), () => canary6.close(), () => canaryUla.close(), () => resolver.close());

    const env = (extra: Record<string, string> = {}) => topo.env({ ...workerKeyEnvironment(keys), BULKHEAD_UPSTREAM_CA_FILE: caFile, BULKHEAD_UPSTREAM_CONNECT_TIMEOUT_SECONDS: "30", ...extra });
    let worker: ReturnType<Topology["spawnBulkhead"]> | null = null;
    const ready = async () => {
      const socket = await host.connect(topo.hostAddress4, 8081);
      const out = await exchangeOn(socket, `GET /readyz HTTP/1.1\r\nHost: ${topo.hostAddress4}:8081\r\nConnection: close\r\n\r\n`);
      socket.destroy();
      return out.startsWith("HTTP/1.1 200") && out.includes('"isolation":{"enabled":true');
    };
    const stack: Stack = {
      t,
      admin,
      topo,
      outside,
      host,
      railway: { hits: railwayServer.hits, executed },
      plain: { hits: plainServer.hits },
      rawdb,
      canary,
      canary6,
      resolver,
      env,
      async startWorker(extra?: Record<string, string>) {
        worker = topo.spawnBulkhead(["worker"], env(extra));
        const w = worker;
        await waitFor("the worker to be ready", async () => {
          if (w.exitCode !== null) throw new Error(`worker exited: ${w.output.stderr}`);
          return ready();
        }, 240_000, 200).catch((error: unknown) => {
          throw new Error(`${String(error)}\n${w.output.stderr.slice(-3000)}`);
        });
      },
      killWorker() {
        worker?.kill("SIGKILL");
      },
      async stopWorker() {
        const w = worker;
        if (!w || w.exitCode !== null || w.signalCode !== null) return;
        const exited = new Promise((r) => w.once("exit", r));
        w.kill("SIGTERM");
        await exited;
      },
      workerLog: () => `${worker?.output.stdout ?? ""}${worker?.output.stderr ?? ""}`,
      async mintToken(taskId) {
        return (await issueTaskToken(t.db, admin, keys.dashboardKey, { issuer: "bulkhead", audience: "bulkhead-proxy" }, taskId)).token;
      },
      async newTask(policyYaml, ttl = "30m", scope) {
        const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: (admin as { userId: string }).userId } });
        const task = await createTask(t.db, admin, { agentId: agent.id, purpose: "isolation test", policyYaml, ttl, scope });
        return { taskId: task.id, agentId: agent.id };
      },
      liveSandbox: (taskId, launcher, timeoutMs = 180_000) =>
        waitFor(
          `a ready sandbox for ${taskId}`,
          async () => {
            if (launcher.exitCode !== null) throw new Error(`the launcher exited: ${launcher.output.stderr}`);
            if (!/ready at /.test(launcher.output.stderr)) return null;
            return t.db.sandbox.findFirst({ where: { taskId, removedAt: null }, select: { id: true, name: true, sourceAddress: true, sourceAddressV6: true } });
          },
          timeoutMs,
        ),
      async close() {
        worker?.kill("SIGKILL");
        for (const c of closers) await Promise.resolve(c()).catch(() => undefined);
        await topo.close();
        await t.drop();
      },
    };
    return stack;
  } catch (error) {
    for (const c of closers) await Promise.resolve(c()).catch(() => undefined);
    await topo.close();
    await t.drop();
    throw error;
  }
}
