/**
 * Turns log records into the rows of one shipped batch, folding each request's completion into
 * its decision where both are in the batch: one row per forwarded request, with the upstream's
 * status and the duration in `data.completion`. A completion whose decision was shipped earlier
 * becomes a row of its own (`proxy.completed`), as before.
 *
 * To give a completion the chance to arrive, a batch stops before a forwarded decision whose
 * completion is not yet logged, until that decision is `foldWindowMs` old. Shipping in log order
 * means everything behind it waits too; the decision itself is durable in the log all along.
 */
import type { AuditRow } from "./event";
import type { WalRecord } from "./wal/frame";

/** Decision types whose `allow` is followed by a completion (handler.ts records it after the response). */
const FORWARDED = new Set(["proxy.decision", "proxy.approved"]);
export const COMPLETED = "proxy.completed";
/** handler.ts names a completion `<decision event id>:completed`. */
const SUFFIX = ":completed";

export interface AssembledBatch {
  rows: AuditRow[];
  /** The LSN the cursor moves to: every record up to it is in `rows` (as a row or folded in). */
  last: number;
  folded: number;
  /** Nothing to ship yet: wait this long for a completion (the first record is a young decision). */
  waitMs: number;
}

function awaitsCompletion(row: AuditRow): boolean {
  return row.outcome === "allow" && FORWARDED.has(row.type);
}

export function decisionOf(row: AuditRow): string | null {
  return row.type === COMPLETED && row.eventId.endsWith(SUFFIX) ? row.eventId.slice(0, -SUFFIX.length) : null;
}

export function assembleBatch(records: WalRecord[], options: { foldWindowMs: number; now: number; wait: boolean }): AssembledBatch {
  const completions = new Map<string, number>();
  records.forEach((r, i) => {
    const of = decisionOf(r.row);
    if (of !== null) completions.set(of, i);
  });
  // Where the batch ends: before the first forwarded decision still waiting for its completion.
  let end = records.length;
  let waitMs = 0;
  if (options.wait) {
    for (let i = 0; i < records.length; i++) {
      const row = records[i]!.row;
      if (!awaitsCompletion(row) || completions.has(row.eventId)) continue;
      const age = options.now - Date.parse(row.at);
      if (age >= options.foldWindowMs || !(age >= 0)) continue;
      end = i;
      waitMs = Math.max(1, options.foldWindowMs - age);
      break;
    }
  }
  const rows: AuditRow[] = [];
  const foldedAway = new Set<number>();
  let folded = 0;
  for (let i = 0; i < end; i++) {
    if (foldedAway.has(i)) continue;
    const row = records[i]!.row;
    const c = awaitsCompletion(row) ? completions.get(row.eventId) : undefined;
    if (c !== undefined && c < end) {
      const completion = foldCompletion(row, records[c]!.row);
      if (completion) {
        rows.push(completion);
        foldedAway.add(c);
        folded++;
        continue;
      }
    }
    rows.push(row);
  }
  return { rows, last: end > 0 ? records[end - 1]!.lsn : records.length ? records[0]!.lsn - 1 : 0, folded, waitMs: end === 0 ? waitMs : 0 };
}

/** The decision row with `completion: { outcome, upstreamStatus, durationMs, ... , at }` added. */
export function foldCompletion(decision: AuditRow, completion: AuditRow): AuditRow | null {
  // data is a JSON object with at least eventId, so it ends in "}" and is not empty.
  if (!decision.data.endsWith("}")) return null;
  const added = completionFacts(decision, completion);
  if (added === null) return null;
  return { ...decision, data: `${decision.data.slice(0, -1)},"completion":${added}}` };
}

/**
 * `{ outcome, ...facts, at }` as JSON text: the completion's data without its two ids. The
 * handler writes those ids first (event.ts keeps a given eventId where it was), so the text after
 * them is the facts' own text, taken as it is: no parse and no new serialisation per request.
 * Any other shape (a sanitised event, an older writer) is parsed. Both give the same object to
 * anything that reads JSON as PostgreSQL's jsonb and JSON.parse do, where a key given twice keeps
 * its last value: a fact named `outcome` wins over the first key, `at` is the completion's time.
 */
export function completionFacts(decision: AuditRow, completion: AuditRow): string | null {
  const data = completion.data;
  const head = `{"eventId":${JSON.stringify(completion.eventId)},"decisionEventId":${JSON.stringify(decision.eventId)}`;
  const outcome = `{"outcome":${JSON.stringify(completion.outcome)}`;
  const at = `"at":${JSON.stringify(completion.at)}}`;
  if (data.startsWith(head) && data.endsWith("}")) {
    if (data.length === head.length + 1) return `${outcome},${at}`;
    if (data.charCodeAt(head.length) === 0x2c) return `${outcome}${data.slice(head.length, -1)},${at}`;
  }
  let facts: Record<string, unknown>;
  try {
    facts = JSON.parse(data) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof facts !== "object" || facts === null || Array.isArray(facts)) return null;
  delete facts.eventId;
  delete facts.decisionEventId;
  return JSON.stringify({ outcome: completion.outcome, ...facts, at: completion.at });
}
