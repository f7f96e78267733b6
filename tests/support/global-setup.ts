import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import type { EmbeddedDatabase } from "@/lib/db/embedded";
import { skipDiskFlushes, startTestPostgres } from "./test-postgres";
import { ensureLoginRoles } from "@/lib/db/roles/bootstrap";
import { ensureCliBuilt } from "@/scripts/cli-build.mjs";
import { DEFAULT_ROLE_NAMES, quoteIdent, type RoleNames } from "@/lib/db/roles/names";
import { assertRootNamespaceUnchanged, rootNamespaceState } from "./root-namespace";
import { dropDatabase, setUpDatabase } from "./database-setup";

export interface TestDatabaseRoles {
  names: RoleNames;
  passwords: RoleNames;
}

declare module "vitest" {
  export interface ProvidedContext {
    /** A superuser URL of the test server; each test file creates its own database from it. */
    adminDatabaseUrl: string;
    /** The owner and runtime roles, created once for the whole run (roles are cluster-wide). */
    databaseRoles: TestDatabaseRoles;
    /** A database migrated and granted once for the run, which test files' databases copy. */
    migratedTemplate: string;
  }
}

/**
 * Integration tests run against a real PostgreSQL: TEST_DATABASE_URL when given (a superuser),
 * otherwise an embedded server in a temporary folder for this run. The owner, dashboard and worker
 * roles are created here once, and one database is migrated as the owner and granted to the
 * runtime roles: each test file's database is a copy of it (tests/support/database.ts), which
 * takes a fraction of migrating one (CREATE DATABASE ... TEMPLATE refuses a template that has
 * connections open: nothing connects to it after this setup). The code under test connects as the
 * dashboard's and the worker's roles, so the suite proves their grants suffice.
 */
export default async function setup(project: TestProject) {
  // Tests that fork `bin/bulkhead.mjs` (the worker, CLI commands) run the compiled CLI, as
  // production does; building it once here keeps them from each compiling it on first use.
  await ensureCliBuilt();
  // Tests build namespaces of their own for isolation; nothing may land in the machine's own.
  const rootBefore = rootNamespaceState();
  const external = process.env.TEST_DATABASE_URL;
  let adminUrl: string;
  let stopServer = async () => undefined;
  let names: RoleNames = DEFAULT_ROLE_NAMES;
  if (external) {
    // A shared server may run several suites at once: roles of their own, dropped afterwards.
    const run = randomBytes(4).toString("hex");
    names = { owner: `bh_test_owner_${run}`, dashboard: `bh_test_dashboard_${run}`, worker: `bh_test_worker_${run}` };
    adminUrl = external;
  } else {
    const dir = await mkdtemp(path.join(tmpdir(), "bulkhead-test-pg-"));
    let db: EmbeddedDatabase;
    try {
      db = await startTestPostgres({ dataDir: dir, database: "postgres" });
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
    adminUrl = db.url;
    stopServer = async () => {
      await db.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const passwords: RoleNames = { owner: randomBytes(18).toString("base64url"), dashboard: randomBytes(18).toString("base64url"), worker: randomBytes(18).toString("base64url") };
  const template = `bh_test_template_${randomBytes(6).toString("hex")}`;
  try {
    if (!external) await skipDiskFlushes(adminUrl);
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await ensureLoginRoles(
        admin,
        (["owner", "dashboard", "worker"] as const).map((r) => ({ name: names[r], password: passwords[r], purpose: `test ${r}` })),
        () => undefined,
      );
    } finally {
      await admin.end();
    }
    await setUpDatabase(adminUrl, { names, passwords }, template, { migrate: true });
  } catch (error) {
    await stopServer();
    throw error;
  }
  project.provide("adminDatabaseUrl", adminUrl);
  project.provide("databaseRoles", { names, passwords });
  project.provide("migratedTemplate", template);
  return async () => {
    await dropDatabase(adminUrl, template).catch((e: unknown) => console.warn(`could not drop the template database ${template}: ${String(e)}`));
    if (external) {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      for (const name of [names.worker, names.dashboard, names.owner]) {
        await c.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`).catch((e: unknown) => console.warn(`could not drop test role ${name}: ${String(e)}`));
      }
      await c.end();
    }
    await stopServer();
    assertRootNamespaceUnchanged(rootBefore, `the ${project.name} suite`);
  };
}
