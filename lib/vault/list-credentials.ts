import { auditSql, type AuditDb } from "@/lib/audit/sql";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { everyPage, nameCursor, pageOf, readLimit, readNameCursor, type ListPage, type PageRequest } from "@/lib/db/list-page";
import { dateOf, epochMs } from "@/lib/db/view-sql";
import { knownEnvironments } from "@/lib/policy/references";
import { buildRegistry } from "@/lib/services/build-registry";
import { endpointService } from "./binding";
import { toCredentialView, type CredentialView } from "./view";

export interface ListedCredential extends CredentialView {
  /** Why the proxy will never inject it as it stands (unbound, or its host now belongs to another service); null when it can. */
  problem: string | null;
}

interface CredentialRow {
  id: string;
  name: string;
  scheme: string;
  host: string;
  port: string;
  service_id: string | null;
  environments: string;
  header_template: string;
  created_at: string;
  rotated_at: string | null;
  last_used_at: string | null;
  created_by_email: string | null;
}

// `secret_sealed` is deliberately absent: the sealed secret is never read for display.
const LIST_SQL = `SELECT c.id::text, c.name, c.scheme, c.host, c.port::text, c.service_id, c.environments, c.header_template,
  ${epochMs("c.created_at")} AS created_at, ${epochMs("c.rotated_at")} AS rotated_at, ${epochMs("c.last_used_at")} AS last_used_at,
  u.email AS created_by_email
FROM credentials c LEFT JOIN users u ON u.id = c.created_by_id
WHERE ($1::text IS NULL OR c.name > $1::text)
ORDER BY c.name ASC LIMIT $2::int`;
const SERVICES_SQL = "SELECT name, descriptor_yaml AS \"descriptorYaml\" FROM services ORDER BY name ASC";
const INVENTORY_SQL = "SELECT value FROM settings WHERE key = 'inventory.yaml'";

/**
 * One page of credentials' metadata by name (names are unique), for anyone with `read`, each with
 * why the proxy would not inject it: at most `limit` (default 500) and the cursor of the next page.
 * Plain SQL on either driver (the dashboard's Prisma client, or `bulkhead credential list`'s pg
 * connection); the registry that judges the binding is built from the stored services as the
 * proxy builds it.
 */
export async function listCredentialsPage(db: AuditDb, actor: Actor, page: PageRequest = {}): Promise<ListPage<ListedCredential>> {
  assertCan(actor, "read");
  const after = readNameCursor("credentials", page.cursor);
  const limit = readLimit(page.limit);
  const sql = auditSql(db);
  // One after another: on the CLI's pg client, queries issued while one runs are deprecated (pg 9
  // refuses them); on the dashboard's pool the three are short either way.
  const rows = await sql.query<CredentialRow>(LIST_SQL, [after?.name ?? null, limit + 1]);
  const services = await sql.query<{ name: string; descriptorYaml: string }>(SERVICES_SQL);
  const inventoryRows = await sql.query<{ value: unknown }>(INVENTORY_SQL);
  // The registry decides the binding; the registry and the inventory together which environments exist.
  const stored = inventoryRows[0]?.value;
  const { registry, inventory } = buildRegistry(services, typeof stored === "string" ? stored : null);
  const known = new Set(knownEnvironments({ registry, inventory }));
  return pageOf(rows, limit, (r) => listed(r, registry, known), (r) => nameCursor("credentials", { name: r.name }));
}

/** Metadata of every credential (page after page): `bulkhead credential list`. */
export async function listCredentials(db: AuditDb, actor: Actor): Promise<ListedCredential[]> {
  return everyPage((cursor) => listCredentialsPage(db, actor, { cursor }));
}

function listed(r: CredentialRow, registry: Parameters<typeof endpointService>[0], known: ReadonlySet<string>): ListedCredential {
  const view = toCredentialView({
    id: r.id,
    name: r.name,
    scheme: r.scheme,
    host: r.host,
    port: Number(r.port),
    serviceId: r.service_id,
    environments: r.environments,
    headerTemplate: r.header_template,
    createdAt: dateOf(r.created_at),
    rotatedAt: dateOf(r.rotated_at),
    lastUsedAt: dateOf(r.last_used_at),
    createdBy: r.created_by_email === null ? null : { email: r.created_by_email },
  });
  return { ...view, problem: bindingProblem(view, registry) ?? environmentProblem(view.environments, known) };
}

/**
 * Environments a credential lists that nothing places an action in (no inventory entry and no
 * service names them): a typo (`prodution`) is accepted as a name, and the credential is then
 * never injected for it. Null when every one exists (or it serves every environment).
 */
export function environmentProblem(environments: readonly string[], known: ReadonlySet<string>): string | null {
  const unknown = environments.filter((e) => e !== "*" && !known.has(e));
  if (unknown.length === 0) return null;
  const names = unknown.map((e) => JSON.stringify(e)).join(", ");
  const hint = ` (environments that exist: ${[...known].sort().join(", ")})`;
  return unknown.length === environments.length
    ? `it serves ${names}, which no inventory entry or service names: no action is placed there, so it is never injected${hint}`
    : `${names} ${unknown.length === 1 ? "is" : "are"} named by no inventory entry or service: it is injected only for its other environments${hint}`;
}

/** Why the proxy would never inject this credential as it stands, or null. */
export function bindingProblem(view: CredentialView, registry: Parameters<typeof endpointService>[0]): string | null {
  if (view.serviceId === null || view.environments.length === 0) return "unbound: it serves nothing and is never injected until its service and environments are declared";
  const endpoint = endpointService(registry, view.scheme === "http" ? "http" : "https", view.host, view.port, undefined);
  if (!endpoint.ok) return endpoint.message;
  if (endpoint.serviceId !== view.serviceId) return `its host now belongs to the service ${endpoint.serviceId}, not ${view.serviceId}: it is never injected until it is bound again`;
  return null;
}
