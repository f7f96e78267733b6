import pg from "pg";
import { migrate } from "@/lib/db/migrate";
import { takeOwnership } from "@/lib/db/roles/bootstrap";
import { applyGrants } from "@/lib/db/roles/grants";
import { quoteIdent, urlForRole } from "@/lib/db/roles/names";
import type { TestDatabaseRoles } from "./global-setup";

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Creates database `name` on the server at `serverUrl` the way `bulkhead start` sets up its own:
 * owned by the owner role, then (with `migrate`) migrated as it and granted to the runtime roles.
 * With `template`, the database is a copy of that (already migrated) database, so only what a copy
 * does not carry is done again: the database's owner and its own privileges (CONNECT, kept in
 * pg_database), which takeOwnership and applyGrants set, and find nothing else to change.
 */
export async function setUpDatabase(
  serverUrl: string,
  { names, passwords }: TestDatabaseRoles,
  name: string,
  options: { migrate: boolean; template?: string },
): Promise<void> {
  const server = new pg.Client({ connectionString: serverUrl });
  await server.connect();
  try {
    await server.query(`CREATE DATABASE ${quoteIdent(name)}${options.template ? ` TEMPLATE ${quoteIdent(options.template)}` : ""}`);
  } finally {
    await server.end();
  }
  const adminUrl = withDatabase(serverUrl, name);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await takeOwnership(admin, names.owner, () => undefined);
  } finally {
    await admin.end();
  }
  if (options.migrate) {
    const ownerUrl = urlForRole(adminUrl, names.owner, passwords.owner);
    if (!options.template) await migrate(ownerUrl);
    await applyGrants(ownerUrl, { dashboard: names.dashboard, worker: names.worker });
  }
}

/** Drops database `name` (connections to it are closed first). */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  const c = new pg.Client({ connectionString: serverUrl });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  } finally {
    await c.end();
  }
}
