/**
 * Signed checkpoints: "the audit chain had reached seq with hash", signed with an Ed25519 key that
 * the database role cannot forge. The key is a 32-byte seed (the checkpoint key) that the launcher
 * derives from the master key (lib/keys/process-keys.ts) and hands to the process that signs
 * (today the proxy worker, as BULKHEAD_CHECKPOINT_KEY) and to nobody else; it needs no storage of
 * its own. Its public half is the verification key, and its fingerprint is the checkpoint's keyId.
 * A rotated master key means a new checkpoint key: `bulkhead keys rotate-master` keeps the old
 * verification key in the data folder so old checkpoints still verify.
 *
 * Signed message, format 1: "bulkhead-audit-checkpoint-v1|<seq>|<hash>" (UTF-8).
 * Format 2 (chained, signed by the launcher's signer with a key of its own: lib/audit/signer.ts):
 * "bulkhead-audit-checkpoint-v2|<number>|<seq>|<hash>|<signedAt ISO>|<previous signature or ->",
 * so each checkpoint vouches for the one before it, like CloudTrail's digest files.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { GENESIS_HASH } from "./chain";
import { auditSql, type AuditDb } from "./sql";

const MESSAGE_PREFIX = "bulkhead-audit-checkpoint-v1";
const CHAINED_PREFIX = "bulkhead-audit-checkpoint-v2";
// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410): SEQUENCE { 0, { id-Ed25519 }, OCTET STRING { seed } }.
const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const HASH = /^[0-9a-f]{64}$/;

/** A public verification key: raw 32-byte Ed25519 key, base64url. */
export interface CheckpointKey {
  keyId: string;
  publicKey: string;
}

export interface SignedCheckpoint {
  seq: bigint;
  hash: string;
  keyId: string;
  /** Ed25519 signature, base64url. */
  signature: string;
  /** Format 2 only: the chain of checkpoints (all three set, or none). */
  chain?: CheckpointLink;
}

/** What a format-2 checkpoint adds: its place in the checkpoint chain. */
export interface CheckpointLink {
  /** 1, 2, 3, ... with no gaps. */
  number: bigint;
  signedAt: Date;
  /** The previous checkpoint's signature; null for number 1. */
  prevSignature: string | null;
}

export interface StoredCheckpoint extends SignedCheckpoint {
  id: bigint;
  createdAt: Date;
}

interface SigningKey extends CheckpointKey {
  privateKey: KeyObject;
}

const derived = new WeakMap<Buffer, SigningKey>();

function signingKey(checkpointKey: Buffer): SigningKey {
  const cached = derived.get(checkpointKey);
  if (cached) return cached;
  if (checkpointKey.length !== 32) throw new TypeError("the checkpoint key must be 32 bytes");
  const seed = checkpointKey;
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: "der", type: "pkcs8" });
  const raw = rawPublicKey(createPublicKey(privateKey));
  const key = { keyId: checkpointKeyId(raw), publicKey: raw.toString("base64url"), privateKey };
  derived.set(checkpointKey, key);
  return key;
}

function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: "jwk" });
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") throw new TypeError("not an Ed25519 key");
  return Buffer.from(jwk.x, "base64url");
}

/** "ack_" + the first 16 hex digits of SHA-256 over the raw public key. */
export function checkpointKeyId(rawPublicKey: Buffer): string {
  return `ack_${createHash("sha256").update(rawPublicKey).digest("hex").slice(0, 16)}`;
}

/** The public key that verifies checkpoints signed with this checkpoint key. */
export function checkpointVerificationKey(checkpointKey: Buffer): CheckpointKey {
  const { keyId, publicKey } = signingKey(checkpointKey);
  return { keyId, publicKey };
}

export function checkpointMessage(seq: bigint, hash: string, chain?: CheckpointLink): Buffer {
  if (!chain) return Buffer.from(`${MESSAGE_PREFIX}|${seq.toString()}|${hash}`, "utf8");
  const link = `${chain.number}|${seq}|${hash}|${chain.signedAt.toISOString()}|${chain.prevSignature ?? "-"}`;
  return Buffer.from(`${CHAINED_PREFIX}|${link}`, "utf8");
}

export function signCheckpoint(checkpointKey: Buffer, seq: bigint, hash: string): SignedCheckpoint {
  if (seq < 0n || !HASH.test(hash)) throw new TypeError("a checkpoint needs seq >= 0 and a 64-hex hash");
  const key = signingKey(checkpointKey);
  return { seq, hash, keyId: key.keyId, signature: sign(null, checkpointMessage(seq, hash), key.privateKey).toString("base64url") };
}

/** Signs a format-2 checkpoint: the head (seq, hash) and its link to the previous checkpoint. */
export function signChainedCheckpoint(signerKey: Buffer, seq: bigint, hash: string, chain: CheckpointLink): SignedCheckpoint {
  if (seq < 0n || !HASH.test(hash)) throw new TypeError("a checkpoint needs seq >= 0 and a 64-hex hash");
  if (chain.number < 1n || (chain.number === 1n) !== (chain.prevSignature === null)) throw new TypeError("checkpoint 1 has no predecessor; every later one has");
  const key = signingKey(signerKey);
  const signature = sign(null, checkpointMessage(seq, hash, chain), key.privateKey).toString("base64url");
  return { seq, hash, keyId: key.keyId, signature, chain };
}

/** True when a key with the checkpoint's keyId (whose id matches its own bytes) signed it. */
export function checkpointSignatureValid(checkpoint: SignedCheckpoint, keys: readonly CheckpointKey[]): boolean {
  return signedByCheckpointKey(checkpointMessage(checkpoint.seq, checkpoint.hash, checkpoint.chain), checkpoint.keyId, checkpoint.signature, keys);
}

/**
 * Signs another message with a checkpoint key (an archive's manifest, lib/audit/retention): the
 * message must start with a prefix of its own, so that it can never be read as a checkpoint.
 */
export function signWithCheckpointKey(checkpointKey: Buffer, message: Buffer): { keyId: string; signature: string } {
  const key = signingKey(checkpointKey);
  return { keyId: key.keyId, signature: sign(null, message, key.privateKey).toString("base64url") };
}

/** True when a trusted key with that keyId (whose id matches its own bytes) signed `message`. */
export function signedByCheckpointKey(message: Buffer, keyId: string, signature: string, keys: readonly CheckpointKey[]): boolean {
  for (const k of keys) {
    if (k.keyId !== keyId) continue;
    const raw = Buffer.from(k.publicKey, "base64url");
    if (raw.length !== 32 || checkpointKeyId(raw) !== k.keyId) continue;
    try {
      const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: k.publicKey }, format: "jwk" });
      if (verify(null, message, publicKey, Buffer.from(signature, "base64url"))) return true;
    } catch {
      // malformed key or signature: not valid under this key
    }
  }
  return false;
}

export class AuditCheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditCheckpointError";
  }
}

export interface WriteCheckpointOptions {
  /** Write even when the newest checkpoint already covers the head. */
  force?: boolean;
}

/**
 * Signs the current chain head and stores the checkpoint. Returns null when there is nothing new
 * to sign (empty chain, or the newest checkpoint is already at the head). Refuses to sign a head
 * that does not match the event stored at its seq.
 */
export async function writeCheckpoint(db: AuditDb, checkpointKey: Buffer, options: WriteCheckpointOptions = {}): Promise<StoredCheckpoint | null> {
  const sql = auditSql(db);
  const [head] = await sql.query<{ seq: string; hash: string; row_hash: string | null; last_cp: string | null }>(
    `SELECT h.seq::text AS seq, h.hash,
            (SELECT a.hash FROM audit_events a WHERE a.seq = h.seq) AS row_hash,
            (SELECT max(c.seq)::text FROM audit_checkpoints c) AS last_cp
       FROM audit_chain_head h WHERE h.id = 1`,
  );
  if (!head) throw new AuditCheckpointError("audit_chain_head has no row (is the database migrated?)");
  const seq = BigInt(head.seq);
  if (seq === 0n && head.hash === GENESIS_HASH) return null;
  if (head.row_hash !== head.hash) {
    throw new AuditCheckpointError(`refusing to sign: the chain head (seq ${seq}) does not match the event stored at that seq; run \`bulkhead audit verify\``);
  }
  if (!options.force && head.last_cp !== null && BigInt(head.last_cp) >= seq) return null;
  const cp = signCheckpoint(checkpointKey, seq, head.hash);
  const [row] = await sql.query<{ id: string; created_at: Date }>(
    "INSERT INTO audit_checkpoints (seq, hash, key_id, signature) VALUES ($1::bigint, $2, $3, $4) RETURNING id::text AS id, created_at",
    [cp.seq.toString(), cp.hash, cp.keyId, cp.signature],
  );
  return { ...cp, id: BigInt(row!.id), createdAt: new Date(row!.created_at) };
}

/**
 * The columns `checkpointFromRow` reads, from audit_checkpoints aliased `alias`. The format-2
 * columns are read through to_jsonb so that a verifier also reads a database whose migrations
 * stop before they were added (they are then NULL: format 1).
 */
export function checkpointRowColumns(alias = "c"): string {
  return `${alias}.seq::text AS seq, ${alias}.hash, ${alias}.key_id, ${alias}.signature, to_jsonb(${alias})->>'number' AS number,
    to_jsonb(${alias})->>'prev_signature' AS prev_signature, to_jsonb(${alias})->>'signed_at' AS signed_at`;
}

export interface CheckpointRow {
  seq: string;
  hash: string;
  key_id: string;
  signature: string;
  number: string | null;
  prev_signature: string | null;
  signed_at: Date | string | null;
}

/** A stored checkpoint of either format, as its signature covers it. */
export function checkpointFromRow(row: CheckpointRow): SignedCheckpoint {
  const cp: SignedCheckpoint = { seq: BigInt(row.seq), hash: row.hash, keyId: row.key_id, signature: row.signature };
  if (row.number !== null && row.signed_at !== null) {
    cp.chain = { number: BigInt(row.number), signedAt: new Date(row.signed_at), prevSignature: row.prev_signature };
  }
  return cp;
}
