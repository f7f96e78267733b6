/**
 * Every way the proxy refuses a request, and the one function that turns a refusal into a
 * response. Each refusal carries a stable machine-readable code, a reason a person can read,
 * and (once recorded) the audit event id.
 */
export type RefusalKind =
  | "identity" // 407: no or invalid task token / unknown sandbox
  | "denied" // 403: the policy (or an approval) said no
  | "not_found" // 404: an MCP session this task did not open (mcp-sessions.ts)
  | "malformed" // 400: the request cannot be parsed unambiguously
  | "headers_too_large" // 431
  | "body_too_large" // 413
  | "rate_limited" // 429
  | "client_timeout" // 408: the client was too slow to send its request
  | "bad_gateway" // 502: DNS failure, upstream refused or reset
  | "timeout" // 504: upstream or approval timed out (approval timeouts are denials: 403)
  | "unavailable" // 503: the audit trail cannot record, so nothing is forwarded
  | "held" // 202: held, answered at once (the client asked for 202-and-poll); nothing forwarded yet
  | "hold_status"; // 200: Bulkhead's answer to a status poll of a held request (never forwarded)

const STATUS: Record<RefusalKind, number> = {
  identity: 407,
  denied: 403,
  not_found: 404,
  malformed: 400,
  headers_too_large: 431,
  body_too_large: 413,
  rate_limited: 429,
  client_timeout: 408,
  bad_gateway: 502,
  timeout: 504,
  unavailable: 503,
  held: 202,
  hold_status: 200,
};

/** What `429 hold_limit` asks a client to wait before trying again. */
export const HOLD_LIMIT_RETRY_AFTER_SECONDS = 30;

export class ProxyRefusal extends Error {
  auditEventId: string | null = null;
  /** What was known when it was refused (task, agent, url, service, actions): for the decision log line. */
  context: Record<string, unknown> = {};
  constructor(
    readonly kind: RefusalKind,
    /** Stable code, e.g. `token_expired`, `destination_forbidden`, `policy_deny`. */
    readonly code: string,
    readonly reason: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(reason);
    this.name = "ProxyRefusal";
  }

  get status(): number {
    return STATUS[this.kind];
  }
}

export interface RefusalResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The single mapping from a refusal to what the client sees. */
export function refusalResponse(refusal: ProxyRefusal): RefusalResponse {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "cache-control": "no-store",
    "x-bulkhead-decision": refusal.kind === "denied" ? "deny" : refusal.kind === "held" || refusal.kind === "hold_status" ? "hold" : "error",
    connection: "close",
  };
  if (refusal.kind === "identity") headers["proxy-authenticate"] = 'Bearer realm="bulkhead", Basic realm="bulkhead"';
  // A rate limit frees within a second; held requests over the hold limit free only when a person
  // decides one (or it times out): a client told to come back in a second would only be refused again.
  if (refusal.kind === "rate_limited") headers["retry-after"] = refusal.code === "hold_limit" ? String(HOLD_LIMIT_RETRY_AFTER_SECONDS) : "1";
  const body = JSON.stringify({
    error: refusal.code,
    kind: refusal.kind,
    reason: refusal.reason,
    auditEventId: refusal.auditEventId,
    ...refusal.extra,
  });
  headers["content-length"] = String(Buffer.byteLength(body));
  return { status: refusal.status, headers, body };
}
