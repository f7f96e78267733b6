import { loadCommonConfig } from "@/lib/config/common";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { ensureSigningKey } from "@/lib/identity/key-store";
import { assertMasterKeyMatchesData, resolveMasterKey } from "@/lib/identity/master-key";
import { openDatabase } from "@/lib/runtime/database";
import { migrateDatabase, runtimeUrl } from "@/lib/runtime/database-roles";
import type { CliContext } from "./context";

/**
 * Runs `fn` connected as the dashboard's database role: commands do what the dashboard does, so
 * they need nothing more. With the embedded server (reused when running, or started just for this
 * command) the CLI is run by an operator who can read the data folder anyway, so it first brings
 * the database up to date as the owner, like `bulkhead start`. With an external database it only
 * needs BULKHEAD_DASHBOARD_DATABASE_URL; migrations are `bulkhead db migrate`'s job.
 */
export async function withCliDatabase<T>(ctx: CliContext, fn: (db: Db, url: string) => Promise<T>): Promise<T> {
  const config = loadCommonConfig();
  const opened = await openDatabase(config, { running: "reuse", log: (l) => ctx.stderr(l) });
  try {
    if (opened.embedded) await migrateDatabase(opened.urls, (l) => ctx.stderr(l));
    const url = runtimeUrl(opened.urls, "dashboard");
    const db = createPrismaClient(url, 2);
    try {
      return await fn(db, url);
    } finally {
      await db.$disconnect();
    }
  } finally {
    await opened.close();
  }
}

export const CLI_ACTOR = { kind: "system", label: "cli" } as const;

/** Like withCliDatabase, with the master key resolved and checked against the data. */
export async function withCliMasterKey<T>(ctx: CliContext, fn: (db: Db, masterKey: Buffer) => Promise<T>): Promise<T> {
  const config = loadCommonConfig();
  const master = resolveMasterKey(config.masterKey, config.dataDir);
  if (master.source === "generated") ctx.stderr(`Generated a master key in ${master.file} (owner-only); back it up.`);
  return withCliDatabase(ctx, async (db) => {
    await assertMasterKeyMatchesData(db, master.key);
    await ensureSigningKey(db, master.key);
    return fn(db, master.key);
  });
}
