import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import type { Db } from "@/lib/db/client";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { workerKeyEnvironment } from "@/lib/keys/process-keys";
import { createTask } from "@/lib/tasks/tasks";
import { makeUser, unique } from "./factories";
import { establishTestKeys, type TestKeys } from "./keys";
import { freePort } from "./free-port";
export { freePort } from "./free-port";

export interface SeededWorld {
  keys: TestKeys;
  token: string;
  taskId: string;
}

/**
 * What a real worker needs to serve: process keys matching the data, a signing key, a service
 * `local` for the upstream on 127.0.0.1:<port>, and a task that may read it (and nothing else).
 * `db` is the dashboard's role, as the launcher and the dashboard set these up.
 */
export async function seedWorld(db: Db, upstreamPort: number): Promise<SeededWorld> {
  const keys = await establishTestKeys(db);
  const owner = await makeUser(db, "admin");
  await db.service.create({
    data: { name: "local", descriptorYaml: `id: local\nhosts: ["127.0.0.1"]\nscheme: http\nports: [${upstreamPort}]\nprotocol: rest\nproxy:\n  internalAddresses: [127.0.0.1/32]\n` },
  });
  const agent = await db.agent.create({ data: { name: unique("agent"), ownerId: owner.user.id } });
  const task = await createTask(db, owner.actor, { agentId: agent.id, purpose: "load", policyYaml: "unlisted: deny\nrules:\n  - service: local\n    effects: [read]\n", ttl: "30m" });
  const token = (await issueTaskToken(db, owner.actor, keys.dashboardKey, { issuer: "bulkhead", audience: "bulkhead-proxy" }, task.id)).token;
  return { keys, token, taskId: task.id };
}

/** The environment of a real worker on free ports: its own database role and its own keys. */
export async function workerEnv(workerDatabaseUrl: string, world: SeededWorld, extra: Record<string, string> = {}): Promise<NodeJS.ProcessEnv> {
  return {
    ...process.env,
    BULKHEAD_WORKER_DATABASE_URL: workerDatabaseUrl,
    ...workerKeyEnvironment(world.keys),
    BULKHEAD_PROXY_PORT: String(await freePort()),
    BULKHEAD_TRANSPARENT_HTTP_PORT: String(await freePort()),
    BULKHEAD_TRANSPARENT_TLS_PORT: String(await freePort()),
    BULKHEAD_WORKER_HEALTH_PORT: String(await freePort()),
    LOG_LEVEL: "silent",
    ...extra,
  };
}

export interface ReadyStatus {
  status: string;
  ready: boolean;
  policy: { stale: boolean; [key: string]: unknown };
  audit: Record<string, unknown>;
  [key: string]: unknown;
}

/** GET /readyz of a worker; null when it does not answer within `timeoutMs`. */
export async function readyz(env: NodeJS.ProcessEnv, timeoutMs = 1000): Promise<ReadyStatus | null> {
  try {
    const r = await fetch(`http://127.0.0.1:${env.BULKHEAD_WORKER_HEALTH_PORT}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    return (await r.json()) as ReadyStatus;
  } catch {
    return null;
  }
}

const PORT_VARIABLES = ["BULKHEAD_PROXY_PORT", "BULKHEAD_TRANSPARENT_HTTP_PORT", "BULKHEAD_TRANSPARENT_TLS_PORT", "BULKHEAD_WORKER_HEALTH_PORT"] as const;

/**
 * Starts `bulkhead worker` and waits until /readyz answers 200. A port found free a moment ago may
 * have been taken by another test file in between (the worker then exits 1, saying which): the
 * worker is started again on new free ports, written into `env`, which callers read at use.
 */
export async function startWorkerProcess(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  for (let attempt = 1; ; attempt++) {
    const child = fork(path.resolve("bin/bulkhead.mjs"), ["worker"], { env, stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const deadline = Date.now() + 60_000;
    let exited = false;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        if (child.exitCode !== 1 || attempt >= 3) throw new Error(`worker exited with ${child.exitCode}`);
        exited = true;
        break;
      }
      const ok = await fetch(`http://127.0.0.1:${env.BULKHEAD_WORKER_HEALTH_PORT}/readyz`).then((r) => r.ok, () => false);
      if (ok) return child;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!exited) {
      child.kill("SIGKILL");
      throw new Error("worker did not become ready");
    }
    for (const name of PORT_VARIABLES) env[name] = String(await freePort());
  }
}

/** SIGTERM (or `signal`) and wait for the exit. */
export async function stopWorkerProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await exited;
}
