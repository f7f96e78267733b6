/**
 * Compares the database with the checkpoints published outside it and names what it finds.
 * The published copies are trusted only when their signature verifies under a trusted key; an
 * unreadable or unverifiable file is reported and then ignored, never believed.
 *
 * | finding | meaning |
 * |---|---|
 * | `dropped_tail` | a published checkpoint covers events the database no longer has past its end |
 * | `recomputed_chain` | the event at a published checkpoint's seq has another hash: the chain was rewritten |
 * | `events_missing` | the event at a published checkpoint's seq is missing inside the chain |
 * | `checkpoint_deleted` | a published checkpoint, or one between two stored ones, is missing from the database |
 * | `checkpoint_altered` | the database's copy of a checkpoint differs from the published one, or does not verify |
 * | `checkpoint_reordered` | the database's checkpoints were stored in another order than they were signed |
 * | `publication_gap` | a checkpoint number is missing outside, or the database holds one that was never published |
 * | `outside_chain_broken` | two published checkpoints do not link (one vouches for a predecessor that is not there) |
 * | `corrupt_outside_file` | a published file cannot be read as a checkpoint, or its signature does not verify |
 */
import { checkpointSignatureValid, type CheckpointKey, type SignedCheckpoint } from "../checkpoints";
import { latestRetentionMarker } from "../retention/marker";
import { withAuditSnapshot, type AuditDb, type AuditSql } from "../sql";
import type { PublishedCheckpoint, PublishedSet } from "./sink";

export type OutsideFindingKind =
  | "dropped_tail"
  | "recomputed_chain"
  | "events_missing"
  | "checkpoint_deleted"
  | "checkpoint_altered"
  | "checkpoint_reordered"
  | "publication_gap"
  | "outside_chain_broken"
  | "corrupt_outside_file";

export interface OutsideFinding {
  kind: OutsideFindingKind;
  detail: string;
  number?: bigint;
  seq?: bigint;
  location?: string;
}

export interface OutsideComparison {
  ok: boolean;
  /** Published checkpoints that verified (and so were used). */
  trusted: number;
  latest: { number: bigint; seq: bigint; hash: string; signedAt: Date } | null;
  findings: OutsideFinding[];
  /** Published checkpoints whose events retention archived and removed (not missing). */
  archived: number;
}

type Chained = PublishedCheckpoint["checkpoint"];

interface StoredRow {
  id: string;
  number: string;
  seq: string;
  hash: string;
  key_id: string;
  signature: string;
  prev_signature: string | null;
  signed_at: Date;
}

/** The published checkpoints that verify, in number order (for verifyAuditChain's trustedCheckpoints too). */
export function trustedPublished(set: PublishedSet, keys: readonly CheckpointKey[]): Chained[] {
  return set.checkpoints.filter((p) => checkpointSignatureValid(p.checkpoint, keys)).map((p) => p.checkpoint);
}

/**
 * `storedBeforeRead`: the highest checkpoint number the database held before `set` was read.
 * The signer publishes before it stores, so each of those must be in `set`; a higher one may
 * have been signed while the folder was being read and is not a gap.
 */
export async function compareWithOutside(db: AuditDb, set: PublishedSet, keys: readonly CheckpointKey[], storedBeforeRead: bigint): Promise<OutsideComparison> {
  const findings: OutsideFinding[] = [];
  for (const c of set.corrupt) findings.push({ kind: "corrupt_outside_file", detail: `${c.location}: ${c.problem}; not trusted`, location: c.location, ...(c.number !== null ? { number: c.number } : {}) });
  const trusted: Chained[] = [];
  for (const p of set.checkpoints) {
    if (checkpointSignatureValid(p.checkpoint, keys)) trusted.push(p.checkpoint);
    else findings.push({ kind: "corrupt_outside_file", detail: `${p.location}: the signature does not verify under a trusted key (${p.checkpoint.keyId}); not trusted`, location: p.location, number: p.checkpoint.chain.number });
  }
  findings.push(...outsideChain(trusted));
  let archived = 0;
  await withAuditSnapshot(db, async (sql) => {
    findings.push(...(await storedAgainstPublished(sql, trusted, keys, storedBeforeRead)));
    // Retention removed the events before the marker's first kept seq: checkpoints over them are
    // archived; the one it kept must still sign the anchor the kept chain links to.
    const marker = await latestRetentionMarker(sql);
    const kept = marker ? trusted.filter((c) => c.seq >= marker.firstKeptSeq) : trusted;
    if (marker) {
      archived = trusted.length - kept.length;
      const anchor = trusted.find((c) => c.chain.number === marker.checkpointNumber);
      if (anchor && (anchor.seq !== marker.firstKeptSeq - 1n || anchor.hash !== marker.anchorHash)) {
        findings.push({ kind: "recomputed_chain", detail: `the retention marker anchors the kept chain on hash ${marker.anchorHash} at seq ${marker.firstKeptSeq - 1n}, but published checkpoint ${anchor.chain.number} signed ${anchor.hash} at seq ${anchor.seq}`, seq: anchor.seq, number: anchor.chain.number });
      } else if (!anchor) {
        findings.push({ kind: "checkpoint_deleted", detail: `checkpoint ${marker.checkpointNumber}, which the retention marker is anchored on, is not among the published checkpoints that verify`, number: marker.checkpointNumber });
      }
    }
    findings.push(...(await eventsAgainstPublished(sql, kept)));
  });
  const last = trusted[trusted.length - 1];
  return {
    ok: findings.length === 0,
    trusted: trusted.length,
    latest: last ? { number: last.chain.number, seq: last.seq, hash: last.hash, signedAt: last.chain.signedAt } : null,
    findings,
    archived,
  };
}

/** Numbers 1..N without holes, each linking to the one before, seqs never going back. */
function outsideChain(trusted: Chained[]): OutsideFinding[] {
  const out: OutsideFinding[] = [];
  let prev: Chained | null = null;
  for (const cp of trusted) {
    const expected = prev ? prev.chain.number + 1n : 1n;
    if (cp.chain.number > expected) {
      const range = cp.chain.number - 1n === expected ? `${expected}` : `${expected}-${cp.chain.number - 1n}`;
      out.push({ kind: "publication_gap", detail: `published checkpoint(s) ${range} are missing outside the database (checkpoint ${cp.chain.number} follows ${prev ? prev.chain.number : "nothing"})`, number: expected });
    } else if (prev && cp.chain.prevSignature !== prev.signature) {
      out.push({ kind: "outside_chain_broken", detail: `published checkpoint ${cp.chain.number} does not link to published checkpoint ${prev.chain.number}`, number: cp.chain.number });
    }
    if (prev && cp.seq < prev.seq) out.push({ kind: "outside_chain_broken", detail: `published checkpoint ${cp.chain.number} is at seq ${cp.seq}, before checkpoint ${prev.chain.number}'s seq ${prev.seq}`, number: cp.chain.number });
    prev = cp;
  }
  return out;
}

const asSigned = (r: StoredRow): SignedCheckpoint => ({
  seq: BigInt(r.seq),
  hash: r.hash,
  keyId: r.key_id,
  signature: r.signature,
  chain: { number: BigInt(r.number), signedAt: new Date(r.signed_at), prevSignature: r.prev_signature },
});

async function storedAgainstPublished(sql: AuditSql, trusted: Chained[], keys: readonly CheckpointKey[], storedBeforeRead: bigint): Promise<OutsideFinding[]> {
  const out: OutsideFinding[] = [];
  const rows = await sql.query<StoredRow>(
    `SELECT id::text AS id, number::text AS number, seq::text AS seq, hash, key_id, signature, prev_signature, signed_at
       FROM audit_checkpoints WHERE number IS NOT NULL ORDER BY audit_checkpoints.number`,
  );
  const byNumber = new Map(rows.map((r) => [BigInt(r.number), r]));
  const published = new Set(trusted.map((c) => c.chain.number));
  for (const cp of trusted) {
    const row = byNumber.get(cp.chain.number);
    if (!row) {
      out.push({ kind: "checkpoint_deleted", detail: `checkpoint ${cp.chain.number} (seq ${cp.seq}) was published but is not in the database`, number: cp.chain.number, seq: cp.seq });
    } else if (row.seq !== cp.seq.toString() || row.hash !== cp.hash || row.signature !== cp.signature) {
      out.push({ kind: "checkpoint_altered", detail: `the database's checkpoint ${cp.chain.number} differs from the published one`, number: cp.chain.number, seq: cp.seq });
    }
  }
  let prev: StoredRow | null = null;
  for (const row of rows) {
    const number = BigInt(row.number);
    const signed = asSigned(row);
    if (!published.has(number) && !checkpointSignatureValid(signed, keys)) {
      out.push({ kind: "checkpoint_altered", detail: `the database's checkpoint ${number} is not signed by a trusted key`, number, seq: signed.seq });
    } else if (!published.has(number) && number <= storedBeforeRead) {
      out.push({ kind: "publication_gap", detail: `checkpoint ${number} is in the database but was never published outside it`, number, seq: signed.seq });
    }
    if (prev) {
      const prevNumber = BigInt(prev.number);
      if (number > prevNumber + 1n && !(published.has(prevNumber + 1n))) {
        out.push({ kind: "checkpoint_deleted", detail: `checkpoint(s) between ${prevNumber} and ${number} are missing from the database`, number: prevNumber + 1n });
      } else if (number === prevNumber + 1n && row.prev_signature !== prev.signature) {
        out.push({ kind: "checkpoint_altered", detail: `the database's checkpoint ${number} does not link to checkpoint ${prevNumber}`, number });
      }
      if (BigInt(row.id) < BigInt(prev.id)) {
        out.push({ kind: "checkpoint_reordered", detail: `checkpoint ${number} was stored before checkpoint ${prevNumber}`, number });
      }
    }
    prev = row;
  }
  return out;
}

/** Every published checkpoint's event must still be there with the signed hash. */
async function eventsAgainstPublished(sql: AuditSql, trusted: Chained[]): Promise<OutsideFinding[]> {
  if (trusted.length === 0) return [];
  const [end] = await sql.query<{ last: string | null; first: string | null }>("SELECT max(seq)::text AS last, min(seq)::text AS first FROM audit_events");
  const lastSeq = end?.last ? BigInt(end.last) : 0n;
  const out: OutsideFinding[] = [];
  let recomputed = false;
  let missing = false;
  for (let i = 0; i < trusted.length; i += 5000) {
    const page = trusted.slice(i, i + 5000);
    const rows = await sql.query<{ seq: string; hash: string | null }>("SELECT seq::text AS seq, hash FROM audit_events WHERE seq = ANY($1::bigint[])", [page.map((c) => c.seq.toString())]);
    const hashes = new Map(rows.map((r) => [r.seq, r.hash]));
    for (const cp of page) {
      const hash = hashes.get(cp.seq.toString());
      if (hash === undefined && cp.seq > lastSeq) {
        const newest = trusted[trusted.length - 1]!;
        out.push({ kind: "dropped_tail", detail: `published checkpoint ${newest.chain.number} covers the chain up to seq ${newest.seq}, but the database's chain ends at seq ${lastSeq}: events ${lastSeq + 1n}-${newest.seq} were dropped`, seq: lastSeq + 1n, number: cp.chain.number });
        return out;
      }
      if (hash === undefined && !missing) {
        missing = true;
        out.push({ kind: "events_missing", detail: `event ${cp.seq}, signed by published checkpoint ${cp.chain.number}, is missing from the database`, seq: cp.seq, number: cp.chain.number });
      } else if (hash !== undefined && hash !== cp.hash && !recomputed) {
        recomputed = true;
        out.push({ kind: "recomputed_chain", detail: `event ${cp.seq} has hash ${hash ?? "NULL"}, but published checkpoint ${cp.chain.number} signed ${cp.hash}: the chain was rewritten at or before seq ${cp.seq}`, seq: cp.seq, number: cp.chain.number });
      }
    }
  }
  return out;
}
