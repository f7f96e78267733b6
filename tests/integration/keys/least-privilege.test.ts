import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildEnvironments } from "@/lib/config/child-env";
import { loadDashboardKeyConfig } from "@/lib/config/process-keys";
import { openSecret, parseMasterKey } from "@/lib/crypto/envelope";
import { boxKeyPairFromSeed, openBox } from "@/lib/crypto/sealed-box";
import { issueTaskToken } from "@/lib/identity/task-tokens";
import { dashboardKeysFrom, deriveProcessKeys } from "@/lib/keys/process-keys";
import { prepareProcessSecrets } from "@/cli/runtime/process-secrets";
import { createTask } from "@/lib/tasks/tasks";
import { addCredential, loadCredentialsForInjection } from "@/lib/vault";
import { credentialAad } from "@/lib/vault/view";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { makeUser, unique } from "../../support/factories";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";
import { freePort } from "../../support/free-port";

/** A process's real environment, as the kernel holds it. */
function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const i = entry.indexOf("=");
    if (i > 0) out[entry.slice(0, i)] = entry.slice(i + 1);
  }
  return out;
}

/** Every 32-byte value in an environment, decoded every way a key could be written. */
function keyCandidates(env: Record<string, string | undefined>): Buffer[] {
  const out: Buffer[] = [];
  for (const value of Object.values(env)) {
    if (!value) continue;
    for (const encoding of ["base64url", "base64", "hex"] as const) {
      const bytes = Buffer.from(value.trim(), encoding);
      if (bytes.length === 32) out.push(bytes);
    }
  }
  return out;
}

const MASTER_TEXT = Buffer.alloc(32, 0x5a).toString("base64url");
const SESSION_SECRET = "launcher-session-secret-launcher-session-secret";
const OIDC_SECRET = "oidc-client-secret-of-the-dashboard";

/**
 * From the attacker's side: someone who controls the dashboard process (its code, its memory, its
 * environment) tries to read back an upstream credential; someone who controls the worker looks
 * for the master key or the session secret. The environments are the ones the real launcher step
 * builds (prepareProcessSecrets), from a launcher environment that itself holds every secret.
 */
describe("each process holds only its own secrets", () => {
  let t: TestDatabase;
  let up: Upstream;
  let env: ChildEnvironments;
  let worker: ChildProcess | null = null;
  let dataDir: string;
  let launcherEnv: Record<string, string | undefined>;
  const upstreamSecret = `ghp_${unique("prod").replace(/-/g, "")}Zq2LmN7vR1xT9kW3y`;

  beforeAll(async () => {
    t = await createTestDatabase();
    up = await startHttpUpstream();
    dataDir = mkdtempSync(path.join(tmpdir(), "bh-least-"));
    launcherEnv = {
      ...process.env,
      BULKHEAD_MASTER_KEY: MASTER_TEXT,
      AUTH_SECRET: SESSION_SECRET,
      BULKHEAD_OIDC_CLIENT_SECRET: OIDC_SECRET,
      BULKHEAD_PROXY_PORT: String(await freePort()),
      BULKHEAD_TRANSPARENT_HTTP_PORT: String(await freePort()),
      BULKHEAD_TRANSPARENT_TLS_PORT: String(await freePort()),
      BULKHEAD_WORKER_HEALTH_PORT: String(await freePort()),
      BULKHEAD_AUDIT_SPOOL_DIR: path.join(dataDir, "spool"),
      BULKHEAD_DATA_DIR: dataDir,
      LOG_LEVEL: "silent",
    };
    env = await prepareProcessSecrets(t.db, {
      master: parseMasterKey(MASTER_TEXT),
      dataDir,
      databaseEnv: { dashboard: { BULKHEAD_DASHBOARD_DATABASE_URL: t.url }, worker: { BULKHEAD_WORKER_DATABASE_URL: t.workerUrl } },
      authSecret: SESSION_SECRET,
      oidcClientSecret: OIDC_SECRET,
      say: () => undefined,
      environment: launcherEnv,
    });
  });
  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once("exit", r));
      worker.kill("SIGTERM");
      await exited;
    }
    await up.close();
    await t.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("with exactly the dashboard's environment, a credential it stored cannot be opened by any key it has", async () => {
    const admin = (await makeUser(t.db, "admin")).actor;
    // What the dashboard does (lib/identity/app-keys.ts): its configured keys, nothing else.
    const dashboard = dashboardKeysFrom(loadDashboardKeyConfig(env.dashboard));
    const stored = await addCredential(t.db, admin, dashboard.workerRecipient, { environments: "*", name: unique("prod"), host: "api.prod.test", headerTemplate: "Authorization: Bearer {secret}", secret: upstreamSecret });
    const { secretSealed } = await t.db.credential.findUniqueOrThrow({ where: { id: stored.id } });
    const aad = credentialAad(stored.id);

    expect(env.dashboard.BULKHEAD_MASTER_KEY).toBeUndefined();
    expect(env.dashboard.BULKHEAD_WORKER_KEY).toBeUndefined();
    expect(env.dashboard.BULKHEAD_CHECKPOINT_KEY).toBeUndefined();
    const candidates = keyCandidates(env.dashboard);
    expect(candidates.length).toBeGreaterThanOrEqual(2); // its own two keys at least
    let tried = 0;
    for (const key of candidates) {
      // ...as the worker's private key, as a symmetric key, and as a master key to derive from.
      expect(() => openBox(boxKeyPairFromSeed(key), secretSealed, aad)).toThrow();
      expect(() => openSecret(secretSealed, key, aad)).toThrow();
      expect(() => openBox(deriveProcessKeys(key).workerKey, secretSealed, aad)).toThrow();
      await expect(loadCredentialsForInjection(t.db, boxKeyPairFromSeed(key))).rejects.toThrow(/could not be decrypted/);
      tried += 4;
    }
    expect(tried).toBeGreaterThanOrEqual(8);
    // The dashboard still does its own job with its own key: it mints tokens.
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: (admin as { userId: string }).userId } });
    const task = await createTask(t.db, admin, { agentId: agent.id, purpose: "least privilege", policyYaml: "unlisted: deny\nrules: []\n" });
    await expect(issueTaskToken(t.db, admin, dashboard.dashboardKey, { issuer: "bulkhead", audience: "bulkhead-proxy" }, task.id)).resolves.toMatchObject({ kid: expect.any(String) });
  });

  it("the dashboard gets the session and OIDC secrets; the worker gets neither, nor the master key, nor the dashboard's key", () => {
    expect(env.dashboard.AUTH_SECRET).toBe(SESSION_SECRET);
    expect(env.dashboard.BULKHEAD_OIDC_CLIENT_SECRET).toBe(OIDC_SECRET);
    for (const name of ["BULKHEAD_MASTER_KEY", "AUTH_SECRET", "BULKHEAD_OIDC_CLIENT_SECRET", "BULKHEAD_DASHBOARD_KEY"]) expect(env.worker[name], name).toBeUndefined();
    const everything = Object.values(env.worker).join("\n");
    for (const secret of [MASTER_TEXT, SESSION_SECRET, OIDC_SECRET, env.dashboard.BULKHEAD_DASHBOARD_KEY!]) expect(everything).not.toContain(secret);
  });

  it("the real worker process runs with only its own keys (read from /proc), and injects what the dashboard sealed", async () => {
    const admin = (await makeUser(t.db, "admin")).actor;
    const dashboard = dashboardKeysFrom(loadDashboardKeyConfig(env.dashboard));
    await t.db.service.create({
      data: { name: "local", descriptorYaml: `id: local\nhosts: ["127.0.0.1"]\nscheme: http\nports: [${up.port}]\nprotocol: rest\nproxy:\n  internalAddresses: [127.0.0.1/32]\n` },
    });
    const secret = `${upstreamSecret}-worker`;
    await addCredential(t.db, admin, dashboard.workerRecipient, { environments: "*", name: unique("local"), scheme: "http", host: "127.0.0.1", port: up.port, headerTemplate: "Authorization: Bearer {secret}", secret });
    const agent = await t.db.agent.create({ data: { name: unique("agent"), ownerId: (admin as { userId: string }).userId } });
    const task = await createTask(t.db, admin, { agentId: agent.id, purpose: "least privilege", policyYaml: "unlisted: deny\nrules:\n  - service: local\n    effects: [read]\n", ttl: "30m" });
    const { token } = await issueTaskToken(t.db, admin, dashboard.dashboardKey, { issuer: "bulkhead", audience: "bulkhead-proxy" }, task.id);

    worker = fork(path.resolve("bin/bulkhead.mjs"), ["worker"], { env: env.worker, stdio: ["ignore", "ignore", "pipe", "ipc"] });
    let stderr = "";
    worker.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const health = `http://127.0.0.1:${launcherEnv.BULKHEAD_WORKER_HEALTH_PORT}/readyz`;
    const deadline = Date.now() + 45_000;
    while (!(await fetch(health).then((r) => r.ok, () => false))) {
      if (worker.exitCode !== null || Date.now() > deadline) throw new Error(`worker did not become ready: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    const real = environOf(worker.pid!);
    for (const name of ["BULKHEAD_MASTER_KEY", "AUTH_SECRET", "BULKHEAD_OIDC_CLIENT_SECRET", "BULKHEAD_DASHBOARD_KEY", "BULKHEAD_WORKER_PUBLIC_KEY"]) expect(real[name], name).toBeUndefined();
    expect(real.BULKHEAD_WORKER_KEY).toBeDefined();
    // Checkpoints are signed by the launcher's signer; the worker holds no key that signs one.
    expect(real.BULKHEAD_CHECKPOINT_KEY).toBeUndefined();
    const values = Object.values(real).join("\n");
    for (const s of [MASTER_TEXT, SESSION_SECRET, OIDC_SECRET]) expect(values).not.toContain(s);

    const res = await viaProxy(Number(launcherEnv.BULKHEAD_PROXY_PORT), `http://127.0.0.1:${up.port}/items`, { token });
    expect(res.status, res.text).toBe(200);
    expect(up.hits.at(-1)?.headers.authorization).toBe(`Bearer ${secret}`);
    expect(res.text).not.toContain(secret);
  }, 90_000);
});
