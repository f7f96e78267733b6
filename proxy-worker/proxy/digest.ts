import { createHash } from "node:crypto";
import { canonicalUrl } from "@/lib/semantics/canonical";
import type { CanonicalRequest } from "@/lib/semantics/types";

/**
 * What an approval is bound to: the task, the agent and the exact request (method, canonical
 * URL, body). Headers are not part of it: the proxy strips and injects them itself.
 */
export function requestDigest(taskId: string, agentId: string, request: CanonicalRequest): string {
  const body = createHash("sha256").update(request.body ?? new Uint8Array()).digest("hex");
  return createHash("sha256")
    .update(JSON.stringify(["bulkhead-approval-v1", taskId, agentId, request.method, canonicalUrl(request), body]))
    .digest("hex");
}
