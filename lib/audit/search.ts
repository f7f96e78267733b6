/**
 * Turns an audit filter into SQL over `audit_events`. Equality filters use the generated
 * `facets` array (one GIN index, so combinations intersect as bitmaps); free text uses the
 * generated, lower-cased `search_text` with a trigram index (both capped per event: the events
 * they cut are found through an index of their own and matched in full); agent and task use their own
 * indexes; everything orders by `seq`, the chain's order, which is also commit order: an event
 * committed later always has a larger seq, so a keyset page (`seq < cursor`) never skips or
 * repeats an event however many are inserted meanwhile.
 */
import { UUID, type AuditFilter } from "./filter";
import type { AuditSql } from "./sql";

/** A filter whose names (agent, user) are resolved to ids; `nothing` when one resolves to nobody. */
export interface ResolvedFilter {
  filter: AuditFilter;
  agentIds: string[] | null;
  userIds: string[] | null;
  /** Why the filter can match nothing (an unknown agent name, say), for the empty-result message. */
  nothing: string | null;
  /**
   * Event types are open-ended (any text a component records, kept as long as the log keeps its
   * events), so a type filter is never refused; a requested type or kind that no event in the log
   * has is said here instead ("no event in the log has type proxy.decisoin (...)"), one sentence
   * each, whether or not the filter's other types match.
   */
  unmatchedTypes: string[];
  /**
   * Outcomes are open-ended too (allow, deny, hold, approve, forwarded, …: whatever a component
   * records), so an outcome filter is never refused; one that no event in the log has is said
   * here, one sentence each ("no event in the log has outcome denied (…)").
   */
  unmatchedOutcomes: string[];
}

/** Every type the log holds, one index probe per distinct type (skip scan on audit_events_type_at_idx). */
async function recordedTypes(sql: AuditSql): Promise<string[]> {
  const rows = await sql.query<{ type: string }>(
    `WITH RECURSIVE t(type) AS (
       (SELECT type FROM audit_events ORDER BY type LIMIT 1)
       UNION ALL
       SELECT (SELECT e.type FROM audit_events e WHERE e.type > t.type ORDER BY e.type LIMIT 1) FROM t WHERE t.type IS NOT NULL
     ) SELECT type FROM t WHERE type IS NOT NULL`,
  );
  return rows.map((r) => r.type);
}

/** Outcomes Bulkhead records most, named when a requested one occurs nowhere. */
export const OUTCOME_EXAMPLES = "allow, deny, hold, approve, reject, cancel, forwarded, failed";

/** The requested outcomes no event in the log has: one GIN probe of `facets` each. */
async function absentOutcomes(sql: AuditSql, outcomes: readonly string[]): Promise<string[]> {
  const rows = await sql.query<{ o: string }>(
    `SELECT o FROM unnest($1::text[]) WITH ORDINALITY AS u(o, n)
      WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.facets @> ARRAY['outcome:' || u.o])
      ORDER BY n`,
    [outcomes],
  );
  return rows.map((r) => r.o);
}

/** The kind a type filter names ("proxy", "proxy.", "proxy.*"), or null for one exact type. */
function filterKind(t: string): string | null {
  return t.endsWith(".*") ? t.slice(0, -2) : t.endsWith(".") ? t.slice(0, -1) : t.includes(".") ? null : t;
}

const kindOf = (type: string) => type.split(".")[0]!;

/** A sentence for each requested type or kind that no recorded type matches, with what the log does hold. */
export function unmatchedTypeSentences(requested: readonly string[], recorded: readonly string[]): string[] {
  const kinds = [...new Set(recorded.map(kindOf))].sort();
  const out: string[] = [];
  for (const t of requested) {
    const kind = filterKind(t);
    if (kind !== null ? kinds.includes(kind) : recorded.includes(t)) continue;
    const sameKind = kind === null ? recorded.filter((r) => kindOf(r) === kindOf(t)) : [];
    const hint =
      recorded.length === 0
        ? "the log holds no events yet"
        : sameKind.length > 0
          ? `recorded ${kindOf(t)} types: ${sameKind.join(", ")}`
          : `recorded kinds: ${kinds.join(", ")}; a whole kind is written like proxy.*`;
    out.push(kind !== null ? `no event in the log is of kind ${kind} (${hint})` : `no event in the log has type ${t} (${hint})`);
  }
  return out;
}

/** Agent names and user emails become ids; a uuid is taken as it is (the row may be deleted). */
export async function resolveFilter(sql: AuditSql, filter: AuditFilter): Promise<ResolvedFilter> {
  let nothing: string | null = null;
  let agentIds: string[] | null = null;
  let userIds: string[] | null = null;
  if (filter.agent !== undefined && filter.agent !== "") {
    const a = filter.agent;
    // An id is taken as it is (the agent may be gone; its events are not); a name must exist.
    const id = UUID.test(a.toLowerCase()) ? a.toLowerCase() : null;
    const rows = await sql.query<{ id: string }>("SELECT id::text AS id FROM agents WHERE name = $1", [a]);
    agentIds = [...new Set([...(id ? [id] : []), ...rows.map((r) => r.id)])];
    if (agentIds.length === 0) nothing = "no agent has that name";
  }
  if (filter.user !== undefined && filter.user !== "") {
    const u = filter.user.toLowerCase();
    if (UUID.test(u)) userIds = [u];
    else {
      const rows = await sql.query<{ id: string }>("SELECT id::text AS id FROM users WHERE email = $1", [u]);
      userIds = rows.map((r) => r.id);
      if (userIds.length === 0) nothing ??= "no user has that email";
    }
  }
  let unmatchedTypes: string[] = [];
  if (filter.type.length > 0) {
    unmatchedTypes = unmatchedTypeSentences(filter.type, await recordedTypes(sql));
    // Types are alternatives: the filter matches nothing only when none of them occurs.
    if (unmatchedTypes.length === filter.type.length) nothing ??= unmatchedTypes.join("; ");
  }
  let unmatchedOutcomes: string[] = [];
  if (filter.outcome.length > 0) {
    const absent = await absentOutcomes(sql, filter.outcome);
    unmatchedOutcomes = absent.map((o) => `no event in the log has outcome ${o} (outcomes are words such as ${OUTCOME_EXAMPLES})`);
    if (absent.length === filter.outcome.length) nothing ??= unmatchedOutcomes.join("; ");
  }
  return { filter, agentIds, userIds, nothing, unmatchedTypes, unmatchedOutcomes };
}

export interface WhereClause {
  /** Conditions on `e` (audit_events), joined with AND; never empty. */
  text: string;
  values: unknown[];
}

/** `_`, `%` and `\` in the search text are literal characters, not LIKE wildcards. */
export function likePattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function typeFacets(types: readonly string[]): string[] {
  // "proxy", "proxy." and "proxy.*" name a whole kind; anything else is one exact type.
  return types.map((t) => {
    const kind = filterKind(t);
    return kind !== null ? `kind:${kind}` : `type:${t}`;
  });
}

/**
 * An event whose `search_text` or `facets` may miss part of it (more than 100 actions, more than
 * 16 KiB of text, a field over its cap: migration 20261205002000_audit_search_complete). Written
 * exactly as the partial index's predicate, so PostgreSQL finds these few events through it; their
 * text and facets are then computed in full. Agent padding can make an event long, never unfound.
 */
const CUT = "audit_event_search_cut(e.search_text)";
const FULL_FACETS = "audit_event_facets_full(e.type, e.outcome, e.effect, e.actor_type, e.actor_id, e.data)";

/** The WHERE conditions for a resolved filter; `extra` adds position conditions (cursor, range). */
export function whereClause(r: ResolvedFilter, extra: { beforeSeq?: bigint; afterSeq?: bigint; throughSeq?: bigint } = {}): WhereClause {
  const f = r.filter;
  const parts: string[] = ["e.seq IS NOT NULL"];
  const values: unknown[] = [];
  const add = (cond: (p: string) => string, value: unknown) => {
    values.push(value);
    parts.push(cond(`$${values.length}`));
  };
  if (r.nothing) parts.push("false");
  if (f.from) add((p) => `e.at >= ${p}::timestamptz`, f.from.toISOString());
  if (f.to) add((p) => `e.at < ${p}::timestamptz`, f.to.toISOString());
  if (r.agentIds) add((p) => `e.agent_id = ANY(${p}::uuid[])`, r.agentIds);
  if (f.task) add((p) => `e.task_id = ${p}::uuid`, f.task);
  if (r.userIds) add((p) => `e.facets && ${p}::text[]`, r.userIds.map((id) => `actor:user:${id}`));
  const facet = (prefix: string, vals: readonly string[]) => {
    if (vals.length > 0) add((p) => `e.facets && ${p}::text[]`, vals.map((v) => `${prefix}:${v}`));
  };
  // Service and environment come from every action, which `facets` holds only for the first 100:
  // a cut event is matched on all of them.
  const actionFacet = (prefix: string, vals: readonly string[]) => {
    if (vals.length > 0) add((p) => `(e.facets && ${p}::text[] OR (${CUT} AND ${FULL_FACETS} && ${p}::text[]))`, vals.map((v) => `${prefix}:${v}`));
  };
  if (f.type.length > 0) add((p) => `e.facets && ${p}::text[]`, typeFacets(f.type));
  facet("outcome", f.outcome);
  facet("effect", f.effect);
  actionFacet("service", f.service);
  actionFacet("environment", f.environment);
  if (f.q) add((p) => `(e.search_text LIKE lower(${p}) OR (${CUT} AND audit_event_search_text_full(e.reason, e.data) LIKE lower(${p})))`, likePattern(f.q));
  if (extra.beforeSeq !== undefined) add((p) => `e.seq < ${p}::bigint`, extra.beforeSeq.toString());
  if (extra.afterSeq !== undefined) add((p) => `e.seq > ${p}::bigint`, extra.afterSeq.toString());
  if (extra.throughSeq !== undefined) add((p) => `e.seq <= ${p}::bigint`, extra.throughSeq.toString());
  return { text: parts.join(" AND "), values };
}

const STORED_COLUMNS = "e.id, e.seq, e.at, e.recorded_at, e.type, e.actor_type, e.actor_id, e.agent_id, e.task_id, e.outcome, e.effect, e.reason, e.rule_id, e.data, e.prev_hash, e.hash";

/**
 * Columns of one event with the names people read instead of ids: the agent's name, the task's
 * purpose, and the acting user's email or API key's name. Every id is text, every count a string.
 */
export const EVENT_COLUMNS = `e.id::text AS id, e.seq::text AS seq, e.at, e.recorded_at, e.type, e.actor_type, e.actor_id,
  e.agent_id::text AS agent_id, e.task_id::text AS task_id, e.outcome, e.effect, e.reason, e.rule_id,
  e.data::text AS data_text, e.prev_hash, e.hash,
  ag.name AS agent_name, tk.purpose AS task_purpose,
  CASE e.actor_type WHEN 'user' THEN ua.email WHEN 'api_key' THEN ak.name WHEN 'agent' THEN aa.name ELSE e.actor_id END AS actor_name`;

// actor_id is free text (a uuid for users, keys and agents, a label for the system): cast only a uuid.
const ACTOR_UUID = `CASE WHEN e.actor_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN e.actor_id::uuid END`;

export const EVENT_JOINS = `LEFT JOIN agents ag ON ag.id = e.agent_id
  LEFT JOIN tasks tk ON tk.id = e.task_id
  LEFT JOIN users ua ON e.actor_type = 'user' AND ua.id = ${ACTOR_UUID}
  LEFT JOIN api_keys ak ON e.actor_type = 'api_key' AND ak.id = ${ACTOR_UUID}
  LEFT JOIN agents aa ON e.actor_type = 'agent' AND aa.id = ${ACTOR_UUID}`;

/** One event as read from the database (text columns, `at` as a Date). */
export interface AuditRow {
  id: string;
  seq: string;
  at: Date;
  /** When PostgreSQL stored it (its own clock; no runtime role can set it); null before 20261207003000. */
  recorded_at: Date | null;
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
  prev_hash: string | null;
  hash: string | null;
  agent_name: string | null;
  task_purpose: string | null;
  actor_name: string | null;
}

/**
 * The events matching `where`, newest first (or oldest first), at most `limit` of them, with
 * names. The page is chosen on audit_events alone; the joins run for its rows only.
 */
export function pageQuery(where: WhereClause, order: "desc" | "asc", limit: number | null): { text: string; values: unknown[] } {
  const dir = order === "desc" ? "DESC" : "ASC";
  const lim = limit === null ? "" : ` LIMIT ${Math.trunc(limit)}`;
  return {
    text: `SELECT ${EVENT_COLUMNS} FROM (SELECT ${STORED_COLUMNS} FROM audit_events e WHERE ${where.text} ORDER BY e.seq ${dir}${lim}) e ${EVENT_JOINS} ORDER BY e.seq ${dir}`,
    values: where.values,
  };
}
