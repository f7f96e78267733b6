// Client addresses as the dashboard reads them, in plain JavaScript: the dashboard's own HTTP
// server (scripts/request-guard.mjs, loaded before anything is compiled) and the app's
// lib/http/client-address.ts share these, so a reverse proxy trusted for X-Forwarded-For is the
// same one held only to the server's overall connection cap, and a client counted for sign-in
// throttling is counted the same way for connections.
import ipaddr from "ipaddr.js";

function canonical(address) {
  if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress()) return address.toIPv4Address().toString();
  return address.toString();
}

function parseCanonical(text) {
  const address = ipaddr.parse(text);
  return address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() ? address.toIPv4Address() : address;
}

/** An address in its canonical text form (IPv4-mapped IPv6 as IPv4), or null if it is not one. */
export function normalizeAddress(text) {
  let value = String(text ?? "").trim();
  // "[2001:db8::1]:443" and "192.0.2.1:443" as some proxies write them.
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(value);
  if (bracketed) value = bracketed[1];
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(value)) value = value.slice(0, value.lastIndexOf(":"));
  const zone = value.indexOf("%");
  if (zone !== -1) value = value.slice(0, zone);
  if (!ipaddr.isValid(value)) return null;
  // isValid accepts shorthand IPv4 ("127.1", "0x7f.1"); only the four-part decimal form counts.
  if (ipaddr.IPv4.isValid(value) && !ipaddr.IPv4.isValidFourPartDecimal(value)) return null;
  return canonical(ipaddr.parse(value));
}

/**
 * Whether `address` (any form normalizeAddress reads) is one of `trusted`: addresses, or CIDR
 * ranges, where an IPv4 address also matches an IPv6 range as its IPv4-mapped form.
 */
export function isTrustedAddress(address, trusted) {
  const normal = normalizeAddress(address);
  if (normal === null) return false;
  const parsed = parseCanonical(normal);
  return trusted.some((entry) => {
    if (!entry.includes("/")) {
      const other = normalizeAddress(entry);
      return other !== null && other === normal;
    }
    let range;
    try {
      range = ipaddr.parseCIDR(entry);
    } catch {
      return false;
    }
    const [net, bits] = range;
    const candidate = net.kind() === parsed.kind() ? parsed : parsed instanceof ipaddr.IPv4 ? parsed.toIPv4MappedAddress() : null;
    return candidate !== null && candidate.match(net, bits);
  });
}

/** BULKHEAD_TRUSTED_PROXIES (comma-separated addresses or CIDR ranges) as a list. */
export function trustedList(value) {
  return String(value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/**
 * What a client counts under (sign-in throttling, connections): an IPv4 address itself, an IPv6
 * address by its /64, which one host usually holds whole.
 */
export function addressThrottleKey(address) {
  const parsed = parseCanonical(address);
  if (parsed instanceof ipaddr.IPv4) return parsed.toString();
  const parts = parsed.toNormalizedString().split(":").slice(0, 4);
  return `${ipaddr.parse(`${parts.join(":")}::`).toString()}/64`;
}
