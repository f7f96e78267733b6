/**
 * The archive manifest's signature (version 2). The manifest holds the archive file's SHA-256
 * and size and the segment, so signing it vouches for every byte of the archive, including what
 * the hash chain does not cover: each event's `id` and `recordedAt`, and where the segment starts
 * and ends (a tail cut back to an earlier checkpoint, with the header fixed, is otherwise a
 * consistent archive). It is signed with the checkpoint signer's key, which the process that
 * archives holds (the launcher, or `bulkhead audit retention` on the installation's machine), and
 * verified with the published checkpoint keys. The message has a prefix of its own, so a
 * manifest's signature can never pass for a checkpoint's, nor the reverse.
 *
 *   bulkhead-audit-archive-manifest-v2|<file, as len:value>|<sha256>|<size>|<fromSeq>|<throughSeq>
 *     |<events>|<anchorPrevHash>|<checkpoint number>|<checkpoint seq>|<checkpoint hash>
 *     |<checkpoint keyId, as len:value>|<createdAt>
 */
import { signedByCheckpointKey, signWithCheckpointKey, type CheckpointKey } from "../checkpoints";
import type { ArchiveManifest } from "./archive-format";

const PREFIX = "bulkhead-audit-archive-manifest-v2";

export type UnsignedManifest = Omit<ArchiveManifest, "version" | "keyId" | "signature">;

const field = (value: string) => `${Buffer.byteLength(value, "utf8")}:${value}`;

export function manifestMessage(m: UnsignedManifest): Buffer {
  const cp = m.checkpoint;
  return Buffer.from(
    [PREFIX, field(m.file), m.sha256, String(m.size), m.fromSeq, m.throughSeq, m.events, m.anchorPrevHash, cp.number, cp.seq, cp.hash, field(cp.keyId), m.createdAt].join("|"),
    "utf8",
  );
}

/** The manifest of version 2, signed with the checkpoint signer's seed. */
export function signManifest(signerKey: Buffer, m: UnsignedManifest): ArchiveManifest {
  const { keyId, signature } = signWithCheckpointKey(signerKey, manifestMessage(m));
  return { format: m.format, version: 2, file: m.file, sha256: m.sha256, size: m.size, fromSeq: m.fromSeq, throughSeq: m.throughSeq, events: m.events, anchorPrevHash: m.anchorPrevHash, checkpoint: m.checkpoint, createdAt: m.createdAt, keyId, signature };
}

export function manifestSignatureValid(m: ArchiveManifest, keys: readonly CheckpointKey[]): boolean {
  if (m.version !== 2 || m.keyId === undefined || m.signature === undefined) return false;
  return signedByCheckpointKey(manifestMessage(m), m.keyId, m.signature, keys);
}

/** What only an unsigned (version 1) manifest vouches for: said beside "Archive OK". */
export const UNSIGNED_MANIFEST_PARTS = [
  "each event's id and recordedAt (the hash chain does not cover them)",
  "where the segment starts (fromSeq, anchorPrevHash): events cut from its start, with the header fixed, would not show",
  "where the segment ends (throughSeq and its checkpoint): a tail cut back to an earlier checkpoint, with the header fixed, would not show",
];
