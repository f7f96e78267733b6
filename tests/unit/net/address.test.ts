import { describe, expect, it } from "vitest";
import { classifyAddress, type AddressCategory } from "@/lib/net/address";

interface Case {
  name: string;
  input: string;
  category: AddressCategory | "public";
  /** Canonical address, when the input is an IP address at all. */
  address?: string;
  reason?: string;
}

const METADATA = "169.254.169.254 is link-local: the cloud metadata service";
const MAPPED_METADATA = "IPv4-mapped ::ffff:169.254.169.254 is link-local: the cloud metadata service";

const refused: Case[] = [
  // Cloud metadata, every spelling.
  { name: "metadata, dotted", input: "169.254.169.254", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, hex integer", input: "0xa9fea9fe", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, upper-case hex", input: "0XA9FEA9FE", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, decimal integer", input: "2852039166", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, dotted octal", input: "0251.0376.0251.0376", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, dotted hex", input: "0xa9.0xfe.0xa9.0xfe", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, two parts", input: "169.16689662", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, three parts", input: "169.254.43518", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, trailing dot", input: "169.254.169.254.", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, padded octal", input: "00000251.0376.0251.0376", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, full-width digits", input: "１６９.２５４.１６９.２５４", category: "link-local", address: "169.254.169.254", reason: METADATA },
  { name: "metadata, IPv4-mapped dotted", input: "[::ffff:169.254.169.254]", category: "embedded-ipv4", address: "::ffff:a9fe:a9fe", reason: MAPPED_METADATA },
  { name: "metadata, IPv4-mapped hex", input: "[::ffff:a9fe:a9fe]", category: "embedded-ipv4", address: "::ffff:a9fe:a9fe", reason: MAPPED_METADATA },
  { name: "metadata, IPv4-mapped expanded upper-case", input: "[0:0:0:0:0:FFFF:A9FE:A9FE]", category: "embedded-ipv4", address: "::ffff:a9fe:a9fe", reason: MAPPED_METADATA },
  { name: "metadata, IPv4-mapped without brackets", input: "::ffff:169.254.169.254", category: "embedded-ipv4", address: "::ffff:a9fe:a9fe", reason: MAPPED_METADATA },
  {
    name: "metadata, NAT64",
    input: "[64:ff9b::a9fe:a9fe]",
    category: "embedded-ipv4",
    address: "64:ff9b::a9fe:a9fe",
    reason: "NAT64 64:ff9b::169.254.169.254 is link-local: the cloud metadata service",
  },
  {
    name: "metadata, 6to4",
    input: "[2002:a9fe:a9fe::]",
    category: "embedded-ipv4",
    address: "2002:a9fe:a9fe::",
    reason: "6to4 2002:a9fe:a9fe:: carries 169.254.169.254, which is link-local: the cloud metadata service",
  },
  {
    // Teredo stores the client address inverted: ~a9fe:a9fe = 5601:5601.
    name: "metadata, Teredo client",
    input: "[2001:0:4136:e378:8000:63bf:5601:5601]",
    category: "embedded-ipv4",
    address: "2001:0:4136:e378:8000:63bf:5601:5601",
    reason: "Teredo 2001:0:4136:e378:8000:63bf:5601:5601 carries 169.254.169.254, which is link-local: the cloud metadata service",
  },
  {
    name: "metadata, IPv4-translated (SIIT)",
    input: "[::ffff:0:169.254.169.254]",
    category: "embedded-ipv4",
    address: "::ffff:0:a9fe:a9fe",
    reason: "IPv4-translated (SIIT) ::ffff:0:169.254.169.254 is link-local: the cloud metadata service",
  },
  { name: "link-local, other address", input: "169.254.0.1", category: "link-local", address: "169.254.0.1", reason: "169.254.0.1 is link-local (RFC 3927, where cloud metadata lives)" },

  // Loopback.
  { name: "loopback, dotted", input: "127.0.0.1", category: "loopback", address: "127.0.0.1", reason: "127.0.0.1 is loopback" },
  { name: "loopback, shortened", input: "127.1", category: "loopback", address: "127.0.0.1", reason: "127.0.0.1 is loopback" },
  { name: "loopback, hex shortened", input: "0x7f.1", category: "loopback", address: "127.0.0.1", reason: "127.0.0.1 is loopback" },
  { name: "loopback, octal", input: "0177.0.0.1", category: "loopback", address: "127.0.0.1", reason: "127.0.0.1 is loopback" },
  { name: "loopback, decimal", input: "2130706433", category: "loopback", address: "127.0.0.1", reason: "127.0.0.1 is loopback" },
  { name: "loopback, hex integer", input: "0x7f000001", category: "loopback", address: "127.0.0.1", reason: "127.0.0.1 is loopback" },
  { name: "loopback, empty hex part", input: "0x7f.0x.0x.1", category: "loopback", address: "127.0.0.1", reason: "127.0.0.1 is loopback" },
  { name: "loopback, anywhere in 127/8", input: "127.255.255.254", category: "loopback", address: "127.255.255.254", reason: "127.255.255.254 is loopback" },
  { name: "loopback, IPv6", input: "[::1]", category: "loopback", address: "::1", reason: "::1 is loopback" },
  { name: "loopback, IPv6 expanded", input: "[0000:0000:0000:0000:0000:0000:0000:0001]", category: "loopback", address: "::1", reason: "::1 is loopback" },
  { name: "loopback, IPv4-compatible", input: "[::127.0.0.1]", category: "embedded-ipv4", address: "::7f00:1", reason: "IPv4-compatible ::127.0.0.1 is loopback" },
  { name: "loopback, IPv4-compatible hex", input: "[::7f00:1]", category: "embedded-ipv4", address: "::7f00:1", reason: "IPv4-compatible ::127.0.0.1 is loopback" },
  { name: "loopback, IPv4-mapped", input: "[::ffff:127.0.0.1]", category: "embedded-ipv4", address: "::ffff:7f00:1", reason: "IPv4-mapped ::ffff:127.0.0.1 is loopback" },

  // Private, CGNAT and the rest of the special-purpose space.
  { name: "private 10/8", input: "10.0.0.1", category: "private", address: "10.0.0.1", reason: "10.0.0.1 is private (RFC 1918)" },
  { name: "private 10/8, decimal", input: "167772161", category: "private", address: "10.0.0.1", reason: "10.0.0.1 is private (RFC 1918)" },
  { name: "private 172.16/12", input: "172.31.255.1", category: "private", address: "172.31.255.1", reason: "172.31.255.1 is private (RFC 1918)" },
  { name: "private 192.168/16, hex", input: "0xc0.0xa8.1", category: "private", address: "192.168.0.1", reason: "192.168.0.1 is private (RFC 1918)" },
  { name: "CGNAT", input: "100.64.0.1", category: "cgnat", address: "100.64.0.1", reason: "100.64.0.1 is carrier-grade NAT shared space (RFC 6598)" },
  { name: "unspecified IPv4", input: "0.0.0.0", category: "unspecified", address: "0.0.0.0", reason: '0.0.0.0 is "this network" (0.0.0.0 reaches the local host)' },
  { name: "unspecified IPv4, integer", input: "0", category: "unspecified", address: "0.0.0.0", reason: '0.0.0.0 is "this network" (0.0.0.0 reaches the local host)' },
  { name: "this network 0/8", input: "0.1.2.3", category: "unspecified", address: "0.1.2.3", reason: '0.1.2.3 is "this network" (0.0.0.0 reaches the local host)' },
  { name: "unspecified IPv6", input: "[::]", category: "unspecified", address: "::", reason: ":: is unspecified" },
  { name: "broadcast", input: "255.255.255.255", category: "broadcast", address: "255.255.255.255", reason: "255.255.255.255 is limited broadcast" },
  { name: "broadcast, hex integer", input: "0xffffffff", category: "broadcast", address: "255.255.255.255", reason: "255.255.255.255 is limited broadcast" },
  { name: "multicast IPv4", input: "224.0.0.1", category: "multicast", address: "224.0.0.1", reason: "224.0.0.1 is multicast" },
  { name: "multicast IPv6", input: "[ff02::1]", category: "multicast", address: "ff02::1", reason: "ff02::1 is multicast" },
  { name: "benchmarking IPv4", input: "198.18.0.1", category: "benchmarking", address: "198.18.0.1", reason: "198.18.0.1 is benchmarking (RFC 2544)" },
  { name: "benchmarking IPv6", input: "[2001:2::1]", category: "benchmarking", address: "2001:2::1", reason: "2001:2::1 is benchmarking (RFC 5180)" },
  { name: "documentation TEST-NET-1", input: "192.0.2.1", category: "documentation", address: "192.0.2.1", reason: "192.0.2.1 is documentation TEST-NET-1 (RFC 5737)" },
  { name: "documentation TEST-NET-3", input: "203.0.113.9", category: "documentation", address: "203.0.113.9", reason: "203.0.113.9 is documentation TEST-NET-3 (RFC 5737)" },
  { name: "documentation IPv6", input: "[2001:db8::1]", category: "documentation", address: "2001:db8::1", reason: "2001:db8::1 is documentation (RFC 3849)" },
  { name: "reserved 240/4", input: "240.0.0.1", category: "reserved", address: "240.0.0.1", reason: "240.0.0.1 is reserved for future use (RFC 1112)" },
  { name: "reserved 192.0.0/24", input: "192.0.0.8", category: "reserved", address: "192.0.0.8", reason: "192.0.0.8 is IETF protocol assignments (RFC 6890)" },
  { name: "6to4 relay anycast", input: "192.88.99.1", category: "reserved", address: "192.88.99.1", reason: "192.88.99.1 is 6to4 relay anycast (RFC 7526)" },
  { name: "unique local", input: "[fd00::1]", category: "unique-local", address: "fd00::1", reason: "fd00::1 is unique local (RFC 4193)" },
  { name: "unique local fc00::/8", input: "[fc12:3456::1]", category: "unique-local", address: "fc12:3456::1", reason: "fc12:3456::1 is unique local (RFC 4193)" },
  { name: "link-local IPv6", input: "[fe80::1]", category: "link-local", address: "fe80::1", reason: "fe80::1 is link-local" },
  { name: "link-local IPv6, febf", input: "[febf::1]", category: "link-local", address: "febf::1", reason: "febf::1 is link-local" },
  { name: "site-local IPv6", input: "[fec0::1]", category: "site-local", address: "fec0::1", reason: "fec0::1 is site-local (deprecated, RFC 3879)" },
  { name: "discard-only IPv6", input: "[100::1]", category: "reserved", address: "100::1", reason: "100::1 is discard-only (RFC 6666)" },
  { name: "IETF IPv6 space", input: "[2001:10::1]", category: "reserved", address: "2001:10::1", reason: "2001:10::1 is IETF protocol assignments (RFC 2928)" },
  { name: "AS112 IPv6 (ipaddr.js range the table names)", input: "[2620:4f:8000::1]", category: "reserved", address: "2620:4f:8000::1", reason: "2620:4f:8000::1 is AS112 anycast DNS (RFC 7534)" },
  { name: "outside 2000::/3 (SRv6)", input: "[5f00::1]", category: "reserved", address: "5f00::1", reason: "5f00::1 is outside global unicast 2000::/3" },
  { name: "outside 2000::/3 (::/8)", input: "[::1:0:0:1]", category: "reserved", address: "::1:0:0:1", reason: "::1:0:0:1 is outside global unicast 2000::/3" },

  // Embedded IPv4 carrying a PUBLIC address: still refused (see address.ts).
  {
    name: "IPv4-mapped public",
    input: "[::ffff:140.82.112.3]",
    category: "embedded-ipv4",
    address: "::ffff:8c52:7003",
    reason: "IPv4-mapped ::ffff:140.82.112.3 carries public 140.82.112.3; IPv4 inside IPv6 is refused (dial the IPv4 address instead)",
  },
  {
    name: "NAT64 public",
    input: "[64:ff9b::140.82.112.3]",
    category: "embedded-ipv4",
    address: "64:ff9b::8c52:7003",
    reason: "NAT64 64:ff9b::140.82.112.3 carries public 140.82.112.3; refused because a gateway relays it to IPv4 beyond the proxy's checks",
  },
  {
    name: "local-use NAT64",
    input: "[64:ff9b:1::8c52:7003]",
    category: "embedded-ipv4",
    address: "64:ff9b:1::8c52:7003",
    reason: "local-use NAT64 64:ff9b:1::8c52:7003 is refused: a gateway relays it to an IPv4 address the proxy cannot check",
  },
  {
    name: "6to4 public",
    input: "[2002:8c52:7003::1]",
    category: "embedded-ipv4",
    address: "2002:8c52:7003::1",
    reason: "6to4 2002:8c52:7003::1 carries public 140.82.112.3; refused because a gateway relays it to IPv4 beyond the proxy's checks",
  },
  {
    name: "Teredo public",
    input: "[2001:0:4136:e378:8000:63bf:73ad:8ffc]",
    category: "embedded-ipv4",
    address: "2001:0:4136:e378:8000:63bf:73ad:8ffc",
    reason: "Teredo 2001:0:4136:e378:8000:63bf:73ad:8ffc carries public 140.82.112.3; refused because a gateway relays it to IPv4 beyond the proxy's checks",
  },
];

const invalid: Case[] = [
  { name: "zone id", input: "fe80::1%eth0", category: "invalid", reason: 'zone ids are refused: "fe80::1%eth0"' },
  { name: "zone id in brackets (URL-encoded)", input: "[fe80::1%25eth0]", category: "invalid", reason: 'zone ids are refused: "[fe80::1%25eth0]"' },
  { name: "zone id, numeric", input: "[fe80::1%1]", category: "invalid", reason: 'zone ids are refused: "[fe80::1%1]"' },
  // Refused, not decoded: a percent-encoded host is never a spelling Bulkhead resolves.
  { name: "metadata, percent-encoded", input: "%31%36%39.254.169.254", category: "invalid", reason: 'percent-encoded hosts are refused: "%31%36%39.254.169.254"' },
  { name: "name, percent-encoded", input: "pub%6cic.example", category: "invalid", reason: 'percent-encoded hosts are refused: "pub%6cic.example"' },
  { name: "five IPv4 parts", input: "1.2.3.4.5", category: "invalid", reason: '"1.2.3.4.5" has more than four IPv4 parts' },
  { name: "octet above 255", input: "256.0.0.1", category: "invalid", reason: '"256.0.0.1" has an IPv4 part above 255' },
  { name: "above 2^32", input: "4294967296", category: "invalid", reason: '"4294967296" is outside the IPv4 range' },
  { name: "bad octal digit", input: "08.0.0.1", category: "invalid", reason: '"08.0.0.1" ends in a number but is not an IPv4 address' },
  { name: "name ending in a number", input: "foo.127", category: "invalid", reason: '"foo.127" ends in a number but is not an IPv4 address' },
  { name: "empty IPv4 part", input: "127..1", category: "invalid", reason: '"127..1" ends in a number but is not an IPv4 address' },
  { name: "hex in IPv6 IPv4 tail", input: "[::ffff:0x7f.0.0.1]", category: "invalid", reason: '"::ffff:0x7f.0.0.1" is not a valid IPv6 address' },
  { name: "leading zero in IPv6 IPv4 tail", input: "[::ffff:127.0.0.01]", category: "invalid", reason: '"::ffff:127.0.0.01" is not a valid IPv6 address' },
  { name: "two ::", input: "[1::2::3]", category: "invalid", reason: '"1::2::3" is not a valid IPv6 address' },
  { name: "unbalanced bracket", input: "[::1", category: "invalid", reason: 'unbalanced brackets in "[::1"' },
  { name: "garbage", input: "not an address!", category: "invalid", reason: '"not an address!" is not a valid host' },
  { name: "empty", input: "", category: "invalid", reason: "empty host" },
  { name: "a DNS name", input: "example.com", category: "invalid", reason: '"example.com" is not an IP address' },
  { name: "userinfo smuggling", input: "140.82.112.3@127.0.0.1", category: "invalid", reason: '"140.82.112.3@127.0.0.1" is not a valid host' },
];

const accepted: Case[] = [
  { name: "public IPv4", input: "140.82.112.3", category: "public", address: "140.82.112.3" },
  { name: "public IPv4, decimal integer", input: "2354212867", category: "public", address: "140.82.112.3" },
  { name: "public IPv4, trailing dot", input: "140.82.112.3.", category: "public", address: "140.82.112.3" },
  { name: "public IPv4 next to CGNAT", input: "100.128.0.1", category: "public", address: "100.128.0.1" },
  { name: "public IPv4 next to 172.16/12", input: "172.32.0.1", category: "public", address: "172.32.0.1" },
  { name: "public IPv6", input: "[2606:4700::1111]", category: "public", address: "2606:4700::1111" },
  { name: "public IPv6, upper-case expanded", input: "[2606:4700:0000:0000:0000:0000:0000:1111]", category: "public", address: "2606:4700::1111" },
  { name: "public IPv6 without brackets", input: "2a00:1450:4001:80b::200e", category: "public", address: "2a00:1450:4001:80b::200e" },
];

describe("classifyAddress refuses", () => {
  it.each(refused)("$name: $input", ({ input, category, address, reason }) => {
    const result = classifyAddress(input);
    expect(result.ok).toBe(false);
    expect(result.category).toBe(category);
    expect(result.address).toBe(address);
    if (!result.ok) expect(result.reason).toBe(reason);
  });
});

describe("classifyAddress rejects malformed input", () => {
  it.each(invalid)("$name: $input", ({ input, reason }) => {
    const result = classifyAddress(input);
    expect(result).toEqual({ ok: false, category: "invalid", reason });
  });
});

describe("classifyAddress accepts public unicast", () => {
  it.each(accepted)("$name: $input", ({ input, address }) => {
    const result = classifyAddress(input);
    expect(result).toEqual({ ok: true, address, family: address?.includes(":") ? 6 : 4, category: "public" });
  });
});

describe("embedded IPv4 detail", () => {
  it("names the carried address and its own class", () => {
    expect(classifyAddress("[2002:a9fe:a9fe::]")).toMatchObject({
      embedded: { kind: "6to4", address: "169.254.169.254", category: "link-local" },
    });
    expect(classifyAddress("[::ffff:140.82.112.3]")).toMatchObject({
      embedded: { kind: "ipv4-mapped", address: "140.82.112.3", category: "public" },
    });
    expect(classifyAddress("[64:ff9b:1::1]")).toMatchObject({ embedded: { kind: "nat64-local", address: null } });
  });
});
