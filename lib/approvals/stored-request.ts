import type { CanonicalRequest } from "@/lib/semantics/types";

/** Headers whose values are credentials or session material: the card says they are there, not what they hold. */
const SECRET_NAME = /auth|token|secret|session|cookie|signature|password|passwd|credential|api-?key|access-?key|private/i;
/** Named like a secret but not one, and what an approver reads the request by. */
const SHOWN_ANYWAY = new Set(["idempotency-key"]);
const MAX_HEADERS = 64;
const MAX_VALUE = 512;
const MAX_BYTES = 16 * 1024;

/**
 * Every header the held request will be forwarded with (`forwarded`: the proxy's own rule for
 * what reaches the upstream), kept with it for the approval card: a header changes what a server
 * does (`X-Cascade: delete-all-backups`, `Prefer`, `If-Match`, a method override) and the
 * approval is bound to them all (the digest), so the person deciding sees them all. Values of
 * headers named like credentials are replaced by their length; each value is cut at 512
 * characters, and past 64 headers or 16 KiB the rest are counted, not shown. The agent's own
 * credentials are never forwarded (the proxy strips them and injects its own), so never here.
 */
export function forwardedHeadersForCard(headers: Record<string, string>, forwarded: (lowerName: string) => boolean): Record<string, string> {
  const kept: Record<string, string> = {};
  const names = Object.keys(headers)
    .map((name) => name.toLowerCase())
    .filter((name) => forwarded(name))
    .sort();
  let bytes = 0;
  for (const [index, name] of names.entries()) {
    const value = headers[name] ?? "";
    const shown = SECRET_NAME.test(name) && !SHOWN_ANYWAY.has(name) ? `(${value.length} characters, not shown: a credential)` : value.length > MAX_VALUE ? `${value.slice(0, MAX_VALUE)}… (${value.length} characters)` : value;
    bytes += name.length + shown.length;
    if (index >= MAX_HEADERS || bytes > MAX_BYTES) {
      kept["…"] = `${names.length - index} more header${names.length - index === 1 ? "" : "s"} not shown`;
      break;
    }
    kept[name] = shown;
  }
  return kept;
}

/** What the approval row keeps of a held request besides its digest. */
export function storedRequest(
  request: CanonicalRequest,
  forwarded: (lowerName: string) => boolean,
): { requestHeaders: Record<string, string>; requestBody: Uint8Array<ArrayBuffer> | null; bodySize: number } {
  const body = request.body && request.body.byteLength > 0 ? new Uint8Array(request.body) : null;
  return { requestHeaders: forwardedHeadersForCard(request.headers, forwarded), requestBody: body, bodySize: body?.byteLength ?? 0 };
}
