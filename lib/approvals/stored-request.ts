import type { CanonicalRequest } from "@/lib/semantics/types";

/**
 * The headers an approver needs to read a request correctly (how its body is encoded, what it
 * expects back, what makes it idempotent), kept with the held request. Credentials are never
 * among them: the proxy strips the agent's and injects its own only when forwarding.
 */
const HEADERS_THAT_MATTER = ["content-type", "content-encoding", "content-length", "accept", "idempotency-key", "x-request-id", "user-agent", "if-match"] as const;

export function headersThatMatter(headers: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of HEADERS_THAT_MATTER) {
    const value = headers[name];
    if (typeof value === "string") kept[name] = value.slice(0, 512);
  }
  return kept;
}

/** What the approval row keeps of a held request besides its digest. */
export function storedRequest(request: CanonicalRequest): { requestHeaders: Record<string, string>; requestBody: Uint8Array<ArrayBuffer> | null; bodySize: number } {
  const body = request.body && request.body.byteLength > 0 ? new Uint8Array(request.body) : null;
  return { requestHeaders: headersThatMatter(request.headers), requestBody: body, bodySize: body?.byteLength ?? 0 };
}
