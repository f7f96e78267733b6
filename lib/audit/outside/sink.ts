/**
 * Where signed checkpoints are published outside PostgreSQL, so that someone who controls the
 * database (its owner, a superuser, a restored backup) cannot make a dropped tail, a recomputed
 * chain or a deleted checkpoint look clean: `bulkhead audit verify` compares the database with
 * these copies (lib/audit/outside/compare.ts).
 *
 * A sink is append-only: `publish` never replaces what is there. Implementations:
 * - a folder (directory.ts), one file per checkpoint, written once and read-only;
 * - an S3-compatible bucket with object lock in compliance mode would implement the same three
 *   calls (PutObject with `If-None-Match: *` and a retention date; ListObjectsV2; GetObject):
 *   not built yet, see docs/audit.md.
 */
import type { SignedCheckpoint } from "../checkpoints";

/** A format-2 checkpoint as published: what the signer signed, and where the copy is. */
export interface PublishedCheckpoint {
  checkpoint: SignedCheckpoint & { chain: NonNullable<SignedCheckpoint["chain"]> };
  location: string;
}

/** A published entry that could not be read as a checkpoint: reported, never trusted. */
export interface CorruptPublication {
  location: string;
  /** The number its name claims, when it claims one. */
  number: bigint | null;
  problem: string;
}

export interface PublishedSet {
  checkpoints: PublishedCheckpoint[];
  corrupt: CorruptPublication[];
}

export interface CheckpointSink {
  /** For messages: "folder /var/lib/bulkhead/audit-checkpoints". */
  readonly description: string;
  /** Stores a format-2 checkpoint; fails when one with its number exists already. */
  publish(checkpoint: PublishedCheckpoint["checkpoint"]): Promise<string>;
  /** Every published entry, in number order, the unreadable ones apart. */
  readAll(): Promise<PublishedSet>;
  /** The entry with the highest number (corrupt or not), or null when nothing is published. */
  latest(): Promise<PublishedCheckpoint | CorruptPublication | null>;
}

/** The JSON a published checkpoint is stored as (also what `bulkhead audit checkpoint --json` prints). */
export interface CheckpointDocument {
  format: "bulkhead-audit-checkpoint";
  version: 2;
  number: string;
  seq: string;
  hash: string;
  signedAt: string;
  prevSignature: string | null;
  keyId: string;
  signature: string;
}

export function checkpointDocument(cp: PublishedCheckpoint["checkpoint"]): CheckpointDocument {
  return {
    format: "bulkhead-audit-checkpoint",
    version: 2,
    number: cp.chain.number.toString(),
    seq: cp.seq.toString(),
    hash: cp.hash,
    signedAt: cp.chain.signedAt.toISOString(),
    prevSignature: cp.chain.prevSignature,
    keyId: cp.keyId,
    signature: cp.signature,
  };
}

const DIGITS = /^(0|[1-9]\d{0,18})$/;
const HASH = /^[0-9a-f]{64}$/;
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;
const KEY_ID = /^ack_[0-9a-f]{16}$/;

/** Parses a published document strictly; a string saying what is wrong otherwise. */
export function parseCheckpointDocument(text: string): PublishedCheckpoint["checkpoint"] | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not a JSON object";
  const d = value as Record<string, unknown>;
  if (d.format !== "bulkhead-audit-checkpoint" || d.version !== 2) return "not a Bulkhead checkpoint of format 2";
  const str = (k: string) => (typeof d[k] === "string" ? (d[k] as string) : null);
  const number = str("number");
  const seq = str("seq");
  const hash = str("hash");
  const signedAt = str("signedAt");
  const keyId = str("keyId");
  const signature = str("signature");
  const prev = d.prevSignature;
  if (!number || !DIGITS.test(number) || number === "0") return "number is not a positive integer";
  if (!seq || !DIGITS.test(seq)) return "seq is not an integer";
  if (!hash || !HASH.test(hash)) return "hash is not 64 hex digits";
  if (!signedAt || Number.isNaN(Date.parse(signedAt)) || new Date(signedAt).toISOString() !== signedAt) return "signedAt is not an ISO time";
  if (!keyId || !KEY_ID.test(keyId)) return "keyId is malformed";
  if (!signature || !SIGNATURE.test(signature)) return "signature is malformed";
  if (prev !== null && (typeof prev !== "string" || !SIGNATURE.test(prev))) return "prevSignature is malformed";
  if ((number === "1") !== (prev === null)) return "prevSignature must be null exactly for checkpoint 1";
  return {
    seq: BigInt(seq),
    hash,
    keyId,
    signature,
    chain: { number: BigInt(number), signedAt: new Date(signedAt), prevSignature: prev as string | null },
  };
}
