/**
 * Checkpoint verification keys of master keys that were rotated away, kept in the data folder
 * (public keys only: one JSON object per line) so `bulkhead audit verify` still checks the
 * checkpoints they signed. The folder is not the database: the database roles cannot add a key
 * here to make a forged checkpoint look trusted.
 */
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from "node:fs";
import path from "node:path";
import type { CheckpointKey } from "@/lib/audit/checkpoints";

export const RETIRED_CHECKPOINT_KEYS_FILE = "audit-checkpoint-keys.jsonl";

const KEY_ID = /^ack_[0-9a-f]{16}$/;
const PUBLIC_KEY = /^[A-Za-z0-9_-]{43}$/;

export function readRetiredCheckpointKeys(dataDir: string): CheckpointKey[] {
  const file = path.join(dataDir, RETIRED_CHECKPOINT_KEYS_FILE);
  if (!existsSync(file)) return [];
  const keys: CheckpointKey[] = [];
  for (const [i, line] of readFileSync(file, "utf8").split("\n").entries()) {
    if (line.trim() === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`${file}, line ${i + 1}: not JSON`);
    }
    const { keyId, publicKey } = (parsed ?? {}) as Record<string, unknown>;
    if (typeof keyId !== "string" || !KEY_ID.test(keyId) || typeof publicKey !== "string" || !PUBLIC_KEY.test(publicKey)) {
      throw new Error(`${file}, line ${i + 1}: expected {"keyId": "ack_…", "publicKey": "…"}`);
    }
    keys.push({ keyId, publicKey });
  }
  return keys;
}

/** Appends a retired key (once) and makes it durable. */
export function retireCheckpointKey(dataDir: string, key: CheckpointKey, retiredAt: Date): void {
  if (readRetiredCheckpointKeys(dataDir).some((k) => k.keyId === key.keyId)) return;
  const file = path.join(dataDir, RETIRED_CHECKPOINT_KEYS_FILE);
  appendFileSync(file, `${JSON.stringify({ keyId: key.keyId, publicKey: key.publicKey, retiredAt: retiredAt.toISOString() })}\n`, { mode: 0o600 });
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
