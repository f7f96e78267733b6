/** Recognises driver errors by their SQLSTATE / Prisma codes, as the real driver reports them. */
export function codeOf(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { code?: unknown; cause?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } };
  const original = e.meta?.driverAdapterError?.cause?.originalCode;
  if (typeof original === "string") return original;
  if (typeof e.code === "string") return e.code;
  return undefined;
}

/** A unique constraint was violated (Prisma P2002, PostgreSQL 23505). */
export function isUniqueViolation(error: unknown): boolean {
  const code = codeOf(error);
  return code === "P2002" || code === "23505";
}

/** A foreign key constraint was violated (Prisma P2003, PostgreSQL 23503). */
export function isForeignKeyViolation(error: unknown): boolean {
  const code = codeOf(error);
  return code === "P2003" || code === "23503";
}

/** Prisma's codes for a database it cannot reach, or that dropped or timed out the connection. */
const PRISMA_UNAVAILABLE = new Set(["P1001", "P1002", "P1008", "P1017", "P2024"]);
/** The driver adapter's kinds for the same. */
const ADAPTER_UNAVAILABLE = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TooManyConnections"]);
/**
 * PostgreSQL SQLSTATEs: connection exceptions (08…), the server shutting down or starting
 * (57P01-57P03), too many connections (53300), and a statement cancelled by statement_timeout
 * (57014: the server is too slow to answer, which the caller cannot fix either).
 */
const SQLSTATE_UNAVAILABLE = /^(08...|57P0[1-3]|53300|57014)$/;
/** What node-postgres says when the socket fails or a query or connection times out. */
const PG_MESSAGES = /^(Connection terminated|Query read timeout|timeout exceeded when trying to connect|connect ECONNREFUSED|connect ETIMEDOUT|read ECONNRESET|Client has encountered a connection error)/;

/**
 * The database is down, unreachable, restarting or not answering in time: the caller may try
 * again later, and nothing it sent is at fault. Looks through Prisma's wrapping (its code, the
 * driver adapter's error) and `cause` chains.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; typeof e === "object" && e !== null && depth < 5; depth++) {
    const x = e as { code?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: { cause?: { kind?: unknown; originalCode?: unknown } } } };
    if (typeof x.code === "string" && (PRISMA_UNAVAILABLE.has(x.code) || SQLSTATE_UNAVAILABLE.test(x.code) || x.code === "ECONNREFUSED" || x.code === "ETIMEDOUT" || x.code === "ECONNRESET")) return true;
    const adapter = x.meta?.driverAdapterError?.cause;
    if (typeof adapter?.kind === "string" && ADAPTER_UNAVAILABLE.has(adapter.kind)) return true;
    if (typeof adapter?.originalCode === "string" && SQLSTATE_UNAVAILABLE.test(adapter.originalCode)) return true;
    if (typeof x.message === "string" && PG_MESSAGES.test(x.message)) return true;
    // Prisma's client errors carry the driver's words at the end of a longer message.
    // "database … is not currently accepting connections": SQLSTATE 55000, which also covers faults
    // of a request, so only this wording counts (the database closed to connections, for
    // maintenance or an outage).
    if (typeof x.message === "string" && /Can't reach database server|Connection terminated|Query read timeout|Timed out fetching a new connection|is not currently accepting connections/.test(x.message)) return true;
    e = x.cause;
  }
  return false;
}

/** What callers are told when the database is unavailable. */
export const DATABASE_UNAVAILABLE_MESSAGE = "Bulkhead cannot reach its database right now. Try again in a moment.";

/**
 * What the database (or Prisma) said about a failed query, in its own words, for a one-line
 * report: the driver's message when Prisma carries one (`meta.driverAdapterError`), otherwise the
 * last line of Prisma's message, which begins with "Invalid `…` invocation in" and the caller's
 * source position before it says what went wrong. Null for anything else.
 */
export function databaseMessage(error: unknown): string | null {
  if (typeof error !== "object" || error === null) return null;
  const e = error as { message?: unknown; meta?: { driverAdapterError?: { cause?: { message?: unknown; originalMessage?: unknown } } } };
  const cause = e.meta?.driverAdapterError?.cause;
  const said = typeof cause?.message === "string" ? cause.message : typeof cause?.originalMessage === "string" ? cause.originalMessage : null;
  if (said && said.trim() !== "") return `the database answered: ${said.trim()}`;
  if (typeof e.message === "string" && /^\s*Invalid `[^`]*` invocation/.test(e.message)) {
    const lines = e.message.split("\n").map((l) => l.trim()).filter((l) => l !== "");
    const last = lines.at(-1);
    if (last && !/invocation( in)?:?$/.test(last)) return last;
  }
  return null;
}
