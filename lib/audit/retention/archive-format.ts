/**
 * The audit archive (docs/audit.md, "Retention"): one JSON Lines file per removed segment and a
 * manifest beside it. Line 1 is a header, then every event of the segment in seq order with every
 * field the chain hashes (data as the exact jsonb text that was hashed), then the checkpoints that
 * cover events of the segment, the segment's own checkpoint last. The manifest holds the file's
 * SHA-256 and size.
 * Lines are parsed strictly (archive-parse.ts) and verified by `ArchiveVerifier`
 * (archive-verifier.ts).
 */
import type { SignedCheckpoint } from "../checkpoints";

export const ARCHIVE_FORMAT = "bulkhead-audit-archive";
export const MANIFEST_FORMAT = "bulkhead-audit-archive-manifest";
/**
 * 2: the manifest is signed with the checkpoint signer's key and every event carries
 * `recordedAt`. 1 (still verified): an unsigned manifest, `recordedAt` absent on older ones.
 */
export const ARCHIVE_VERSION = 2;

export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: 1 | 2;
  fromSeq: string;
  throughSeq: string;
  /** prevHash of the event at fromSeq: 64 zeros for the first segment, else the last marker's anchor. */
  anchorPrevHash: string;
  events: string;
  /** The checkpoint that ends the segment (its seq is throughSeq); it stays in the database. */
  checkpoint: { number: string; seq: string; hash: string; keyId: string };
}

export interface ArchivedEvent {
  kind: "event";
  id: string;
  seq: string;
  prevHash: string;
  hash: string;
  at: string;
  type: string;
  actorType: string;
  actorId: string | null;
  agentId: string | null;
  taskId: string | null;
  outcome: string | null;
  effect: string | null;
  reason: string | null;
  ruleId: string | null;
  /** `data::text`, the exact bytes the chain hashed (JSON: parse it to read it). */
  dataText: string;
  /**
   * When PostgreSQL stored the row (`recorded_at`, not hashed: docs/audit.md, "Two times"); null
   * for an event stored before it was kept. Absent from archives written before it was archived.
   */
  recordedAt?: string | null;
}

export interface ArchivedCheckpoint {
  kind: "checkpoint";
  /** null for a format-1 checkpoint (not chained). */
  number: string | null;
  seq: string;
  hash: string;
  signedAt: string | null;
  prevSignature: string | null;
  keyId: string;
  signature: string;
}

export interface ArchiveManifest {
  format: typeof MANIFEST_FORMAT;
  /** The archive header's version: 2 is signed (keyId, signature), 1 is not. */
  version: 1 | 2;
  file: string;
  sha256: string;
  size: number;
  fromSeq: string;
  throughSeq: string;
  events: string;
  anchorPrevHash: string;
  checkpoint: ArchiveHeader["checkpoint"];
  createdAt: string;
  /** Version 2: the checkpoint signer's key id and its Ed25519 signature (archive-manifest.ts). */
  keyId?: string;
  signature?: string;
}

export function archivedCheckpoint(cp: SignedCheckpoint): ArchivedCheckpoint {
  return {
    kind: "checkpoint",
    number: cp.chain ? cp.chain.number.toString() : null,
    seq: cp.seq.toString(),
    hash: cp.hash,
    signedAt: cp.chain ? cp.chain.signedAt.toISOString() : null,
    prevSignature: cp.chain ? cp.chain.prevSignature : null,
    keyId: cp.keyId,
    signature: cp.signature,
  };
}

export function signedCheckpoint(c: ArchivedCheckpoint): SignedCheckpoint {
  return {
    seq: BigInt(c.seq),
    hash: c.hash,
    keyId: c.keyId,
    signature: c.signature,
    ...(c.number !== null && c.signedAt !== null ? { chain: { number: BigInt(c.number), signedAt: new Date(c.signedAt), prevSignature: c.prevSignature } } : {}),
  };
}

export function archiveFileName(fromSeq: bigint, throughSeq: bigint): string {
  return `audit-${fromSeq.toString().padStart(20, "0")}-${throughSeq.toString().padStart(20, "0")}.jsonl`;
}

export const manifestFileName = (archiveFile: string) => `${archiveFile}.manifest.json`;

export interface ArchiveVerification {
  ok: boolean;
  problems: string[];
  header: ArchiveHeader | null;
  events: number;
  checkpoints: number;
  /** false when no key was given: signatures were not checked. */
  signaturesChecked: boolean;
  /** true when the manifest is signed (version 2) and its signature verified under a trusted key. */
  manifestSigned: boolean;
  /**
   * What nothing signed vouches for, only the manifest's unsigned digest (empty when the
   * manifest's signature verified): said with the result, so "OK" never claims more.
   */
  unsignedParts: string[];
}
