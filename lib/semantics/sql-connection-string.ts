/**
 * Neon's SQL-over-HTTP endpoint takes its target from a header, not the body:
 * `Neon-Connection-String: postgresql://user[:password]@ep-….neon.tech/dbname`. The path's one
 * segment is the database, the user name the role, and the host the endpoint, which picks the
 * branch (often the environment: the same `neondb` on a production and a development branch).
 * Judged on the body alone, `{"query": "DELETE FROM payroll"}` counted for whatever database the
 * descriptor or the body said while the server ran it wherever the header pointed.
 *
 * Read the way the server reads it (a URL: Neon parses it with the WHATWG rules, as `URL` does,
 * and percent-decodes the user and the database), and refused whenever that reading is not the
 * only one: any other scheme, no user or host, no database or more than one path segment, bad
 * percent-encoding, or libpq's own parameters that name the database, user or host again
 * (`?dbname=`: libpq lets them override the URL's parts; Neon ignores them).
 */
import { reject, type Rejection } from "@/lib/semantics/types";

/** The header, lower-cased as canonical requests keep header names. */
export const NEON_CONNECTION_STRING = "neon-connection-string";

export interface ConnectionTarget {
  database: string;
  user: string;
  /** The endpoint's host name, lower-cased. */
  host: string;
}

// libpq connection parameters that name the target again; any of them is a second answer.
const TARGET_PARAMETERS = new Set(["dbname", "database", "user", "host", "hostaddr", "port", "service", "servicefile"]);

function refused(why: string): Rejection {
  return reject("sql_invalid_connection_string", `the ${NEON_CONNECTION_STRING} header ${why}, so the database it targets is not known: it is refused, not guessed`);
}

function decoded(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

/** The database, user and endpoint a request's connection-string header names; null without the header. */
export function connectionTarget(headers: Readonly<Record<string, string>>): ConnectionTarget | Rejection | null {
  const value = headers[NEON_CONNECTION_STRING];
  if (value === undefined) return null;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return refused("is not a URL");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") return refused("is not a postgres:// or postgresql:// URL");
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  if (host === "") return refused("names no host");
  const user = decoded(url.username);
  if (user === null || user === "") return refused("names no user");
  // "/dbname", once: "/a/b" is a database to one reader and "a/b" or "a" to another.
  const segments = url.pathname.split("/").slice(1);
  const database = segments.length === 1 ? decoded(segments[0]!) : null;
  if (database === null || database === "") return refused(`does not name exactly one database in its path ("${url.pathname.slice(0, 60)}")`);
  for (const key of url.searchParams.keys()) {
    if (TARGET_PARAMETERS.has(key.trim().toLowerCase())) return refused(`names the target again in its parameter "${key.slice(0, 40)}"`);
  }
  return { database, user, host };
}
