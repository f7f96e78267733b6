/**
 * Verifies the audit hash chain from the rows themselves, recomputing every hash in TypeScript
 * (lib/audit/chain.ts), inside one read-only snapshot so that concurrent writers do not matter.
 *
 * Finds the first edited, deleted, inserted or reordered event (see `classify` for how a broken
 * link is told apart), a chain head that disagrees with the rows, checkpoints that are not signed
 * by a trusted key or disagree with the rows, and a truncated tail (the newest checkpoint is past
 * the last row). Truncation by someone who can also move the head and delete checkpoints is only
 * visible against checkpoints kept outside the database (`trustedCheckpoints`).
 */
import { AppError } from "@/lib/errors/app-error";
import { GENESIS_HASH, eventHash } from "./chain";
import { checkpointFromRow, checkpointRowColumns, checkpointSignatureValid, type CheckpointKey, type CheckpointRow, type SignedCheckpoint } from "./checkpoints";
import { latestRetentionMarker } from "./retention/marker";
import { withAuditSnapshot, type AuditDb, type AuditSql } from "./sql";

export type AuditChainProblem =
  | "edited"
  | "deleted_or_gap"
  | "inserted"
  | "reordered"
  | "head_mismatch"
  | "checkpoint_mismatch"
  | "truncated";

/** What retention removed: the chain starts at firstKeptSeq, anchored on a kept checkpoint. */
export interface RetentionAnchor {
  firstKeptSeq: bigint;
  anchorHash: string;
  checkpointNumber: bigint;
  /** Checkpoints whose events are gone (archived), not missing. */
  archivedCheckpoints: number;
}

export type AuditChainVerification =
  | { ok: true; lastSeq: bigint; lastHash: string; events: number; checkpoints: number; retention?: RetentionAnchor }
  | { ok: false; firstBadSeq: bigint; problem: AuditChainProblem; detail: string };

export interface VerifyAuditChainOptions {
  /** Start here (trusting the stored hash of the event before it). Default: the first event. */
  fromSeq?: bigint | number;
  /**
   * Stop once the event at this seq is verified (a part of the chain: a task's events up to the
   * signed checkpoint that covers them). The chain's end is then not read: nothing is said of the
   * head or of what follows. Default: verify to the head.
   */
  throughSeq?: bigint | number;
  /**
   * Keys whose checkpoints are trusted; a checkpoint signed by anything else is a failure. null:
   * signatures are not checked (a process that holds no verification key), only that each
   * checkpoint agrees with the chain.
   */
  checkpointKeys: readonly CheckpointKey[] | null;
  /** Checkpoints kept outside the database (e.g. printed by `bulkhead audit checkpoint`). */
  trustedCheckpoints?: readonly SignedCheckpoint[];
  pageSize?: number;
}

/** An audit row as the chain reads it (the verifier, the retention archive). */
export interface ChainRow {
  seq: string;
  prev_hash: string | null;
  hash: string | null;
  at_ms: string;
  type: string;
  actor_type: string;
  actor_id: string | null;
  agent_id: string | null;
  task_id: string | null;
  outcome: string | null;
  effect: string | null;
  reason: string | null;
  rule_id: string | null;
  data_text: string;
}

export const CHAIN_COLUMNS = `seq::text AS seq, prev_hash, hash, (extract(epoch FROM at) * 1000)::bigint::text AS at_ms, type, actor_type,
  actor_id, agent_id::text AS agent_id, task_id::text AS task_id, outcome, effect, reason, rule_id, data::text AS data_text`;
const LOOKAHEAD = 1000;

/** The hash the row would have at `seq` (its stored prev_hash, its stored content). */
function hashAt(row: ChainRow, seq: bigint): string {
  return eventHash({
    seq,
    prevHash: row.prev_hash ?? "",
    at: new Date(Number(row.at_ms)),
    type: row.type,
    actorType: row.actor_type,
    actorId: row.actor_id,
    agentId: row.agent_id,
    taskId: row.task_id,
    outcome: row.outcome,
    effect: row.effect,
    reason: row.reason,
    ruleId: row.rule_id,
    dataText: row.data_text,
  });
}

type Failure = Extract<AuditChainVerification, { ok: false }>;
const fail = (firstBadSeq: bigint, problem: AuditChainProblem, detail: string): Failure => ({ ok: false, firstBadSeq, problem, detail });

export async function verifyAuditChain(db: AuditDb, options: VerifyAuditChainOptions): Promise<AuditChainVerification> {
  return withAuditSnapshot(db, (sql) => verifyInSnapshot(sql, options));
}

async function verifyInSnapshot(sql: AuditSql, options: VerifyAuditChainOptions): Promise<AuditChainVerification> {
  const pageSize = options.pageSize ?? 2000;
  const fromSeq = BigInt(options.fromSeq ?? 1);
  if (fromSeq < 1n) throw new RangeError("fromSeq starts at 1");
  const throughSeq = options.throughSeq === undefined ? null : BigInt(options.throughSeq);
  if (throughSeq !== null && throughSeq < fromSeq) throw new RangeError("throughSeq is before fromSeq");

  const [head] = await sql.query<{ seq: string; hash: string }>("SELECT seq::text AS seq, hash FROM audit_chain_head WHERE id = 1");
  if (!head) return fail(0n, "head_mismatch", "audit_chain_head has no row");

  const [unchained] = await sql.query<{ n: string; ids: string[] | null }>(
    "SELECT count(*)::text AS n, (array_agg(id::text ORDER BY id))[1:5] AS ids FROM audit_events WHERE seq IS NULL",
  );
  if (unchained && unchained.n !== "0") {
    return fail(0n, "inserted", `${unchained.n} event(s) have no seq (written with the chain trigger disabled), ids ${unchained.ids?.join(", ")}`);
  }

  // Retention removed the events before the marker's first kept seq: the chain starts there,
  // anchored on the hash its kept checkpoint signed. Without a marker a missing start is a deletion.
  const retention = await retentionAnchor(sql, options);
  if (retention && "ok" in retention) return retention;
  const start = retention && fromSeq <= retention.firstKeptSeq ? retention.firstKeptSeq : fromSeq;
  const checkpoints = new CheckpointStream(sql, start, options, pageSize);

  // The chain before start is taken on trust: anchor at the retention marker's checkpoint, or at
  // the stored hash of the previous event.
  let expected = start;
  let prev = GENESIS_HASH;
  let prevPrev: string | null = null;
  if (retention && start === retention.firstKeptSeq) {
    prev = retention.anchorHash;
  } else if (start > 1n) {
    const [anchor] = await sql.query<ChainRow>(`SELECT ${CHAIN_COLUMNS} FROM audit_events WHERE seq = $1::bigint`, [(start - 1n).toString()]);
    if (!anchor) {
      // Past the chain's end is a wrong argument, not a deleted event: said as such.
      const [head] = await sql.query<{ seq: string }>("SELECT seq::text AS seq FROM audit_chain_head WHERE id = 1");
      if (head && start - 1n > BigInt(head.seq)) {
        throw new AppError("INVALID_INPUT", `the chain has no event ${start} to start from: its last event is seq ${head.seq} (give a --from between 1 and ${head.seq})`);
      }
      return fail(start - 1n, "deleted_or_gap", `no event with seq ${start - 1n} to start from`);
    }
    prev = anchor.hash ?? "";
    prevPrev = anchor.prev_hash;
  }

  let lastCheckpointSeq = start - 1n;
  let events = 0;
  for (;;) {
    const page = await sql.query<ChainRow>(
      `SELECT ${CHAIN_COLUMNS} FROM audit_events WHERE seq >= $1::bigint${throughSeq === null ? "" : " AND seq <= $2::bigint"} ORDER BY audit_events.seq LIMIT ${pageSize}`,
      throughSeq === null ? [expected.toString()] : [expected.toString(), throughSeq.toString()],
    );
    for (const row of page) {
      const seq = BigInt(row.seq);
      if (seq !== expected || row.prev_hash !== prev || hashAt(row, seq) !== row.hash) {
        return classify(sql, row, expected, prev, prevPrev);
      }
      for (let cp = await checkpoints.nextAtOrBefore(seq); cp !== null; cp = await checkpoints.nextAtOrBefore(seq)) {
        if ("ok" in cp) return cp;
        if (cp.seq === seq && cp.hash !== row.hash) {
          return fail(seq, "checkpoint_mismatch", `the chain at seq ${seq} is not the one signed by checkpoint ${cp.keyId}: it was rewritten after seq ${lastCheckpointSeq}`);
        }
        lastCheckpointSeq = cp.seq;
      }
      prevPrev = prev;
      prev = row.hash!;
      expected = seq + 1n;
      events++;
    }
    if (page.length < pageSize) break;
  }
  const lastSeq = expected - 1n;
  if (throughSeq !== null) {
    // A part of the chain: complete through throughSeq, and the checkpoints within it agree.
    if (lastSeq < throughSeq) return fail(lastSeq + 1n, "truncated", `the chain ends at seq ${lastSeq}, before seq ${throughSeq}`);
    const part = { ok: true as const, lastSeq, lastHash: prev, events, checkpoints: checkpoints.count };
    return retention ? { ...part, retention } : part;
  }

  let beyond: SignedCheckpoint | null = null;
  for (let cp = await checkpoints.nextAtOrBefore(null); cp !== null; cp = await checkpoints.nextAtOrBefore(null)) {
    if ("ok" in cp) return cp;
    beyond = cp;
  }
  if (beyond) return fail(lastSeq + 1n, "truncated", `a signed checkpoint is at seq ${beyond.seq} but the chain ends at seq ${lastSeq}`);
  const headSeq = BigInt(head.seq);
  if (headSeq > lastSeq) return fail(lastSeq + 1n, "truncated", `the chain head is at seq ${headSeq} but the chain ends at seq ${lastSeq}`);
  if (headSeq < lastSeq) return fail(headSeq + 1n, "head_mismatch", `events continue past the chain head (seq ${headSeq}) to seq ${lastSeq}`);
  if (head.hash !== prev) return fail(lastSeq, "head_mismatch", `the chain head's hash differs from event ${lastSeq}'s`);
  const ok = { ok: true as const, lastSeq, lastHash: prev, events, checkpoints: checkpoints.count };
  return retention ? { ...ok, retention } : ok;
}

/**
 * The newest retention marker, checked: its anchor must be a stored checkpoint at the seq before
 * the first kept event, with the same hash and (when keys are given) a trusted signature, and no
 * event may remain before it. A marker that is not anchored so is not believed.
 */
async function retentionAnchor(sql: AuditSql, options: VerifyAuditChainOptions): Promise<RetentionAnchor | Failure | null> {
  const marker = await latestRetentionMarker(sql);
  if (!marker) return null;
  const anchorSeq = marker.firstKeptSeq - 1n;
  const [row] = await sql.query<CheckpointRow>(`SELECT ${checkpointRowColumns("c")} FROM audit_checkpoints c WHERE c.number = $1::bigint`, [marker.checkpointNumber.toString()]);
  const cp = row ? checkpointFromRow(row) : null;
  if (!cp || cp.seq !== anchorSeq || cp.hash !== marker.anchorHash) {
    return fail(anchorSeq, "checkpoint_mismatch", `the retention marker (events before seq ${marker.firstKeptSeq} removed) is not anchored on checkpoint ${marker.checkpointNumber} as stored`);
  }
  if (options.checkpointKeys !== null && !checkpointSignatureValid(cp, options.checkpointKeys)) {
    return fail(anchorSeq, "checkpoint_mismatch", `checkpoint ${marker.checkpointNumber}, which the retention marker is anchored on, is not signed by a trusted checkpoint key`);
  }
  const [left] = await sql.query<{ seq: string | null }>("SELECT min(seq)::text AS seq FROM audit_events WHERE seq < $1::bigint", [marker.firstKeptSeq.toString()]);
  if (left?.seq) return fail(BigInt(left.seq), "inserted", `event ${left.seq} is before the retention marker's first kept seq ${marker.firstKeptSeq}`);
  const [archived] = await sql.query<{ n: string }>("SELECT count(*)::text AS n FROM audit_checkpoints WHERE seq < $1::bigint", [marker.firstKeptSeq.toString()]);
  return { firstKeptSeq: marker.firstKeptSeq, anchorHash: marker.anchorHash, checkpointNumber: marker.checkpointNumber, archivedCheckpoints: Number(archived?.n ?? 0) };
}

/**
 * Stored checkpoints (paged by seq) merged with the external ones, each checked against the
 * trusted keys as it is read.
 */
class CheckpointStream {
  count = 0;
  private buffer: Array<SignedCheckpoint & { label: string }> = [];
  private external: Array<SignedCheckpoint & { label: string }>;
  private after: { seq: string; id: string } | null = null;
  private exhausted = false;
  private readonly seen = new Set<string>();

  constructor(
    private readonly sql: AuditSql,
    private readonly fromSeq: bigint,
    private readonly options: VerifyAuditChainOptions,
    private readonly pageSize: number,
  ) {
    this.external = (options.trustedCheckpoints ?? [])
      .filter((c) => c.seq >= fromSeq)
      .map((c) => ({ ...c, label: `external checkpoint at seq ${c.seq}` }))
      .sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  }

  /** The next checkpoint with seq <= limit (any seq when limit is null), or null. */
  async nextAtOrBefore(limit: bigint | null): Promise<SignedCheckpoint | Failure | null> {
    if (this.buffer.length === 0 && !this.exhausted) await this.fill();
    const stored = this.buffer[0];
    const external = this.external[0];
    const next = stored && (!external || stored.seq <= external.seq) ? stored : external;
    if (!next || (limit !== null && next.seq > limit)) return null;
    (next === stored ? this.buffer : this.external).shift();
    // The same checkpoint stored and kept outside counts once.
    if (this.seen.has(next.signature)) return this.nextAtOrBefore(limit);
    this.seen.add(next.signature);
    this.count++;
    if (this.options.checkpointKeys !== null && !checkpointSignatureValid(next, this.options.checkpointKeys)) {
      return fail(next.seq, "checkpoint_mismatch", `${next.label} (key ${next.keyId}) is not signed by a trusted checkpoint key`);
    }
    return next;
  }

  private async fill(): Promise<void> {
    const rows = await this.sql.query<CheckpointRow & { id: string }>(
      `SELECT c.id::text AS id, ${checkpointRowColumns("c")} FROM audit_checkpoints c
        WHERE seq >= $1::bigint AND ($2::bigint IS NULL OR (seq, id) > ($2::bigint, $3::bigint))
        ORDER BY c.seq, c.id LIMIT ${this.pageSize}`,
      [this.fromSeq.toString(), this.after?.seq ?? null, this.after?.id ?? null],
    );
    if (rows.length < this.pageSize) this.exhausted = true;
    const last = rows[rows.length - 1];
    if (last) this.after = { seq: last.seq, id: last.id };
    this.buffer = rows.map((c) => ({ ...checkpointFromRow(c), label: `checkpoint #${c.id}` }));
  }
}

/**
 * The first broken link is at `expected`; `prev` is the hash of the last good event and
 * `prevPrev` the one before it. Which tampering explains it:
 * - a missing seq: deleted (or a gap);
 * - the row's own hash is wrong but it links to `prev`: edited, unless the next event links to
 *   `prev` too (then this row is a forgery inserted between them);
 * - the row links to `prevPrev`: the previous row was inserted;
 * - a later row links to `prev`: this row is out of place: reordered when its own predecessor
 *   comes later, otherwise inserted;
 * - its hash verifies at seq+1 (or seq-1): the rows were renumbered after a deletion (insertion);
 * - otherwise the previous event was edited and re-hashed (its successor still names the old hash).
 */
async function classify(sql: AuditSql, row: ChainRow, expected: bigint, prev: string, prevPrev: string | null): Promise<Failure> {
  const seq = BigInt(row.seq);
  if (seq > expected) return fail(expected, "deleted_or_gap", `no event with seq ${expected}; the next one is ${seq}`);
  if (seq < expected) return fail(seq, "inserted", `seq ${seq} appears twice`);
  const contentOk = hashAt(row, seq) === row.hash;
  const ahead = await sql.query<ChainRow>(`SELECT ${CHAIN_COLUMNS} FROM audit_events WHERE seq > $1::bigint ORDER BY audit_events.seq LIMIT ${LOOKAHEAD}`, [row.seq]);
  if (row.prev_hash === prev) {
    if (ahead[0]?.prev_hash === prev) return fail(seq, "inserted", `event ${seq} has a bad hash and its successor links past it`);
    return fail(seq, "edited", `event ${seq}'s content does not match its hash`);
  }
  if (prevPrev !== null && row.prev_hash === prevPrev) {
    return fail(expected - 1n, "inserted", `event ${seq} links to event ${expected - 2n}: event ${expected - 1n} was inserted between them`);
  }
  if (ahead.some((r) => r.prev_hash === prev)) {
    if (ahead.some((r) => r.hash === row.prev_hash)) return fail(seq, "reordered", `event ${seq} belongs after a later event`);
    return fail(seq, "inserted", `event ${seq} is not in the chain: a later event links to event ${expected - 1n}`);
  }
  if (hashAt(row, seq + 1n) === row.hash) return fail(seq, "deleted_or_gap", `event ${seq} was hashed as seq ${seq + 1n}: an event before it was deleted and the rest renumbered`);
  if (hashAt(row, seq - 1n) === row.hash) return fail(seq - 1n, "inserted", `event ${seq} was hashed as seq ${seq - 1n}: an event was inserted before it`);
  if (!contentOk) return fail(seq, "edited", `event ${seq}'s content does not match its hash and it does not link to event ${expected - 1n}`);
  return fail(expected - 1n, "edited", `event ${seq} was chained to a different event ${expected - 1n}: that event was edited and re-hashed`);
}
