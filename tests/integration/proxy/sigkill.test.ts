import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import { ensureSigningKey } from "@/lib/identity/key-store";
import { assertMasterKeyMatchesData } from "@/lib/identity/master-key";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { createTask } from "@/lib/tasks/tasks";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/**
 * The real worker process (`bulkhead worker`) is SIGKILLed under load, partly while PostgreSQL
 * is away (so some decisions sit in the spool); a new worker with the same identity replays the
 * spool. Every decision the proxy acknowledged to a client is in the database exactly once.
 */
describe("SIGKILL under load: no acknowledged event is lost", () => {
  let t: TestDatabase;
  let up: Upstream;
  let env: NodeJS.ProcessEnv;
  let spoolDir: string;
  let token: string;
  let proxyPort: number;
  let admin: pg.Client;
  let dbName: string;

  const startWorker = async (): Promise<ChildProcess> => {
    const child = fork(path.resolve("bin/bulkhead.mjs"), ["worker"], { env, stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const ok = await fetch(`http://127.0.0.1:${env.BULKHEAD_WORKER_HEALTH_PORT}/readyz`).then((r) => r.ok, () => false);
      if (ok) return child;
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill("SIGKILL");
    throw new Error("worker did not become ready");
  };

  beforeAll(async () => {
    up = await startHttpUpstream();
    t = await createTestDatabase();
    const masterText = generateMasterKey();
    const masterKey = parseMasterKey(masterText);
    await assertMasterKeyMatchesData(t.db, masterKey);
    await ensureSigningKey(t.db, masterKey);
    const owner = await makeUser(t.db, "admin");
    await t.db.service.create({
      data: { name: "local", descriptorYaml: `id: local\nhosts: ["127.0.0.1"]\nscheme: http\nports: [${up.port}]\nprotocol: rest\nproxy:\n  internalAddresses: [127.0.0.1/32]\n` },
    });
    const agent = await t.db.agent.create({ data: { name: unique("killed"), ownerId: owner.user.id } });
    const task = await createTask(t.db, owner.actor, { agentId: agent.id, purpose: "load", policyYaml: "unlisted: deny\nrules:\n  - service: local\n    effects: [read]\n", ttl: "30m" });
    token = (await issueTaskToken(t.db, owner.actor, masterKey, { issuer: "bulkhead", audience: "bulkhead-proxy" }, task.id)).token;
    spoolDir = mkdtempSync(path.join(tmpdir(), "bh-kill-"));
    proxyPort = await freePort();
    env = {
      ...process.env,
      DATABASE_URL: t.url,
      BULKHEAD_MASTER_KEY: masterText,
      BULKHEAD_PROXY_PORT: String(proxyPort),
      BULKHEAD_TRANSPARENT_HTTP_PORT: String(await freePort()),
      BULKHEAD_TRANSPARENT_TLS_PORT: String(await freePort()),
      BULKHEAD_WORKER_HEALTH_PORT: String(await freePort()),
      BULKHEAD_AUDIT_WAL_DIR: spoolDir,
      BULKHEAD_WORKER_ID: "kill-test",
      LOG_LEVEL: "silent",
    };
    dbName = new URL(t.url).pathname.slice(1);
    admin = new pg.Client({ connectionString: t.url.replace(`/${dbName}`, "/postgres") });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`).catch(() => undefined);
    await admin.end();
    await t.drop();
    await up.close();
    rmSync(spoolDir, { recursive: true, force: true });
  });

  it("replays what the killed worker spooled and keeps everything it had written", async () => {
    const acknowledged: string[] = [];
    const send = async (method: string) => {
      const r = await viaProxy(proxyPort, `http://127.0.0.1:${up.port}/items`, { token, method }).catch(() => null);
      if (!r) return;
      const id = r.status === 200 ? r.headers["x-bulkhead-event"] : r.json?.auditEventId;
      if ((r.status === 200 || r.status === 403) && typeof id === "string") acknowledged.push(id);
    };
    let worker = await startWorker();
    for (let i = 0; i < 20; i++) await send(i % 3 === 0 ? "DELETE" : "GET");

    // The database goes away; the worker spools.
    await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS false`);
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [dbName]);
    const load = (async () => {
      for (let i = 0; i < 40; i++) await send(i % 3 === 0 ? "DELETE" : "GET");
    })();
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise((r) => worker.once("exit", r));
    worker.kill("SIGKILL");
    await load;
    await exited;
    // Some decisions were acknowledged while the database was away: they exist only in the spool.
    expect(acknowledged.length).toBeGreaterThan(20);
    expect(await t.db.auditEvent.count({ where: { type: "proxy.decision" } }).catch(() => -1)).toBe(-1);

    await admin.query(`ALTER DATABASE "${dbName}" ALLOW_CONNECTIONS true`);
    worker = await startWorker();
    try {
      const deadline = Date.now() + 20_000;
      let stored: string[] = [];
      for (;;) {
        const rows = await t.db.auditEvent.findMany({ where: { type: { in: ["proxy.decision"] } }, select: { data: true } });
        stored = rows.map((r) => String((r.data as { eventId?: string }).eventId));
        if (acknowledged.every((id) => stored.includes(id)) || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const missing = acknowledged.filter((id) => !stored.includes(id));
      expect(missing).toEqual([]);
      for (const id of acknowledged) expect(stored.filter((s) => s === id)).toHaveLength(1);
    } finally {
      const stopped = new Promise((r) => worker.once("exit", r));
      worker.kill("SIGTERM");
      await stopped;
    }
  }, 90_000);
});
