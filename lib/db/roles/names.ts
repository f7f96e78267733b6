/**
 * The database roles Bulkhead uses (docs/database.md): an owner that only migrations use, and one
 * login role per runtime process. The runtime roles are what the grants step (grants.ts) and the
 * least-privilege check (check.ts) are about; the owner is whoever runs the migrations.
 */
export type RuntimeRole = "dashboard" | "worker";

export const RUNTIME_ROLES: readonly RuntimeRole[] = ["dashboard", "worker"];

/** The PostgreSQL role name behind each runtime role. */
export type RuntimeRoleNames = Record<RuntimeRole, string>;

export interface RoleNames extends RuntimeRoleNames {
  owner: string;
}

/** The names the embedded database uses (and docs/database.md suggests for an external one). */
export const DEFAULT_ROLE_NAMES: RoleNames = {
  owner: "bulkhead_owner",
  dashboard: "bulkhead_dashboard",
  worker: "bulkhead_worker",
};

/** A SQL identifier, always quoted: role names come from configuration. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The user name in a postgres:// URL (percent-decoded), or undefined when it has none. */
export function roleNameFromUrl(url: string): string | undefined {
  try {
    const user = decodeURIComponent(new URL(url).username);
    return user === "" ? undefined : user;
  } catch {
    return undefined;
  }
}

/** `url` with its user name and password replaced (host, port, database and options kept). */
export function urlForRole(url: string, name: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(name);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** The database named in a postgres:// URL. */
export function databaseNameFromUrl(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, "")) || "postgres";
}
