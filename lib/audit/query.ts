/**
 * Reading the audit log: pages of events (keyset over seq, newest first) and one event with its
 * place in the hash chain. Reading is itself audited: every page and every opened event writes
 * an event (who, which filter) before anything is returned, so a read that cannot be recorded
 * returns nothing.
 */
import type { Db } from "@/lib/db/client";
import { assertCan, type Actor } from "@/lib/auth/actor";
import { codeOf } from "@/lib/db/errors";
import { AppError } from "@/lib/errors/app-error";
import type { Prisma } from "@/lib/generated/prisma/client";
import { GENESIS_HASH, eventHash } from "./chain";
import { checkpointFromRow, checkpointRowColumns, checkpointSignatureValid, type CheckpointKey, type CheckpointRow } from "./checkpoints";
import { auditFilterInput, auditPageInput, describeFilter, isSeqText, type AuditFilterInput, type AuditPageInput } from "./filter";
import { recordAuditEvent } from "./record";
import { EVENT_COLUMNS, EVENT_JOINS, pageQuery, resolveFilter, whereClause, type AuditRow } from "./search";
import { auditSql, queryWithin, type AuditDb } from "./sql";
import { StreamSlots, streamOwner } from "@/lib/approvals/live-slots";
import { toEventView, type AuditEventView } from "./view";

export interface AuditPage {
  events: AuditEventView[];
  /** Pass as `cursor` for the next (older) page; null on the oldest page. */
  nextCursor: string | null;
  /** Pass as `after` for the previous (newer) page; null on the newest page. */
  prevCursor: string | null;
  /** The filter as it was understood. */
  filter: Record<string, string | string[]>;
  /** When the filter can match nothing because a name in it is unknown, why. */
  nothing: string | null;
  /** A sentence for each `type` the log has no event of (types are open-ended, never refused). */
  unmatchedTypes: string[];
  /** A sentence for each `outcome` no event in the log has (outcomes are open-ended, never refused). */
  unmatchedOutcomes: string[];
}

/** Where a read came from, recorded with it. */
export type AuditReadVia = "dashboard" | "api" | "cli";

/**
 * How long one page's query may run (`SET LOCAL statement_timeout`), and how many pages may be
 * searched at once per person or API key and per dashboard process. A filter the indexes cannot
 * narrow (free text with no trigram, such as `!!!`, or text whose every trigram is common) makes
 * PostgreSQL read the whole log, in parallel workers, until the connection's timeout (20 s); a
 * reader (an auditor, a read-only key) sending such searches at once could hold every connection
 * of the dashboard's pool, and approvals could not be decided meanwhile.
 */
export const SEARCH_STATEMENT_TIMEOUT_MS = 5_000;
export const SEARCHES_PER_ACTOR = 2;
export const SEARCHES_IN_ALL = 4;
const searchSlots = new StreamSlots(SEARCHES_PER_ACTOR, SEARCHES_IN_ALL);

/** Page searches running now (for `actor`, or in all). */
export function runningSearches(actor?: Actor): number {
  return searchSlots.count(actor ? streamOwner(actor) : undefined);
}

function searchTooSlow(ms: number): AppError {
  const message = `The search was stopped after ${ms / 1000} s: the indexes could not narrow it. Narrow it with a time range (from, to), an agent, a task or a type, or search for longer text with letters or digits.`;
  return new AppError("INVALID_INPUT", message, { details: { reason: "search_too_slow", timeoutMs: ms } });
}

/** The page itself, without the permission check or the audit record (benchmarks, exports). */
export async function searchAuditEvents(db: AuditDb, input: AuditFilterInput & AuditPageInput, options: { statementTimeoutMs?: number } = {}): Promise<AuditPage> {
  const filter = auditFilterInput.parse(input);
  const page = auditPageInput.parse(input);
  const sql = auditSql(db);
  const resolved = await resolveFilter(sql, filter);
  const newer = page.after !== undefined;
  const where = whereClause(resolved, newer ? { afterSeq: page.after } : { beforeSeq: page.cursor });
  const q = pageQuery(where, newer ? "asc" : "desc", page.limit + 1);
  const ms = options.statementTimeoutMs;
  const rows = await (ms === undefined ? sql.query<AuditRow>(q.text, q.values) : queryWithin<AuditRow>(db, ms, q.text, q.values)).catch((error: unknown) => {
    // 57014: cancelled by the statement timeout set for this query.
    throw ms !== undefined && codeOf(error) === "57014" ? searchTooSlow(ms) : error;
  });
  const more = rows.length > page.limit;
  const shown = rows.slice(0, page.limit);
  if (newer) shown.reverse();
  const first = shown[0];
  const last = shown[shown.length - 1];
  return {
    events: shown.map(toEventView),
    nextCursor: last && (newer || more) ? last.seq : null,
    prevCursor: first && (newer ? more : page.cursor !== undefined) ? first.seq : null,
    filter: describeFilter(filter),
    nothing: resolved.nothing,
    unmatchedTypes: resolved.unmatchedTypes,
    unmatchedOutcomes: resolved.unmatchedOutcomes,
  };
}

function readEvent(actor: Actor, type: string, data: Record<string, unknown>) {
  return { type, actor, outcome: "allow", data: data as Prisma.InputJsonValue };
}

/** A page of the audit log for `actor`, recorded as `audit.viewed` (who, filter, position, rows). */
export async function listAuditEvents(
  db: Db,
  actor: Actor,
  input: AuditFilterInput & AuditPageInput,
  via: AuditReadVia,
  options: { statementTimeoutMs?: number } = {},
): Promise<AuditPage> {
  assertCan(actor, "read");
  const slot = searchSlots.acquire(streamOwner(actor));
  if ("refused" in slot) {
    const who = slot.refused === "actor" ? `${SEARCHES_PER_ACTOR} searches of yours are` : `${SEARCHES_IN_ALL} searches are`;
    throw new AppError("RATE_LIMITED", `${who} already running; try again when one has finished.`, { details: { retryAfterSeconds: 1, limit: slot.refused } });
  }
  let page: AuditPage;
  try {
    page = await searchAuditEvents(db, input, { statementTimeoutMs: options.statementTimeoutMs ?? SEARCH_STATEMENT_TIMEOUT_MS });
  } finally {
    slot.release();
  }
  const position = auditPageInput.parse(input);
  await recordAuditEvent(
    db,
    readEvent(actor, "audit.viewed", {
      via,
      filter: page.filter,
      ...(position.cursor !== undefined ? { cursor: position.cursor.toString() } : {}),
      ...(position.after !== undefined ? { after: position.after.toString() } : {}),
      limit: position.limit,
      rows: page.events.length,
    }),
  );
  return page;
}

export interface AuditEventDetail {
  event: AuditEventView;
  chain: {
    seq: string;
    prevHash: string | null;
    hash: string | null;
    /** The stored content hashes to the stored hash (recomputed here, not taken from the database). */
    hashMatches: boolean;
    /** The event before it (seq - 1) has the hash this one links to (the genesis hash for seq 1). */
    linksToPrevious: boolean;
    /** The first signed checkpoint at or after this event, which covers it. */
    checkpoint: {
      id: string;
      seq: string;
      createdAt: Date;
      keyId: string;
      /** The chain at the checkpoint's seq still has the hash it signed. */
      matchesChain: boolean;
      /** Checked against the verification keys the caller holds; null when it holds none. */
      signatureValid: boolean | null;
    } | null;
  };
  neighbours: { older: string | null; newer: string | null };
}

function parseSeq(seq: string): bigint {
  // Beyond bigint's maximum no event can exist: not found, like any other seq that is not one.
  if (!isSeqText(seq)) throw new AppError("NOT_FOUND", "No such audit event.", { userMessage: "There is no audit event with that seq." });
  return BigInt(seq);
}

/** One event and its place in the chain, recorded as `audit.event_viewed`. */
export async function getAuditEvent(db: Db, actor: Actor, seqText: string, options: { via: AuditReadVia; checkpointKeys?: readonly CheckpointKey[] | null }): Promise<AuditEventDetail> {
  assertCan(actor, "read");
  const seq = parseSeq(seqText);
  const detail = await readAuditEvent(db, seq, options.checkpointKeys ?? null);
  await recordAuditEvent(db, readEvent(actor, "audit.event_viewed", { via: options.via, seq: seq.toString() }));
  return detail;
}

async function readAuditEvent(db: AuditDb, seq: bigint, keys: readonly CheckpointKey[] | null): Promise<AuditEventDetail> {
  const sql = auditSql(db);
  const [row] = await sql.query<AuditRow & { at_ms: string }>(
    `SELECT ${EVENT_COLUMNS}, (extract(epoch FROM e.at) * 1000)::bigint::text AS at_ms FROM audit_events e ${EVENT_JOINS} WHERE e.seq = $1::bigint`,
    [seq.toString()],
  );
  if (!row) throw new AppError("NOT_FOUND", "No such audit event.", { userMessage: "There is no audit event with that seq." });
  const [around] = await sql.query<{ prev_hash: string | null; older: string | null; newer: string | null }>(
    `SELECT (SELECT hash FROM audit_events WHERE seq = $1::bigint - 1) AS prev_hash,
            (SELECT max(seq)::text FROM audit_events WHERE seq < $1::bigint) AS older,
            (SELECT min(seq)::text FROM audit_events WHERE seq > $1::bigint) AS newer`,
    [seq.toString()],
  );
  const [cp] = await sql.query<CheckpointRow & { id: string; created_at: Date; chain_hash: string | null }>(
    `SELECT c.id::text AS id, ${checkpointRowColumns("c")}, c.created_at,
            (SELECT a.hash FROM audit_events a WHERE a.seq = c.seq) AS chain_hash
       FROM audit_checkpoints c WHERE c.seq >= $1::bigint ORDER BY c.seq, c.id LIMIT 1`,
    [seq.toString()],
  );
  const hashMatches =
    row.hash !== null &&
    row.prev_hash !== null &&
    eventHash({
      seq,
      prevHash: row.prev_hash,
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
    }) === row.hash;
  return {
    event: toEventView(row),
    chain: {
      seq: row.seq,
      prevHash: row.prev_hash,
      hash: row.hash,
      hashMatches,
      linksToPrevious: seq === 1n ? row.prev_hash === GENESIS_HASH : around?.prev_hash != null && around.prev_hash === row.prev_hash,
      checkpoint: cp
        ? {
            id: cp.id,
            seq: cp.seq,
            createdAt: new Date(cp.created_at),
            keyId: cp.key_id,
            matchesChain: cp.chain_hash === cp.hash,
            signatureValid: keys === null ? null : checkpointSignatureValid(checkpointFromRow(cp), keys),
          }
        : null,
    },
    neighbours: { older: around?.older ?? null, newer: around?.newer ?? null },
  };
}

/** How an API read is recorded: with the dashboard's session, or with an API key. */
export function apiReadVia(actor: Actor): AuditReadVia {
  return actor.kind === "api_key" ? "api" : "dashboard";
}
