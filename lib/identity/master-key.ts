import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Db } from "@/lib/db/client";
import { generateMasterKey, masterKeyFingerprint, parseMasterKey } from "@/lib/crypto/envelope";

/**
 * The master key encrypts every secret at rest (signing keys, credentials). It comes from
 * BULKHEAD_MASTER_KEY; when that is unset the launcher generates one into the data folder
 * (owner-only) and says so. The fingerprint of the key that first encrypted data is kept in
 * `settings`, so starting with another key fails loudly instead of writing data nobody can read.
 */
export const MASTER_KEY_FILE = "master.key";
const FINGERPRINT_SETTING = "master_key.fingerprint";

export interface ResolvedMasterKey {
  key: Buffer;
  /** The text form, to pass to child processes. */
  text: string;
  source: "environment" | "generated" | "file";
  file?: string;
}

/** For the launcher and the CLI: env, else the data folder's key file, else a new one there. */
export function resolveMasterKey(envValue: string | undefined, dataDir: string): ResolvedMasterKey {
  if (envValue) return { key: parseMasterKey(envValue), text: envValue, source: "environment" };
  const file = path.join(dataDir, MASTER_KEY_FILE);
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8").trim();
    return { key: parseMasterKey(text), text, source: "file", file };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const text = generateMasterKey();
  writeFileSync(file, `${text}\n`, { mode: 0o600, flag: "wx" });
  return { key: parseMasterKey(text), text, source: "generated", file };
}

/** For the app and the worker, which always receive it from the launcher (or the operator). */
export function masterKeyFromEnv(envValue: string | undefined): Buffer {
  if (!envValue) {
    throw new Error("BULKHEAD_MASTER_KEY is not set: start Bulkhead with `npm start` (which provides it) or set it (32 bytes, base64 or hex).");
  }
  return parseMasterKey(envValue);
}

/**
 * Records the key's fingerprint on first use and refuses a different key afterwards. Run at
 * start before anything is encrypted or decrypted.
 */
export async function assertMasterKeyMatchesData(db: Db, key: Buffer): Promise<void> {
  const fingerprint = masterKeyFingerprint(key);
  await db.setting.upsert({ where: { key: FINGERPRINT_SETTING }, create: { key: FINGERPRINT_SETTING, value: fingerprint }, update: {} });
  const stored = await db.setting.findUniqueOrThrow({ where: { key: FINGERPRINT_SETTING } });
  if (stored.value !== fingerprint) {
    throw new Error(
      `The master key (fingerprint ${fingerprint}) is not the one that encrypted this database's secrets ` +
        `(fingerprint ${String(stored.value)}). Nothing was changed. Start with the original key: BULKHEAD_MASTER_KEY, ` +
        `or the ${MASTER_KEY_FILE} file in the data folder it was generated into.`,
    );
  }
}
