/**
 * Address classification: is this IP address one the proxy may dial? Pure; no DNS, no sockets.
 *
 * Only public unicast passes. IPv4 carried inside IPv6 is always refused, with the carried
 * address classified and named in the reason:
 * - IPv4-mapped/-translated/-compatible: the OS would dial the carried IPv4 address; allowing the
 *   IPv6 spelling of an address we could accept in IPv4 adds a second spelling and nothing else.
 * - NAT64, 6to4 and Teredo: refused even when the carried address is public, because a gateway
 *   outside the proxy relays them to IPv4 (or picks the IPv4 address itself, for local-use NAT64),
 *   so what is finally reached is not what was checked.
 */
import ipaddr from "ipaddr.js";
import { parseHost } from "./host";
import {
  IPV4_RANGES,
  IPV6_GLOBAL_UNICAST,
  IPV6_RANGES,
  type EmbeddingKind,
  type ForbiddenCategory,
  type RangeRow,
} from "./ranges";

export { parseHost, parseIpLiteral, type ParsedHost } from "./host";
export type { EmbeddingKind, ForbiddenCategory } from "./ranges";

export type AddressCategory = ForbiddenCategory | "invalid";

export type AddressClass =
  | { ok: true; address: string; family: 4 | 6; category: "public" }
  | {
      ok: false;
      /** Canonical form, when the text was an IP address at all. */
      address?: string;
      category: AddressCategory;
      reason: string;
      /** For IPv6 forms that carry an IPv4 address: that address and its own class. */
      embedded?: { kind: EmbeddingKind; address: string | null; category: ForbiddenCategory | "public" };
    };

/** Classifies an IP address written in any spelling `parseHost` accepts (brackets optional). */
export function classifyAddress(text: string): AddressClass {
  const parsed = parseHost(text);
  if (parsed.kind === "invalid") return { ok: false, category: "invalid", reason: parsed.reason };
  if (parsed.kind === "name") return { ok: false, category: "invalid", reason: `"${text}" is not an IP address` };
  if (parsed.ip.kind() === "ipv4") return classifyIpv4(parsed.ip as ipaddr.IPv4);
  return classifyIpv6(parsed.ip as ipaddr.IPv6, parsed.address);
}

function classifyIpv4(ip: ipaddr.IPv4): AddressClass {
  const address = ip.toString();
  const verdict = ipv4Verdict(ip);
  if (verdict.category === "public") return { ok: true, address, family: 4, category: "public" };
  return { ok: false, address, category: verdict.category, reason: `${address} is ${verdict.label}` };
}

function ipv4Verdict(ip: ipaddr.IPv4): { category: ForbiddenCategory | "public"; label: string } {
  const row = firstMatch(ip, IPV4_RANGES);
  if (row) return row;
  const range = ip.range();
  // A range ipaddr.js knows and the table does not is refused: a missing row fails closed.
  if (range !== "unicast") return { category: "reserved", label: `special-purpose (${range})` };
  return { category: "public", label: "public" };
}

function classifyIpv6(ip: ipaddr.IPv6, address: string): AddressClass {
  const row = firstMatch(ip, IPV6_RANGES);
  if (row?.embedding) return classifyEmbedded(ip, address, row.embedding, row.label);
  if (row) return { ok: false, address, category: row.category, reason: `${address} is ${row.label}` };
  if (!ip.match(IPV6_GLOBAL_UNICAST)) {
    return { ok: false, address, category: "reserved", reason: `${address} is outside global unicast 2000::/3` };
  }
  const range = ip.range();
  if (range !== "unicast") return { ok: false, address, category: "reserved", reason: `${address} is special-purpose (${range})` };
  return { ok: true, address, family: 6, category: "public" };
}

function classifyEmbedded(ip: ipaddr.IPv6, address: string, kind: EmbeddingKind, label: string): AddressClass {
  const carried = carriedIpv4(ip, kind);
  if (carried === null) {
    return {
      ok: false,
      address,
      category: "embedded-ipv4",
      reason: `${label} ${address} is refused: a gateway relays it to an IPv4 address the proxy cannot check`,
      embedded: { kind, address: null, category: "reserved" },
    };
  }
  const inner = ipv4Verdict(carried);
  const v4 = carried.toString();
  const mixed = MIXED_NOTATION[kind];
  const subject = mixed ? `${label} ${mixed}${v4}` : `${label} ${address}`;
  let reason: string;
  if (inner.category !== "public") {
    reason = mixed ? `${subject} is ${inner.label}` : `${subject} carries ${v4}, which is ${inner.label}`;
  } else if (mixed && kind !== "nat64") {
    reason = `${subject} carries public ${v4}; IPv4 inside IPv6 is refused (dial the IPv4 address instead)`;
  } else {
    reason = `${subject} carries public ${v4}; refused because a gateway relays it to IPv4 beyond the proxy's checks`;
  }
  return { ok: false, address, category: "embedded-ipv4", reason, embedded: { kind, address: v4, category: inner.category } };
}

/** Forms written with the IPv4 address in the low 32 bits, shown as `prefix` + dotted quad. */
const MIXED_NOTATION: Partial<Record<EmbeddingKind, string>> = {
  "ipv4-mapped": "::ffff:",
  "ipv4-translated": "::ffff:0:",
  "ipv4-compatible": "::",
  nat64: "64:ff9b::",
};

/** The IPv4 address an embedded form carries; null when its position is not fixed (local-use NAT64). */
function carriedIpv4(ip: ipaddr.IPv6, kind: EmbeddingKind): ipaddr.IPv4 | null {
  const bytes = ip.toByteArray();
  switch (kind) {
    case "6to4":
      return new ipaddr.IPv4(bytes.slice(2, 6));
    case "teredo":
      // The client address is stored inverted (RFC 4380 §4).
      return new ipaddr.IPv4(bytes.slice(12, 16).map((b) => b ^ 0xff));
    case "nat64-local":
      return null;
    default:
      return new ipaddr.IPv4(bytes.slice(12, 16));
  }
}

function firstMatch<T extends ipaddr.IPv4 | ipaddr.IPv6>(ip: T, rows: readonly RangeRow<T>[]): RangeRow<T> | undefined {
  return rows.find((row) => ip.match(row.range));
}
