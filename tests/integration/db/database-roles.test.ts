import { randomBytes, randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { checkpointVerificationKey, writeCheckpoint } from "@/lib/audit/checkpoints";
import { recordAuditEvent } from "@/lib/audit/record";
import { verifyAuditChain } from "@/lib/audit/verify";
import { prepareEvent } from "@/proxy-worker/audit/event";
import { readCursor, shipRows } from "@/proxy-worker/audit/store";
import { createTestDatabase, type TestDatabase } from "../../support/database";

/**
 * The attacker holds a runtime process's database connection (a compromised dashboard or worker,
 * or SQL injected into one) and tries every way around the audit's protections: rewriting or
 * removing events and checkpoints, moving the chain head, switching triggers off, replacing the
 * functions they run, becoming someone else, growing its own role, reaching the server's files
 * and programs, creating objects that would shadow or intercept. Each attempt must fail and leave
 * the audit and the schema exactly as they were. And the normal paths still work as those roles.
 */
const masterKey = randomBytes(32);

function attacks(owner: string, superuser: string, database: string): Array<[string, string]> {
  const trigger = (fn: string) => `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`;
  return [
    // The rows
    ["UPDATE an audit event", "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 1"],
    ["DELETE audit events", "DELETE FROM audit_events"],
    ["TRUNCATE audit_events", "TRUNCATE audit_events"],
    ["TRUNCATE audit_events CASCADE", "TRUNCATE audit_events RESTART IDENTITY CASCADE"],
    ["INSERT an event with forged chain columns", "INSERT INTO audit_events (seq, prev_hash, hash, type, actor_type) VALUES (999, repeat('0', 64), repeat('0', 64), 'forged', 'system')"],
    ["INSERT an event with a chosen id", "INSERT INTO audit_events (id, type, actor_type) VALUES (1, 'forged', 'system')"],
    ["UPDATE a checkpoint", "UPDATE audit_checkpoints SET hash = repeat('0', 64)"],
    ["DELETE checkpoints", "DELETE FROM audit_checkpoints"],
    ["TRUNCATE audit_checkpoints", "TRUNCATE audit_checkpoints"],
    ["move audit_chain_head", "UPDATE audit_chain_head SET seq = 0, hash = repeat('0', 64)"],
    ["INSERT a second chain head", "INSERT INTO audit_chain_head (id, seq, hash) VALUES (2, 0, repeat('0', 64))"],
    ["DELETE the chain head", "DELETE FROM audit_chain_head"],
    ["TRUNCATE audit_chain_head", "TRUNCATE audit_chain_head"],
    ["reset the event id sequence", "SELECT setval('audit_events_id_seq', 1)"],
    ["ALTER SEQUENCE ... RESTART", "ALTER SEQUENCE audit_events_id_seq RESTART"],
    ["COPY events in from a server file", "COPY audit_events (type, actor_type) FROM '/etc/hostname'"],
    ["LOCK audit_events exclusively", "BEGIN; LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE; COMMIT"],
    // The triggers and the functions they run
    ["ALTER TABLE ... DISABLE TRIGGER", "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"],
    ["ALTER TABLE ... DISABLE TRIGGER ALL", "ALTER TABLE audit_events DISABLE TRIGGER ALL"],
    ["ALTER TABLE ... DISABLE TRIGGER USER on the head", "ALTER TABLE audit_chain_head DISABLE TRIGGER USER"],
    ["ALTER TABLE ... ENABLE REPLICA TRIGGER", "ALTER TABLE audit_events ENABLE REPLICA TRIGGER audit_events_chain"],
    ["DROP TRIGGER", "DROP TRIGGER audit_events_no_update_delete ON audit_events"],
    ["DROP TRIGGER on checkpoints", "DROP TRIGGER audit_checkpoints_no_update_delete ON audit_checkpoints"],
    ["CREATE TRIGGER that swallows inserts", "CREATE TRIGGER swallow BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"],
    ["CREATE RULE that swallows inserts", "CREATE RULE swallow AS ON INSERT TO audit_events DO INSTEAD NOTHING"],
    ["CREATE OR REPLACE the append-only function", trigger("audit_events_append_only")],
    ["CREATE OR REPLACE the chain function", trigger("audit_events_chain")],
    ["CREATE OR REPLACE the head guard", trigger("audit_chain_head_guard")],
    ["CREATE OR REPLACE the checkpoint guard", trigger("audit_checkpoints_append_only")],
    [
      "CREATE OR REPLACE the hash function",
      "CREATE OR REPLACE FUNCTION audit_event_hash(seq bigint, prev_hash text, at timestamptz, type text, actor_type text, actor_id text, agent_id uuid, task_id uuid, outcome text, effect text, reason text, rule_id text, data jsonb) RETURNS text LANGUAGE sql AS $$ SELECT repeat('0', 64) $$",
    ],
    ["ALTER FUNCTION ... SECURITY INVOKER", "ALTER FUNCTION audit_events_chain_advance() SECURITY INVOKER"],
    ["ALTER FUNCTION ... RESET search_path", "ALTER FUNCTION audit_events_chain_lock() RESET search_path"],
    ["ALTER FUNCTION ... OWNER TO itself", "ALTER FUNCTION audit_events_append_only() OWNER TO CURRENT_USER"],
    ["DROP FUNCTION ... CASCADE", "DROP FUNCTION audit_events_append_only() CASCADE"],
    ["call the head-advancing trigger function", "SELECT audit_events_chain_advance()"],
    ["ALTER TABLE ... OWNER TO itself", "ALTER TABLE audit_events OWNER TO CURRENT_USER"],
    ["ALTER TABLE ... RENAME", "ALTER TABLE audit_events RENAME TO audit_events_old"],
    ["DROP TABLE", "DROP TABLE audit_checkpoints"],
    ["ALTER TABLE ... ENABLE ROW LEVEL SECURITY", "ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY"],
    ["ALTER TABLE ... DISABLE ROW LEVEL SECURITY", "ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY"],
    ["CREATE POLICY that hides events", "CREATE POLICY hide ON audit_events USING (false)"],
    // The session
    ["SET session_replication_role = replica", "SET session_replication_role = replica"],
    ["set_config('session_replication_role')", "SELECT set_config('session_replication_role', 'replica', false)"],
    ["SET LOCAL session_replication_role", "BEGIN; SET LOCAL session_replication_role = replica; COMMIT"],
    ["SET ROLE to the owner", `SET ROLE "${owner}"`],
    ["SET ROLE to the superuser", `SET ROLE "${superuser}"`],
    ["SET SESSION AUTHORIZATION to the owner", `SET SESSION AUTHORIZATION "${owner}"`],
    ["set_config('role') to the owner", `SELECT set_config('role', '${owner}', false)`],
    ["SET allow_system_table_mods", "SET allow_system_table_mods = on"],
    ["LOAD a server library", "LOAD 'auto_explain'"],
    // Its own role, and others
    ["GRANT the owner role to itself", `GRANT "${owner}" TO CURRENT_USER`],
    ["ALTER ROLE itself SUPERUSER", "ALTER ROLE CURRENT_USER SUPERUSER"],
    ["ALTER ROLE itself CREATEROLE", "ALTER ROLE CURRENT_USER CREATEROLE"],
    ["ALTER ROLE itself CREATEDB", "ALTER ROLE CURRENT_USER CREATEDB"],
    ["ALTER ROLE itself REPLICATION", "ALTER ROLE CURRENT_USER REPLICATION"],
    ["ALTER ROLE itself BYPASSRLS", "ALTER ROLE CURRENT_USER BYPASSRLS"],
    ["ALTER ROLE itself SET session_replication_role", "ALTER ROLE CURRENT_USER SET session_replication_role = replica"],
    ["ALTER ROLE the owner", `ALTER ROLE "${owner}" PASSWORD 'taken'`],
    ["CREATE ROLE", "CREATE ROLE evil SUPERUSER LOGIN"],
    ["REASSIGN OWNED BY the owner", `REASSIGN OWNED BY "${owner}" TO CURRENT_USER`],
    ["DROP OWNED BY the owner", `DROP OWNED BY "${owner}"`],
    ["ALTER DEFAULT PRIVILEGES of the owner", `ALTER DEFAULT PRIVILEGES FOR ROLE "${owner}" GRANT ALL ON TABLES TO CURRENT_USER`],
    ["ALTER DATABASE ... OWNER TO itself", `ALTER DATABASE "${database}" OWNER TO CURRENT_USER`],
    ["ALTER DATABASE ... SET session_replication_role", `ALTER DATABASE "${database}" SET session_replication_role = replica`],
    ["ALTER SCHEMA public OWNER TO itself", "ALTER SCHEMA public OWNER TO CURRENT_USER"],
    ["ALTER SYSTEM", "ALTER SYSTEM SET session_replication_role = replica"],
    ["pg_reload_conf()", "SELECT pg_reload_conf()"],
    // The server's files and programs
    ["COPY ... TO PROGRAM", "COPY audit_events TO PROGRAM 'id'"],
    ["COPY ... FROM PROGRAM", "COPY audit_events (type, actor_type) FROM PROGRAM 'echo x,system'"],
    ["COPY ... TO a server file", "COPY (SELECT 1) TO '/tmp/bulkhead-role-test'"],
    ["pg_read_file", "SELECT pg_read_file('/etc/passwd')"],
    ["pg_read_binary_file", "SELECT pg_read_binary_file('/etc/passwd')"],
    ["pg_ls_dir", "SELECT pg_ls_dir('.')"],
    ["pg_stat_file", "SELECT pg_stat_file('PG_VERSION')"],
    ["lo_import", "SELECT lo_import('/etc/passwd')"],
    ["lo_export", "SELECT lo_export(lo_create(0), '/tmp/bulkhead-role-test')"],
    ["CREATE EXTENSION pgcrypto", "CREATE EXTENSION pgcrypto"],
    ["CREATE EXTENSION dblink", "CREATE EXTENSION dblink"],
    ["CREATE EXTENSION file_fdw", "CREATE EXTENSION file_fdw"],
    ["CREATE LANGUAGE plperlu", "CREATE LANGUAGE plperlu"],
    // New objects that would shadow or intercept
    ["CREATE TABLE in the schema", "CREATE TABLE public.evil (a int)"],
    ["CREATE TABLE unqualified", "CREATE TABLE evil (a int)"],
    ["CREATE FUNCTION in the schema", "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'"],
    ["CREATE VIEW in the schema", "CREATE VIEW public.evil AS SELECT 1"],
    ["CREATE SCHEMA", "CREATE SCHEMA evil"],
    ["CREATE TEMP TABLE that shadows the head", "CREATE TEMP TABLE audit_chain_head (id int, seq bigint, hash text)"],
    ["CREATE FUNCTION in pg_temp", "CREATE FUNCTION pg_temp.audit_event_hash() RETURNS text LANGUAGE sql AS 'SELECT 1'"],
    ["CREATE PUBLICATION", "CREATE PUBLICATION evil FOR ALL TABLES"],
    ["CREATE SUBSCRIPTION", "CREATE SUBSCRIPTION evil CONNECTION 'host=127.0.0.1' PUBLICATION p WITH (connect = false)"],
    ["CREATE EVENT TRIGGER", "CREATE EVENT TRIGGER evil ON ddl_command_start EXECUTE FUNCTION audit_events_append_only()"],
  ];
}

/** Privileges PostgreSQL lets a role "grant" itself with only a warning: they must change nothing. */
const SELF_GRANTS: Array<[string, string]> = [
  ["GRANT UPDATE, DELETE, TRUNCATE ON audit_events", "SELECT has_table_privilege('audit_events', 'UPDATE') OR has_table_privilege('audit_events', 'DELETE') OR has_table_privilege('audit_events', 'TRUNCATE') AS gained"],
  ["GRANT ALL ON audit_chain_head", "SELECT has_table_privilege('audit_chain_head', 'UPDATE') OR has_table_privilege('audit_chain_head', 'INSERT') AS gained"],
  ["GRANT ALL ON audit_checkpoints", "SELECT has_table_privilege('audit_checkpoints', 'UPDATE') OR has_table_privilege('audit_checkpoints', 'DELETE') AS gained"],
  ["GRANT CREATE ON SCHEMA public", "SELECT has_schema_privilege('public', 'CREATE') AS gained"],
];

describe("a runtime database role cannot get around the audit's protections", () => {
  let t: TestDatabase;
  let admin: pg.Client;
  const { names } = inject("databaseRoles");

  /** Everything an attack could have changed, read as the superuser. */
  const snapshot = async () =>
    (
      await admin.query(`SELECT
        (SELECT count(*) FROM audit_events)::int AS events,
        (SELECT seq || ':' || hash FROM audit_chain_head) AS head,
        (SELECT count(*) FROM audit_checkpoints)::int AS checkpoints,
        (SELECT string_agg(tgrelid::regclass || '.' || tgname || '=' || tgenabled::text, ',' ORDER BY tgrelid::regclass::text, tgname) FROM pg_trigger WHERE NOT tgisinternal) AS triggers,
        (SELECT count(*) FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE c.relnamespace = 'public'::regnamespace AND r.rulename <> '_RETURN')::int AS rules,
        (SELECT string_agg(p.oid::regprocedure || md5(p.prosrc) || p.prosecdef || pg_get_userbyid(p.proowner) || coalesce(array_to_string(p.proconfig, ';'), '') || coalesce(p.proacl::text, ''), ',' ORDER BY 1) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace) AS functions,
        (SELECT string_agg(relname || ':' || pg_get_userbyid(relowner) || relrowsecurity || coalesce(relacl::text, ''), ',' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace) AS relations,
        (SELECT count(*) FROM pg_namespace)::int AS schemas,
        (SELECT nspacl::text || pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public') AS schema_public,
        (SELECT datacl::text || pg_get_userbyid(datdba) || coalesce((SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0), '') FROM pg_database d WHERE datname = current_database()) AS database,
        (SELECT string_agg(rolname || rolsuper || rolcreaterole || rolcreatedb || rolreplication || rolbypassrls || coalesce(array_to_string(rolconfig, ';'), ''), ',' ORDER BY rolname) FROM pg_roles WHERE rolname NOT LIKE 'bh\_%') AS roles,
        -- Roles of other test files (role-setup.test.ts and others make bh_* roles on this shared server) are theirs.
        (SELECT count(*) FROM pg_auth_members m WHERE pg_get_userbyid(m.member) NOT LIKE 'bh\_%' AND pg_get_userbyid(m.roleid) NOT LIKE 'bh\_%')::int AS memberships,
        (SELECT count(*) FROM pg_default_acl)::int AS default_acls,
        (SELECT count(*) FROM pg_extension)::int AS extensions,
        (SELECT count(*) FROM pg_publication)::int + (SELECT count(*) FROM pg_subscription)::int + (SELECT count(*) FROM pg_event_trigger)::int AS replication_hooks`)
    ).rows[0];

  beforeAll(async () => {
    t = await createTestDatabase();
    for (let i = 0; i < 5; i++) await recordAuditEvent(t.db, { type: `role-test.${i}`, actor: { actorType: "system", actorId: "test" } });
    await writeCheckpoint(t.db, masterKey);
    admin = new pg.Client({ connectionString: t.adminUrl });
    await admin.connect();
  });
  afterAll(async () => {
    await admin.end();
    await t.drop();
  });

  describe.each(["dashboard", "worker"] as const)("as the %s's role", (role) => {
    let c: pg.Client;
    let before: Awaited<ReturnType<typeof snapshot>>;
    const url = () => (role === "dashboard" ? t.url : t.workerUrl);

    beforeAll(async () => {
      c = new pg.Client({ connectionString: url() });
      c.on("notice", () => undefined);
      await c.connect();
      before = await snapshot();
    });
    afterAll(() => c.end());

    it("is the role it should be, with no way up", async () => {
      const { rows } = await c.query<{ who: string; sup: boolean }>("SELECT current_user AS who, rolsuper AS sup FROM pg_roles WHERE rolname = current_user");
      expect(rows[0]).toEqual({ who: names[role], sup: false });
    });

    it.each(attacks(names.owner, new URL(inject("adminDatabaseUrl")).username, "DATABASE"))("refuses: %s", async (_name, sql) => {
      const statement = sql.replace('"DATABASE"', `"${new URL(t.adminUrl).pathname.slice(1)}"`);
      const error = await c.query(statement).then(
        () => null,
        (e: unknown) => e as { code?: string; message: string },
      );
      await c.query("ROLLBACK").catch(() => undefined); // leave no aborted transaction behind
      expect(error, `${statement} was accepted`).not.toBeNull();
      expect(error!.code, error!.message).toBe("42501"); // insufficient_privilege, not some other failure
      expect(await snapshot()).toEqual(before);
      const session = await c.query<{ who: string; srr: string }>("SELECT current_user AS who, current_setting('session_replication_role') AS srr");
      expect(session.rows[0]).toEqual({ who: names[role], srr: "origin" });
    });

    it.each(SELF_GRANTS)("gains nothing from %s to itself", async (grant, check) => {
      const target = grant.replace(/^GRANT /, "");
      await c.query(`GRANT ${target} TO CURRENT_USER`).catch(() => undefined); // a warning at most
      expect((await c.query<{ gained: boolean }>(check)).rows[0]!.gained).toBe(false);
      expect(await snapshot()).toEqual(before);
    });

    it("gains nothing from session defaults it may set for itself", async () => {
      // PostgreSQL lets every role set its own session defaults (and password); neither makes it
      // anyone else. The launcher resets them at each start (ensureLoginRoles).
      await c.query(`ALTER ROLE CURRENT_USER SET role = '${names.owner}'`);
      try {
        const next = new pg.Client({ connectionString: url() });
        next.on("notice", () => undefined);
        await next.connect();
        try {
          expect((await next.query<{ who: string }>("SELECT current_user AS who")).rows[0]!.who).toBe(names[role]);
          await expect(next.query("UPDATE audit_events SET reason = 'x'")).rejects.toMatchObject({ code: "42501" });
        } finally {
          await next.end();
        }
      } finally {
        await c.query("ALTER ROLE CURRENT_USER RESET ALL");
      }
    });

    it("still appends to the audit, through the chain, and verifies", async () => {
      const sql = role === "dashboard" ? undefined : new pg.Pool({ connectionString: t.workerUrl, max: 2 });
      try {
        if (role === "dashboard") {
          await t.db.$transaction((tx) => recordAuditEvent(tx, { type: "role-test.dashboard", actor: { actorType: "system", actorId: "test" } }));
          await writeCheckpoint(t.db, masterKey);
        } else {
          const rows = [0, 1, 2].map((i) => prepareEvent({ type: "proxy.decision", actorType: "agent", actorId: "a", agentId: null, taskId: null, outcome: "allow", effect: "read", reason: `r${i}`, ruleId: null, data: { i } }, new Date()));
          // The shipper's path: a batch and its log's cursor move in one statement, exactly once.
          const client = await sql!.connect();
          try {
            const walId = randomUUID();
            const start = await readCursor(client, walId, "role-test");
            expect(await shipRows(client, walId, start, start + 2, rows.slice(0, 2))).toBe(true);
            expect(await shipRows(client, walId, start, start + 2, rows.slice(0, 2))).toBe(false); // a retry changes nothing
            expect(await shipRows(client, walId, start + 2, start + 3, rows.slice(2))).toBe(true);
          } finally {
            client.release();
          }
          // Checkpoints are the launcher's signer's: the worker's role cannot store one.
          await expect(writeCheckpoint(sql!, masterKey)).rejects.toThrow(/permission denied/);
        }
        const result = await verifyAuditChain(role === "dashboard" ? t.db : sql!, { checkpointKeys: [checkpointVerificationKey(masterKey)] });
        expect(result).toMatchObject({ ok: true });
        before = await snapshot(); // the audit grew, as it should
      } finally {
        await sql?.end();
      }
    });
  });
});
