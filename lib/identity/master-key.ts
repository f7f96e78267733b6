import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Db } from "@/lib/db/client";
import { generateMasterKey, keyFingerprint, MasterKeyError, parseMasterKey } from "@/lib/crypto/envelope";

/**
 * The master key is the root of every secret at rest. Only the launcher and the CLI hold it; they
 * derive each process's own key from it (lib/keys/process-keys.ts). It comes from
 * BULKHEAD_MASTER_KEY; when that is unset the launcher generates one into the data folder
 * (owner-only) and says so. The fingerprint of the key that first sealed data is kept in
 * `settings`, so starting with another key fails loudly instead of writing data nobody can read.
 */
export const MASTER_KEY_FILE = "master.key";
/** A new master key staged by `bulkhead keys rotate-master` before any row changes. */
export const MASTER_KEY_NEXT_FILE = "master.key.next";
export const FINGERPRINT_SETTING = "master_key.fingerprint";
/** Set while a rotation is under way: the fingerprint of the staged key. */
export const STAGED_FINGERPRINT_SETTING = "master_key.staged_fingerprint";

export interface ResolvedMasterKey {
  key: Buffer;
  /** The text form, as configured or stored. */
  text: string;
  source: "environment" | "generated" | "file";
  file?: string;
}

/** For the launcher and the CLI: env, else the data folder's key file, else a new one there. */
export function resolveMasterKey(envValue: string | undefined, dataDir: string, options: { create?: boolean } = {}): ResolvedMasterKey {
  if (envValue) return { key: parseNamed(envValue, "BULKHEAD_MASTER_KEY"), text: envValue, source: "environment" };
  const file = path.join(dataDir, MASTER_KEY_FILE);
  if (existsSync(file)) {
    const text = readFileSync(file, "utf8").trim();
    return { key: parseNamed(text, file), text, source: "file", file };
  }
  if (options.create === false) {
    throw new Error(`There is no master key: BULKHEAD_MASTER_KEY is unset and ${file} does not exist.`);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const text = generateMasterKey();
  writeFileSync(file, `${text}\n`, { mode: 0o600, flag: "wx" });
  return { key: parseMasterKey(text), text, source: "generated", file };
}

/** The staged next master key, if a rotation wrote one. */
export function readStagedMasterKey(dataDir: string): { key: Buffer; file: string } | null {
  const file = path.join(dataDir, MASTER_KEY_NEXT_FILE);
  if (!existsSync(file)) return null;
  return { key: parseNamed(readFileSync(file, "utf8"), file), file };
}

/** A key that does not parse is refused naming where it came from (the variable or the file), never its value. */
function parseNamed(text: string, where: string): Buffer {
  try {
    return parseMasterKey(text);
  } catch (error) {
    if (error instanceof MasterKeyError) throw new MasterKeyError(`${where}: ${error.message}`);
    throw error;
  }
}

async function readStringSetting(db: Pick<Db, "setting">, key: string): Promise<string | null> {
  const row = await db.setting.findUnique({ where: { key } });
  return typeof row?.value === "string" ? row.value : null;
}

/** The fingerprint of the master key the data is sealed under (null before the first start). */
export function readMasterFingerprint(db: Pick<Db, "setting">): Promise<string | null> {
  return readStringSetting(db, FINGERPRINT_SETTING);
}

export function readStagedFingerprint(db: Pick<Db, "setting">): Promise<string | null> {
  return readStringSetting(db, STAGED_FINGERPRINT_SETTING);
}

export async function writeMasterFingerprint(db: Pick<Db, "setting">, fingerprint: string): Promise<void> {
  await db.setting.upsert({ where: { key: FINGERPRINT_SETTING }, create: { key: FINGERPRINT_SETTING, value: fingerprint }, update: { value: fingerprint } });
}

/**
 * Records the key's fingerprint on first use and refuses a different key afterwards. Run at
 * start before anything is encrypted or decrypted. With `dataDir`, the message says when the data
 * has moved on to a rotated key staged in that folder.
 */
export async function assertMasterKeyMatchesData(db: Pick<Db, "setting">, key: Buffer, dataDir?: string): Promise<void> {
  const fingerprint = keyFingerprint(key);
  await db.setting.upsert({ where: { key: FINGERPRINT_SETTING }, create: { key: FINGERPRINT_SETTING, value: fingerprint }, update: {} });
  const stored = await readMasterFingerprint(db);
  if (stored === fingerprint) return;
  const staged = dataDir ? stagedHint(dataDir, stored) : "";
  throw new Error(
    `The master key (fingerprint ${fingerprint}) is not the one that encrypted this database's secrets ` +
      `(fingerprint ${String(stored)}). Nothing was changed. ${staged || `Start with the original key: BULKHEAD_MASTER_KEY, or the ${MASTER_KEY_FILE} file in the data folder it was generated into.`}`,
  );
}

function stagedHint(dataDir: string, stored: string | null): string {
  try {
    const next = readStagedMasterKey(dataDir);
    if (next && keyFingerprint(next.key) === stored) {
      return `A master-key rotation moved the data to the key in ${next.file}: run \`bulkhead keys rotate-master\` again to finish it, or set BULKHEAD_MASTER_KEY to that key.`;
    }
  } catch {
    // an unreadable staged file gives no hint
  }
  return "";
}
