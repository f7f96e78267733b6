import "server-only";
import type { Db } from "@/lib/db/client";
import { loadCommonConfig } from "@/lib/config/common";
import { assertMasterKeyMatchesData, masterKeyFromEnv } from "./master-key";

let verified: Promise<Buffer> | null = null;

/**
 * The master key in the dashboard process (BULKHEAD_MASTER_KEY, which the launcher provides),
 * checked once per process against the fingerprint recorded with the data, so the dashboard
 * never seals a secret nobody could open. A failed check is retried on the next call.
 */
export function appMasterKey(db: Db): Promise<Buffer> {
  verified ??= (async () => {
    const key = masterKeyFromEnv(loadCommonConfig().masterKey);
    await assertMasterKeyMatchesData(db, key);
    return key;
  })().catch((error: unknown) => {
    verified = null;
    throw error;
  });
  return verified;
}
