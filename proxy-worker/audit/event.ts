/**
 * A worker audit event as it is logged, shipped and inserted: flat, with its identity and its
 * time, and storable whatever the agent put in it. `prepareEvent` never refuses an event: what
 * the database would refuse is sanitised (and the changes listed in `data.sanitised`), and if
 * even that fails a minimal event says so. An agent can never make its own refusal disappear by
 * putting a NUL, a lone surrogate or a huge value where the audit will copy it.
 */
import { randomUUID } from "node:crypto";
import type { AuditActorRef, AuditEventInput } from "@/lib/audit/record";
import {
  DEFAULT_JSON_LIMITS,
  isStorableText,
  sanitiseJson,
  sanitiseText,
  summariseNotes,
  TIGHT_JSON_LIMITS,
  isStorableJson,
  type SanitiseNote,
} from "@/lib/audit/sanitise";
import { MAX_RECORDED_ACTIONS, essentialAction } from "./compact";

/** What the proxy records: the fields of AuditEventInput, with the actor given flat. */
export type WorkerAuditEvent = Omit<AuditEventInput, "actor" | "data"> & {
  actorType: AuditActorRef["actorType"];
  actorId?: string | null;
  /** Stored as jsonb; `eventId` is added (or kept, when the caller chose one). */
  data?: Record<string, unknown>;
};

/** One event as logged, shipped and inserted. */
export interface AuditRow {
  eventId: string;
  /** ISO-8601 with milliseconds: the time of the decision, kept through the log. */
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
  /** The data object as JSON text, including eventId (and `sanitised` when something changed). */
  data: string;
}

/**
 * The worker records what agents did and what Bulkhead itself did. PostgreSQL refuses any other
 * actor from its role (audit_events_actor_guard: people and API keys act through the dashboard),
 * and a refusal that is not about the data would stop the shipper at that event; so an event
 * naming another actor is recorded as the system's, the given actor kept in `sanitised`.
 */
const ACTOR_TYPES = new Set(["agent", "system"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EVENT_ID = /^[A-Za-z0-9_.:-]{8,128}$/;
export const MAX_EVENT_DATA_BYTES = 256 * 1024;
const MAX_REASON_CHARS = 4_000;
const MAX_FIELD_CHARS = 256;

/** A field that is not a string becomes its JSON text (noted); NUL etc. are replaced (noted). */
function text(value: unknown, name: string, max: number, notes: SanitiseNote[]): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string" && value.length <= max && isStorableText(value)) return value;
  if (typeof value !== "string") {
    notes.push({ path: name, what: "not_json" });
    return sanitiseText(safeString(value), max, name, notes);
  }
  return sanitiseText(value, max, name, notes);
}

function safeString(value: unknown): string {
  try {
    return typeof value === "bigint" ? value.toString() : (JSON.stringify(value) ?? String(value));
  } catch {
    return String(value);
  }
}

function uuid(value: unknown, name: string, notes: SanitiseNote[], dropped: Record<string, string>): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "string" && UUID.test(value)) return value.toLowerCase();
  notes.push({ path: name, what: "dropped" });
  dropped[name] = sanitiseText(safeString(value), 100, name, []);
  return null;
}

/**
 * JSON.stringify({ ...data, eventId }) without copying data: a plain object that already carries
 * this eventId is its own text, and one without it gets the key appended (where the spread would
 * have put it). Anything else (another prototype, an eventId to replace) takes the copy.
 */
function withEventId(data: Record<string, unknown>, eventId: string): string {
  if (Object.getPrototypeOf(data) === Object.prototype && !Object.hasOwn(data, "toJSON")) {
    if (data.eventId === eventId) return JSON.stringify(data);
    if (!Object.hasOwn(data, "eventId")) {
      const json = JSON.stringify(data);
      // Only an object's text ends in "}" ("{}" has no key to follow); a toJSON of its own may
      // have made it something else.
      if (json.length > 2 && json.charCodeAt(0) === 0x7b && json.charCodeAt(json.length - 1) === 0x7d) return `${json.slice(0, -1)},"eventId":${JSON.stringify(eventId)}}`;
      if (json === "{}") return `{"eventId":${JSON.stringify(eventId)}}`;
    }
  }
  return JSON.stringify({ ...data, eventId });
}

/**
 * The instant as ISO-8601 text (`toISOString`). Events come many to a millisecond under load, so
 * the last one formatted is kept; and many milliseconds to a second, so a new millisecond only
 * puts its three digits after the second's text.
 */
let lastIsoMs = Number.NaN;
let lastIso = "";
let secondMs = Number.NaN;
let secondText = "";
export function isoTime(at: Date): string {
  const ms = at.getTime();
  if (ms !== lastIsoMs) {
    const milli = ((ms % 1000) + 1000) % 1000;
    if (ms - milli !== secondMs) {
      secondMs = ms - milli;
      // "…T12:34:56." of the second's own text (years beyond 9999 are longer): only the milliseconds differ.
      secondText = new Date(secondMs).toISOString().slice(0, -4);
    }
    lastIso = `${secondText}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
    lastIsoMs = ms;
  }
  return lastIso;
}

/** data as JSON text: the fast path when it is already storable, else sanitised (twice if need be). */
function dataJson(data: Record<string, unknown>, eventId: string, notes: SanitiseNote[], dropped: Record<string, string>): string {
  let json: string | null = null;
  try {
    json = withEventId(data, eventId);
  } catch {
    json = null; // BigInt or a cycle: the walk below handles both
  }
  // The usual case costs one regex over the text: nothing to change, and small enough (a UTF-16
  // unit is at most three UTF-8 bytes, so the byte count is needed only near the limit).
  if (json !== null && notes.length === 0 && isStorableJson(json) && (json.length * 3 <= MAX_EVENT_DATA_BYTES || Buffer.byteLength(json) <= MAX_EVENT_DATA_BYTES)) return json;
  // The semantic actions are what a search for the event finds it by: their number is never cut
  // to a generic array limit. When they do not fit whole, each keeps its essentials (service,
  // environment, resource, operation, effect) and loses its details; only beyond what an event
  // can hold (a refusal: the pipeline refuses to forward a request with more, see
  // unrecordableActions) are actions left out, and `sanitised.actionsLeftOut` says how many.
  const actions = Array.isArray(data.actions) ? (data.actions as unknown[]) : null;
  const rest = actions ? Object.fromEntries(Object.entries(data).filter(([k]) => k !== "actions")) : data;
  const actionLimits = (limits: typeof DEFAULT_JSON_LIMITS, count: number) => ({ ...limits, maxArrayItems: Math.max(limits.maxArrayItems, count), maxNodes: limits.maxNodes + 16 * count });
  const assemble = (limits: typeof DEFAULT_JSON_LIMITS, list: unknown[] | null, extraNotes: SanitiseNote[] = [], more: Record<string, unknown> = {}, listLimits = limits) => {
    const local: SanitiseNote[] = [];
    const clean = sanitiseJson(rest, limits, "data", local) as Record<string, unknown>;
    if (list) clean.actions = sanitiseJson(list, actionLimits(listLimits, list.length), "data.actions", local);
    const all = [...notes, ...extraNotes, ...local];
    const extra: Record<string, unknown> = { eventId };
    if (all.length > 0) extra.sanitised = { ...summariseNotes(all), ...more, ...(Object.keys(dropped).length ? { dropped } : {}) };
    return JSON.stringify({ ...clean, ...extra });
  };
  const capped = actions && actions.length > MAX_RECORDED_ACTIONS ? actions.slice(0, MAX_RECORDED_ACTIONS) : actions;
  const leftOut = actions && capped ? actions.length - capped.length : 0;
  const cutNote: SanitiseNote[] = leftOut > 0 ? [{ path: "data.actions", what: "truncated" }] : [];
  const cutMore = leftOut > 0 ? { actionsLeftOut: leftOut, actionCount: actions!.length } : {};
  let out = assemble(DEFAULT_JSON_LIMITS, capped, cutNote, cutMore);
  if (Buffer.byteLength(out) > MAX_EVENT_DATA_BYTES) {
    const essentials = capped?.map(essentialAction) ?? null;
    const slim: SanitiseNote[] = essentials ? [{ path: "data.actions[*].detail", what: "dropped" }] : [];
    // The essentials keep their strings whole: the pipeline forwards only actions whose essentials fit.
    out = assemble({ ...TIGHT_JSON_LIMITS, maxStringChars: 1024 }, essentials, [...cutNote, ...slim], cutMore, DEFAULT_JSON_LIMITS);
  }
  if (Buffer.byteLength(out) > MAX_EVENT_DATA_BYTES) {
    // Still too large (very many keys, or actions beyond what the pipeline forwards): keep the
    // small top-level facts and as many actions' essentials as fit, and say what was cut.
    const facts: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rest).slice(0, 50)) {
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") facts[sanitiseText(k, 64, "", [])] = typeof v === "string" ? sanitiseText(v, 2048, "", []) : v;
    }
    const kept: unknown[] = [];
    let room = MAX_EVENT_DATA_BYTES - Buffer.byteLength(JSON.stringify(facts)) - 4096;
    for (const a of actions ?? []) {
      const one = sanitiseJson(essentialAction(a), { ...TIGHT_JSON_LIMITS, maxStringChars: 1024 }, "", []);
      room -= Buffer.byteLength(JSON.stringify(one)) + 1;
      if (room < 0) break;
      kept.push(one);
    }
    const left = (actions?.length ?? 0) - kept.length;
    const summary = { ...summariseNotes([...notes, { path: "data", what: "truncated" }]), originalBytes: json === null ? null : Buffer.byteLength(json), ...(left > 0 ? { actionsLeftOut: left, actionCount: actions!.length } : {}) };
    out = JSON.stringify({ ...facts, ...(actions ? { actions: kept } : {}), eventId, sanitised: summary });
  }
  return out;
}

/**
 * Turns an event into a row the database will take. Never throws: anything unexpected yields a
 * minimal event (type, actor, outcome, and what went wrong), so the decision is still recorded.
 */
export function prepareEvent(event: WorkerAuditEvent, at: Date): AuditRow {
  const when = Number.isNaN(at.getTime()) ? new Date() : at;
  try {
    return fullRow(event, when);
  } catch (error) {
    return minimalRow(event, when, error);
  }
}

function fullRow(event: WorkerAuditEvent, at: Date): AuditRow {
  const notes: SanitiseNote[] = [];
  const dropped: Record<string, string> = {};
  let type = text(event.type, "type", 200, notes) ?? "";
  if (type === "") {
    notes.push({ path: "type", what: "dropped" });
    type = "audit.untyped";
  }
  let actorType = typeof event.actorType === "string" ? event.actorType : "";
  if (!ACTOR_TYPES.has(actorType)) {
    notes.push({ path: "actorType", what: "dropped" });
    dropped.actorType = sanitiseText(safeString(event.actorType), 100, "", []);
    actorType = "system";
  }
  const raw = event.data ?? {};
  const data: Record<string, unknown> = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? raw : (notes.push({ path: "data", what: "not_json" }), { value: raw });
  const given = data.eventId;
  let eventId: string;
  if (given === undefined) eventId = randomUUID();
  else if (typeof given === "string" && EVENT_ID.test(given)) eventId = given;
  else {
    notes.push({ path: "data.eventId", what: "dropped" });
    dropped.eventId = sanitiseText(safeString(given), 140, "", []);
    eventId = randomUUID();
  }
  // Every field is checked (and its notes taken) before data, whose text carries the notes; one
  // object literal at the end, not a copy of a partial row.
  const actorId = text(event.actorId, "actorId", MAX_FIELD_CHARS, notes);
  const agentId = uuid(event.agentId, "agentId", notes, dropped);
  const taskId = uuid(event.taskId, "taskId", notes, dropped);
  const outcome = text(event.outcome, "outcome", MAX_FIELD_CHARS, notes);
  const effect = text(event.effect, "effect", MAX_FIELD_CHARS, notes);
  const reason = text(event.reason, "reason", MAX_REASON_CHARS, notes);
  const ruleId = text(event.ruleId, "ruleId", MAX_FIELD_CHARS, notes);
  const json = dataJson(data, eventId, notes, dropped);
  return { eventId, at: isoTime(at), type, actorType, actorId, agentId, taskId, outcome, effect, reason, ruleId, data: json };
}

/** The last resort: the facts that cannot fail, and why the rest is missing. */
export function minimalRow(event: Partial<WorkerAuditEvent>, at: Date, error: unknown): AuditRow {
  // Even reading the event may throw (a getter): every field on its own.
  const get = (read: () => unknown): unknown => {
    try {
      return read();
    } catch {
      return undefined;
    }
  };
  const plain = (v: unknown, max: number) => (typeof v === "string" ? sanitiseText(v, max, "", []) : null);
  const id = (v: unknown) => (typeof v === "string" && UUID.test(v) ? v.toLowerCase() : null);
  const given = get(() => event.data?.eventId);
  const eventId = typeof given === "string" && EVENT_ID.test(given) ? given : randomUUID();
  const actorType = get(() => event.actorType);
  const cause = sanitiseText(error instanceof Error ? error.message : typeof error === "string" ? error : safeString(error), 500, "", []);
  return {
    eventId,
    at: at.toISOString(),
    type: plain(get(() => event.type), 200) || "audit.unrecordable",
    actorType: typeof actorType === "string" && ACTOR_TYPES.has(actorType) ? actorType : "system",
    actorId: plain(get(() => event.actorId), MAX_FIELD_CHARS),
    agentId: id(get(() => event.agentId)),
    taskId: id(get(() => event.taskId)),
    outcome: plain(get(() => event.outcome), MAX_FIELD_CHARS),
    effect: plain(get(() => event.effect), MAX_FIELD_CHARS),
    // The original reason and data may be what could not be stored: say why they are missing.
    reason: `recorded in minimal form: ${cause}`,
    ruleId: plain(get(() => event.ruleId), MAX_FIELD_CHARS),
    data: JSON.stringify({ eventId, minimal: true, cause }),
  };
}
