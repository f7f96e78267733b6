/**
 * Verification keys of master keys that were rotated away, kept in the data folder (public keys
 * only: one JSON object per line) so what they signed still verifies: checkpoints
 * (`bulkhead audit verify`) and task reports (`bulkhead audit verify-report`, the published
 * keys). The folder is not the database: the database roles cannot add a key here to make a
 * forged checkpoint or report look trusted.
 */
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from "node:fs";
import path from "node:path";
import type { CheckpointKey } from "@/lib/audit/checkpoints";
import type { ReportKey } from "@/lib/reports/signature";

export const RETIRED_CHECKPOINT_KEYS_FILE = "audit-checkpoint-keys.jsonl";
/** Report keys of rotated master keys: a report signed before a rotation must still verify. */
export const RETIRED_REPORT_KEYS_FILE = "report-keys.jsonl";

const CHECKPOINT_KEY_ID = /^ack_[0-9a-f]{16}$/;
const REPORT_KEY_ID = /^brk_[0-9a-f]{16}$/;
const PUBLIC_KEY = /^[A-Za-z0-9_-]{43}$/;

function readKeys(dataDir: string, name: string, keyIdPattern: RegExp, prefix: string): Array<{ keyId: string; publicKey: string }> {
  const file = path.join(dataDir, name);
  if (!existsSync(file)) return [];
  const keys: Array<{ keyId: string; publicKey: string }> = [];
  for (const [i, line] of readFileSync(file, "utf8").split("\n").entries()) {
    if (line.trim() === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`${file}, line ${i + 1}: not JSON`);
    }
    const { keyId, publicKey } = (parsed ?? {}) as Record<string, unknown>;
    if (typeof keyId !== "string" || !keyIdPattern.test(keyId) || typeof publicKey !== "string" || !PUBLIC_KEY.test(publicKey)) {
      throw new Error(`${file}, line ${i + 1}: expected {"keyId": "${prefix}…", "publicKey": "…"}`);
    }
    keys.push({ keyId, publicKey });
  }
  return keys;
}

/** Appends a retired key (once) and makes it durable. */
function retireKey(dataDir: string, name: string, known: Array<{ keyId: string }>, key: { keyId: string; publicKey: string }, retiredAt: Date): void {
  if (known.some((k) => k.keyId === key.keyId)) return;
  const file = path.join(dataDir, name);
  appendFileSync(file, `${JSON.stringify({ keyId: key.keyId, publicKey: key.publicKey, retiredAt: retiredAt.toISOString() })}\n`, { mode: 0o600 });
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function readRetiredCheckpointKeys(dataDir: string): CheckpointKey[] {
  return readKeys(dataDir, RETIRED_CHECKPOINT_KEYS_FILE, CHECKPOINT_KEY_ID, "ack_");
}

export function retireCheckpointKey(dataDir: string, key: CheckpointKey, retiredAt: Date): void {
  retireKey(dataDir, RETIRED_CHECKPOINT_KEYS_FILE, readRetiredCheckpointKeys(dataDir), key, retiredAt);
}

export function readRetiredReportKeys(dataDir: string): ReportKey[] {
  return readKeys(dataDir, RETIRED_REPORT_KEYS_FILE, REPORT_KEY_ID, "brk_");
}

export function retireReportKey(dataDir: string, key: ReportKey, retiredAt: Date): void {
  retireKey(dataDir, RETIRED_REPORT_KEYS_FILE, readRetiredReportKeys(dataDir), key, retiredAt);
}
