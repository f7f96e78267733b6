import { generateMasterKey, parseMasterKey } from "@/lib/crypto/envelope";
import type { Db } from "@/lib/db/client";
import { ensureSigningKey } from "@/lib/identity/key-store";
import { establishProcessKeys } from "@/lib/keys/establish";
import type { ProcessKeys } from "@/lib/keys/process-keys";

export interface TestKeys extends ProcessKeys {
  master: Buffer;
  masterText: string;
}

/**
 * A fresh master key set up on `db` the way `bulkhead start` does it: fingerprint and key
 * generation recorded, a signing key created. Tests then use each process's own key.
 */
export async function establishTestKeys(db: Db, options: { signingKey?: boolean } = {}): Promise<TestKeys> {
  const masterText = generateMasterKey();
  const master = parseMasterKey(masterText);
  const { keys } = await establishProcessKeys(db, master);
  if (options.signingKey !== false) await ensureSigningKey(db, keys.dashboardKey);
  return { ...keys, master, masterText };
}
