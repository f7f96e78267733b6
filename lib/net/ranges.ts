/**
 * Every special-purpose range the proxy refuses, written out in one place (IANA IPv4/IPv6
 * special-purpose registries). The first matching row wins, so narrower rows come first. Matching
 * is done by ipaddr.js; an address ipaddr.js itself calls non-unicast that no row names is still
 * refused (see `address.ts`), so a range missing here fails closed.
 */
import ipaddr from "ipaddr.js";

export type ForbiddenCategory =
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "multicast"
  | "unspecified"
  | "broadcast"
  | "reserved"
  | "documentation"
  | "benchmarking"
  | "unique-local"
  | "site-local"
  | "embedded-ipv4";

/** How an IPv6 address carries an IPv4 address; each is refused (see `address.ts`). */
export type EmbeddingKind =
  | "ipv4-mapped"
  | "ipv4-translated"
  | "ipv4-compatible"
  | "nat64"
  | "nat64-local"
  | "6to4"
  | "teredo";

export interface RangeRow<T> {
  cidr: string;
  range: [T, number];
  category: ForbiddenCategory;
  /** Why the range is refused, as an operator reads it. */
  label: string;
  /** Set for IPv6 ranges whose addresses carry an IPv4 address. */
  embedding?: EmbeddingKind;
}

function v4(cidr: string, category: ForbiddenCategory, label: string): RangeRow<ipaddr.IPv4> {
  return { cidr, range: ipaddr.IPv4.parseCIDR(cidr), category, label };
}

function v6(cidr: string, category: ForbiddenCategory, label: string, embedding?: EmbeddingKind): RangeRow<ipaddr.IPv6> {
  const row: RangeRow<ipaddr.IPv6> = { cidr, range: ipaddr.IPv6.parseCIDR(cidr), category, label };
  if (embedding) row.embedding = embedding;
  return row;
}

export const IPV4_RANGES: readonly RangeRow<ipaddr.IPv4>[] = [
  // Linux connects to 0.0.0.0 as if it were 127.0.0.1, so all of "this network" is refused.
  v4("0.0.0.0/8", "unspecified", '"this network" (0.0.0.0 reaches the local host)'),
  v4("10.0.0.0/8", "private", "private (RFC 1918)"),
  v4("100.64.0.0/10", "cgnat", "carrier-grade NAT shared space (RFC 6598)"),
  v4("127.0.0.0/8", "loopback", "loopback"),
  v4("169.254.169.254/32", "link-local", "link-local: the cloud metadata service"),
  v4("169.254.0.0/16", "link-local", "link-local (RFC 3927, where cloud metadata lives)"),
  v4("172.16.0.0/12", "private", "private (RFC 1918)"),
  v4("192.0.0.0/24", "reserved", "IETF protocol assignments (RFC 6890)"),
  v4("192.0.2.0/24", "documentation", "documentation TEST-NET-1 (RFC 5737)"),
  v4("192.31.196.0/24", "reserved", "AS112 anycast DNS (RFC 7535)"),
  v4("192.52.193.0/24", "reserved", "AMT relay anycast (RFC 7450)"),
  v4("192.88.99.0/24", "reserved", "6to4 relay anycast (RFC 7526)"),
  v4("192.168.0.0/16", "private", "private (RFC 1918)"),
  v4("192.175.48.0/24", "reserved", "AS112 direct delegation (RFC 7534)"),
  v4("198.18.0.0/15", "benchmarking", "benchmarking (RFC 2544)"),
  v4("198.51.100.0/24", "documentation", "documentation TEST-NET-2 (RFC 5737)"),
  v4("203.0.113.0/24", "documentation", "documentation TEST-NET-3 (RFC 5737)"),
  v4("224.0.0.0/4", "multicast", "multicast"),
  v4("255.255.255.255/32", "broadcast", "limited broadcast"),
  v4("240.0.0.0/4", "reserved", "reserved for future use (RFC 1112)"),
];

export const IPV6_RANGES: readonly RangeRow<ipaddr.IPv6>[] = [
  v6("::/128", "unspecified", "unspecified"),
  v6("::1/128", "loopback", "loopback"),
  v6("::ffff:0:0/96", "embedded-ipv4", "IPv4-mapped", "ipv4-mapped"),
  v6("::ffff:0:0:0/96", "embedded-ipv4", "IPv4-translated (SIIT)", "ipv4-translated"),
  v6("::/96", "embedded-ipv4", "IPv4-compatible", "ipv4-compatible"),
  v6("64:ff9b::/96", "embedded-ipv4", "NAT64", "nat64"),
  v6("64:ff9b:1::/48", "embedded-ipv4", "local-use NAT64", "nat64-local"),
  v6("100::/64", "reserved", "discard-only (RFC 6666)"),
  v6("2001::/32", "embedded-ipv4", "Teredo", "teredo"),
  v6("2001:2::/48", "benchmarking", "benchmarking (RFC 5180)"),
  v6("2001:db8::/32", "documentation", "documentation (RFC 3849)"),
  v6("2001::/23", "reserved", "IETF protocol assignments (RFC 2928)"),
  v6("2002::/16", "embedded-ipv4", "6to4", "6to4"),
  v6("2620:4f:8000::/48", "reserved", "AS112 anycast DNS (RFC 7534)"),
  v6("3fff::/20", "documentation", "documentation (RFC 9637)"),
  v6("fc00::/7", "unique-local", "unique local (RFC 4193)"),
  v6("fe80::/10", "link-local", "link-local"),
  v6("fec0::/10", "site-local", "site-local (deprecated, RFC 3879)"),
  v6("ff00::/8", "multicast", "multicast"),
];

/** 2000::/3: the only IPv6 space allocated as global unicast; anything else is refused. */
export const IPV6_GLOBAL_UNICAST: [ipaddr.IPv6, number] = ipaddr.IPv6.parseCIDR("2000::/3");
