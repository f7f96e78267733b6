import pg from "pg";
import type { Db } from "@/lib/db/client";

/**
 * The audit tools run in the app (Prisma client) and in the worker (a plain pg pool); both are
 * accepted. Every query is raw SQL with positional parameters and explicit casts, so the two
 * drivers return the same JavaScript types (text columns only; numbers arrive as strings).
 */
export type AuditDb = Db | pg.Pool | pg.ClientBase;

export interface AuditSql {
  query<T>(text: string, values?: unknown[]): Promise<T[]>;
}

function isPrisma(db: AuditDb): db is Db {
  return typeof (db as Db).$queryRawUnsafe === "function";
}

export function auditSql(db: AuditDb): AuditSql {
  if (isPrisma(db)) return { query: (text, values = []) => db.$queryRawUnsafe(text, ...values) };
  return { query: async <T>(text: string, values: unknown[] = []) => (await db.query(text, values)).rows as T[] };
}

/**
 * Runs one query with its own statement timeout (a read-only transaction with `SET LOCAL
 * statement_timeout`), so that PostgreSQL stops it after `ms` whatever the connection's default.
 * A plain pg client or pool runs it as `query` does (the worker and tools bound their own).
 */
export async function queryWithin<T>(db: AuditDb, ms: number, text: string, values: unknown[] = []): Promise<T[]> {
  if (!isPrisma(db)) return auditSql(db).query<T>(text, values);
  return db.$transaction(async (tx) => {
    await tx.$executeRawUnsafe("SET TRANSACTION READ ONLY");
    await tx.$executeRawUnsafe(`SET LOCAL statement_timeout = ${Math.max(1, Math.trunc(ms))}`);
    return tx.$queryRawUnsafe<T[]>(text, ...values);
  });
}

/** Runs `fn` in one REPEATABLE READ, READ ONLY transaction: every query sees the same snapshot. */
export async function withAuditSnapshot<T>(db: AuditDb, fn: (sql: AuditSql) => Promise<T>): Promise<T> {
  if (isPrisma(db)) {
    return db.$transaction(
      async (tx) => {
        await tx.$executeRawUnsafe("SET TRANSACTION READ ONLY");
        return fn({ query: (text, values = []) => tx.$queryRawUnsafe(text, ...values) });
      },
      { isolationLevel: "RepeatableRead", maxWait: 10_000, timeout: 24 * 3600_000 },
    );
  }
  const client = db instanceof pg.Pool ? await db.connect() : db;
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
      const result = await fn({ query: async <R>(text: string, values: unknown[] = []) => (await client.query(text, values)).rows as R[] });
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    }
  } finally {
    if (db instanceof pg.Pool) (client as pg.PoolClient).release();
  }
}
