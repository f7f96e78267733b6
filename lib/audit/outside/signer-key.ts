/**
 * The checkpoint signer's own Ed25519 seed. Not derived from the master key (which the CLI and
 * the launcher hold for every process's keys) and never handed to a child: the launcher reads
 * it to sign checkpoints, `bulkhead audit checkpoint` reads it to sign on demand, and its public
 * half is published (`/.well-known/bulkhead-audit-keys.json`, `bulkhead audit key`).
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { writeSecretFileDurably } from "@/lib/files/secrets";
import { checkpointVerificationKey, type CheckpointKey } from "../checkpoints";

export class SignerKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SignerKeyError";
  }
}

export interface SignerKey {
  seed: Buffer;
  publicKey: CheckpointKey;
  created: boolean;
}

/** Reads the key file; creates it (owner-only, durably) when `create` and it does not exist; null when absent. */
export function loadSignerKey(file: string, options: { create: boolean }): SignerKey | null {
  let created = false;
  if (!existsSync(file)) {
    if (!options.create) return null;
    writeSecretFileDurably(file, `${randomBytes(32).toString("base64url")}\n`);
    created = true;
  }
  const text = readFileSync(file, "utf8").trim();
  const seed = Buffer.from(text, "base64url");
  if (!/^[A-Za-z0-9_-]{43}$/.test(text) || seed.length !== 32) throw new SignerKeyError(`${file} is not a checkpoint signer key (32 bytes, base64url)`);
  return { seed, publicKey: checkpointVerificationKey(seed), created };
}
