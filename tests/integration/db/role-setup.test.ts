import { randomUUID } from "node:crypto";
import { randomBytes } from "node:crypto";
import { cp, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { recordAuditEvent } from "@/lib/audit/record";
import { verifyAuditChain } from "@/lib/audit/verify";
import { main } from "@/cli/main";
import { createPrismaClient } from "@/lib/db/client";
import { defaultMigrationsDir, migrate } from "@/lib/db/migrate";
import { assertRuntimeRole } from "@/lib/db/roles/check";
import { planGrants } from "@/lib/db/roles/grants";
import { quoteIdent, urlForRole, type RoleNames } from "@/lib/db/roles/names";
import { assertRuntimeRoles, migrateDatabase, prepareEmbeddedRoles, type DatabaseUrls } from "@/cli/runtime/database-roles";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { readCursor, shipRows } from "@/proxy-worker/audit/store";
import { createTestDatabase, databaseEnv, type TestDatabase } from "../../support/database";

/**
 * How the roles come to be: the conversion of a database an earlier Bulkhead built as the
 * superuser (what `npm start` does to an existing data folder), its repair when someone widened a
 * role by hand, the SQL `bulkhead db roles` prints for an external PostgreSQL, and the refusals when
 * a process would run with a role that could alter the audit. Roles are cluster-wide, so every
 * test here uses role names of its own and drops them afterwards.
 */
const server = () => inject("adminDatabaseUrl");
const onDatabase = (url: string, name: string) => Object.assign(new URL(url), { pathname: `/${name}` }).toString();

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  c.on("notice", () => undefined);
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

function setEnv(env: Record<string, string | undefined>): void {
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}

/** Runs the real CLI entry point with `env` set (unset where undefined), restoring it afterwards. */
async function cli(env: Record<string, string | undefined>, argv: string[]): Promise<{ code: number; out: string[]; err: string }> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const out: string[] = [];
  const err: string[] = [];
  setEnv(env);
  try {
    const code = await main(argv, { json: argv.includes("--json"), stdout: (l) => out.push(l), stderr: (l) => err.push(l), stdinIsTTY: true, readStdin: async () => "" });
    return { code, out, err: err.join("\n") };
  } finally {
    setEnv(saved);
  }
}

function freshNames(prefix: string): RoleNames {
  const id = randomBytes(3).toString("hex");
  return { owner: `${prefix}_owner_${id}`, dashboard: `${prefix}_dashboard_${id}`, worker: `${prefix}_worker_${id}` };
}

async function dropDatabaseAndRoles(name: string, names: RoleNames): Promise<void> {
  await sql(server(), `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  for (const role of [names.worker, names.dashboard, names.owner]) await sql(server(), `DROP ROLE IF EXISTS ${quoteIdent(role)}`);
}

/** Objects in the schema (and the schema and database themselves) not owned by `owner`. */
const notOwnedBy = (url: string, owner: string) =>
  sql<{ name: string }>(
    url,
    `SELECT relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND pg_get_userbyid(relowner) <> $1
     UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace AND pg_get_userbyid(proowner) <> $1
     UNION ALL SELECT typname FROM pg_type WHERE typnamespace = 'public'::regnamespace AND typtype = 'e' AND pg_get_userbyid(typowner) <> $1
     UNION ALL SELECT 'schema public' FROM pg_namespace WHERE nspname = 'public' AND pg_get_userbyid(nspowner) <> $1
     UNION ALL SELECT 'database' FROM pg_database WHERE datname = current_database() AND pg_get_userbyid(datdba) <> $1`,
    [owner],
  );

describe("an existing database built by an earlier version as the superuser", () => {
  const name = `bh_legacy_${randomBytes(4).toString("hex")}`;
  const names = freshNames("bh_conv");
  let superUrl: string;
  let dataDir: string;
  let urls: DatabaseUrls;

  beforeAll(async () => {
    superUrl = onDatabase(server(), name);
    dataDir = await mkdtemp(path.join(tmpdir(), "bh-roles-data-"));
    // Today's data folder: every migration before this one applied by the superuser, some history.
    const before = await mkdtemp(path.join(tmpdir(), "bh-legacy-migrations-"));
    await cp(defaultMigrationsDir(), before, { recursive: true });
    for (const m of await readdir(before)) if (m >= "20261201001000") await rm(path.join(before, m), { recursive: true });
    await sql(server(), `CREATE DATABASE ${quoteIdent(name)}`);
    await migrate(superUrl, before);
    await rm(before, { recursive: true, force: true });
    const legacy = createPrismaClient(superUrl, 1);
    for (let i = 0; i < 3; i++) await recordAuditEvent(legacy, { type: `legacy.${i}`, actor: { actorType: "system", actorId: "old" } });
    await legacy.$disconnect();
  });
  afterAll(async () => {
    await dropDatabaseAndRoles(name, names);
    await rm(dataDir, { recursive: true, force: true });
  });

  it("is converted at start: roles created, everything handed to the owner, grants applied, each change said", async () => {
    const said: string[] = [];
    urls = await prepareEmbeddedRoles(superUrl, dataDir, (l) => said.push(l), names);
    const migrated = await migrateDatabase(urls, (l) => said.push(l));
    // The roles migration first, then whatever later versions added.
    expect(migrated.applied[0]).toBe("20261201001000_database_roles");
    expect(migrated.applied.every((m) => m >= "20261201001000")).toBe(true);

    expect(said).toEqual(expect.arrayContaining([
      `Created the database role ${names.owner} (owns the schema; used only by migrations).`,
      `Created the database role ${names.dashboard} (the dashboard and the CLI).`,
      `Created the database role ${names.worker} (the proxy worker).`,
      `Database ownership: database ${name} now belongs to ${names.owner} (was bulkhead).`,
      `Database ownership: table audit_events now belongs to ${names.owner} (was bulkhead).`,
      `Database ownership: table _prisma_migrations now belongs to ${names.owner} (was bulkhead).`,
      `Database ownership: type "Role" now belongs to ${names.owner} (was bulkhead).`,
      `Database ownership: function audit_events_append_only() now belongs to ${names.owner} (was bulkhead).`,
      `Database privileges: GRANT INSERT ("actor_id", "actor_type", "agent_id", "at", "data", "effect", "outcome", "reason", "rule_id", "task_id", "type"), SELECT ON TABLE "audit_events" TO "${names.worker}"`,
      `Database privileges: REVOKE CONNECT, TEMPORARY ON DATABASE "${name}" FROM PUBLIC`,
    ]));
    expect(await notOwnedBy(superUrl, names.owner)).toEqual([]);
    for (const role of ["owner", "dashboard", "worker"]) {
      expect((await stat(path.join(dataDir, `postgres-${role}.password`))).mode & 0o777).toBe(0o600);
    }
    await assertRuntimeRoles(urls, ["dashboard", "worker"]);

    // The old chain still verifies, and the worker's role continues it.
    const pool = new pg.Pool({ connectionString: urls.runtime.worker!, max: 1 });
    try {
      const client = await pool.connect();
      try {
        const walId = randomUUID();
        const cursor = await readCursor(client, walId, "role-setup");
        const row = prepareEvent({ type: "proxy.decision", actorType: "agent", actorId: "a", outcome: "allow", reason: "after the conversion" }, new Date());
        expect(await shipRows(client, walId, cursor, cursor + 1, [row])).toBe(true);
      } finally {
        client.release();
      }
      expect(await verifyAuditChain(pool, { checkpointKeys: [] })).toMatchObject({ ok: true, lastSeq: 4n });
    } finally {
      await pool.end();
    }
  });

  it("changes nothing and says nothing the second time", async () => {
    const said: string[] = [];
    await prepareEmbeddedRoles(superUrl, dataDir, (l) => said.push(l), names);
    await migrateDatabase(urls, (l) => said.push(l));
    expect(said).toEqual([]);
  });

  it("undoes what someone widened by hand, and refuses to run until it is undone", async () => {
    await sql(superUrl, `GRANT UPDATE, DELETE ON audit_events TO ${quoteIdent(names.worker)}`);
    await sql(superUrl, `ALTER ROLE ${quoteIdent(names.dashboard)} CREATEDB`);
    await sql(superUrl, `GRANT ${quoteIdent(names.owner)} TO ${quoteIdent(names.dashboard)}`);
    await sql(superUrl, `ALTER ROLE ${quoteIdent(names.worker)} SET search_path = nowhere`);
    await expect(assertRuntimeRoles(urls, ["worker"])).rejects.toThrow(/has UPDATE on audit_events, has DELETE on audit_events/);
    await expect(assertRuntimeRoles(urls, ["dashboard"])).rejects.toThrow(/has CREATEDB.*owns the database/);

    const said: string[] = [];
    await prepareEmbeddedRoles(superUrl, dataDir, (l) => said.push(l), names);
    await migrateDatabase(urls, (l) => said.push(l));
    expect(said).toEqual(expect.arrayContaining([
      `Reset the attributes of the database role ${names.dashboard} to LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT.`,
      `Removed the database role ${names.dashboard} from ${names.owner}.`,
      `Removed the session defaults of the database role ${names.worker}.`,
      `Database privileges: REVOKE DELETE, UPDATE ON TABLE "audit_events" FROM "${names.worker}"`,
    ]));
    await assertRuntimeRoles(urls, ["dashboard", "worker"]);
  });
});

describe("refusing a runtime role that could alter the audit", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase({ migrate: "here" });
  });
  afterAll(() => t.drop());

  it("passes the runtime roles and refuses the owner and the superuser", async () => {
    await assertRuntimeRole(t.url, "BULKHEAD_DASHBOARD_DATABASE_URL");
    await assertRuntimeRole(t.workerUrl, "BULKHEAD_WORKER_DATABASE_URL");
    await expect(assertRuntimeRole(t.ownerUrl, "BULKHEAD_WORKER_DATABASE_URL")).rejects.toThrow(
      /\(BULKHEAD_WORKER_DATABASE_URL\) must not be able to change or switch off the audit's protections, but it owns the database.*owns _prisma_migrations/,
    );
    await expect(assertRuntimeRole(t.adminUrl, "BULKHEAD_DASHBOARD_DATABASE_URL")).rejects.toThrow(/but it is a superuser, has CREATEROLE/);
  });

  it("`bulkhead worker` will not start as the owner or without its own URL", async () => {
    const asOwner = await cli({ DATABASE_URL: undefined, BULKHEAD_WORKER_DATABASE_URL: t.ownerUrl, BULKHEAD_DATABASE_SINGLE_ROLE: undefined }, ["worker"]);
    expect(asOwner.code).toBe(1);
    expect(asOwner.err).toMatch(/must not be able to change or switch off the audit's protections/);
    const without = await cli({ DATABASE_URL: t.ownerUrl, BULKHEAD_WORKER_DATABASE_URL: undefined, BULKHEAD_DATABASE_SINGLE_ROLE: undefined }, ["worker"]);
    expect(without.code).toBe(1);
    expect(without.err).toMatch(/BULKHEAD_WORKER_DATABASE_URL is required/);
  });

  it("the privilege map covers every table, sequence and function, and the database matches it", async () => {
    const { names } = inject("databaseRoles");
    const c = new pg.Client({ connectionString: t.ownerUrl });
    await c.connect();
    try {
      expect(await planGrants(c, { dashboard: names.dashboard, worker: names.worker })).toEqual({ statements: [], warnings: [] });
    } finally {
      await c.end();
    }
  });

  it("a CLI command runs as the dashboard's role; without that URL it refuses unless single-role is chosen explicitly", async () => {
    const refused = await cli({ ...databaseEnv(t), BULKHEAD_DASHBOARD_DATABASE_URL: undefined, BULKHEAD_DATABASE_SINGLE_ROLE: undefined }, ["agent", "list", "--json"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/BULKHEAD_DASHBOARD_DATABASE_URL is required with an external database.*BULKHEAD_DATABASE_SINGLE_ROLE=true/);
    const chosen = await cli({ ...databaseEnv(t), BULKHEAD_DASHBOARD_DATABASE_URL: undefined, BULKHEAD_DATABASE_SINGLE_ROLE: "true" }, ["agent", "list", "--json"]);
    expect(chosen.code, chosen.err).toBe(0);
    const migrateWithoutRoles = await cli({ ...databaseEnv(t), BULKHEAD_WORKER_DATABASE_URL: undefined, BULKHEAD_DATABASE_SINGLE_ROLE: undefined }, ["db", "migrate"]);
    expect(migrateWithoutRoles.code).toBe(1);
    expect(migrateWithoutRoles.err).toMatch(/BULKHEAD_DASHBOARD_DATABASE_URL and BULKHEAD_WORKER_DATABASE_URL are required/);
  });
});

describe("the SQL `bulkhead db roles` prints for an external PostgreSQL", () => {
  const name = `bh_external_${randomBytes(4).toString("hex")}`;
  const names = freshNames("bh_ext");
  afterAll(() => dropDatabaseAndRoles(name, names));

  it("sets up a database that `bulkhead db migrate` then completes, with nothing left to grant", async () => {
    const roles = await cli({}, ["db", "roles", "--owner", names.owner, "--dashboard", names.dashboard, "--worker", names.worker, "--database", name]);
    expect(roles.code, roles.err).toBe(0);
    const printed = roles.out.join("\n");
    const [setup, grants] = printed.split(/^-- 3\. .*$/m) as [string, string];
    expect(grants).toContain(`GRANT USAGE ON SEQUENCE "audit_events_id_seq" TO "${names.dashboard}", "${names.worker}";`);

    // What a DBA does: a database of its own, then sections 1 and 2 as a superuser, passwords set.
    await sql(server(), `CREATE DATABASE ${quoteIdent(name)}`);
    const superUrl = onDatabase(server(), name);
    await sql(superUrl, setup.replace(/^-- Then give.*$/m, ""));
    const passwords = { owner: randomBytes(12).toString("hex"), dashboard: randomBytes(12).toString("hex"), worker: randomBytes(12).toString("hex") };
    for (const role of ["owner", "dashboard", "worker"] as const) await sql(superUrl, `ALTER ROLE ${quoteIdent(names[role])} PASSWORD '${passwords[role]}'`);
    const urlOf = (role: keyof RoleNames) => urlForRole(superUrl, names[role], passwords[role]);

    // Then Bulkhead, as the owner: migrations and grants.
    const migrated = await cli({ DATABASE_URL: urlOf("owner"), BULKHEAD_DASHBOARD_DATABASE_URL: urlOf("dashboard"), BULKHEAD_WORKER_DATABASE_URL: urlOf("worker") }, ["db", "migrate"]);
    expect(migrated.code, migrated.err).toBe(0);
    expect(await notOwnedBy(superUrl, names.owner)).toEqual([]);
    // Section 3, run by hand as the owner, changes nothing: it is exactly what the grants step applied.
    await sql(urlOf("owner"), grants);
    const c = new pg.Client({ connectionString: urlOf("owner") });
    await c.connect();
    try {
      expect(await planGrants(c, { dashboard: names.dashboard, worker: names.worker })).toEqual({ statements: [], warnings: [] });
    } finally {
      await c.end();
    }
    await assertRuntimeRole(urlOf("dashboard"), "BULKHEAD_DASHBOARD_DATABASE_URL");
    await assertRuntimeRole(urlOf("worker"), "BULKHEAD_WORKER_DATABASE_URL");
  });
});
