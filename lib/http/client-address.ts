import { timingSafeEqual } from "node:crypto";
import ipaddr from "ipaddr.js";

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

type Parsed = ipaddr.IPv4 | ipaddr.IPv6;

/** An address in its canonical text form (IPv4-mapped IPv6 as IPv4), or null if it is not one. */
export function normalizeAddress(text: string): string | null {
  let value = text.trim();
  // "[2001:db8::1]:443" and "192.0.2.1:443" as some proxies write them.
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (bracketed) value = bracketed[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(":"));
  const zone = value.indexOf("%");
  if (zone !== -1) value = value.slice(0, zone);
  if (!ipaddr.isValid(value)) return null;
  // isValid accepts shorthand IPv4 ("127.1", "0x7f.1"); only the four-part decimal form counts.
  if (ipaddr.IPv4.isValid(value) && !ipaddr.IPv4.isValidFourPartDecimal(value)) return null;
  return canonical(ipaddr.parse(value));
}

function canonical(address: Parsed): string {
  if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress()) return address.toIPv4Address().toString();
  return address.toString();
}

function parseCanonical(text: string): Parsed {
  const address = ipaddr.parse(text);
  return address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
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

function isTrusted(address: string, trusted: readonly string[]): boolean {
  const parsed = parseCanonical(address);
  return trusted.some((entry) => {
    if (!entry.includes("/")) {
      const other = normalizeAddress(entry);
      return other !== null && other === address;
    }
    const [range, bits] = ipaddr.parseCIDR(entry);
    const candidate = range.kind() === parsed.kind() ? parsed : parsed instanceof ipaddr.IPv4 ? parsed.toIPv4MappedAddress() : null;
    return candidate !== null && candidate.match(range, bits);
  });
}

/** The client's address, or null when it cannot be known (the dashboard was not started by its own server). */
export function clientAddress(headers: Headers, options: ClientAddressOptions): string | null {
  const peer = peerAddress(headers, options.peerToken);
  if (peer === null) return null;
  if (!isTrusted(peer, options.trustedProxies)) return peer;
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
    if (!isTrusted(hop, options.trustedProxies)) break;
  }
  return client;
}

/**
 * The key that throttling counts under: an IPv4 address, or the /64 an IPv6 address belongs to
 * (one subscriber usually holds a whole /64, so single IPv6 addresses are free to rotate).
 */
export function addressThrottleKey(address: string): string {
  const parsed = parseCanonical(address);
  if (parsed instanceof ipaddr.IPv4) return parsed.toString();
  const parts = parsed.toNormalizedString().split(":").slice(0, 4);
  return `${ipaddr.parse(`${parts.join(":")}::`).toString()}/64`;
}
