import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { CommonConfig } from "@/lib/config/common";
import { startEmbeddedDatabase } from "@/lib/db/embedded";
import { connectForMigration } from "@/lib/db/migrate";

export interface OpenDatabase {
  url: string;
  embedded: boolean;
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
}

export async function openDatabase(config: CommonConfig, options: OpenDatabaseOptions): Promise<OpenDatabase> {
  if (config.databaseUrl) {
    const client = await connectForMigration(config.databaseUrl); // clear error when unreachable
    await client.end();
    return { url: config.databaseUrl, embedded: false, close: async () => undefined };
  }
  const pid = runningEmbeddedPid(config.dataDir);
  if (pid !== null && options.running === "reuse") {
    return { url: embeddedUrl(config), embedded: true, close: async () => undefined };
  }
  if (pid !== null) {
    options.log(`A PostgreSQL from an earlier run is still running on ${config.dataDir} (pid ${pid}); stopping it cleanly first.`);
    process.kill(pid, "SIGINT"); // PostgreSQL's "fast" shutdown: consistent, no data lost
    if (!(await waitForExit(pid, 60_000))) {
      throw new Error(`PostgreSQL (pid ${pid}) did not stop within 60 s. Stop it yourself, then start Bulkhead again.`);
    }
  }
  const db = await startEmbeddedDatabase({ dataDir: config.dataDir, port: config.embeddedPgPort });
  return { url: db.url, embedded: true, close: () => db.stop() };
}
