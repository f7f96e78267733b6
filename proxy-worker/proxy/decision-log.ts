import { withoutRedaction, type Logger } from "@/lib/log";
import type { ProxyRefusal } from "./errors";

/** The message of the one log line per request (after stripe/smokescreen's CANONICAL-PROXY-DECISION). */
export const DECISION_LOG_MESSAGE = "CANONICAL-PROXY-DECISION";

const MAX_STRING = 512;
const MAX_ITEMS = 20;
/** Printable ASCII without a backslash: what logSafe leaves as it is. */
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;

/**
 * An agent-controlled string made safe for a log line: printable ASCII only, with a backslash
 * written `\\`, bytes below 0x20 and DEL as `\xHH`, other characters as `\uHHHH` / `\u{HHHHH}`,
 * and cut at `max` characters with the number of characters left out. No line terminator
 * (including U+2028/U+2029), terminal escape or bidirectional control survives, whatever reads
 * the line (a JSON parser, a pretty-printer, a terminal, grep).
 */
export function logSafe(text: string, max = MAX_STRING): string {
  // The usual value (printable ASCII, no backslash, short) is already safe: one test, no copy.
  if (text.length <= max && PLAIN.test(text)) return text;
  let out = "";
  let used = 0;
  for (const char of text) {
    if (out.length >= max) break;
    const code = char.codePointAt(0) as number;
    if (char === "\\") out += "\\\\";
    else if (code >= 0x20 && code <= 0x7e) out += char;
    else if (code < 0x100) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, "0")}`;
    else out += `\\u{${code.toString(16)}}`;
    used += char.length;
  }
  return used < text.length ? `${out}...(+${text.length - used} more)` : out;
}

function safeValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return logSafe(value);
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return value;
  if (depth >= 2) return logSafe(JSON.stringify(value) ?? "");
  if (Array.isArray(value)) return value.slice(0, MAX_ITEMS).map((v) => safeValue(v, depth + 1));
  if (typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>).slice(0, MAX_ITEMS)) out[logSafe(k, 64)] = safeValue(v, depth + 1);
    return out;
  }
  return logSafe(String(value));
}

/**
 * Everything an operator needs to answer "why was this blocked?" (or "what went through?"), in
 * one line per request: who (listener, client, task, agent), what (method, url, service,
 * operations, resources, effect), the decision with its code, reason, rule and mode, where it
 * went (destination address, upstream status) and how long it took, and the audit event id.
 */
export interface DecisionLine {
  eventId?: string | null;
  listener?: string;
  client?: string;
  method?: string;
  url?: string;
  taskId?: string | null;
  agentId?: string | null;
  service?: string | null;
  operations?: string[];
  resources?: string[];
  effect?: string | null;
  /** allow | approved | deny | error */
  decision: string;
  code?: string;
  reason?: string;
  ruleId?: string | null;
  mode?: string;
  wouldBe?: string | null;
  /** The status Bulkhead answered the client with (0: the connection was closed without one). */
  status: number;
  destination?: string | null;
  upstreamStatus?: number | null;
  durationMs?: number;
  auditEventId?: string | null;
  aggregated?: boolean;
}

export function logDecision(log: Logger, line: DecisionLine): void {
  // Escaping costs more than the line itself: skip it when nobody will read the line.
  if (!log.isLevelEnabled("info")) return;
  const fields: Record<string, unknown> = {};
  // The redaction's paths (`*.password`, `*.token`, ...) can only match inside an object-valued
  // field. The line's fields are strings, numbers and arrays of strings, so it skips the walk; if
  // a refusal's context ever carries an object here anyway, the line is redacted as any other.
  let nested = false;
  for (const [key, value] of Object.entries(line)) {
    if (value === undefined) continue;
    const safe = safeValue(value, 0);
    if (safe !== null && typeof safe === "object" && !Array.isArray(safe)) nested = true;
    fields[key] = safe;
  }
  (nested ? log : withoutRedaction(log)).info(fields, DECISION_LOG_MESSAGE);
}

/** The decision log line for a refusal, from what the refusal carries. */
export function refusalLine(refusal: ProxyRefusal, extra: Partial<DecisionLine> = {}): DecisionLine {
  const c = refusal.context;
  return {
    eventId: (c.eventId as string | undefined) ?? refusal.auditEventId,
    listener: c.listener as string | undefined,
    client: c.client as string | undefined,
    method: c.method as string | undefined,
    url: c.url as string | undefined,
    taskId: (c.taskId as string | undefined) ?? null,
    agentId: (c.agentId as string | undefined) ?? null,
    service: (c.service as string | undefined) ?? null,
    operations: c.operations as string[] | undefined,
    resources: c.resources as string[] | undefined,
    effect: (c.effect as string | undefined) ?? null,
    // Bulkhead refused it ("deny"), or could not complete it (upstream failure, audit unavailable: "error").
    decision: refusal.kind === "bad_gateway" || refusal.kind === "timeout" || refusal.kind === "unavailable" ? "error" : "deny",
    code: refusal.code,
    reason: refusal.reason,
    ruleId: (c.ruleId as string | undefined) ?? null,
    mode: c.mode as string | undefined,
    status: refusal.status,
    auditEventId: refusal.auditEventId,
    aggregated: refusal.extra.auditAggregated === true ? true : undefined,
    ...extra,
  };
}
