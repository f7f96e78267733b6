import type { CanonicalRequest } from "@/lib/semantics/types";
import { ProxyRefusal } from "../proxy/errors";

/**
 * 202-and-poll, for agents whose HTTP clients time out before a person decides. A request that
 * would be held and carries `Prefer: respond-async` is answered at once with 202 and the
 * approval's id; the agent polls `GET http://bulkhead.hold/<id>` through the proxy (with its
 * task token; a task sees only its own holds), and once approved sends the same request again
 * with `Bulkhead-Approval: <id>`. That grant is used once, only with the token that made the
 * request, and only for a request with the same digest (task, agent, method, canonical URL,
 * forwarded headers, body: proxy/digest.ts); the header is never forwarded upstream.
 */
export const HOLD_STATUS_HOST = "bulkhead.hold";
export const GRANT_HEADER = "bulkhead-approval";

export function wantsAsync(headers: Record<string, string>): boolean {
  return /(^|[\s,;])respond-async($|[\s,;=])/i.test(headers["prefer"] ?? "");
}

export function isStatusRequest(request: CanonicalRequest): boolean {
  return request.host === HOLD_STATUS_HOST;
}

/** The approval id a status poll asks about, or null when the path names none. */
export function statusRequestId(request: CanonicalRequest): string | null {
  const m = /^\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(request.path);
  return m ? m[1]!.toLowerCase() : null;
}

export function statusUrl(approvalId: string): string {
  return `http://${HOLD_STATUS_HOST}/${approvalId}`;
}

/** The 202 answer: held, nothing forwarded, poll here and retry with the grant. */
export function heldAnswer(approvalId: string, expiresAt: Date): ProxyRefusal {
  return new ProxyRefusal("held", "approval_pending", "the request is held for a person; poll statusUrl, then send the same request again with the Bulkhead-Approval header", {
    approvalId,
    statusUrl: statusUrl(approvalId),
    grantHeader: "Bulkhead-Approval",
    expiresAt: expiresAt.toISOString(),
  });
}

export type HoldStatus = { status: "pending" | "approved" | "denied" | "expired" | "consumed" | "cancelled"; expiresAt: Date; reason: string | null };

export function statusAnswer(approvalId: string, s: HoldStatus): ProxyRefusal {
  const next = s.status === "approved" ? "send the same request again with the Bulkhead-Approval header" : s.status === "pending" ? "poll again" : "nothing more will happen";
  return new ProxyRefusal("hold_status", "approval_status", next, { approvalId, status: s.status, expiresAt: s.expiresAt.toISOString(), why: s.reason });
}
