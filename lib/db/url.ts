/**
 * Connection parameters that carry a secret when written in a URL's query
 * (`postgresql://user@host/db?password=...`, which libpq and node-postgres both accept).
 */
const SECRET_PARAMETER = /pass|secret|token|key$/i;

/** A database URL with its password masked (in the user-info part and in the query), for messages and logs. */
export function redactDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    for (const name of [...new Set(u.searchParams.keys())]) {
      if (SECRET_PARAMETER.test(name)) u.searchParams.set(name, "***");
    }
    return u.toString();
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}
