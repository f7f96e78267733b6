import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { AppError } from "@/lib/errors/app-error";
import { assertMasterKeyMatchesData, readStagedFingerprint } from "@/lib/identity/master-key";
import { writeKeyGeneration } from "./generation";
import { deriveProcessKeys, keyGeneration, type ProcessKeys } from "./process-keys";
import { resealAll } from "./reseal";

export interface EstablishedKeys {
  keys: ProcessKeys;
  /** Values converted from the format before per-process keys, by column label. */
  converted: Record<string, number>;
}

/**
 * For the launcher and the CLI, the only holders of the master key: checks it against the data,
 * records the key generation every process checks its keys against, and converts values still
 * sealed under the master key itself (data from before per-process keys) to the process keys,
 * row by row, so an interrupted conversion continues at the next start. Refuses while a
 * master-key rotation is unfinished: processes started now would get keys about to be retired.
 */
export async function establishProcessKeys(db: Db, master: Buffer, dataDir?: string): Promise<EstablishedKeys> {
  const staged = await readStagedFingerprint(db);
  if (staged) {
    throw new AppError("CONFLICT", `A master-key rotation (to key ${staged}) is unfinished: run \`bulkhead keys rotate-master\` again to finish it first.`);
  }
  await assertMasterKeyMatchesData(db, master, dataDir);
  const keys = deriveProcessKeys(master);
  await writeKeyGeneration(db, keyGeneration(keys));
  const result = await resealAll(db, { to: keys, from: [], legacyMasters: [master] });
  if (Object.keys(result.resealed).length > 0) {
    await recordAuditEvent(db, { type: "keys.converted", actor: { kind: "system", label: "start-up" }, data: { master: keys.masterFingerprint, resealed: result.resealed } });
  }
  return { keys, converted: result.resealed };
}
