import type pg from "pg";
import { quoteIdent } from "./names";

/**
 * The steps that need a superuser, run by whoever controls the cluster: the launcher of the
 * embedded PostgreSQL, the test setup, or a DBA with the SQL from docs/database.md. Both are
 * idempotent and print every change they make.
 */

/** What every Bulkhead role is: a plain login role that can grow nothing by itself. */
export const ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT";

export interface LoginRole {
  name: string;
  password: string;
  /** Said when the role is created ("owns the schema; used only by migrations"). */
  purpose: string;
}

/** The roles' cluster-wide lock: two launchers (or a launcher and a CLI) never race CREATE ROLE. */
const ROLES_LOCK_KEY = 72707370;

/**
 * Creates each role, or puts an existing one back to exactly that: the attributes above, no
 * membership in any other role, no per-role settings, and the password from the data folder. A
 * runtime role can change its own password and session defaults (PostgreSQL allows that to every
 * role), which only locks itself out; this undoes it at the next start.
 */
export async function ensureLoginRoles(client: pg.ClientBase, roles: readonly LoginRole[], log: (line: string) => void): Promise<void> {
  await client.query("SELECT pg_advisory_lock($1)", [ROLES_LOCK_KEY]);
  try {
    for (const role of roles) {
      const ident = quoteIdent(role.name);
      const password = client.escapeLiteral(role.password);
      const { rows } = await client.query<{ bad: boolean }>(
        `SELECT (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls OR NOT rolcanlogin OR NOT rolinherit) AS bad
           FROM pg_roles WHERE rolname = $1`,
        [role.name],
      );
      if (rows.length === 0) {
        await client.query(`CREATE ROLE ${ident} ${ROLE_ATTRIBUTES} PASSWORD ${password}`);
        log(`Created the database role ${role.name} (${role.purpose}).`);
        continue;
      }
      if (rows[0]!.bad) {
        await client.query(`ALTER ROLE ${ident} ${ROLE_ATTRIBUTES}`);
        log(`Reset the attributes of the database role ${role.name} to ${ROLE_ATTRIBUTES}.`);
      }
      const settings = await client.query<{ datname: string | null }>(
        "SELECT d.datname FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase WHERE s.setrole = $1::regrole",
        [ident],
      );
      for (const { datname } of settings.rows) {
        await client.query(`ALTER ROLE ${ident}${datname === null ? "" : ` IN DATABASE ${quoteIdent(datname)}`} RESET ALL`);
        log(`Removed the session defaults of the database role ${role.name}${datname === null ? "" : ` in ${datname}`}.`);
      }
      const memberships = await client.query<{ name: string }>(
        "SELECT r.rolname AS name FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = $1::regrole",
        [ident],
      );
      for (const m of memberships.rows) {
        await client.query(`REVOKE ${quoteIdent(m.name)} FROM ${ident}`);
        log(`Removed the database role ${role.name} from ${m.name}.`);
      }
      await client.query(`ALTER ROLE ${ident} PASSWORD ${password}`);
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [ROLES_LOCK_KEY]);
  }
}

interface OwnedObject {
  kind: string;
  name: string;
  owner: string;
}

/**
 * Objects in the current database that the role `ownerExpr` (an SQL text expression) does not
 * own yet: the database, schema public, and what is in it. Shared with the DO block that
 * `bulkhead db roles` prints for an external database.
 */
export function foreignObjectsSql(ownerExpr: string): string {
  return `WITH o AS (SELECT to_regrole(quote_ident(${ownerExpr}))::oid AS oid)
     SELECT 'DATABASE' AS kind, quote_ident(datname) AS name, pg_get_userbyid(datdba) AS owner FROM pg_database, o
      WHERE datname = current_database() AND datdba <> o.oid
     UNION ALL
     SELECT 'SCHEMA', quote_ident(nspname), pg_get_userbyid(nspowner) FROM pg_namespace, o WHERE nspname = 'public' AND nspowner <> o.oid
     UNION ALL
     SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                           WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
            quote_ident(c.relname), pg_get_userbyid(c.relowner)
       FROM pg_class c, o
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r','p','v','m','f','S','c') AND c.relowner <> o.oid
        -- sequences owned by a column follow their table, as indexes do
        AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a','i')))
     UNION ALL
     SELECT 'TYPE', quote_ident(t.typname), pg_get_userbyid(t.typowner) FROM pg_type t, o
      WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e','d','r') AND t.typowner <> o.oid
     UNION ALL
     SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
            p.oid::regprocedure::text, pg_get_userbyid(p.proowner) FROM pg_proc p, o
      WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> o.oid
     ORDER BY 1, 2`;
}

/**
 * Makes `owner` the owner of the current database, of its schema `public` and of every object in
 * it: the conversion of a database that an earlier Bulkhead created as the superuser (which owned
 * every table, so the application could switch the audit's triggers off). Also closes the schema
 * and the database to PUBLIC before anything else connects (the grants step then opens exactly
 * what each runtime role needs). One transaction; prints each change; changes nothing the second time.
 */
export async function takeOwnership(client: pg.ClientBase, owner: string, log: (line: string) => void): Promise<number> {
  await client.query("BEGIN");
  try {
    // A CLI command next to a starting launcher converts nothing twice.
    await client.query("SELECT pg_advisory_xact_lock($1)", [ROLES_LOCK_KEY]);
    const objects = (await client.query<OwnedObject>(foreignObjectsSql("$1"), [owner])).rows;
    for (const o of objects) {
      await client.query(`ALTER ${o.kind} ${o.name} OWNER TO ${quoteIdent(owner)}`);
      log(`Database ownership: ${o.kind.toLowerCase()} ${o.name} now belongs to ${owner} (was ${o.owner}).`);
    }
    const schemaCreate = await client.query<{ open: boolean }>("SELECT has_schema_privilege('public', 'public', 'CREATE') AS open");
    if (schemaCreate.rows[0]!.open) {
      await client.query("REVOKE CREATE ON SCHEMA public FROM PUBLIC");
      log("Database privileges: REVOKE CREATE ON SCHEMA public FROM PUBLIC");
    }
    await client.query("COMMIT");
    return objects.length;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
