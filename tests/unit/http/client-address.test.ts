import { describe, expect, it } from "vitest";
import { addressThrottleKey, clientAddress, normalizeAddress, PEER_HEADER, peerAddress } from "@/lib/http/client-address";

const TOKEN = "per-process-token";
const headers = (entries: Record<string, string>) => new Headers(entries);
const stamped = (peer: string, extra: Record<string, string> = {}) => headers({ [PEER_HEADER]: `${TOKEN};${peer}`, ...extra });

describe("the client's address: the TCP peer, and X-Forwarded-For only from trusted proxies", () => {
  it("takes the peer the dashboard's server recorded, and ignores a header without its token", () => {
    expect(peerAddress(stamped("203.0.113.7"), TOKEN)).toBe("203.0.113.7");
    // A client writing the header itself does not know the token.
    expect(peerAddress(headers({ [PEER_HEADER]: "198.51.100.1" }), TOKEN)).toBeNull();
    expect(peerAddress(headers({ [PEER_HEADER]: "guess;198.51.100.1" }), TOKEN)).toBeNull();
    expect(peerAddress(headers({ [PEER_HEADER]: `${TOKEN}x;198.51.100.1` }), TOKEN)).toBeNull();
    // Run without the dashboard's server (no token configured): nothing is believed.
    expect(peerAddress(stamped("203.0.113.7"), undefined)).toBeNull();
    expect(clientAddress(headers({ "x-forwarded-for": "198.51.100.1" }), { peerToken: TOKEN, trustedProxies: [] })).toBeNull();
  });

  it("never believes X-Forwarded-For by default: a client cannot choose its own address", () => {
    const h = stamped("203.0.113.7", { "x-forwarded-for": "198.51.100.1, 192.0.2.9", forwarded: "for=192.0.2.77", "x-real-ip": "192.0.2.88" });
    expect(clientAddress(h, { peerToken: TOKEN, trustedProxies: [] })).toBe("203.0.113.7");
    // Loopback is not trusted either unless configured.
    expect(clientAddress(stamped("127.0.0.1", { "x-forwarded-for": "198.51.100.1" }), { peerToken: TOKEN, trustedProxies: [] })).toBe("127.0.0.1");
  });

  it("behind trusted proxies, reads X-Forwarded-For from the right and stops at the first untrusted hop", () => {
    const opts = { peerToken: TOKEN, trustedProxies: ["10.0.0.0/8", "127.0.0.1"] };
    // The client wrote "1.1.1.1" itself; the edge proxy appended the real address 198.51.100.20.
    expect(clientAddress(stamped("127.0.0.1", { "x-forwarded-for": "1.1.1.1, 198.51.100.20, 10.1.2.3" }), opts)).toBe("198.51.100.20");
    expect(clientAddress(stamped("10.9.9.9", { "x-forwarded-for": "198.51.100.20" }), opts)).toBe("198.51.100.20");
    // Several header lines count as one list.
    const multi = new Headers();
    multi.set(PEER_HEADER, `${TOKEN};10.0.0.5`);
    multi.append("x-forwarded-for", "1.1.1.1");
    multi.append("x-forwarded-for", "198.51.100.30");
    expect(clientAddress(multi, opts)).toBe("198.51.100.30");
    // Nothing forwarded: the proxy itself.
    expect(clientAddress(stamped("10.0.0.5"), opts)).toBe("10.0.0.5");
    // A malformed entry ends the walk at the nearest trusted hop, never at attacker text.
    expect(clientAddress(stamped("10.0.0.5", { "x-forwarded-for": "198.51.100.20, evil, 10.0.0.6" }), opts)).toBe("10.0.0.6");
    expect(clientAddress(stamped("10.0.0.5", { "x-forwarded-for": "127.1" }), opts)).toBe("10.0.0.5");
  });

  it("normalises spellings: IPv4-mapped IPv6, ports, brackets, zones; refuses shorthand and names", () => {
    expect(normalizeAddress("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(normalizeAddress("[2001:db8::1]:443")).toBe("2001:db8::1");
    expect(normalizeAddress("192.0.2.1:8080")).toBe("192.0.2.1");
    expect(normalizeAddress("fe80::1%eth0")).toBe("fe80::1");
    expect(normalizeAddress("2001:DB8:0:0::1")).toBe("2001:db8::1");
    for (const bad of ["127.1", "0x7f.0.0.1", "2130706433", "localhost", "", "1.2.3.4.5", "unknown"]) expect(normalizeAddress(bad), bad).toBeNull();
    expect(clientAddress(stamped("::ffff:10.0.0.5", { "x-forwarded-for": "198.51.100.20" }), { peerToken: TOKEN, trustedProxies: ["10.0.0.0/8"] })).toBe("198.51.100.20");
  });

  it("throttles IPv6 clients by their /64, IPv4 clients by address", () => {
    expect(addressThrottleKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(addressThrottleKey("2001:db8:1:2:ffff:ffff:ffff:ffff")).toBe("2001:db8:1:2::/64");
    expect(addressThrottleKey("203.0.113.7")).toBe("203.0.113.7");
  });
});
