import { foreignObjectsSql, ROLE_ATTRIBUTES } from "./bootstrap";
import { quoteIdent, RUNTIME_ROLES, type RoleNames, type RuntimeRole } from "./names";
import { PRIVILEGES, type PrivilegeMap, type TableGrant } from "./privileges";

/**
 * The SQL for an external PostgreSQL, as `bulkhead db roles` prints it and docs/database.md shows
 * it: what a DBA runs once (roles, ownership, the conversion of an older database), and the
 * grants that `bulkhead db migrate` applies after every migration, listed for review.
 */
const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

function tablePrivileges(grant: TableGrant): string {
  return Object.entries(grant)
    .map(([privilege, columns]) => (columns === true ? privilege : `${privilege} (${[...columns].sort().map(quoteIdent).join(", ")})`))
    .join(", ");
}

/** GRANT statements for the runtime roles, from the privilege map (the grants step's target). */
export function grantsSql(names: RoleNames, database: string, map: PrivilegeMap = PRIVILEGES): string {
  const both = `${quoteIdent(names.dashboard)}, ${quoteIdent(names.worker)}`;
  const who = (roles: readonly RuntimeRole[]) => roles.map((r) => quoteIdent(names[r])).join(", ");
  const lines = [
    `REVOKE ALL ON DATABASE ${quoteIdent(database)} FROM PUBLIC;`,
    `GRANT CONNECT ON DATABASE ${quoteIdent(database)} TO ${both};`,
    "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
    `GRANT USAGE ON SCHEMA public TO ${both};`,
    "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;",
  ];
  for (const [table, grants] of Object.entries(map.tables)) {
    for (const role of RUNTIME_ROLES) {
      const privileges = tablePrivileges(grants[role]);
      if (privileges) lines.push(`GRANT ${privileges} ON TABLE ${quoteIdent(table)} TO ${quoteIdent(names[role])};`);
    }
  }
  for (const [sequence, roles] of Object.entries(map.sequences)) {
    if (roles.length > 0) lines.push(`GRANT USAGE ON SEQUENCE ${quoteIdent(sequence)} TO ${who(roles)};`);
  }
  for (const [fn, roles] of Object.entries(map.functions)) {
    if (roles.length > 0) lines.push(`GRANT EXECUTE ON FUNCTION ${quoteIdent(fn)} TO ${who(roles)};`);
  }
  return lines.join("\n");
}

/** Everything a DBA needs, in order, with the roles and database named. */
export function rolesSql(names: RoleNames, database: string): string {
  const create = (name: string, what: string) => `CREATE ROLE ${quoteIdent(name)} ${ROLE_ATTRIBUTES}; -- ${what}`;
  const convert = foreignObjectsSql(literal(names.owner)).replaceAll("\n", "\n      ");
  return `-- Bulkhead's database roles (docs/database.md).

-- 1. Once per cluster, as a superuser (or a role with CREATEROLE): three plain login roles.
${create(names.owner, "owns the schema; used only by migrations (DATABASE_URL)")}
${create(names.dashboard, "the dashboard and the CLI (BULKHEAD_DASHBOARD_DATABASE_URL)")}
${create(names.worker, "the proxy worker (BULKHEAD_WORKER_DATABASE_URL)")}
-- Then give each a password of its own, e.g. in psql: \\password ${quoteIdent(names.owner)}

-- 2. Once, as a superuser connected to the database ${database}: the owner role owns the database,
--    its schema public and everything in it (for a database an earlier Bulkhead created as another
--    role, this converts it, and says what it changed); nobody else may create anything.
DO $$
DECLARE
  obj record;
BEGIN
  FOR obj IN ${convert}
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I', obj.kind, obj.name, ${literal(names.owner)});
    RAISE NOTICE '% % now belongs to % (was %)', lower(obj.kind), obj.name, ${literal(names.owner)}, obj.owner;
  END LOOP;
END;
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- 3. Applied by \`bulkhead db migrate\` (and \`bulkhead start\`) as the owner after every migration,
--    revoking anything else these roles hold; listed here for review, nothing to run by hand.
${grantsSql(names, database)}
`;
}
