import type pg from "pg";

/**
 * The privileges that PUBLIC and the given roles hold today in the current database, read from the
 * catalogs (aclexplode over each ACL, with PostgreSQL's defaults where an ACL is still NULL: a new
 * function is executable by PUBLIC, a new database is open to PUBLIC for CONNECT and TEMPORARY).
 * Only the schema `public` is considered: it is where the migrations put everything.
 */
export type AclKind = "DATABASE" | "SCHEMA" | "TABLE" | "SEQUENCE" | "FUNCTION";

export interface AclEntry {
  kind: AclKind;
  /** Table, sequence, schema or database name; for a function its signature (regprocedure). */
  object: string;
  /** Set for column privileges. */
  column?: string;
  /** "PUBLIC" or a role name. */
  grantee: string;
  privilege: string;
}

export interface SchemaObjects {
  database: string;
  tables: string[];
  sequences: string[];
  /** name -> signatures (overloads). */
  functions: Map<string, string[]>;
}

const RELATION_KINDS = "('r','p','v','m','f')";

function granteesCte(roles: readonly string[]): { sql: string; values: string[] } {
  const rows = roles.map((_, i) => `(to_regrole(quote_ident($${i + 1}))::oid, $${i + 1})`);
  return { sql: `g(oid, name) AS (VALUES (0::oid, 'PUBLIC'), ${rows.join(", ")})`, values: [...roles] };
}

export async function readSchemaObjects(client: pg.ClientBase): Promise<SchemaObjects> {
  const db = await client.query<{ name: string }>("SELECT current_database() AS name");
  const rels = await client.query<{ relname: string; relkind: string }>(
    `SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r','p','v','m','f','S') ORDER BY relname`,
  );
  const fns = await client.query<{ proname: string; signature: string }>(
    `SELECT proname, oid::regprocedure::text AS signature FROM pg_proc
      WHERE pronamespace = 'public'::regnamespace AND prokind IN ('f','p') ORDER BY proname, signature`,
  );
  const functions = new Map<string, string[]>();
  for (const f of fns.rows) functions.set(f.proname, [...(functions.get(f.proname) ?? []), f.signature]);
  return {
    database: db.rows[0]!.name,
    tables: rels.rows.filter((r) => r.relkind !== "S").map((r) => r.relname),
    sequences: rels.rows.filter((r) => r.relkind === "S").map((r) => r.relname),
    functions,
  };
}

/** Every privilege PUBLIC and `roles` hold on the database, the schema `public` and the objects in it. */
export async function readAcl(client: pg.ClientBase, roles: readonly string[]): Promise<AclEntry[]> {
  const g = granteesCte(roles);
  const query = async (kind: AclKind, sql: string) =>
    (await client.query<{ object: string; column: string | null; grantee: string; privilege: string }>(`WITH ${g.sql} ${sql}`, g.values)).rows.map(
      (r): AclEntry => ({ kind, object: r.object, grantee: r.grantee, privilege: r.privilege, ...(r.column ? { column: r.column } : {}) }),
    );
  return [
    ...(await query(
      "DATABASE",
      `SELECT d.datname AS object, NULL AS column, g.name AS grantee, a.privilege_type AS privilege
         FROM pg_database d CROSS JOIN LATERAL aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a JOIN g ON g.oid = a.grantee
        WHERE d.datname = current_database()`,
    )),
    ...(await query(
      "SCHEMA",
      `SELECT n.nspname AS object, NULL AS column, g.name AS grantee, a.privilege_type AS privilege
         FROM pg_namespace n CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a JOIN g ON g.oid = a.grantee
        WHERE n.nspname = 'public'`,
    )),
    ...(await query(
      "TABLE",
      `SELECT c.relname AS object, NULL AS column, g.name AS grantee, a.privilege_type AS privilege
         FROM pg_class c CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a JOIN g ON g.oid = a.grantee
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ${RELATION_KINDS}
       UNION ALL
       SELECT c.relname, att.attname, g.name, a.privilege_type
         FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL
        CROSS JOIN LATERAL aclexplode(att.attacl) a JOIN g ON g.oid = a.grantee
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ${RELATION_KINDS}`,
    )),
    ...(await query(
      "SEQUENCE",
      `SELECT c.relname AS object, NULL AS column, g.name AS grantee, a.privilege_type AS privilege
         FROM pg_class c CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('s', c.relowner))) a JOIN g ON g.oid = a.grantee
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'`,
    )),
    ...(await query(
      "FUNCTION",
      `SELECT p.oid::regprocedure::text AS object, NULL AS column, g.name AS grantee, a.privilege_type AS privilege
         FROM pg_proc p CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a JOIN g ON g.oid = a.grantee
        WHERE p.pronamespace = 'public'::regnamespace AND p.prokind IN ('f','p')`,
    )),
  ];
}

/** The roles among `names` that do not exist in this cluster. */
export async function missingRoles(client: pg.ClientBase, names: readonly string[]): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>("SELECT n AS name FROM unnest($1::text[]) n WHERE to_regrole(quote_ident(n)) IS NULL", [names]);
  return rows.map((r) => r.name);
}
