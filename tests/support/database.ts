import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { migrate } from "@/lib/db/migrate";
import { takeOwnership } from "@/lib/db/roles/bootstrap";
import { applyGrants } from "@/lib/db/roles/grants";
import { urlForRole } from "@/lib/db/roles/names";

/**
 * One database per test file, set up the way `bulkhead start` sets up its own: owned by the owner
 * role, migrated as it, granted to the runtime roles. Code under test connects as the dashboard's
 * role (`url`, `db`) or the worker's (`workerUrl`); `adminUrl`/`adminDb()` (the superuser) are for
 * what no Bulkhead process may do: tampering with the audit, fixtures for tables no runtime role
 * writes, stopping connections.
 */
export interface TestDatabase {
  /** The dashboard's (and the CLI's) role. */
  url: string;
  db: Db;
  /** The proxy worker's role. */
  workerUrl: string;
  /** The owner role: migrations only. */
  ownerUrl: string;
  /** The server's superuser, connected to this database. */
  adminUrl: string;
  /** A Prisma client as the superuser (created on first use, closed by drop). */
  adminDb(): Db;
  /** Drops the database; call in afterAll. */
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The environment a CLI command or a launcher reads: the owner's URL and each runtime role's. */
export function databaseEnv(t: Pick<TestDatabase, "url" | "workerUrl" | "ownerUrl">): Record<string, string> {
  return { DATABASE_URL: t.ownerUrl, BULKHEAD_DASHBOARD_DATABASE_URL: t.url, BULKHEAD_WORKER_DATABASE_URL: t.workerUrl };
}

/** Creates an empty database on the test server (optionally migrated) for one test file. */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const serverUrl = inject("adminDatabaseUrl");
  const { names, passwords } = inject("databaseRoles");
  const name = `bh_test_${randomBytes(6).toString("hex")}`;
  const server = new pg.Client({ connectionString: serverUrl });
  await server.connect();
  try {
    await server.query(`CREATE DATABASE "${name}"`);
  } finally {
    await server.end();
  }
  const adminUrl = withDatabase(serverUrl, name);
  const ownerUrl = urlForRole(adminUrl, names.owner, passwords.owner);
  const url = urlForRole(adminUrl, names.dashboard, passwords.dashboard);
  const workerUrl = urlForRole(adminUrl, names.worker, passwords.worker);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await takeOwnership(admin, names.owner, () => undefined);
  } finally {
    await admin.end();
  }
  if (options.migrate !== false) {
    await migrate(ownerUrl);
    await applyGrants(ownerUrl, { dashboard: names.dashboard, worker: names.worker });
  }
  const db = createPrismaClient(url, 4);
  let adminDb: Db | undefined;
  return {
    url,
    db,
    workerUrl,
    ownerUrl,
    adminUrl,
    adminDb: () => (adminDb ??= createPrismaClient(adminUrl, 2)),
    async drop() {
      await db.$disconnect();
      await adminDb?.$disconnect();
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
