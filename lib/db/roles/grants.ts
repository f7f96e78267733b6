import pg from "pg";
import { redactDatabaseUrl } from "@/lib/db/url";
import { missingRoles, readAcl, readSchemaObjects, type AclEntry, type AclKind, type SchemaObjects } from "./acl";
import { quoteIdent, RUNTIME_ROLES, type RuntimeRoleNames } from "./names";
import { PRIVILEGES, type PrivilegeMap } from "./privileges";

/**
 * The grants step: after every migration, as the owner, make the privileges of the runtime roles
 * and PUBLIC match the privilege map exactly. It compares the catalogs with the map and changes
 * only what differs, printing each statement, so a second run changes nothing and an upgraded
 * database gets exactly the grants its new tables need. A migration never has to remember a
 * GRANT, and an object the map does not list stays closed to both runtime roles.
 *
 * Why a canonical list rather than ALTER DEFAULT PRIVILEGES: default privileges are one rule for
 * every future table, and the roles need different privileges per table (audit tables INSERT and
 * SELECT only, some columns only); a default broad enough for the dashboard would hand UPDATE on
 * the next audit-like table to both roles.
 */
export class GrantsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "GrantsError";
  }
}

/** Prisma Migrate's advisory lock key (lib/db/migrate.ts): grants and migrations serialise. */
const MIGRATION_LOCK_KEY = 72707369;

type Desired = Map<string, true | Set<string>>; // privilege -> whole object, or these columns
type State = Map<string, Desired>; // `${kind}\u0000${object}\u0000${grantee}` -> privileges

const key = (kind: AclKind, object: string, grantee: string) => `${kind}\u0000${object}\u0000${grantee}`;

function desiredState(objects: SchemaObjects, roles: RuntimeRoleNames, map: PrivilegeMap): { state: State; warnings: string[] } {
  const state: State = new Map();
  const warnings: string[] = [];
  const set = (kind: AclKind, object: string, grantee: string, privilege?: string, columns?: readonly string[] | true) => {
    const k = key(kind, object, grantee);
    const entry = state.get(k) ?? new Map<string, true | Set<string>>();
    if (privilege) entry.set(privilege, columns === undefined || columns === true ? true : new Set(columns));
    state.set(k, entry);
  };
  const grantees = ["PUBLIC", roles.dashboard, roles.worker];
  const closed = (kind: AclKind, object: string) => grantees.forEach((g) => set(kind, object, g));

  closed("DATABASE", objects.database);
  closed("SCHEMA", "public");
  for (const role of RUNTIME_ROLES) {
    set("DATABASE", objects.database, roles[role], "CONNECT");
    set("SCHEMA", "public", roles[role], "USAGE");
  }
  for (const table of objects.tables) {
    closed("TABLE", table);
    const grant = map.tables[table];
    if (!grant) warnings.push(`table ${table} is not in Bulkhead's privilege map: the runtime roles get no access to it`);
    for (const role of RUNTIME_ROLES) {
      for (const [privilege, columns] of Object.entries(grant?.[role] ?? {})) set("TABLE", table, roles[role], privilege, columns);
    }
  }
  for (const sequence of objects.sequences) {
    closed("SEQUENCE", sequence);
    const users = map.sequences[sequence];
    if (!users) warnings.push(`sequence ${sequence} is not in Bulkhead's privilege map: the runtime roles cannot use it`);
    for (const role of users ?? []) set("SEQUENCE", sequence, roles[role], "USAGE");
  }
  for (const [name, signatures] of objects.functions) {
    const users = map.functions[name];
    if (!users) warnings.push(`function ${name} is not in Bulkhead's privilege map: the runtime roles cannot call it`);
    for (const signature of signatures) {
      closed("FUNCTION", signature);
      for (const role of users ?? []) set("FUNCTION", signature, roles[role], "EXECUTE");
    }
  }
  const missing = [
    ...Object.keys(map.tables).filter((t) => !objects.tables.includes(t)),
    ...Object.keys(map.sequences).filter((s) => !objects.sequences.includes(s)),
    ...Object.keys(map.functions).filter((f) => !objects.functions.has(f)),
  ];
  if (missing.length > 0) {
    throw new GrantsError(`The privilege map names objects the database does not have (${missing.join(", ")}): is the database fully migrated?`);
  }
  return { state, warnings };
}

function currentState(entries: AclEntry[]): State {
  const state: State = new Map();
  for (const e of entries) {
    const k = key(e.kind, e.object, e.grantee);
    const entry = state.get(k) ?? new Map<string, true | Set<string>>();
    const had = entry.get(e.privilege);
    if (e.column === undefined) entry.set(e.privilege, true);
    else if (had !== true) entry.set(e.privilege, new Set([...(had ?? []), e.column]));
    else entry.set(e.privilege, new Set(["\u0000whole table and columns"])); // both: never equal to a wanted state
    state.set(k, entry);
  }
  return state;
}

const same = (a: true | Set<string> | undefined, b: true | Set<string> | undefined) =>
  a === b || (a instanceof Set && b instanceof Set && a.size === b.size && [...a].every((c) => b.has(c)));

function target(kind: AclKind, object: string): string {
  if (kind === "FUNCTION") return `FUNCTION ${object}`; // regprocedure text is already quoted
  return `${kind} ${quoteIdent(object)}`;
}

/**
 * The statements that turn `current` into `desired`: per object and grantee, one REVOKE of the
 * privileges that differ, then one GRANT of what is wanted of them. Revoking a table privilege
 * also revokes it from every column, so a changed column list is rebuilt from nothing.
 */
function statementsFor(desired: State, current: State): string[] {
  const out: string[] = [];
  for (const [k, want] of desired) {
    const [kind, object, grantee] = k.split("\u0000") as [AclKind, string, string];
    const have = current.get(k) ?? new Map();
    const who = grantee === "PUBLIC" ? "PUBLIC" : quoteIdent(grantee);
    const differ = [...new Set([...have.keys(), ...want.keys()])].sort().filter((p) => !same(want.get(p), have.get(p)));
    const revoke = differ.filter((p) => have.has(p));
    const grant = differ.filter((p) => want.has(p)).map((p) => {
      const w = want.get(p)!;
      return w === true ? p : `${p} (${[...w].sort().map(quoteIdent).join(", ")})`;
    });
    if (revoke.length > 0) out.push(`REVOKE ${revoke.join(", ")} ON ${target(kind, object)} FROM ${who}`);
    if (grant.length > 0) out.push(`GRANT ${grant.join(", ")} ON ${target(kind, object)} TO ${who}`);
  }
  return out;
}

export interface GrantsPlan {
  statements: string[];
  warnings: string[];
}

/** What the grants step would change in the database `client` is connected to. */
export async function planGrants(client: pg.ClientBase, roles: RuntimeRoleNames, map: PrivilegeMap = PRIVILEGES): Promise<GrantsPlan> {
  if (roles.dashboard === roles.worker) {
    throw new GrantsError(`The dashboard and the worker must use different database roles (both are ${roles.dashboard}).`);
  }
  const missing = await missingRoles(client, [roles.dashboard, roles.worker]);
  if (missing.length > 0) {
    throw new GrantsError(`The database role(s) ${missing.join(", ")} do not exist. Create them first (docs/database.md, or \`bulkhead db roles\`).`);
  }
  const objects = await readSchemaObjects(client);
  const { state, warnings } = desiredState(objects, roles, map);
  return { statements: statementsFor(state, currentState(await readAcl(client, [roles.dashboard, roles.worker]))), warnings };
}

/**
 * Applies the grants step as the role behind `ownerUrl` (the owner of the database, the schema and
 * its objects), in one transaction under the migrations' lock. Returns the statements it ran.
 * Refuses, changing nothing, when a privilege could not be changed (PostgreSQL only warns when a
 * non-owner revokes), so a misconfigured database is reported instead of looking fixed.
 */
export async function applyGrants(ownerUrl: string, roles: RuntimeRoleNames, log: (line: string) => void = () => undefined): Promise<string[]> {
  const client = new pg.Client({ connectionString: ownerUrl, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new GrantsError(`Cannot reach the database at ${redactDatabaseUrl(ownerUrl)} to apply grants: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK_KEY]);
      const plan = await planGrants(client, roles);
      for (const warning of plan.warnings) log(`Warning: ${warning}.`);
      for (const statement of plan.statements) {
        log(`Database privileges: ${statement}`);
        await client.query(statement);
      }
      const left = (await planGrants(client, roles)).statements;
      if (left.length > 0) {
        throw new GrantsError(
          `Could not set the runtime roles' privileges (still needed: ${left.slice(0, 3).join("; ")}${left.length > 3 ? "; ..." : ""}). ` +
            "Run migrations as the owner of the database, of its schema public and of every object in it (docs/database.md). Nothing was changed.",
        );
      }
      await client.query("COMMIT");
      return plan.statements;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  } finally {
    await client.end().catch(() => undefined);
  }
}
