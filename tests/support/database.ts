import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { urlForRole } from "@/lib/db/roles/names";
import { dropDatabase, setUpDatabase, withDatabase } from "./database-setup";

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

/** The environment a CLI command or a launcher reads: the owner's URL and each runtime role's. */
export function databaseEnv(t: Pick<TestDatabase, "url" | "workerUrl" | "ownerUrl">): Record<string, string> {
  return { DATABASE_URL: t.ownerUrl, BULKHEAD_DASHBOARD_DATABASE_URL: t.url, BULKHEAD_WORKER_DATABASE_URL: t.workerUrl };
}

/**
 * Creates a database on the test server for one test file: by default a copy of the database that
 * the global setup migrated once (tests/support/global-setup.ts), which is what migrating it here
 * would give, in a fraction of the time. `migrate: false` gives an empty one (owned by the owner
 * role, nothing else); `migrate: "here"` runs every migration on an empty one, for the files that
 * test the migrations themselves.
 */
export async function createTestDatabase(options: { migrate?: boolean | "here" } = {}): Promise<TestDatabase> {
  const serverUrl = inject("adminDatabaseUrl");
  const roles = inject("databaseRoles");
  const { names, passwords } = roles;
  const name = `bh_test_${randomBytes(6).toString("hex")}`;
  const migrate = options.migrate ?? true;
  await setUpDatabase(serverUrl, roles, name, { migrate: migrate !== false, template: migrate === true ? inject("migratedTemplate") : undefined });
  const adminUrl = withDatabase(serverUrl, name);
  const ownerUrl = urlForRole(adminUrl, names.owner, passwords.owner);
  const url = urlForRole(adminUrl, names.dashboard, passwords.dashboard);
  const workerUrl = urlForRole(adminUrl, names.worker, passwords.worker);
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
      await dropDatabase(serverUrl, name);
    },
  };
}
