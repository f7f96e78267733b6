import "server-only";
import type { Db } from "@/lib/db/client";
import { loadDashboardKeyConfig } from "@/lib/config/process-keys";
import { keyFingerprint } from "@/lib/crypto/envelope";
import { assertProcessKeysCurrent } from "@/lib/keys/generation";
import { dashboardKeysFrom, type DashboardKeys } from "@/lib/keys/process-keys";

let verified: Promise<DashboardKeys> | null = null;

/**
 * The dashboard's own keys (BULKHEAD_DASHBOARD_KEY and BULKHEAD_WORKER_PUBLIC_KEY, which the
 * launcher provides): the key that opens task-token signing keys, and the worker's public key
 * that credentials are sealed to. The dashboard never holds the master key or any key that opens
 * a credential. Checked once per process against the key generation recorded with the data; a
 * failed check is retried on the next call. Writers check again inside their transactions.
 */
export function appKeys(db: Db): Promise<DashboardKeys> {
  verified ??= (async () => {
    const keys = dashboardKeysFrom(loadDashboardKeyConfig());
    await assertProcessKeysCurrent(db, { dashboard: keyFingerprint(keys.dashboardKey), worker: keys.workerRecipient.fingerprint });
    return keys;
  })().catch((error: unknown) => {
    verified = null;
    throw error;
  });
  return verified;
}
