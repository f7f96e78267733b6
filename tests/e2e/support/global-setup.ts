import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateMasterKey, parseMasterKey } from "../../../lib/crypto/envelope";
import { createPrismaClient } from "../../../lib/db/client";
import { skipDiskFlushes, startTestPostgres } from "../../support/test-postgres";
import { childEnvironments } from "../../../lib/config/child-env";
import { ensureSigningKey } from "../../../lib/identity/key-store";
import { establishProcessKeys } from "../../../lib/keys/establish";
import { dashboardKeyEnvironment, workerKeyEnvironment } from "../../../lib/keys/process-keys";
import { ensureBuilt } from "../../../cli/runtime/build";
import { childDatabaseEnv, migrateDatabase, prepareEmbeddedRoles } from "../../../cli/runtime/database-roles";
import { assertRootNamespaceUnchanged, rootNamespaceState } from "../../support/root-namespace";

/**
 * Starts a throwaway PostgreSQL, sets up its roles and migrates it as `bulkhead start` does, builds
 * the dashboard if needed and runs the real production server on a spare port, connected as the
 * dashboard's own database role (so every browser test also proves that role's grants suffice).
 * Tests reach the database for fixtures through E2E_DATABASE_URL (the superuser).
 */
export default async function globalSetup() {
  // Nothing the browser tests start may install Bulkhead's fence in the machine's own namespace.
  const rootBefore = rootNamespaceState();
  const root = process.cwd();
  const dir = await mkdtemp(path.join(tmpdir(), "bulkhead-e2e-"));
  const appPort = Number(new URL(process.env.E2E_BASE_URL ?? "http://127.0.0.1:3100").port);
  const db = await startTestPostgres({ dataDir: dir });
  await skipDiskFlushes(db.url);
  const urls = await prepareEmbeddedRoles(db.url, dir, () => undefined);
  await migrateDatabase(urls, () => undefined);
  const masterKey = generateMasterKey();
  // The launcher's key step runs as the owner; the dashboard then runs as its own role.
  const setupDb = createPrismaClient(urls.owner!, 1);
  const { keys } = await establishProcessKeys(setupDb, parseMasterKey(masterKey));
  await ensureSigningKey(setupDb, keys.dashboardKey);
  await setupDb.$disconnect();
  await ensureBuilt(root, (l) => console.log(l));

  // The dashboard's environment exactly as the launcher builds it: its own keys and database
  // role, never the master key.
  const { dashboard } = childEnvironments({
    databaseEnv: { dashboard: childDatabaseEnv("dashboard", urls), worker: childDatabaseEnv("worker", urls) },
    authSecret: "e2e-secret-e2e-secret-e2e-secret-e2e-secret",
    keys: { dashboard: dashboardKeyEnvironment(keys), worker: workerKeyEnvironment(keys) },
  });
  // Webhook receivers in the browser tests listen on 127.0.0.2, which the operator allows here;
  // the rest of loopback stays refused (tests/e2e/webhooks.spec.ts).
  const env = { ...dashboard, BULKHEAD_APP_HOST: "127.0.0.1", BULKHEAD_APP_PORT: String(appPort), BULKHEAD_WEBHOOK_ALLOWED_NETWORKS: "127.0.0.2" };
  const app: ChildProcess = fork(path.join(root, "scripts", "app-server.mjs"), [], { env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    app.on("message", (m: { type?: string }) => m?.type === "ready" && resolve());
    app.once("exit", (code) => reject(new Error(`The dashboard exited during start (code ${code}).`)));
  });
  process.env.E2E_DATABASE_URL = db.url;
  // For tests that run a second dashboard of their own (tests/e2e/database-unavailable.spec.ts).
  process.env.E2E_DASHBOARD_ENV = JSON.stringify(dashboard);
  // Secrets the dashboard must never send a browser, for tests/e2e/secrets-in-responses.spec.ts:
  // the master key (the dashboard never holds it), the worker's key and every role's database URL.
  process.env.E2E_PROCESS_SECRETS = JSON.stringify({ masterKey, ...workerKeyEnvironment(keys), databaseUrls: [urls.owner, ...Object.values(urls.runtime), db.url].filter((u) => typeof u === "string") });

  return async () => {
    app.kill("SIGTERM");
    await new Promise((r) => app.once("exit", r));
    await db.stop();
    await rm(dir, { recursive: true, force: true });
    assertRootNamespaceUnchanged(rootBefore, "the browser suite");
  };
}
