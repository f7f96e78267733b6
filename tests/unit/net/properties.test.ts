/**
 * Properties from the attacker's side: for any address in a forbidden range, every spelling we can
 * generate is refused and canonicalises to the same address; and our IPv4 parser agrees with the
 * WHATWG URL parser (what a browser, fetch or undici would dial) on arbitrary numeric hosts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classifyAddress, parseHost } from "@/lib/net/address";
import { dotted, embeddedIpv6, legacySpelling } from "./spellings";

/** [cidr, network as a number, prefix length, category] */
const FORBIDDEN_V4: [string, number, number, string][] = [
  ["0.0.0.0/8", 0x00000000, 8, "unspecified"],
  ["10.0.0.0/8", 0x0a000000, 8, "private"],
  ["100.64.0.0/10", 0x64400000, 10, "cgnat"],
  ["127.0.0.0/8", 0x7f000000, 8, "loopback"],
  ["169.254.0.0/16", 0xa9fe0000, 16, "link-local"],
  ["172.16.0.0/12", 0xac100000, 12, "private"],
  ["192.168.0.0/16", 0xc0a80000, 16, "private"],
  ["198.18.0.0/15", 0xc6120000, 15, "benchmarking"],
  ["224.0.0.0/4", 0xe0000000, 4, "multicast"],
];

const forbiddenAddress = fc
  .constantFrom(...FORBIDDEN_V4)
  .chain(([cidr, network, prefix, category]) =>
    fc.nat({ max: 2 ** (32 - prefix) - 1 }).map((host) => ({ cidr, value: network + host, category })),
  );

describe("every spelling of a forbidden IPv4 address is refused", () => {
  it("legacy IPv4 spellings canonicalise to the same forbidden address", () => {
    fc.assert(
      fc.property(
        forbiddenAddress.chain((a) => legacySpelling(a.value).map((spelling) => ({ ...a, spelling }))),
        ({ value, category, spelling }) => {
          const result = classifyAddress(spelling);
          expect(result.ok).toBe(false);
          expect(result.address).toBe(dotted(value));
          expect(result.category).toBe(category);
          // And the URL parser, which decides where fetch/undici would go, agrees on the address.
          expect(new URL(`http://${spelling}/`).hostname).toBe(dotted(value));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("IPv6 forms carrying it are refused as embedded IPv4, naming the address and its class", () => {
    fc.assert(
      fc.property(forbiddenAddress, ({ value, category }) => {
        for (const { form, text } of embeddedIpv6(value)) {
          const result = classifyAddress(text);
          expect(result, form).toMatchObject({ ok: false, category: "embedded-ipv4" });
          if (!result.ok) {
            expect(result.embedded, form).toEqual({ kind: expect.any(String), address: dotted(value), category });
            expect(result.reason, form).toContain(dotted(value));
          }
        }
      }),
      { numRuns: 500 },
    );
  });

  it("IPv6 forms carrying a public address are refused too", () => {
    fc.assert(
      fc.property(fc.constantFrom(0x8c527003, 0x01010101, 0x08080808), (value) => {
        for (const { form, text } of embeddedIpv6(value)) {
          expect(classifyAddress(text), form).toMatchObject({ ok: false, category: "embedded-ipv4" });
        }
      }),
    );
  });
});

describe("host parsing agrees with the WHATWG URL parser", () => {
  const numericHost = fc
    .array(fc.constantFrom(..."0123456789abcdefxX."), { minLength: 1, maxLength: 24 })
    .map((chars) => chars.join(""));

  it("on arbitrary numeric-looking hosts: same IPv4 address, or both refuse it as an address", () => {
    fc.assert(
      fc.property(numericHost, (host) => {
        let viaUrl: string | null;
        try {
          viaUrl = new URL(`http://${host}/`).hostname;
        } catch {
          viaUrl = null;
        }
        const ours = parseHost(host);
        if (viaUrl !== null && /^\d+\.\d+\.\d+\.\d+$/.test(viaUrl)) {
          expect(ours).toMatchObject({ kind: "ip", address: viaUrl });
        } else {
          // The URL parser sees a name or fails; we never see an address there.
          expect(ours.kind).not.toBe("ip");
          if (viaUrl === null) expect(ours.kind).toBe("invalid");
        }
      }),
      { numRuns: 5000 },
    );
  });

  it("on random IPv6 addresses: same canonical address as the URL parser", () => {
    const ipv6 = fc.ipV6();
    fc.assert(
      fc.property(ipv6, (text) => {
        const viaUrl = new URL(`http://[${text}]/`).hostname;
        expect(parseHost(`[${text}]`)).toMatchObject({ kind: "ip", address: viaUrl.slice(1, -1) });
      }),
      { numRuns: 2000 },
    );
  });
});
