import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { startEmbeddedDatabase, type EmbeddedDatabase } from "@/lib/db/embedded";
import { startTestPostgres } from "./test-postgres";
import { migrateDatabase, prepareEmbeddedRoles, runtimeUrl } from "@/cli/runtime/database-roles";

/**
 * A PostgreSQL server of a test file's own (not the run's shared one), so the test can stop,
 * start and freeze it without disturbing any other test: the outage tests do all three.
 */
export interface OwnPostgres {
  /** The superuser: fixtures, tampering, and reading what happened. */
  url: string;
  /** The dashboard's and the worker's own roles, set up as `bulkhead start` sets them up. */
  dashboardUrl: string;
  workerUrl: string;
  /** Stops the server (a fast shutdown: connections are cut). */
  stop(): Promise<void>;
  /** Starts it again on the same data and port. */
  start(): Promise<void>;
  /** SIGSTOP the postmaster and every backend: connections stay open, nothing answers. */
  freeze(): void;
  /** SIGCONT what freeze() stopped. */
  thaw(): void;
  /** Stops the server and removes its data. */
  destroy(): Promise<void>;
}

function childrenOf(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim();
    return text ? text.split(/\s+/).map(Number) : [];
  } catch {
    return [];
  }
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = await mkdtemp(path.join(tmpdir(), "bh-own-pg-"));
  let server: EmbeddedDatabase | null = await startTestPostgres({ dataDir: dir });
  const port = server.port;
  const urls = await prepareEmbeddedRoles(server.url, dir, () => undefined);
  await migrateDatabase(urls, () => undefined);
  const url = server.url;
  let frozen: number[] = [];
  const postmaster = () => Number(readFileSync(path.join(dir, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
  const thaw = () => {
    for (const pid of frozen.reverse()) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {
        // already gone
      }
    }
    frozen = [];
  };
  return {
    url,
    dashboardUrl: runtimeUrl(urls, "dashboard"),
    workerUrl: runtimeUrl(urls, "worker"),
    async stop() {
      await server?.stop();
      server = null;
    },
    async start() {
      server ??= await startEmbeddedDatabase({ dataDir: dir, port });
    },
    freeze() {
      const main = postmaster();
      // The postmaster first, so that it forks no new backend while the others are stopped.
      process.kill(main, "SIGSTOP");
      frozen = [main, ...childrenOf(main)];
      for (const pid of frozen.slice(1)) process.kill(pid, "SIGSTOP");
    },
    thaw,
    async destroy() {
      thaw();
      await server?.stop();
      server = null;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
