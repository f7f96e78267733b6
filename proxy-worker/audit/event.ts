import { randomUUID } from "node:crypto";
import type { AuditActorRef, AuditEventInput } from "@/lib/audit/record";
import { AuditEventError } from "./errors";

/** What the proxy records: the fields of AuditEventInput, with the actor given flat. */
export type WorkerAuditEvent = Omit<AuditEventInput, "actor" | "data"> & {
  actorType: AuditActorRef["actorType"];
  actorId?: string | null;
  /** Stored as jsonb; `eventId` is added (or kept, when the caller chose one). */
  data?: Record<string, unknown>;
};

/** One event as queued, spooled and inserted: validated, flat, with its identity and its time. */
export interface AuditRow {
  eventId: string;
  /** ISO-8601 with milliseconds: the time of the decision, kept through spooling and replay. */
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
  /** The data object as JSON text, including eventId. */
  data: string;
}

const ACTOR_TYPES = new Set(["user", "agent", "api_key", "system"]);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EVENT_ID = /^[A-Za-z0-9_.:-]{8,128}$/;
// Text PostgreSQL refuses: NUL, and UTF-16 halves without their partner.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// The same in JSON text: an unescaped \u0000 or \udXXX escape (JSON.stringify writes lone surrogates so).
const UNSTORABLE_JSON = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;
export const MAX_EVENT_DATA_BYTES = 256 * 1024;

function text(value: unknown, name: string, optional: boolean): string | null {
  if (value === undefined || value === null) {
    if (optional) return null;
    throw new AuditEventError(`audit event ${name} is required`);
  }
  if (typeof value !== "string") throw new AuditEventError(`audit event ${name} must be a string`);
  if (UNSTORABLE.test(value)) throw new AuditEventError(`audit event ${name} contains NUL or a lone surrogate`);
  return value;
}

function uuid(value: unknown, name: string): string | null {
  const v = text(value, name, true);
  if (v !== null && !UUID.test(v)) throw new AuditEventError(`audit event ${name} must be a UUID`);
  return v === null ? null : v.toLowerCase();
}

/** Validates an event so that the database can only refuse it for being unavailable. */
export function prepareEvent(event: WorkerAuditEvent, at: Date): AuditRow {
  const type = text(event.type, "type", false)!;
  if (type === "" || type.length > 200) throw new AuditEventError("audit event type must be 1-200 characters");
  const actorType = text(event.actorType, "actorType", false)!;
  if (!ACTOR_TYPES.has(actorType)) throw new AuditEventError(`audit event actorType must be one of ${[...ACTOR_TYPES].join(", ")}`);
  const data = event.data ?? {};
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new AuditEventError("audit event data must be an object");
  const given = (data as { eventId?: unknown }).eventId;
  if (given !== undefined && (typeof given !== "string" || !EVENT_ID.test(given))) {
    throw new AuditEventError("audit event data.eventId must be 8-128 characters of [A-Za-z0-9_.:-]");
  }
  const eventId = given ?? randomUUID();
  let json: string;
  try {
    json = JSON.stringify({ ...data, eventId });
  } catch (error) {
    throw new AuditEventError("audit event data is not serialisable as JSON", error);
  }
  if (UNSTORABLE_JSON.test(json)) throw new AuditEventError("audit event data contains NUL or a lone surrogate");
  if (Buffer.byteLength(json) > MAX_EVENT_DATA_BYTES) throw new AuditEventError(`audit event data exceeds ${MAX_EVENT_DATA_BYTES} bytes`);
  if (Number.isNaN(at.getTime())) throw new AuditEventError("audit event time is invalid");
  return {
    eventId,
    at: at.toISOString(),
    type,
    actorType,
    actorId: text(event.actorId, "actorId", true),
    agentId: uuid(event.agentId, "agentId"),
    taskId: uuid(event.taskId, "taskId"),
    outcome: text(event.outcome, "outcome", true),
    effect: text(event.effect, "effect", true),
    reason: text(event.reason, "reason", true),
    ruleId: text(event.ruleId, "ruleId", true),
    data: json,
  };
}

/**
 * Spool line, version 1: one JSON object per line, data embedded as an object (it is JSON
 * already), e.g. {"v":1,"eventId":"…","at":"2026-…Z","type":"proxy.decision",…,"data":{…}}
 */
export function spoolLine(row: AuditRow): string {
  const head = JSON.stringify({
    v: 1,
    eventId: row.eventId,
    at: row.at,
    type: row.type,
    actorType: row.actorType,
    actorId: row.actorId,
    agentId: row.agentId,
    taskId: row.taskId,
    outcome: row.outcome,
    effect: row.effect,
    reason: row.reason,
    ruleId: row.ruleId,
  });
  return `${head.slice(0, -1)},"data":${row.data}}\n`;
}

/** Parses one spool line; null when it is not a complete version-1 record. */
export function parseSpoolLine(line: string): AuditRow | null {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof v !== "object" || v === null || v.v !== 1 || typeof v.eventId !== "string" || typeof v.at !== "string" || typeof v.type !== "string") return null;
  if (typeof v.actorType !== "string" || typeof v.data !== "object" || v.data === null) return null;
  const s = (x: unknown) => (typeof x === "string" ? x : null);
  return {
    eventId: v.eventId,
    at: v.at,
    type: v.type,
    actorType: v.actorType,
    actorId: s(v.actorId),
    agentId: s(v.agentId),
    taskId: s(v.taskId),
    outcome: s(v.outcome),
    effect: s(v.effect),
    reason: s(v.reason),
    ruleId: s(v.ruleId),
    data: JSON.stringify(v.data),
  };
}
