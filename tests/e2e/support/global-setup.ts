import { fork, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { generateMasterKey, parseMasterKey } from "../../../lib/crypto/envelope";
import { createPrismaClient } from "../../../lib/db/client";
import { startEmbeddedDatabase } from "../../../lib/db/embedded";
import { ensureSigningKey } from "../../../lib/identity/key-store";
import { assertMasterKeyMatchesData } from "../../../lib/identity/master-key";
import { ensureBuilt } from "../../../lib/runtime/build";
import { childDatabaseEnv, migrateDatabase, prepareEmbeddedRoles, runtimeUrl } from "../../../lib/runtime/database-roles";

/**
 * Starts a throwaway PostgreSQL, sets up its roles and migrates it as `bulkhead start` does, builds
 * the dashboard if needed and runs the real production server on a spare port, connected as the
 * dashboard's own database role (so every browser test also proves that role's grants suffice).
 * Tests reach the database for fixtures through E2E_DATABASE_URL (the superuser).
 */
export default async function globalSetup() {
  const root = process.cwd();
  const dir = await mkdtemp(path.join(tmpdir(), "bulkhead-e2e-"));
  const pgPort = 20000 + Math.floor(Math.random() * 20000);
  const appPort = Number(new URL(process.env.E2E_BASE_URL ?? "http://127.0.0.1:3100").port);
  const db = await startEmbeddedDatabase({ dataDir: dir, port: pgPort });
  const urls = await prepareEmbeddedRoles(db.url, dir, () => undefined);
  await migrateDatabase(urls, () => undefined);
  const masterKey = generateMasterKey();
  const setupDb = createPrismaClient(runtimeUrl(urls, "dashboard"), 1);
  await assertMasterKeyMatchesData(setupDb, parseMasterKey(masterKey));
  await ensureSigningKey(setupDb, parseMasterKey(masterKey));
  await setupDb.$disconnect();
  await ensureBuilt(root, (l) => console.log(l));

  const env = {
    ...process.env,
    ...childDatabaseEnv("dashboard", urls),
    AUTH_SECRET: "e2e-secret-e2e-secret-e2e-secret-e2e-secret",
    BULKHEAD_MASTER_KEY: masterKey,
    BULKHEAD_APP_HOST: "127.0.0.1",
    BULKHEAD_APP_PORT: String(appPort),
    NEXT_TELEMETRY_DISABLED: "1",
  };
  const app: ChildProcess = fork(path.join(root, "scripts", "app-server.mjs"), [], { env, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  await new Promise<void>((resolve, reject) => {
    app.on("message", (m: { type?: string }) => m?.type === "ready" && resolve());
    app.once("exit", (code) => reject(new Error(`The dashboard exited during start (code ${code}).`)));
  });
  process.env.E2E_DATABASE_URL = db.url;
  process.env.E2E_MASTER_KEY = masterKey;

  return async () => {
    app.kill("SIGTERM");
    await new Promise((r) => app.once("exit", r));
    await db.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
