/**
 * `allowInternal`: CIDRs of a service declared internal, whose addresses are dialed despite their
 * category. Matching is exact CIDR containment (ipaddr.js). Some addresses are never allowed,
 * whatever the list says: unspecified (0.0.0.0 is the local host on Linux), multicast, broadcast,
 * and IPv4 carried in IPv6, which does not match an IPv4 CIDR (the IPv4 address itself must be
 * dialed). Entries broader than /8 are refused: they would switch the guard off.
 */
import ipaddr from "ipaddr.js";
import { classifyAddress, type AddressClass } from "./address";

export type AllowInternal = { ok: true; ranges: readonly AllowedRange[] } | { ok: false; reason: string };

export interface AllowedRange {
  cidr: string;
  range: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

const MIN_PREFIX = 8;
const NEVER_ALLOWED = new Set(["unspecified", "multicast", "broadcast", "embedded-ipv4", "invalid"]);

/** Validates a list of CIDRs (`10.1.0.0/16`, `fd12::/48`); use at configuration time too. */
export function parseAllowInternal(cidrs: readonly string[]): AllowInternal {
  const ranges: AllowedRange[] = [];
  for (const cidr of cidrs) {
    const slash = cidr.indexOf("/");
    const address = slash < 0 ? "" : cidr.slice(0, slash);
    const plainV4 = ipaddr.IPv4.isValidFourPartDecimal(address);
    const plainV6 = address.includes(":") && !address.includes("%") && ipaddr.IPv6.isValid(address);
    if (!(plainV4 || plainV6) || !ipaddr.isValidCIDR(cidr)) {
      return { ok: false, reason: `allowInternal entry "${cidr}" is not a CIDR such as 10.0.0.0/8 or fd00::/8` };
    }
    const range = ipaddr.parseCIDR(cidr);
    if (range[1] < MIN_PREFIX) return { ok: false, reason: `allowInternal entry "${cidr}" is broader than /${MIN_PREFIX}` };
    const network = classifyAddress(range[0].toString());
    if (!network.ok && network.category === "embedded-ipv4") {
      return { ok: false, reason: `allowInternal entry "${cidr}" is IPv4 inside IPv6, which is never dialed; list the IPv4 CIDR` };
    }
    ranges.push({ cidr, range });
  }
  return { ok: true, ranges };
}

/** The CIDR that allows this classified address, or null. */
export function allowingRange(address: AddressClass, ranges: readonly AllowedRange[]): string | null {
  if (address.address === undefined || (!address.ok && NEVER_ALLOWED.has(address.category))) return null;
  const ip = ipaddr.parse(address.address);
  const row = ranges.find((r) => r.range[0].kind() === ip.kind() && ip.match(r.range));
  return row ? row.cidr : null;
}
