/**
 * What a person (or an API client) sees of one audit event: the stored fields, the names behind
 * the ids, the request and its semantic actions pulled out of `data`, and the event's links in
 * the hash chain. Everything in `data` may have come from an agent: it is returned as data, and
 * the page renders it as text only.
 */
import type { AuditRow } from "./search";

export interface AuditActionView {
  service: string;
  environment: string;
  resource: string;
  operation: string;
  effect: string;
}

export interface AuditEventView {
  seq: string;
  id: string;
  /** When the writer says it happened. */
  at: Date;
  /** When the database stored it, by its own clock (null for events stored before it kept this). */
  recordedAt: Date | null;
  type: string;
  outcome: string | null;
  effect: string | null;
  reason: string | null;
  ruleId: string | null;
  actor: { type: string; id: string | null; name: string | null };
  agent: { id: string; name: string | null } | null;
  task: { id: string; purpose: string | null } | null;
  /** From a proxy event's data: the request as the proxy parsed it. */
  request: { method: string | null; url: string | null; service: string | null; code: string | null } | null;
  actions: AuditActionView[];
  /** Actions the request carried that the stored event does not hold (cut when it was recorded); 0 when it holds them all. */
  actionsLeftOut: number;
  data: unknown;
  chain: { prevHash: string | null; hash: string | null };
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : null;
}

export function parseData(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text; // jsonb text always parses; keep whatever it is rather than lose it
  }
}

/**
 * The semantic actions recorded in an event's data (proxy decisions), as plain strings, in request
 * order: every one (the agent chooses how many actions a request has; a page that kept only some
 * let padding push the one that mattered out of view).
 */
export function actionsOf(data: unknown): AuditActionView[] {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return [];
  const actions = (data as { actions?: unknown }).actions;
  if (!Array.isArray(actions)) return [];
  return actions
    .filter((a): a is Record<string, unknown> => typeof a === "object" && a !== null && !Array.isArray(a))
    .map((a) => ({ service: str(a.service) ?? "", environment: str(a.environment) ?? "", resource: str(a.resource) ?? "", operation: str(a.operation) ?? "", effect: str(a.effect) ?? "" }));
}

/**
 * How many of the request's actions the stored event does not hold: what the worker noted when it
 * had to cut them (`data.sanitised.actionsLeftOut`), or the sanitiser's "…[N more items]" at the
 * end of the list (events recorded before that note existed, and the app's own events).
 */
export function actionsLeftOutOf(data: unknown): number {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return 0;
  const d = data as { actions?: unknown; sanitised?: { actionsLeftOut?: unknown } };
  const noted = d.sanitised?.actionsLeftOut;
  if (typeof noted === "number" && Number.isSafeInteger(noted) && noted > 0) return noted;
  const last = Array.isArray(d.actions) ? d.actions[d.actions.length - 1] : undefined;
  const more = typeof last === "string" ? /^…\[(\d{1,9}) more items\]$/.exec(last) : null;
  return more ? Number(more[1]) : 0;
}

export function requestOf(data: unknown): AuditEventView["request"] {
  if (typeof data !== "object" || data === null || Array.isArray(data)) return null;
  const d = data as Record<string, unknown>;
  if (d.url === undefined && d.method === undefined) return null;
  return { method: str(d.method), url: str(d.url), service: str(d.service), code: str(d.code) };
}

export function toEventView(row: AuditRow): AuditEventView {
  const data = parseData(row.data_text);
  return {
    seq: row.seq,
    id: row.id,
    at: new Date(row.at),
    recordedAt: row.recorded_at === null ? null : new Date(row.recorded_at),
    type: row.type,
    outcome: row.outcome,
    effect: row.effect,
    reason: row.reason,
    ruleId: row.rule_id,
    actor: { type: row.actor_type, id: row.actor_id, name: row.actor_name },
    agent: row.agent_id ? { id: row.agent_id, name: row.agent_name } : null,
    task: row.task_id ? { id: row.task_id, purpose: row.task_purpose } : null,
    request: requestOf(data),
    actions: actionsOf(data),
    actionsLeftOut: actionsLeftOutOf(data),
    data,
    chain: { prevHash: row.prev_hash, hash: row.hash },
  };
}

/**
 * Characters that change how text reads without showing themselves: C0 and C1 controls (ESC
 * starts a terminal sequence, CR returns to the line's start), the bidirectional controls (U+202E
 * turns "gpj.exe" around), zero-width and other invisible characters (soft hyphen, joiners, word
 * joiner, fillers, variation selectors, interlinear annotation) and the tag characters
 * (U+E0000-U+E007F, which can spell a hidden ASCII message). Line breaks and tabs are in the set
 * too; `visible` keeps them where asked.
 */
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}]/gu;

function escapeOf(c: string, utf16: boolean): string {
  const code = c.codePointAt(0)!;
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, "0")}`;
  if (!utf16) return `\\u{${code.toString(16)}}`;
  return [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16)}`).join("");
}

/**
 * Agent-controlled text made visible: every character of `HIDDEN` is shown as a \u escape;
 * everything else is left to React (or the caller), which escapes HTML. With `keepLines`, line
 * feeds and tabs stay as they are (a pretty-printed body), while CR, which can hide what precedes
 * it on a terminal, is still escaped. With `utf16`, a character beyond U+FFFF is written as its
 * two UTF-16 escapes, as JSON spells it, so the result of escaping JSON text is still JSON that
 * decodes to the same value.
 */
export function visible(text: string, options: { keepLines?: boolean; utf16?: boolean } = {}): string {
  return text.replace(HIDDEN, (c) => (options.keepLines && (c === "\n" || c === "\t") ? c : escapeOf(c, options.utf16 === true)));
}
