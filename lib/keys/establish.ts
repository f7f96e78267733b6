import type { Db } from "@/lib/db/client";
import { recordAuditEvent } from "@/lib/audit/record";
import { AppError } from "@/lib/errors/app-error";
import { keyFingerprint } from "@/lib/crypto/envelope";
import { assertMasterKeyMatchesData, FINGERPRINT_SETTING, readStagedFingerprint, STAGED_FINGERPRINT_SETTING } from "@/lib/identity/master-key";
import { GENERATION_SETTING, KEYS_LOCK, parseGeneration, writeKeyGeneration } from "./generation";
import { deriveProcessKeys, keyGeneration, type ProcessKeys } from "./process-keys";
import { resealAll, resealNeeded, type RowReader } from "./reseal";

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
  const keys = deriveProcessKeys(master);
  // Under the shared keys lock, so a rotation's switch-over (exclusive) is either wholly before
  // this check or wholly after this write: never an old generation recorded over a new one.
  await db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock_shared(${KEYS_LOCK})`;
    const staged = await readStagedFingerprint(tx);
    if (staged) {
      throw new AppError("CONFLICT", `A master-key rotation (to key ${staged}) is unfinished: run \`bulkhead keys rotate-master\` again to finish it first.`);
    }
    await assertMasterKeyMatchesData(tx, master, dataDir);
    await writeKeyGeneration(tx, keyGeneration(keys));
  });
  const result = await resealAll(db, { to: keys, from: [], legacyMasters: [master] });
  if (Object.keys(result.resealed).length > 0) {
    await recordAuditEvent(db, { type: "keys.converted", actor: { kind: "system", label: "start-up" }, data: { master: keys.masterFingerprint, resealed: result.resealed } });
  }
  return { keys, converted: result.resealed };
}

/**
 * The process keys, when the data already records everything establishProcessKeys would write:
 * this master key's fingerprint, no unfinished rotation, this key generation, and no value left
 * to convert. Null otherwise, and then the caller runs establishProcessKeys, which writes, converts
 * or refuses with the reason. Reads only, with plain SQL: the CLI runs it on a `pg` connection
 * before any Prisma client exists, so a command against data a start has already prepared does
 * not open a client as the owner just to write what is already there.
 */
export async function keysAlreadyEstablished(sql: RowReader, master: Buffer): Promise<ProcessKeys | null> {
  const keys = deriveProcessKeys(master);
  const rows = await sql.$queryRawUnsafe<Array<{ key: string; value: unknown }>>(
    "SELECT key, value FROM settings WHERE key IN ($1, $2, $3)",
    FINGERPRINT_SETTING,
    STAGED_FINGERPRINT_SETTING,
    GENERATION_SETTING,
  );
  const setting = new Map(rows.map((r) => [r.key, r.value]));
  if (setting.get(FINGERPRINT_SETTING) !== keyFingerprint(master)) return null;
  if (typeof setting.get(STAGED_FINGERPRINT_SETTING) === "string") return null;
  const recorded = parseGeneration(setting.get(GENERATION_SETTING));
  const wanted = keyGeneration(keys);
  if (!recorded || (Object.keys(wanted) as Array<keyof typeof wanted>).some((k) => recorded[k] !== wanted[k])) return null;
  if (await resealNeeded(sql, { to: keys, from: [], legacyMasters: [master] })) return null;
  return keys;
}
