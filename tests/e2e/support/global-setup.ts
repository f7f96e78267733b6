import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateMasterKey, parseMasterKey } from "../../../lib/crypto/envelope";
import { createPrismaClient } from "../../../lib/db/client";
import { startEmbeddedDatabase } from "../../../lib/db/embedded";
import { childEnvironments } from "../../../lib/config/child-env";
import { ensureSigningKey } from "../../../lib/identity/key-store";
import { establishProcessKeys } from "../../../lib/keys/establish";
import { dashboardKeyEnvironment, workerKeyEnvironment } from "../../../lib/keys/process-keys";
import { migrate } from "../../../lib/db/migrate";
import { ensureBuilt } from "../../../lib/runtime/build";

/**
 * Starts a throwaway PostgreSQL, migrates it, builds the dashboard if needed and runs the real
 * production server on a spare port. Tests reach the database through E2E_DATABASE_URL.
 */
export default async function globalSetup() {
  const root = process.cwd();
  const dir = await mkdtemp(path.join(tmpdir(), "bulkhead-e2e-"));
  const pgPort = 20000 + Math.floor(Math.random() * 20000);
  const appPort = Number(new URL(process.env.E2E_BASE_URL ?? "http://127.0.0.1:3100").port);
  const db = await startEmbeddedDatabase({ dataDir: dir, port: pgPort });
  await migrate(db.url);
  const masterKey = generateMasterKey();
  const setupDb = createPrismaClient(db.url, 1);
  const { keys } = await establishProcessKeys(setupDb, parseMasterKey(masterKey));
  await ensureSigningKey(setupDb, keys.dashboardKey);
  await setupDb.$disconnect();
  await ensureBuilt(root, (l) => console.log(l));

  // The dashboard's environment exactly as the launcher builds it: its own keys, never the master key.
  const { dashboard } = childEnvironments({
    databaseUrl: { dashboard: db.url, worker: db.url },
    authSecret: "e2e-secret-e2e-secret-e2e-secret-e2e-secret",
    keys: { dashboard: dashboardKeyEnvironment(keys), worker: workerKeyEnvironment(keys) },
  });
  const env = { ...dashboard, BULKHEAD_APP_HOST: "127.0.0.1", BULKHEAD_APP_PORT: String(appPort) };
  const app: ChildProcess = fork(path.join(root, "scripts", "app-server.mjs"), [], { env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    app.on("message", (m: { type?: string }) => m?.type === "ready" && resolve());
    app.once("exit", (code) => reject(new Error(`The dashboard exited during start (code ${code}).`)));
  });
  process.env.E2E_DATABASE_URL = db.url;

  return async () => {
    app.kill("SIGTERM");
    await new Promise((r) => app.once("exit", r));
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
