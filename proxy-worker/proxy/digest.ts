import { createHash } from "node:crypto";
import { canonicalUrl } from "@/lib/semantics/canonical";
import type { CanonicalRequest } from "@/lib/semantics/types";
import { agentStripped, boundPreferences } from "./headers";

/**
 * Headers that change nothing about what a request does and that a client may send anew on each
 * attempt (tracing): left out of the digest, so that redeeming a grant does not depend on them.
 */
const VOLATILE = new Set(["traceparent", "tracestate", "baggage", "b3", "sentry-trace", "x-request-id", "x-correlation-id", "x-amzn-trace-id", "date"]);

/**
 * The agent's headers that reach the upstream (as `upstreamHeaders` passes them on; the
 * credential is the proxy's own), sorted by name, volatile ones left out. Any of them can change
 * what the upstream does with the same method, URL and body (Content-Type decides whether a body
 * is JSON or a form, a method-override header turns a POST into a DELETE, a conditional header
 * whether it applies at all), so an approval is bound to them too.
 */
function forwardedHeaders(headers: Record<string, string>): [string, string][] {
  const out: [string, string][] = [];
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (agentStripped(lower) || VOLATILE.has(lower) || lower.startsWith("x-b3-")) continue;
    if (lower === "prefer") {
      // As forwarded: without Bulkhead's own 202-and-poll preferences (headers.ts).
      const bound = boundPreferences(headers[name] as string);
      if (bound !== null) out.push([lower, bound]);
      continue;
    }
    out.push([lower, headers[name] as string]);
  }
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/**
 * What an approval is bound to: the task, the agent and the exact request (method, canonical
 * URL, the headers it is forwarded with, body). A grant redeemed with anything of that changed
 * is refused: what runs is what the approver saw.
 */
export function requestDigest(taskId: string, agentId: string, request: CanonicalRequest): string {
  const body = createHash("sha256").update(request.body ?? new Uint8Array()).digest("hex");
  return createHash("sha256")
    .update(JSON.stringify(["bulkhead-approval-v2", taskId, agentId, request.method, canonicalUrl(request), forwardedHeaders(request.headers), body]))
    .digest("hex");
}
