/**
 * OCSF 1.3.0 events, one JSON object per line (docs/audit.md, "OCSF mapping", has the table):
 * - proxy decisions (type proxy.*) are HTTP Activity (4002), with the security-control profile's
 *   action and disposition;
 * - sign-ins (auth.*, api_key.auth_failed, and the summaries of repeated API key failures) are
 *   Authentication (3002), a summary with its `count` and its window's `start_time`/`end_time`;
 * - everything else (control-plane changes and reads of the audit itself) is API Activity (6003).
 * Nothing is dropped: the event's own fields, its semantic actions, its data and its place in the
 * hash chain go under `unmapped.bulkhead`. Values that OCSF types constrain (hostname, email, ip,
 * port) are set only when they fit, so every line validates against the schema.
 */
import { isIP } from "node:net";
import type { AuditRow } from "../search";
import { actionsLeftOutOf, actionsOf, parseData, requestOf } from "../view";

export const OCSF_VERSION = "1.3.0";
const PRODUCT = { name: "Bulkhead", vendor_name: "Bulkhead" };
const MAX_STRING = 65_535;

const HOSTNAME = /^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])\.)*([A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])$/;
const EMAIL = /^[a-zA-Z0-9!#$%&'*+\-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9\-.]+$/;

const cap = (s: string) => (s.length > MAX_STRING ? s.slice(0, MAX_STRING) : s);

type Obj = Record<string, unknown>;

const SEVERITY = ["Unknown", "Informational", "Low", "Medium", "High", "Critical", "Fatal"] as const;
const severity = (id: 1 | 2 | 3 | 4) => ({ severity_id: id, severity: SEVERITY[id] });

/** API key authentication failures: one each, and the per-minute summary of the ones not written one by one (lib/apikeys/failure-audit.ts). */
const API_KEY_FAILURES = new Set(["api_key.auth_failed", "api_key.auth_failures_summarised"]);

export type OcsfClass = "http_activity" | "authentication" | "api_activity";

export function ocsfClassOf(type: string): OcsfClass {
  if (type.startsWith("proxy.")) return "http_activity";
  if (type.startsWith("auth.") || API_KEY_FAILURES.has(type)) return "authentication";
  return "api_activity";
}

function base(row: AuditRow, data: unknown, profiles: string[]): Obj {
  const d = typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Obj) : {};
  return {
    time: new Date(row.at).getTime(),
    metadata: {
      version: OCSF_VERSION,
      product: PRODUCT,
      uid: row.seq,
      ...(typeof d.eventId === "string" ? { correlation_uid: cap(d.eventId) } : {}),
      log_name: "bulkhead-audit",
      // When the database stored it (OCSF: "the time when the logging system collected and logged the event").
      ...(row.recorded_at === null ? {} : { logged_time: new Date(row.recorded_at).getTime() }),
      sequence: Number(row.seq),
      ...(profiles.length > 0 ? { profiles } : {}),
    },
    message: cap(row.reason ?? row.type),
    unmapped: {
      bulkhead: {
        seq: row.seq,
        id: row.id,
        type: row.type,
        outcome: row.outcome,
        effect: row.effect,
        reason: row.reason,
        rule_id: row.rule_id,
        actor: { type: row.actor_type, id: row.actor_id, name: row.actor_name },
        agent: row.agent_id ? { id: row.agent_id, name: row.agent_name } : null,
        task: row.task_id ? { id: row.task_id, purpose: row.task_purpose } : null,
        actions: actionsOf(data),
        actions_left_out: actionsLeftOutOf(data),
        data,
        prev_hash: row.prev_hash,
        hash: row.hash,
      },
    },
  };
}

function classify(categoryUid: number, categoryName: string, classUid: number, className: string, activityId: number, activityName: string): Obj {
  return {
    category_uid: categoryUid,
    category_name: categoryName,
    class_uid: classUid,
    class_name: className,
    activity_id: activityId,
    activity_name: activityName,
    type_uid: classUid * 100 + activityId,
    type_name: `${className}: ${activityName}`,
  };
}

function actorUser(row: AuditRow): Obj {
  const id = row.actor_id ?? "unknown";
  switch (row.actor_type) {
    case "user":
      return { uid: id, name: cap(row.actor_name ?? id), ...(row.actor_name && EMAIL.test(row.actor_name) ? { email_addr: row.actor_name } : {}), type_id: 1, type: "User" };
    case "agent":
      return { uid: id, name: cap(row.actor_name ?? id), type_id: 99, type: "AI agent" };
    case "api_key":
      return { uid: id, name: cap(row.actor_name ?? id), type_id: 99, type: "API key" };
    default:
      return { uid: id, name: cap(`${row.actor_type}:${id}`), type_id: 3, type: "System" };
  }
}

const METHODS: Record<string, number> = { CONNECT: 1, DELETE: 2, GET: 3, HEAD: 4, OPTIONS: 5, POST: 6, PUT: 7, TRACE: 8 };
/** The answer the proxy gave (or would give) for each kind of refusal (proxy-worker/proxy/errors.ts). */
const REFUSAL_STATUS: Record<string, number> = {
  identity: 407,
  denied: 403,
  malformed: 400,
  headers_too_large: 431,
  body_too_large: 413,
  rate_limited: 429,
  client_timeout: 408,
  bad_gateway: 502,
  timeout: 504,
  unavailable: 503,
};

interface Control {
  action_id: 0 | 1 | 2;
  disposition_id: number;
  disposition: string;
  status_id: 0 | 1 | 2 | 99;
  severity_id: 1 | 2 | 3 | 4;
}

function control(row: AuditRow, kind: string | null): Control {
  const high = row.effect === "destructive" || row.effect === "irreversible";
  if (row.type === "proxy.hold") return { action_id: 0, disposition_id: 14, disposition: "Delayed", status_id: 0, severity_id: high ? 3 : 2 };
  if (row.type === "proxy.approved") return { action_id: 1, disposition_id: 8, disposition: "Approved", status_id: 1, severity_id: high ? 3 : 2 };
  if (row.type === "proxy.completed") {
    return row.outcome === "forwarded"
      ? { action_id: 1, disposition_id: 1, disposition: "Allowed", status_id: 1, severity_id: 1 }
      : { action_id: 1, disposition_id: 27, disposition: "Error", status_id: 2, severity_id: 2 };
  }
  if (row.outcome === "allow") return { action_id: 1, disposition_id: 1, disposition: "Allowed", status_id: 1, severity_id: 1 };
  if (kind === "identity") return { action_id: 2, disposition_id: 26, disposition: "Unauthorized", status_id: 2, severity_id: 3 };
  if (kind === "malformed" || kind === "headers_too_large" || kind === "body_too_large" || kind === "client_timeout") {
    return { action_id: 2, disposition_id: 25, disposition: "Rejected", status_id: 2, severity_id: 3 };
  }
  if (kind === "unavailable" || kind === "bad_gateway" || kind === "timeout") return { action_id: 2, disposition_id: 27, disposition: "Error", status_id: 2, severity_id: 2 };
  return { action_id: 2, disposition_id: 2, disposition: "Blocked", status_id: 2, severity_id: high ? 4 : 3 };
}

function parseUrl(url: string | null): URL | null {
  if (!url) return null;
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

function httpActivity(row: AuditRow, data: unknown): Obj {
  const d = typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Obj) : {};
  const req = requestOf(data);
  const method = (req?.method ?? "").toUpperCase();
  const activityId = METHODS[method] ?? 99;
  const kind = typeof d.kind === "string" ? d.kind : null;
  const c = control(row, kind);
  const url = parseUrl(req?.url ?? null);
  const host = url ? url.hostname.replace(/^\[|\]$/g, "") : null;
  const port = url ? Number(url.port || (url.protocol === "https:" ? 443 : url.protocol === "http:" ? 80 : NaN)) : NaN;
  const hostFields: Obj = host ? (isIP(host) ? { ip: host } : HOSTNAME.test(host) ? { hostname: host } : {}) : {};
  const code =
    row.type === "proxy.completed" ? (typeof d.upstreamStatus === "number" ? d.upstreamStatus : 0) : row.outcome === "deny" ? (REFUSAL_STATUS[kind ?? "denied"] ?? 403) : 0;
  const client = typeof d.client === "string" ? d.client : null;
  const statusNames = { 0: "Unknown", 1: "Success", 2: "Failure", 99: "Other" } as const;
  return {
    ...classify(4, "Network Activity", 4002, "HTTP Activity", activityId, activityId === 99 ? (method || "Other") : method.charAt(0) + method.slice(1).toLowerCase()),
    ...base(row, data, ["security_control", "host"]),
    ...severity(c.severity_id),
    status_id: c.status_id,
    status: statusNames[c.status_id],
    ...(typeof d.code === "string" ? { status_detail: cap(d.code), status_code: cap(d.code) } : {}),
    action_id: c.action_id,
    action: ["Unknown", "Allowed", "Denied"][c.action_id],
    disposition_id: c.disposition_id,
    disposition: c.disposition,
    http_request: {
      ...(method ? { http_method: cap(method) } : {}),
      ...(req?.url
        ? {
            url: {
              url_string: cap(req.url),
              ...(url ? { scheme: url.protocol.replace(/:$/, ""), path: cap(url.pathname), ...(url.search ? { query_string: cap(url.search.slice(1)) } : {}) } : {}),
              ...(hostFields.hostname ? { hostname: hostFields.hostname } : {}),
              ...(Number.isInteger(port) && port >= 0 && port <= 65535 ? { port } : {}),
            },
          }
        : {}),
      ...(typeof d.eventId === "string" ? { uid: cap(d.eventId) } : {}),
    },
    http_response: { code, ...(row.type === "proxy.completed" && typeof d.durationMs === "number" ? { latency: d.durationMs } : {}) },
    dst_endpoint: {
      ...hostFields,
      ...(Number.isInteger(port) && port >= 0 && port <= 65535 ? { port } : {}),
      svc_name: cap(req?.service ?? "unknown"),
    },
    src_endpoint: client && isIP(client) ? { ip: client } : { name: typeof d.listener === "string" ? cap(d.listener) : "agent" },
    actor: {
      user: actorUser(row),
      ...(row.task_id ? { authorizations: [{ decision: row.outcome ?? "unknown", policy: { uid: row.task_id, ...(row.task_purpose ? { name: cap(row.task_purpose) } : {}) } }] } : {}),
    },
    ...(row.rule_id ? { firewall_rule: { uid: cap(row.rule_id), name: cap(row.rule_id) } } : {}),
  };
}

function authentication(row: AuditRow, data: unknown): Obj {
  const d = typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Obj) : {};
  const ok = row.outcome === "allow";
  const apiKey = API_KEY_FAILURES.has(row.type);
  // A summary stands for `failures` attempts between `from` and `to`.
  const failures = row.type === "api_key.auth_failures_summarised" && typeof d.failures === "number" && Number.isSafeInteger(d.failures) && d.failures > 0 ? d.failures : null;
  const window = failures === null ? {} : { count: failures, ...timeOf("start_time", d.from), ...timeOf("end_time", d.to) };
  const email = typeof d.email === "string" ? d.email : row.actor_type === "user" ? row.actor_name : null;
  const user: Obj = apiKey
    ? actorUser(row)
    : row.actor_type === "user"
      ? actorUser(row)
      : { name: cap(email ?? "unknown"), ...(email && EMAIL.test(email) ? { email_addr: email } : {}), type_id: 1, type: "User" };
  const protocol = apiKey ? { auth_protocol_id: 99, auth_protocol: "API key" } : d.provider === "oidc" ? { auth_protocol_id: 4, auth_protocol: "OpenID" } : { auth_protocol_id: 0, auth_protocol: "Unknown" };
  return {
    ...classify(3, "Identity & Access Management", 3002, "Authentication", 1, "Logon"),
    ...base(row, data, []),
    ...severity(ok ? 1 : 2),
    status_id: ok ? 1 : 2,
    status: ok ? "Success" : "Failure",
    ...(row.reason ? { status_detail: cap(row.reason) } : {}),
    user,
    service: { name: apiKey ? "Bulkhead API" : "Bulkhead dashboard" },
    ...protocol,
    ...window,
  };
}

function timeOf(field: "start_time" | "end_time", value: unknown): Obj {
  const ms = typeof value === "string" ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? { [field]: ms } : {};
}

const VERBS: Array<[RegExp, number, string]> = [
  [/\.(created|added|minted)$/, 1, "Create"],
  [/^audit\.|\.(viewed|exported)$/, 2, "Read"],
  [/\.(deleted)$/, 4, "Delete"],
  [/\.(changed|rotated|role_changed|ended|expired|suspended|reactivated|policy_changed|converted|rotation_started|revoked|cancelled|approved|denied)$/, 3, "Update"],
];

function apiActivity(row: AuditRow, data: unknown): Obj {
  const d = typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Obj) : {};
  const verb = VERBS.find(([re]) => re.test(row.type));
  const channel = typeof d.via === "string" ? d.via : row.actor_type === "api_key" ? "api" : row.actor_type === "system" ? (row.actor_id ?? "system") : "dashboard";
  const resources = [
    ...(row.agent_id ? [{ uid: row.agent_id, type: "agent", ...(row.agent_name ? { name: cap(row.agent_name) } : {}) }] : []),
    ...(row.task_id ? [{ uid: row.task_id, type: "task", ...(row.task_purpose ? { name: cap(row.task_purpose) } : {}) }] : []),
  ];
  const failed = row.outcome === "deny" || row.outcome === "reject";
  return {
    ...classify(6, "Application Activity", 6003, "API Activity", verb?.[1] ?? 99, verb?.[2] ?? "Other"),
    ...base(row, data, []),
    ...severity(1),
    status_id: row.type === "approval.denied" ? 1 : failed ? 2 : 1,
    status: row.type === "approval.denied" || !failed ? "Success" : "Failure",
    actor: { user: actorUser(row), app_name: "Bulkhead" },
    api: { operation: row.type, service: { name: "Bulkhead" } },
    src_endpoint: { name: cap(`bulkhead-${channel}`) },
    ...(resources.length > 0 ? { resources } : {}),
  };
}

export function ocsfEvent(row: AuditRow): Obj {
  const data = parseData(row.data_text);
  switch (ocsfClassOf(row.type)) {
    case "http_activity":
      return httpActivity(row, data);
    case "authentication":
      return authentication(row, data);
    default:
      return apiActivity(row, data);
  }
}

export function ocsfRow(row: AuditRow): string {
  return `${JSON.stringify(ocsfEvent(row))}\n`;
}
