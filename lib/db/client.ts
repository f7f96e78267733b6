import { PrismaPg } from "@prisma/adapter-pg";
import { requireRuntimeDatabaseUrl } from "@/lib/config/common";
import { PrismaClient } from "@/lib/generated/prisma/client";

export type Db = PrismaClient;

export function createPrismaClient(databaseUrl: string, poolSize = 10): Db {
  const adapter = new PrismaPg({ connectionString: databaseUrl, max: poolSize, connectionTimeoutMillis: 10_000 });
  return new PrismaClient({ adapter });
}

// One client per process (the dashboard's, as its own database role); kept on globalThis so
// Next's dev reloads do not leak pools.
const holder = globalThis as unknown as { __bulkheadDb?: Db };

export function getDb(): Db {
  holder.__bulkheadDb ??= createPrismaClient(requireRuntimeDatabaseUrl("dashboard"));
  return holder.__bulkheadDb;
}
