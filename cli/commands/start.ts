import { fork } from "node:child_process";
import { existsSync } from "node:fs";
import { ENDING_SIGNALS } from "@/lib/process/ending-signals";
import path from "node:path";
import { loadAppConfig } from "@/lib/config/app";
import { loadCommonConfig } from "@/lib/config/common";
import { loadWorkerConfig } from "@/lib/config/worker";
import { ConfigError } from "@/lib/config/env";
import { assertDistinctListeners } from "@/lib/config/listen-ports";
import { createPrismaClient } from "@/lib/db/client";
import { MASTER_KEY_FILE, readMasterFingerprint, resolveMasterKey } from "@/lib/identity/master-key";
import { loadIsolationConfig } from "@/lib/config/isolation";
import { removeSandboxLeftovers } from "./sandbox-run";
import { redactDatabaseUrl } from "@/lib/db/url";
import { packageRoot } from "@/lib/package-root";
import { ensureBuilt } from "@/cli/runtime/build";
import { openDatabase } from "@/cli/runtime/database";
import { takeDataFolderWhenFree } from "@/cli/runtime/data-folder-lock";
import { assertRuntimeRoles, childDatabaseEnv, migrateDatabase, ownerUrl, runtimeUrl } from "@/cli/runtime/database-roles";
import { assertPortFree } from "@/cli/runtime/ports";
import { startLauncherSigner, type LauncherSigner } from "@/cli/runtime/checkpoint-signer";
import { startChainWatchdog } from "@/lib/audit/chain-watchdog";
import { startLauncherSiem } from "@/cli/runtime/siem";
import { startAuditRetentionSchedule } from "@/lib/audit/retention/schedule";
import { prepareProcessSecrets } from "@/cli/runtime/process-secrets";
import { readOrCreateSecretFile } from "@/lib/files/secrets";
import { issueSetupTokenIfNeeded } from "@/lib/users/setup";
import { CliError, type CommandHandler } from "../context";
import { superviseWorker, WORKER_STOP_TIMEOUT_MS, type WorkerSupervisor } from "@/cli/runtime/supervise";

/**
 * `bulkhead start` (what `npm start` runs): validates configuration, checks ports, starts the
 * embedded PostgreSQL unless DATABASE_URL is set, applies migrations and grants as the owner role,
 * builds the dashboard when needed, then runs the dashboard and the proxy worker as child
 * processes until Ctrl-C, each connected as its own least-privileged database role. A child
 * (or the embedded PostgreSQL) that crashes is restarted with backoff while the rest goes on
 * (cli/runtime/supervise.ts, cli/runtime/database.ts); one that fails during start-up stops all.
 */
/**
 * The settings of every process `start` runs, validated together: one refusal lists every
 * variable that is wrong, the dashboard's and the worker's alike, not one part's at a time.
 */
function loadStartConfig() {
  const problems: string[] = [];
  const load = <T>(read: () => T): T | null => {
    try {
      return read();
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(...error.problems);
      return null;
    }
  };
  const common = load(loadCommonConfig);
  const app = load(loadAppConfig);
  const worker = load(loadWorkerConfig);
  if (!common || !app || !worker) throw new ConfigError([...new Set(problems)]);
  return { common, app, worker };
}

export const startCommand: CommandHandler = async (args, ctx) => {
  // Settings are environment variables; an argument is a mistake, not something to start with.
  if (args.length > 0) throw new CliError(`unexpected argument "${args[0]}": bulkhead start takes none (settings are environment variables; bulkhead help start)`, 2);
  // The checkout this code belongs to, from wherever `bulkhead start` is run (lib/package-root.ts).
  const root = packageRoot();
  const { common, app, worker } = loadStartConfig();
  // Every socket this start opens, on a port of its own: refused before anything starts.
  assertDistinctListeners([
    { variable: "BULKHEAD_APP_PORT", host: app.host, port: app.port },
    { variable: "BULKHEAD_PROXY_PORT", host: worker.proxyHost, port: worker.proxyPort },
    { variable: "BULKHEAD_TRANSPARENT_HTTP_PORT", host: worker.transparentHost, port: worker.transparentHttpPort },
    { variable: "BULKHEAD_TRANSPARENT_TLS_PORT", host: worker.transparentHost, port: worker.transparentTlsPort },
    { variable: "BULKHEAD_WORKER_HEALTH_PORT", host: worker.healthHost, port: worker.healthPort },
    ...(common.externalDatabase ? [] : [{ variable: "BULKHEAD_PG_PORT", host: "127.0.0.1", port: common.embeddedPgPort }]),
  ]);
  const say = (line: string) => ctx.stderr(`[bulkhead] ${line}`);

  // One Bulkhead per data folder, held until this process exits: a second start would take the
  // first one's PostgreSQL for a leftover of a killed run and stop it (data-folder-lock.ts).
  await takeDataFolderWhenFree(common.dataDir, "start", say);
  await assertPortFree(app.host, app.port, "BULKHEAD_APP_PORT");
  await assertPortFree(worker.healthHost, worker.healthPort, "BULKHEAD_WORKER_HEALTH_PORT");
  await assertPortFree(worker.proxyHost, worker.proxyPort, "BULKHEAD_PROXY_PORT");
  await assertPortFree(worker.transparentHost, worker.transparentHttpPort, "BULKHEAD_TRANSPARENT_HTTP_PORT");
  await assertPortFree(worker.transparentHost, worker.transparentTlsPort, "BULKHEAD_TRANSPARENT_TLS_PORT");

  // `shutdown` is defined below; a server that will not come back stops everything.
  let giveUp: (code: number) => void = (code) => process.exit(code);
  // A signal that comes while the database starts is kept and acted on once it is up (stopping
  // needs it): left to its default action, it ended this process and left PostgreSQL running.
  let signalledEarly = false;
  const early = () => (signalledEarly = true);
  for (const signal of ENDING_SIGNALS) process.on(signal, early);
  const database = await openDatabase(common, { running: "restart", log: say, supervise: { say, onGiveUp: () => giveUp(1) } });
  say(database.embedded ? `Embedded PostgreSQL running, data in ${path.join(common.dataDir, "postgres")}` : `Using ${redactDatabaseUrl(ownerUrl(database.urls))}`);
  let dashboard: WorkerSupervisor | null = null;
  let supervisor: WorkerSupervisor | null = null;
  let signer: LauncherSigner | null = null;
  let siem: { stop(): Promise<void> } | null = null;
  let retention: { stop(): Promise<void> } | null = null;
  let watchdogs: Array<{ stop(): Promise<void> }> = [];
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    database.closing();
    say("Stopping...");
    await Promise.all([dashboard?.stop(), supervisor?.stop()]);
    await signer?.stop();
    await siem?.stop();
    await retention?.stop();
    await Promise.all(watchdogs.map((w) => w.stop()));
    await database.close();
    say("Stopped. Data is kept for the next start.");
    process.exit(code);
  };
  giveUp = (code) => void shutdown(code);
  // SIGHUP too: the terminal that ran it closed. Stopped in order, as on Ctrl-C.
  for (const signal of ENDING_SIGNALS) {
    process.off(signal, early);
    process.on(signal, () => void shutdown(0));
  }
  if (signalledEarly) return shutdown(0).then(() => 0);
  // Started by a package manager's script runner (`npm start`), the process that ran it may go
  // away without passing its signal on (npm runs the script through a shell, and a shell killed
  // while it waits does not forward SIGTERM; a SIGKILL reaches nobody). Left running, this
  // process would keep PostgreSQL, the dashboard and the worker up with nothing to stop them. So
  // when that parent is gone, stop as on SIGTERM.
  if (process.env.npm_lifecycle_event) {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === parent) return;
      clearInterval(watch);
      say(`The process that started Bulkhead (${process.env.npm_lifecycle_event} script, pid ${parent}) is gone.`);
      void shutdown(0);
    }, 500);
    watch.unref();
  }

  try {
    const result = await migrateDatabase(database.urls, say);
    if (result.applied.length > 0) say(`Applied migrations: ${result.applied.join(", ")}`);
    await assertRuntimeRoles(database.urls, ["dashboard", "worker"]);
    const dashboardDbUrl = runtimeUrl(database.urls, "dashboard");
    const authSecret = app.authSecret ?? readOrCreateSecretFile(common.dataDir, "auth-secret").value;
    if (!common.masterKey && !existsSync(path.join(common.dataDir, MASTER_KEY_FILE))) {
      // No master key here. A new one is generated only for a database that has none yet: one
      // whose secrets are sealed under a key kept elsewhere (a master.key deleted or not restored
      // from a backup, another data folder) would refuse it anyway, and the file, announced as
      // one to back up, would be a key to nothing standing where the real one must be restored.
      const probe = createPrismaClient(ownerUrl(database.urls), 1);
      const recorded = await readMasterFingerprint(probe).finally(() => probe.$disconnect());
      if (recorded) {
        throw new Error(
          `There is no master key: BULKHEAD_MASTER_KEY is unset and ${path.join(common.dataDir, MASTER_KEY_FILE)} does not exist, and this database's secrets are sealed under the master key ${recorded}. Restore that file from your backup, or set BULKHEAD_MASTER_KEY to that key. Nothing was written.`,
        );
      }
    }
    const master = resolveMasterKey(common.masterKey, common.dataDir);
    if (master.source === "generated") {
      say(`Generated a master key in ${master.file} (owner-only). Back it up: stored secrets cannot be decrypted without it.`);
      say("To manage it yourself, set BULKHEAD_MASTER_KEY (32 bytes, base64 or hex).");
    }
    // The key step converts and records sealed values: the owner's job. Each child then gets
    // only its own secrets (the master key stays here) and its own database role's URL.
    const setupDb = createPrismaClient(ownerUrl(database.urls), 1);
    const env = await prepareProcessSecrets(setupDb, {
      master: master.key,
      dataDir: common.dataDir,
      databaseEnv: { dashboard: childDatabaseEnv("dashboard", database.urls), worker: childDatabaseEnv("worker", database.urls) },
      authSecret,
      oidcClientSecret: app.oidc?.clientSecret,
      say,
    }).finally(() => setupDb.$disconnect());
    // Sandboxes this instance left behind when it was killed (its own only; needs CAP_NET_ADMIN).
    const cleanupDb = createPrismaClient(ownerUrl(database.urls), 1);
    const removed = await removeSandboxLeftovers(cleanupDb, loadIsolationConfig(common.dataDir))
      .catch((error: unknown) => {
        say(`Could not check for sandbox leftovers: ${error instanceof Error ? error.message : String(error)}`);
        return [] as string[];
      })
      .finally(() => cleanupDb.$disconnect());
    if (removed.length > 0) say(`Removed sandbox leftovers from an earlier run: ${removed.join(", ")}`);
    // Checkpoints are signed here, with a key no child holds; the dashboard gets the public halves.
    signer = startLauncherSigner({ dataDir: common.dataDir, databaseUrl: dashboardDbUrl, say });
    siem = startLauncherSiem({ dataDir: common.dataDir, databaseUrl: dashboardDbUrl, say });
    // The dashboard's role's watchdog (a role may end only its own sessions; the worker runs its
    // own): a session that holds the audit chain's lock for seconds, blocking every audit event
    // and kill switch, is ended.
    watchdogs = [startChainWatchdog({ databaseUrl: dashboardDbUrl, say })];
    // Only the launcher holds the owner's URL among Bulkhead's processes: retention runs here.
    retention = startAuditRetentionSchedule({ dataDir: common.dataDir, ownerDatabaseUrl: ownerUrl(database.urls), signer: signer.key, master: master.key, say });
    env.dashboard.BULKHEAD_CHECKPOINT_PUBLIC_KEY = [`${signer.publicKey.keyId}:${signer.publicKey.publicKey}`, env.dashboard.BULKHEAD_CHECKPOINT_PUBLIC_KEY].filter(Boolean).join(",");
    await ensureBuilt(root, say);

    const bin = path.join(root, "bin", "bulkhead.mjs");
    // Both children are kept running: one that crashes after it was ready is restarted with
    // backoff while the other goes on; one that fails during start-up stops everything.
    dashboard = superviseWorker({
      name: "dashboard",
      meanwhile: "The proxy worker keeps enforcing; the dashboard (and approving held requests in it) is unavailable until it is back.",
      spawn: () => fork(path.join(root, "scripts", "app-server.mjs"), [], { env: env.dashboard, stdio: ["ignore", "inherit", "inherit", "ipc"] }),
      say,
      onGiveUp: () => void shutdown(1),
    });
    supervisor = superviseWorker({
      spawn: (restart) => fork(bin, ["worker"], { env: { ...env.worker, ...restart }, stdio: ["ignore", "inherit", "inherit", "ipc"] }),
      say,
      // Its own shutdown takes up to 10 s for requests in flight and 5 s to ship the audit log.
      stopTimeoutMs: WORKER_STOP_TIMEOUT_MS,
      onGiveUp: () => void shutdown(1),
    });
    await dashboard.ready();

    const db = createPrismaClient(dashboardDbUrl, 1);
    const setupToken = await issueSetupTokenIfNeeded(db).finally(() => db.$disconnect());
    say(`Dashboard:     ${app.publicUrl}`);
    say(`Proxy:         http://${worker.proxyHost}:${worker.proxyPort} (task token in Proxy-Authorization)`);
    say(`Sandboxes:     ${worker.transparentHost}:${worker.transparentHttpPort} (HTTP), ${worker.transparentHost}:${worker.transparentTlsPort} (TLS)`);
    say(`Worker health: http://${worker.healthHost}:${worker.healthPort}/readyz and /metrics`);
    if (setupToken) {
      say("No account exists yet. Open this one-time link (valid 24 hours) to create the first admin:");
      say(`  ${app.publicUrl}/setup/${setupToken}`);
    }
    say("Press Ctrl-C to stop.");
  } catch (error) {
    say(error instanceof Error ? error.message : String(error));
    await shutdown(1);
  }
  await new Promise(() => undefined); // run until a signal or a child exits
  return 0;
};
