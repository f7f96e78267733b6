/**
 * Which segment retention may remove: from the current start of the log (1, or the newest
 * marker's first kept seq) through the newest checkpoint that (a) is published outside the
 * database and verifies under a trusted key, (b) is stored in the database as published, and
 * (c) covers only events older than the cutoff. Whole segments only: the end is always a
 * checkpoint's seq, never a point between two.
 */
import { GENESIS_HASH } from "../chain";
import type { CheckpointKey } from "../checkpoints";
import { trustedPublished } from "../outside/compare";
import type { CheckpointSink, PublishedCheckpoint } from "../outside/sink";
import { withAuditSnapshot, type AuditDb } from "../sql";
import { latestRetentionMarker } from "./marker";

export class AuditRetentionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AuditRetentionError";
  }
}

export interface RetentionPlan {
  fromSeq: bigint;
  throughSeq: bigint;
  /** prevHash of the event at fromSeq (the previous marker's anchor, or 64 zeros). */
  anchorPrevHash: string;
  checkpoint: PublishedCheckpoint["checkpoint"];
  events: bigint;
  cutoff: Date;
}

export type RetentionPlanResult = { plan: RetentionPlan } | { plan: null; reason: string };

export interface PlanOptions {
  sink: CheckpointSink;
  /** Keys whose published checkpoints are trusted (the signer's, retired ones). */
  keys: readonly CheckpointKey[];
  cutoff: Date;
}

export async function planRetention(db: AuditDb, options: PlanOptions): Promise<RetentionPlanResult> {
  const published = await options.sink.readAll();
  const trusted = trustedPublished(published, options.keys);
  return withAuditSnapshot(db, async (sql) => {
    const marker = await latestRetentionMarker(sql);
    const fromSeq = marker?.firstKeptSeq ?? 1n;
    const [range] = await sql.query<{ first: string | null; last: string | null }>("SELECT min(seq)::text AS first, max(seq)::text AS last FROM audit_events");
    if (!range?.first || !range.last) return { plan: null, reason: "the audit log is empty" };
    if (BigInt(range.first) !== fromSeq) {
      throw new AuditRetentionError(
        `refusing: the audit log starts at seq ${range.first}, but ${marker ? `the newest retention marker keeps events from seq ${fromSeq}` : "no retention marker says events were removed"}; run \`bulkhead audit verify\``,
      );
    }
    // Events are chained in commit order, and a worker's events carry the time they were decided,
    // so `at` is not monotonic in seq: the boundary is the first event at or after the cutoff.
    const [young] = await sql.query<{ seq: string | null }>("SELECT min(seq)::text AS seq FROM audit_events WHERE at >= $1::timestamptz", [options.cutoff.toISOString()]);
    const limit = young?.seq ? BigInt(young.seq) : BigInt(range.last) + 1n;
    const candidates = trusted.filter((c) => c.seq >= fromSeq && c.seq < limit).sort((a, b) => (a.seq === b.seq ? Number(a.chain.number - b.chain.number) : a.seq < b.seq ? -1 : 1));
    for (let i = candidates.length - 1; i >= 0; i--) {
      const cp = candidates[i]!;
      const [row] = await sql.query<{ seq: string; hash: string; signature: string; event_hash: string | null }>(
        `SELECT c.seq::text AS seq, c.hash, c.signature, (SELECT e.hash FROM audit_events e WHERE e.seq = c.seq) AS event_hash
           FROM audit_checkpoints c WHERE c.number = $1::bigint`,
        [cp.chain.number.toString()],
      );
      if (!row || row.seq !== cp.seq.toString() || row.hash !== cp.hash || row.signature !== cp.signature) continue; // not stored as published
      if (row.event_hash !== cp.hash) {
        throw new AuditRetentionError(`refusing: event ${cp.seq} does not have the hash published checkpoint ${cp.chain.number} signed; run \`bulkhead audit verify\``);
      }
      return { plan: { fromSeq, throughSeq: cp.seq, anchorPrevHash: marker?.anchorHash ?? GENESIS_HASH, checkpoint: cp, events: cp.seq - fromSeq + 1n, cutoff: options.cutoff } };
    }
    const why = young?.seq === `${fromSeq}` ? `the oldest kept event (seq ${fromSeq}) is newer than the cutoff` : `no checkpoint published outside the database covers only events before seq ${limit} (older than the cutoff)`;
    return { plan: null, reason: `nothing to remove: ${why}` };
  });
}
