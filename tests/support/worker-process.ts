import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { workerKeyEnvironment } from "@/lib/keys/process-keys";
import { createTask } from "@/lib/tasks/tasks";
import { createTestDatabase, type TestDatabase } from "./database";
import { makeUser, unique } from "./factories";
import { establishTestKeys } from "./keys";
import { identity } from "./proxy-harness";
import { freePort } from "./free-port";
export { freePort } from "./free-port";

export interface WorkerEnvironment {
  t: TestDatabase;
  /** Environment for `bulkhead worker` (or the launcher's supervisor). */
  env: NodeJS.ProcessEnv;
  proxyPort: number;
  transparentTlsPort: number;
  healthPort: number;
  token: string;
  readyz(): Promise<{ status: number; body: Record<string, unknown> | null }>;
  close(): Promise<void>;
}

/**
 * A database, task and token for running the real worker process (`bulkhead worker`) in tests:
 * free ports, its own spool folder, `service` registered for the upstream on loopback.
 */
export async function prepareWorkerEnvironment(upstreamPort: number, extraEnv: Record<string, string> = {}, options: { policyYaml?: string } = {}): Promise<WorkerEnvironment> {
  const t = await createTestDatabase();
  const keys = await establishTestKeys(t.db);
  const owner = await makeUser(t.db, "admin");
  await t.db.service.create({
    data: { name: "local", descriptorYaml: `id: local\nhosts: ["127.0.0.1"]\nscheme: http\nports: [${upstreamPort}]\nprotocol: rest\nproxy:\n  internalAddresses: [127.0.0.1/32]\n` },
  });
  const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
  const task = await createTask(t.db, owner.actor, { agentId: agent.id, purpose: "worker process test", policyYaml: options.policyYaml ?? "unlisted: deny\nrules:\n  - service: local\n    effects: [read]\n  - service: unknown\n    effects: [read]\n", ttl: "30m" });
  const token = (await issueTaskToken(t.db, owner.actor, keys.dashboardKey, identity, task.id)).token;
  const spoolDir = mkdtempSync(path.join(tmpdir(), "bh-worker-"));
  const proxyPort = await freePort();
  const transparentTlsPort = await freePort();
  const healthPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    // The worker's own database role and its own keys, as the launcher hands them to it.
    BULKHEAD_WORKER_DATABASE_URL: t.workerUrl,
    ...workerKeyEnvironment(keys),
    BULKHEAD_PROXY_PORT: String(proxyPort),
    BULKHEAD_TRANSPARENT_HTTP_PORT: String(await freePort()),
    BULKHEAD_TRANSPARENT_TLS_PORT: String(transparentTlsPort),
    BULKHEAD_WORKER_HEALTH_PORT: String(healthPort),
    BULKHEAD_AUDIT_SPOOL_DIR: spoolDir,
    BULKHEAD_WORKER_ID: unique("w"),
    LOG_LEVEL: "silent",
    ...extraEnv,
  };
  return {
    t,
    env,
    proxyPort,
    transparentTlsPort,
    healthPort,
    token,
    async readyz() {
      try {
        const r = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      } catch {
        return { status: 0, body: null };
      }
    },
    async close() {
      await t.drop();
      rmSync(spoolDir, { recursive: true, force: true });
    },
  };
}

/** Forks `bulkhead worker` and waits until /readyz answers 200 (loading it takes long on a busy machine). */
export async function startWorkerProcess(w: WorkerEnvironment): Promise<ChildProcess> {
  const child = fork(path.resolve("bin/bulkhead.mjs"), ["worker"], { env: w.env, stdio: ["ignore", "ignore", "inherit", "ipc"] });
  const deadline = Date.now() + 100_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`worker exited during start (${child.exitCode ?? child.signalCode})`);
    if ((await w.readyz()).status === 200) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error("worker did not become ready");
}

/** Stops a worker child (SIGTERM, then waits for it). */
export async function stopWorkerProcess(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}
