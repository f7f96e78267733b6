/**
 * The newest retention marker (audit_retention, written only by the owner through
 * audit_apply_retention): where the kept chain starts and the hash it is anchored on.
 */
import type { AuditSql } from "../sql";

export interface RetentionMarker {
  removedFromSeq: bigint;
  firstKeptSeq: bigint;
  /** The hash of event firstKeptSeq - 1, signed by checkpoint `checkpointNumber`. */
  anchorHash: string;
  checkpointNumber: bigint;
  eventsRemoved: bigint;
  archiveFile: string;
  archiveSha256: string;
  performedBy: string;
  createdAt: Date;
}

interface MarkerRow {
  removed_from_seq: string;
  first_kept_seq: string;
  anchor_hash: string;
  checkpoint_number: string;
  events_removed: string;
  archive_file: string;
  archive_sha256: string;
  performed_by: string;
  created_at: Date | string;
}

/** null when retention never removed anything (or the database predates the table). */
export async function latestRetentionMarker(sql: AuditSql): Promise<RetentionMarker | null> {
  const [exists] = await sql.query<{ t: string | null }>("SELECT to_regclass('audit_retention')::text AS t");
  if (!exists?.t) return null;
  const [row] = await sql.query<MarkerRow>(
    `SELECT removed_from_seq::text AS removed_from_seq, first_kept_seq::text AS first_kept_seq, anchor_hash,
            checkpoint_number::text AS checkpoint_number, events_removed::text AS events_removed, archive_file,
            archive_sha256, performed_by, created_at
       FROM audit_retention ORDER BY first_kept_seq DESC LIMIT 1`,
  );
  if (!row) return null;
  return {
    removedFromSeq: BigInt(row.removed_from_seq),
    firstKeptSeq: BigInt(row.first_kept_seq),
    anchorHash: row.anchor_hash,
    checkpointNumber: BigInt(row.checkpoint_number),
    eventsRemoved: BigInt(row.events_removed),
    archiveFile: row.archive_file,
    archiveSha256: row.archive_sha256,
    performedBy: row.performed_by,
    createdAt: new Date(row.created_at),
  };
}
