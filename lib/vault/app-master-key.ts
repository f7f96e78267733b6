import "server-only";
import type { Db } from "@/lib/db/client";
import { appMasterKey } from "@/lib/identity/app-keys";
import { assertMasterKeyMatchesData } from "@/lib/identity/master-key";

let verified: Promise<Buffer> | null = null;

/**
 * The master key for the dashboard's credential writes (BULKHEAD_MASTER_KEY, which the launcher
 * provides), checked once per process against the fingerprint recorded with the data, so the
 * dashboard never seals a secret nobody could open. A failed check is retried on the next call.
 */
export function dashboardMasterKey(db: Db): Promise<Buffer> {
  verified ??= (async () => {
    const key = appMasterKey();
    await assertMasterKeyMatchesData(db, key);
    return key;
  })().catch((error: unknown) => {
    verified = null;
    throw error;
  });
  return verified;
}
