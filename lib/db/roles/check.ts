import pg from "pg";
import { redactDatabaseUrl } from "@/lib/db/url";

/**
 * The check a runtime process's database role must pass before Bulkhead runs with it: whatever
 * the configuration says, a dashboard or worker that could switch the audit's protections off is
 * refused with the reasons, instead of running quietly as a superuser or an owner.
 */
export class RoleCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RoleCheckError";
  }
}

/** Predefined roles that reach past the schema's grants (files, programs, every table, other sessions). */
const RISKY_PREDEFINED = [
  "pg_execute_server_program",
  "pg_read_server_files",
  "pg_write_server_files",
  "pg_read_all_data",
  "pg_write_all_data",
  "pg_signal_backend",
  "pg_maintain",
  "pg_create_subscription",
  "pg_checkpoint",
];

const CHECK = `
SELECT r.rolname AS role,
       array_remove(ARRAY[
         CASE WHEN r.rolsuper THEN 'is a superuser' END,
         CASE WHEN r.rolcreaterole THEN 'has CREATEROLE' END,
         CASE WHEN r.rolcreatedb THEN 'has CREATEDB' END,
         CASE WHEN r.rolreplication THEN 'has REPLICATION' END,
         CASE WHEN r.rolbypassrls THEN 'has BYPASSRLS' END,
         CASE WHEN pg_has_role(r.oid, d.datdba, 'MEMBER') THEN 'owns the database (or can become its owner)' END,
         CASE WHEN pg_has_role(r.oid, n.nspowner, 'MEMBER') THEN 'owns the schema public (or can become its owner)' END,
         CASE WHEN has_schema_privilege(r.oid, n.oid, 'CREATE') THEN 'can create objects in the schema public' END,
         CASE WHEN has_database_privilege(r.oid, d.oid, 'CREATE') THEN 'can create schemas in the database' END,
         CASE WHEN has_database_privilege(r.oid, d.oid, 'TEMPORARY') THEN 'can create temporary tables' END
       ], NULL)
       || ARRAY(SELECT 'is a member of ' || b.rolname
                  FROM pg_roles b
                 WHERE b.oid <> r.oid AND pg_has_role(r.oid, b.oid, 'MEMBER')
                   AND (b.rolsuper OR b.rolcreaterole OR b.rolcreatedb OR b.rolreplication OR b.rolbypassrls OR b.rolname = ANY($1::text[])))
       || ARRAY(SELECT 'owns ' || c.relname || ' (or can become its owner)'
                  FROM pg_class c
                 WHERE c.relnamespace = n.oid AND c.relkind IN ('r','p','v','m','f','S') AND pg_has_role(r.oid, c.relowner, 'MEMBER')
                 ORDER BY c.relname LIMIT 5)
       || ARRAY(SELECT 'has ' || p || ' on ' || t
                  FROM (VALUES ('audit_events', ARRAY['UPDATE','DELETE','TRUNCATE']),
                               ('audit_checkpoints', ARRAY['UPDATE','DELETE','TRUNCATE']),
                               ('audit_chain_head', ARRAY['INSERT','UPDATE','DELETE','TRUNCATE'])) v(t, ps),
                       unnest(v.ps) p
                 WHERE to_regclass('public.' || t) IS NOT NULL AND has_table_privilege(r.oid, ('public.' || t)::regclass, p)) AS problems
  FROM pg_roles r, pg_database d, pg_namespace n
 WHERE r.rolname = current_user AND d.datname = current_database() AND n.nspname = 'public'`;

/** Why the role `client` is connected as is more than a runtime role may be (empty: it passes). */
export async function leastPrivilegeProblems(client: pg.ClientBase): Promise<{ role: string; problems: string[] }> {
  const { rows } = await client.query<{ role: string; problems: string[] }>(CHECK, [RISKY_PREDEFINED]);
  return rows[0]!;
}

/**
 * Connects as `url` and refuses (RoleCheckError) unless its role is least-privileged. `variable`
 * names the setting the URL came from, so the message says what to change.
 */
export async function assertRuntimeRole(url: string, variable: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new RoleCheckError(`Cannot reach the database at ${redactDatabaseUrl(url)} (${variable}): ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    const { role, problems } = await leastPrivilegeProblems(client);
    if (problems.length > 0) {
      throw new RoleCheckError(
        `The database role ${role} (${variable}) must not be able to change or switch off the audit's protections, but it ${problems.join(", ")}. ` +
          "Give each process its own non-superuser role without ownership (docs/database.md; `bulkhead db roles` prints the SQL).",
      );
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
