import { loadCommonConfig } from "@/lib/config/common";
import { createPrismaClient, type Db } from "@/lib/db/client";
import { ensureSigningKey } from "@/lib/identity/key-store";
import { resolveMasterKey } from "@/lib/identity/master-key";
import { establishProcessKeys } from "@/lib/keys/establish";
import type { ProcessKeys } from "@/lib/keys/process-keys";
import { migrate } from "@/lib/db/migrate";
import { openDatabase } from "@/lib/runtime/database";
import type { CliContext } from "./context";

/**
 * Runs `fn` with a migrated database: DATABASE_URL, or the embedded server (reusing a running
 * one, or starting it just for this command).
 */
export async function withCliDatabase<T>(ctx: CliContext, fn: (db: Db, url: string) => Promise<T>): Promise<T> {
  const config = loadCommonConfig();
  const opened = await openDatabase(config, { running: "reuse", log: (l) => ctx.stderr(l) });
  try {
    await migrate(opened.url);
    const db = createPrismaClient(opened.url, 2);
    try {
      return await fn(db, opened.url);
    } finally {
      await db.$disconnect();
    }
  } finally {
    await opened.close();
  }
}

export const CLI_ACTOR = { kind: "system", label: "cli" } as const;

/**
 * Like withCliDatabase, with the master key resolved, checked against the data and its process
 * keys derived (converting data sealed in the format before per-process keys, like a start
 * does). The CLI runs where the master key lives, so it holds every process key; each command
 * uses only the one it needs.
 */
export async function withCliKeys<T>(ctx: CliContext, fn: (db: Db, keys: ProcessKeys) => Promise<T>): Promise<T> {
  const config = loadCommonConfig();
  const master = resolveMasterKey(config.masterKey, config.dataDir);
  if (master.source === "generated") ctx.stderr(`Generated a master key in ${master.file} (owner-only); back it up.`);
  return withCliDatabase(ctx, async (db) => {
    const { keys, converted } = await establishProcessKeys(db, master.key, config.dataDir);
    for (const [label, n] of Object.entries(converted)) ctx.stderr(`Converted ${n} ${label}(s) from the master key to per-process keys.`);
    await ensureSigningKey(db, keys.dashboardKey);
    return fn(db, keys);
  });
}
