import { PrismaPg } from "@prisma/adapter-pg";
import { requireRuntimeDatabaseUrl } from "@/lib/config/common";
import { PrismaClient } from "@/lib/generated/prisma/client";

export type Db = PrismaClient;

export interface DbTimeouts {
  /** PostgreSQL cancels a statement running longer (server side; SQLSTATE 57014). */
  statementTimeoutMs?: number;
  /** The client gives up on a query unanswered this long: a server that hangs, or a network that drops packets. */
  queryTimeoutMs?: number;
}

/**
 * The dashboard's bounds: every page, action and route runs paged queries of milliseconds (a
 * report verifies its chain page by page; exports stream in pages), so a statement past 20 s is
 * a fault, and a server that does not answer for 25 s is treated as unavailable (503) instead of
 * holding the request, and a pooled connection, forever.
 */
export const DASHBOARD_DB_TIMEOUTS: Required<DbTimeouts> = { statementTimeoutMs: 20_000, queryTimeoutMs: 25_000 };

/** The proxy worker's: snapshot loads, holds and kill-switch checks are single short statements. */
export const WORKER_DB_TIMEOUTS: Required<DbTimeouts> = { statementTimeoutMs: 15_000, queryTimeoutMs: 20_000 };

export function createPrismaClient(databaseUrl: string, poolSize = 10, timeouts: DbTimeouts = {}): Db {
  const adapter = new PrismaPg({
    connectionString: databaseUrl,
    max: poolSize,
    connectionTimeoutMillis: 10_000,
    ...(timeouts.statementTimeoutMs ? { statement_timeout: timeouts.statementTimeoutMs } : {}),
    ...(timeouts.queryTimeoutMs ? { query_timeout: timeouts.queryTimeoutMs } : {}),
  });
  return new PrismaClient({ adapter });
}

// One client per process (the dashboard's, as its own database role); kept on globalThis so
// Next's dev reloads do not leak pools.
const holder = globalThis as unknown as { __bulkheadDb?: Db };

export function getDb(): Db {
  holder.__bulkheadDb ??= createPrismaClient(requireRuntimeDatabaseUrl("dashboard"), 10, DASHBOARD_DB_TIMEOUTS);
  return holder.__bulkheadDb;
}
