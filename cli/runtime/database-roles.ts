import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { RUNTIME_DATABASE_URL_VARIABLE, type CommonConfig, type RuntimeDatabaseRole } from "@/lib/config/common";
import { ConfigError } from "@/lib/config/env";
import { migrate, type MigrateResult } from "@/lib/db/migrate";
import { ensureLoginRoles, takeOwnership } from "@/lib/db/roles/bootstrap";
import { assertRuntimeRole } from "@/lib/db/roles/check";
import { applyGrants } from "@/lib/db/roles/grants";
import { DEFAULT_ROLE_NAMES, roleNameFromUrl, urlForRole, type RoleNames, type RuntimeRoleNames } from "@/lib/db/roles/names";
import { readOrCreateSecretFile } from "@/lib/files/secrets";

/**
 * Which URL each part of Bulkhead connects with (docs/database.md): the owner's for migrations,
 * and one runtime role per process. The launcher keeps them all; each child gets only its own.
 */
export interface DatabaseUrls {
  /** The owner role (migrations). Undefined when only runtime URLs are configured. */
  owner: string | undefined;
  runtime: Partial<Record<RuntimeDatabaseRole, string>>;
  /** Runtime roles whose URL is DATABASE_URL because of BULKHEAD_DATABASE_SINGLE_ROLE. */
  sharingOwner: RuntimeDatabaseRole[];
  /** The runtime roles' names for the grants step; null when a process shares the owner's role. */
  roles: RuntimeRoleNames | null;
}

const PURPOSE: Record<keyof RoleNames, string> = {
  owner: "owns the schema; used only by migrations",
  dashboard: "the dashboard and the CLI",
  worker: "the proxy worker",
};

/**
 * The role URLs of an embedded database that was already prepared (every role's password file is
 * in the data folder, written when its role was created), without connecting; null otherwise.
 * A command next to a running Bulkhead uses them instead of repeating the superuser's set-up.
 */
export function preparedEmbeddedRoles(superuserUrl: string, dataDir: string, names: RoleNames = DEFAULT_ROLE_NAMES): DatabaseUrls | null {
  const password = (role: keyof RoleNames) => {
    const file = path.join(dataDir, `postgres-${role}.password`);
    return existsSync(file) ? readFileSync(file, "utf8").trim() : "";
  };
  const passwords = { owner: password("owner"), dashboard: password("dashboard"), worker: password("worker") };
  if (!passwords.owner || !passwords.dashboard || !passwords.worker) return null;
  const url = (role: keyof RoleNames) => urlForRole(superuserUrl, names[role], passwords[role]);
  return { owner: url("owner"), runtime: { dashboard: url("dashboard"), worker: url("worker") }, sharingOwner: [], roles: { dashboard: names.dashboard, worker: names.worker } };
}

/**
 * The embedded database's roles, as its superuser: creates them (passwords generated into the
 * data folder, owner-only, beside postgres.password), converts a database that an earlier version
 * created as the superuser (everything it owns moves to the owner role), and returns each role's
 * URL. Idempotent; prints each change.
 */
export async function prepareEmbeddedRoles(superuserUrl: string, dataDir: string, log: (line: string) => void, names: RoleNames = DEFAULT_ROLE_NAMES): Promise<DatabaseUrls> {
  const password = (role: keyof RoleNames) => readOrCreateSecretFile(dataDir, `postgres-${role}.password`, 24).value;
  const roles = (["owner", "dashboard", "worker"] as const).map((role) => ({ role, name: names[role], password: password(role), purpose: PURPOSE[role] }));
  const client = new pg.Client({ connectionString: superuserUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await ensureLoginRoles(client, roles, log);
    await takeOwnership(client, names.owner, log);
  } finally {
    await client.end().catch(() => undefined);
  }
  const url = (role: keyof RoleNames) => urlForRole(superuserUrl, names[role], roles.find((r) => r.role === role)!.password);
  return { owner: url("owner"), runtime: { dashboard: url("dashboard"), worker: url("worker") }, sharingOwner: [], roles: { dashboard: names.dashboard, worker: names.worker } };
}

/** An external database's URLs, from configuration. */
export function externalDatabaseUrls(config: CommonConfig): DatabaseUrls {
  const runtime: Partial<Record<RuntimeDatabaseRole, string>> = {};
  const sharingOwner: RuntimeDatabaseRole[] = [];
  for (const role of ["dashboard", "worker"] as const) {
    const own = config.runtimeDatabaseUrls[role];
    if (own) runtime[role] = own;
    else if (config.singleDatabaseRole && config.databaseUrl) {
      runtime[role] = config.databaseUrl;
      sharingOwner.push(role);
    }
  }
  const dashboard = config.runtimeDatabaseUrls.dashboard && roleNameFromUrl(config.runtimeDatabaseUrls.dashboard);
  const worker = config.runtimeDatabaseUrls.worker && roleNameFromUrl(config.runtimeDatabaseUrls.worker);
  return { owner: config.databaseUrl, runtime, sharingOwner, roles: dashboard && worker ? { dashboard, worker } : null };
}

const SINGLE_ROLE_HINT = "or set BULKHEAD_DATABASE_SINGLE_ROLE=true to run every process as DATABASE_URL, without least privilege";

/** The URL `role` connects with; a clear refusal naming the variable when there is none. */
export function runtimeUrl(urls: DatabaseUrls, role: RuntimeDatabaseRole): string {
  const url = urls.runtime[role];
  if (url) return url;
  throw new ConfigError([
    `${RUNTIME_DATABASE_URL_VARIABLE[role]} is required with an external database: the ${role} connects as its own role, never as the owner ` +
      `(docs/database.md; \`bulkhead db roles\` prints the SQL that creates the roles), ${SINGLE_ROLE_HINT}.`,
  ]);
}

/** The owner's URL, for migrations. */
export function ownerUrl(urls: DatabaseUrls): string {
  if (urls.owner) return urls.owner;
  throw new ConfigError(["DATABASE_URL is required to apply migrations: set it to the role that owns Bulkhead's schema (docs/database.md)."]);
}

/**
 * Migrations as the owner, then the grants step (the runtime roles' privileges made to match
 * lib/db/roles/privileges.ts), so a new table never waits for someone to remember a GRANT.
 */
export interface MigrateOptions {
  /**
   * `always` (default) re-applies the runtime roles' grants; `after-changes` only when a migration
   * was applied: for a server that a running `bulkhead start` already migrated and granted.
   */
  grants?: "always" | "after-changes";
}

export async function migrateDatabase(urls: DatabaseUrls, log: (line: string) => void, options: MigrateOptions = {}): Promise<MigrateResult & { grants: string[] }> {
  const owner = ownerUrl(urls);
  if (!urls.roles && urls.sharingOwner.length === 0) {
    throw new ConfigError([
      "BULKHEAD_DASHBOARD_DATABASE_URL and BULKHEAD_WORKER_DATABASE_URL are required: migrations grant each runtime role exactly what it needs " +
        `(docs/database.md), ${SINGLE_ROLE_HINT}.`,
    ]);
  }
  const result = await migrate(owner);
  if (!urls.roles) {
    log("BULKHEAD_DATABASE_SINGLE_ROLE is set: no runtime roles, so no grants were applied. The application can switch the audit's protections off.");
    return { ...result, grants: [] };
  }
  if (options.grants === "after-changes" && result.applied.length === 0) return { ...result, grants: [] };
  // A new database gets every grant at once: one line for that; an existing one, each change.
  const fresh = result.alreadyApplied.length === 0;
  const quiet = (line: string) => {
    if (line.startsWith("Warning")) log(line);
  };
  const grants = await applyGrants(owner, urls.roles, fresh ? quiet : log);
  if (fresh) log(`Granted the dashboard's and the worker's database roles their privileges (${grants.length} statements; docs/database.md).`);
  return { ...result, grants };
}

/** Refuses to run when a runtime role could alter or switch off the audit's protections (skipped for an explicit single role). */
export async function assertRuntimeRoles(urls: DatabaseUrls, roles: readonly RuntimeDatabaseRole[]): Promise<void> {
  for (const role of roles) {
    if (urls.sharingOwner.includes(role)) continue;
    await assertRuntimeRole(runtimeUrl(urls, role), RUNTIME_DATABASE_URL_VARIABLE[role]);
  }
}

/**
 * The database part of a child process's environment: its own role's URL, and every other
 * database URL removed (the launcher's environment may hold the owner's). Undefined values are
 * left out of a child's environment by child_process.
 */
export function childDatabaseEnv(child: RuntimeDatabaseRole, urls: DatabaseUrls): Record<string, string | undefined> {
  return {
    DATABASE_URL: undefined,
    PGPASSWORD: undefined,
    BULKHEAD_DASHBOARD_DATABASE_URL: undefined,
    BULKHEAD_WORKER_DATABASE_URL: undefined,
    [RUNTIME_DATABASE_URL_VARIABLE[child]]: runtimeUrl(urls, child),
  };
}
