import { timingSafeEqual } from "node:crypto";
import { addressThrottleKey, isTrustedAddress, normalizeAddress } from "./client-addresses.mjs";

/**
 * Who is on the other end of a dashboard request, for sign-in throttling and the audit.
 *
 * Next.js route handlers and server actions never see the TCP socket, so the dashboard's own
 * HTTP server (scripts/app-server.mjs) removes any incoming `x-bulkhead-peer` header and adds
 * one carrying the socket's address, prefixed with a per-process token; a header without that
 * token (the app run some other way, or a client trying its luck) is ignored.
 *
 * X-Forwarded-For is believed only when the TCP peer is a configured trusted proxy
 * (BULKHEAD_TRUSTED_PROXIES), and then read from the right: each trusted hop appends the address
 * it saw, so the first address from the right that is not a trusted proxy is the client. What a
 * client writes into the header itself sits to the left of that and is never used.
 */
export const PEER_HEADER = "x-bulkhead-peer";

export interface ClientAddressOptions {
  peerToken: string | undefined;
  trustedProxies: readonly string[];
}

/** The TCP peer recorded by the dashboard's server, or null when the header is missing or not ours. */
export function peerAddress(headers: Headers, peerToken: string | undefined): string | null {
  const value = headers.get(PEER_HEADER);
  if (!peerToken || !value) return null;
  const separator = value.indexOf(";");
  if (separator === -1) return null;
  const token = Buffer.from(value.slice(0, separator));
  const expected = Buffer.from(peerToken);
  if (token.length !== expected.length || !timingSafeEqual(token, expected)) return null;
  return normalizeAddress(value.slice(separator + 1));
}

/** The client's address, or null when it cannot be known (the dashboard was not started by its own server). */
export function clientAddress(headers: Headers, options: ClientAddressOptions): string | null {
  const peer = peerAddress(headers, options.peerToken);
  if (peer === null) return null;
  if (!isTrustedAddress(peer, options.trustedProxies)) return peer;
  const hops = (headers.get("x-forwarded-for") ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter((h) => h !== "");
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeAddress(hops[i]!);
    // A malformed entry ends the walk: the nearest trusted hop is all that is known.
    if (hop === null) break;
    client = hop;
    if (!isTrustedAddress(hop, options.trustedProxies)) break;
  }
  return client;
}

/**
 * normalizeAddress, and the key that throttling counts under (addressThrottleKey: an IPv4
 * address, or the /64 an IPv6 address belongs to; one subscriber usually holds a whole /64, so
 * single IPv6 addresses are free to rotate), live in client-addresses.mjs (plain JavaScript) with the
 * trusted-proxy match: the dashboard's own server uses them too, before anything is compiled.
 */
export { addressThrottleKey, normalizeAddress };
