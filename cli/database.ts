import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadCommonConfig } from "@/lib/config/common";
import pg from "pg";
import type { Db } from "@/lib/db/client";
import type { ProcessKeys } from "@/lib/keys/process-keys";
import type { RowReader } from "@/lib/keys/reseal";
import { openDatabase } from "@/cli/runtime/database";
import { migrateDatabase, ownerUrl, runtimeUrl, type DatabaseUrls } from "@/cli/runtime/database-roles";
import { CliError, type CliContext } from "./context";

export interface CliDatabaseOptions {
  /**
   * `dashboard` (default): commands do what the dashboard does, so they need nothing more.
   * `owner`: only for commands that rewrite what no runtime role may (re-sealing every secret
   * when the master key rotates, converting data sealed in an older format).
   */
  role?: "dashboard" | "owner";
}

/**
 * Runs `fn` connected as the dashboard's database role (or the owner, where a command needs it).
 * With the embedded server (reused when running, or started just for this command) the CLI is run
 * by an operator who can read the data folder anyway, so it first brings the database up to date
 * as the owner, like `bulkhead start`. With an external database it only needs
 * BULKHEAD_DASHBOARD_DATABASE_URL; migrations are `bulkhead db migrate`'s job.
 */
export async function withCliDatabase<T>(ctx: CliContext, fn: (db: Db, url: string) => Promise<T>, options: CliDatabaseOptions = {}): Promise<T> {
  return withOpenedDatabase(ctx, (urls) => withClient(options.role === "owner" ? ownerUrl(urls) : runtimeUrl(urls, "dashboard"), fn));
}

async function withOpenedDatabase<T>(ctx: CliContext, fn: (urls: DatabaseUrls) => Promise<T>): Promise<T> {
  const config = loadCommonConfig();
  // A command run outside the folder Bulkhead was started in (BULKHEAD_DATA_DIR unset) makes a new,
  // empty database there, and its "No tasks." would read as an answer about the real one: said.
  const fresh = !config.externalDatabase && !existsSync(path.join(path.resolve(config.dataDir), "postgres", "PG_VERSION"));
  const opened = await openDatabase(config, { running: "reuse", log: (l) => ctx.stderr(l) });
  if (fresh) {
    ctx.stderr(
      `Note: there was no Bulkhead database in ${path.resolve(config.dataDir)}, so a new, empty one was made there. ` +
        "If you meant an existing Bulkhead, run the command in the folder it was started in, or set BULKHEAD_DATA_DIR to its data folder.",
    );
  }
  try {
    // A server that a running `bulkhead start` prepared needs grants again only after a migration.
    if (opened.embedded) await migrateDatabase(opened.urls, (l) => ctx.stderr(l), { grants: opened.reused ? "after-changes" : "always" });
    return await fn(opened.urls);
  } finally {
    await opened.close();
  }
}

/**
 * Like withCliDatabase with one plain pg connection instead of a Prisma client, for read-only
 * commands whose query is plain SQL (`task list`): starting Prisma's client is most of such a
 * command's time.
 */
export async function withCliSql<T>(ctx: CliContext, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  return withOpenedDatabase(ctx, (urls) => withSql(runtimeUrl(urls, "dashboard"), fn));
}

async function withSql<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A `pg` connection as the raw-query reader the key checks take (lib/keys/reseal.ts). */
function rowReader(client: pg.Client): RowReader {
  return { $queryRawUnsafe: async <R>(query: string, ...values: unknown[]) => (await client.query(query, values)).rows as R };
}

async function withClient<T>(url: string, fn: (db: Db, url: string) => Promise<T>): Promise<T> {
  // Loaded when a command needs it: commands on plain SQL never start Prisma.
  const { createPrismaClient } = await import("@/lib/db/client");
  const db = createPrismaClient(url, 2);
  try {
    return await fn(db, url);
  } finally {
    await db.$disconnect();
  }
}

/** The account on this machine that runs the CLI (its uid when it has no name). */
function osAccount(): string {
  try {
    const name = os.userInfo().username;
    if (name) return name;
  } catch {
    // No passwd entry for the uid (a container): the uid says who.
  }
  return `uid ${process.getuid?.() ?? "unknown"}`;
}

/**
 * How the CLI appears in the audit: Bulkhead itself (`system`/`cli`, it holds the master key), with
 * the operating-system account that ran it in each event's data (`osUser`), so a token revoked, a
 * task ended or an agent suspended from a shell says by whom.
 */
export const CLI_ACTOR = { kind: "system", label: "cli", osUser: osAccount() } as const;

/**
 * Like withCliDatabase, with the master key resolved, checked against the data and its process
 * keys derived. The CLI runs where the master key lives, so it holds every process key; each
 * command uses only the one it needs. When the data already records these keys (the usual case:
 * a start recorded them), one plain read says so. Otherwise recording them and converting data
 * sealed in the format before per-process keys (like a start does) rewrites rows only the owner
 * may write, so that step runs as the owner when its URL is known; the command itself runs as the
 * dashboard's role.
 */
export async function withCliKeys<T>(ctx: CliContext, fn: (db: Db, keys: ProcessKeys) => Promise<T>): Promise<T> {
  // Loaded here, not at the top: commands that need no keys (task list, agent list) skip jose and argon2.
  const [{ ensureSigningKey }, { FINGERPRINT_SETTING, MASTER_KEY_FILE, resolveMasterKey }, { establishProcessKeys, keysAlreadyEstablished }] = await Promise.all([
    import("@/lib/identity/key-store"),
    import("@/lib/identity/master-key"),
    import("@/lib/keys/establish"),
  ]);
  const config = loadCommonConfig();
  return withOpenedDatabase(ctx, async (urls) => {
    const keysUrl = urls.owner ?? runtimeUrl(urls, "dashboard");
    const keyFile = path.join(config.dataDir, MASTER_KEY_FILE);
    if (!config.masterKey && !existsSync(keyFile)) {
      // No master key here. A new one is generated only for a database that has none yet: one
      // whose secrets are sealed under a key kept elsewhere refuses a new key anyway, and the file
      // (announced as one to back up) would be a key to nothing, used by every later command.
      const recorded = await withSql(keysUrl, async (client) => (await client.query<{ value: unknown }>("SELECT value FROM settings WHERE key = $1", [FINGERPRINT_SETTING])).rows[0]?.value).catch(() => undefined);
      if (typeof recorded === "string") {
        throw new CliError(
          `There is no master key: BULKHEAD_MASTER_KEY is unset and ${keyFile} does not exist, and this database's secrets are sealed under the master key ${recorded}. Set BULKHEAD_MASTER_KEY to that key, or BULKHEAD_DATA_DIR to the folder that holds its master.key. Nothing was written.`,
        );
      }
    }
    const master = resolveMasterKey(config.masterKey, config.dataDir);
    if (master.source === "generated") ctx.stderr(`Generated a master key in ${master.file} (owner-only); back it up.`);
    // Usually a start (or an earlier command) has recorded these keys already: then one read on a
    // plain connection says so, and no Prisma client is opened as the owner to write nothing. A
    // read that fails for any reason leaves the decision to establishProcessKeys.
    const current = await withSql(keysUrl, (client) => keysAlreadyEstablished(rowReader(client), master.key)).catch(() => null);
    const keys =
      current ??
      (await withClient(keysUrl, async (db) => {
        const { keys: established, converted } = await establishProcessKeys(db, master.key, config.dataDir);
        for (const [label, n] of Object.entries(converted)) ctx.stderr(`Converted ${n} ${label}(s) from the master key to per-process keys.`);
        return established;
      }));
    return withClient(runtimeUrl(urls, "dashboard"), async (db) => {
      await ensureSigningKey(db, keys.dashboardKey);
      return fn(db, keys);
    });
  });
}
