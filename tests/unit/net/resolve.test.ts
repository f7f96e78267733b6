import { describe, expect, it, vi } from "vitest";
import { allowedPortsFor } from "@/lib/net/ports";
import {
  isCheckedDestination,
  resolveDestination,
  type Lookup,
  type LookupAddress,
  type ResolveOptions,
} from "@/lib/net/resolve";

const PROXY_PORT = 8080;
const HEALTH_PORT = 8081;
const DASHBOARD_PORT = 3000;

/** A resolver that answers from a table and records every question. */
function fakeDns(table: Record<string, string[]>) {
  const lookup = vi.fn<Lookup>(async (hostname) => {
    const answers = table[hostname];
    if (!answers) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return answers.map((address): LookupAddress => ({ address, family: address.includes(":") ? 6 : 4 }));
  });
  return lookup;
}

function options(lookup: Lookup, extra: Partial<ResolveOptions> = {}): ResolveOptions {
  return { lookup, allowedPorts: [443], deniedPorts: [PROXY_PORT, HEALTH_PORT, DASHBOARD_PORT], ...extra };
}

describe("names", () => {
  it("dials exactly what DNS answered, asking once with an absolute name", async () => {
    const lookup = fakeDns({ "api.github.com.": ["140.82.112.3", "140.82.112.4"] });
    const result = await resolveDestination({ host: "api.github.com", port: 443 }, options(lookup));
    expect(result).toEqual({
      ok: true,
      host: "api.github.com",
      address: "140.82.112.3",
      family: 4,
      port: 443,
      checked: ["140.82.112.3", "140.82.112.4"],
      internal: false,
    });
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(lookup).toHaveBeenCalledWith("api.github.com.", { all: true, verbatim: true });
  });

  it("looks up once per call (caching is the caller's job)", async () => {
    const lookup = fakeDns({ "api.github.com.": ["140.82.112.3"] });
    await resolveDestination({ host: "api.github.com", port: 443 }, options(lookup));
    await resolveDestination({ host: "api.github.com", port: 443 }, options(lookup));
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  it("keeps the resolver's order, IPv6 first if it says so", async () => {
    const lookup = fakeDns({ "one.example.": ["2606:4700::1111", "1.1.1.1"] });
    const result = await resolveDestination({ host: "one.example", port: 443 }, options(lookup));
    expect(result).toMatchObject({ ok: true, address: "2606:4700::1111", family: 6, checked: ["2606:4700::1111", "1.1.1.1"] });
  });

  const rebinding: { name: string; answers: string[]; reason: string }[] = [
    {
      name: "public then loopback",
      answers: ["140.82.112.3", "127.0.0.1"],
      reason: '"evil.example" resolved to a forbidden address (127.0.0.1 is loopback); a name with any forbidden answer is refused',
    },
    {
      name: "loopback then public",
      answers: ["127.0.0.1", "140.82.112.3"],
      reason: '"evil.example" resolved to a forbidden address (127.0.0.1 is loopback); a name with any forbidden answer is refused',
    },
    {
      name: "metadata among public answers",
      answers: ["1.1.1.1", "8.8.8.8", "169.254.169.254"],
      reason:
        '"evil.example" resolved to a forbidden address (169.254.169.254 is link-local: the cloud metadata service); a name with any forbidden answer is refused',
    },
    {
      name: "an AAAA record that maps loopback",
      answers: ["::ffff:127.0.0.1"],
      reason: '"evil.example" resolved to a forbidden address (IPv4-mapped ::ffff:127.0.0.1 is loopback); a name with any forbidden answer is refused',
    },
    {
      name: "a link-local answer with a zone id",
      answers: ["fe80::1%eth0"],
      reason: '"evil.example" resolved to a forbidden address (zone ids are refused: "fe80::1%eth0"); a name with any forbidden answer is refused',
    },
    {
      name: "a resolver answer that is not an address",
      answers: ["localhost"],
      reason: '"evil.example" resolved to a forbidden address ("localhost" is not an IP address); a name with any forbidden answer is refused',
    },
    {
      name: "unique-local IPv6",
      answers: ["2606:4700::1111", "fd00::5"],
      reason: '"evil.example" resolved to a forbidden address (fd00::5 is unique local (RFC 4193)); a name with any forbidden answer is refused',
    },
  ];

  it.each(rebinding)("refuses a name whose answers include a forbidden address: $name", async ({ answers, reason }) => {
    const lookup = fakeDns({ "evil.example.": answers });
    const result = await resolveDestination({ host: "evil.example", port: 443 }, options(lookup));
    expect(result).toEqual({ ok: false, code: "destination_forbidden", reason });
  });

  const local: { name: string; host: string; reason: string }[] = [
    { name: "localhost with a trailing dot", host: "localhost.", reason: '"localhost" is a local name (.localhost)' },
    { name: "LOCALHOST", host: "LOCALHOST", reason: '"localhost" is a local name (.localhost)' },
    { name: "a localhost subdomain", host: "evil.localhost", reason: '"evil.localhost" is a local name (.localhost)' },
    { name: "mDNS", host: "printer.local", reason: '"printer.local" is a local name (.local)' },
    { name: "GCP metadata", host: "metadata.google.internal", reason: '"metadata.google.internal" is a local name (.internal)' },
    { name: "GCP metadata, upper-case, trailing dot", host: "METADATA.Google.Internal.", reason: '"metadata.google.internal" is a local name (.internal)' },
    { name: "home.arpa", host: "nas.home.arpa", reason: '"nas.home.arpa" is a local name (.home.arpa)' },
    { name: "a single label", host: "metadata", reason: 'single-label name "metadata" is resolved through local search domains' },
    { name: "a single label with a trailing dot", host: "wiki.", reason: 'single-label name "wiki" is resolved through local search domains' },
  ];

  it.each(local)("refuses local names before any DNS query: $name", async ({ host, reason }) => {
    const lookup = fakeDns({});
    const result = await resolveDestination({ host, port: 443 }, options(lookup));
    expect(result).toEqual({ ok: false, code: "destination_forbidden", reason: `${reason}; refused unless an internal service names it` });
    expect(lookup).not.toHaveBeenCalled();
  });
});

describe("DNS failures", () => {
  it("maps a timeout to dns_failure", async () => {
    const lookup = vi.fn<Lookup>(() => new Promise<LookupAddress[]>(() => {}));
    const result = await resolveDestination({ host: "slow.example", port: 443 }, options(lookup, { timeoutMs: 20 }));
    expect(result).toEqual({ ok: false, code: "dns_failure", reason: 'DNS lookup for "slow.example" timed out after 20 ms' });
  });

  it("uses a 2 s timeout by default", async () => {
    vi.useFakeTimers();
    try {
      const lookup = vi.fn<Lookup>(() => new Promise<LookupAddress[]>(() => {}));
      const pending = resolveDestination({ host: "slow.example", port: 443 }, options(lookup));
      await vi.advanceTimersByTimeAsync(1999);
      let settled = false;
      void pending.then(() => (settled = true));
      await vi.advanceTimersByTimeAsync(0);
      expect(settled).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(await pending).toMatchObject({ code: "dns_failure", reason: 'DNS lookup for "slow.example" timed out after 2000 ms' });
    } finally {
      vi.useRealTimers();
    }
  });

  it("maps a resolver error to dns_failure with its code", async () => {
    const result = await resolveDestination({ host: "nx.example", port: 443 }, options(fakeDns({})));
    expect(result).toEqual({ ok: false, code: "dns_failure", reason: 'DNS lookup for "nx.example" failed (ENOTFOUND)' });
  });

  it("maps an empty answer to dns_failure", async () => {
    const result = await resolveDestination({ host: "empty.example", port: 443 }, options(fakeDns({ "empty.example.": [] })));
    expect(result).toEqual({ ok: false, code: "dns_failure", reason: 'DNS lookup for "empty.example" returned no addresses' });
  });
});

describe("IP literals", () => {
  const literals: { host: string; reason: string }[] = [
    { host: "127.0.0.1", reason: "127.0.0.1 is loopback" },
    { host: "0x7f.1", reason: "127.0.0.1 is loopback" },
    { host: "2130706433", reason: "127.0.0.1 is loopback" },
    { host: "[::1]", reason: "::1 is loopback" },
    { host: "[::ffff:169.254.169.254]", reason: "IPv4-mapped ::ffff:169.254.169.254 is link-local: the cloud metadata service" },
    { host: "0251.0376.0251.0376", reason: "169.254.169.254 is link-local: the cloud metadata service" },
  ];

  it.each(literals)("refuses $host without a lookup", async ({ host, reason }) => {
    const lookup = fakeDns({});
    expect(await resolveDestination({ host, port: 443 }, options(lookup))).toEqual({ ok: false, code: "destination_forbidden", reason });
    expect(lookup).not.toHaveBeenCalled();
  });

  it("accepts a public literal as written, canonicalised, without a lookup", async () => {
    const lookup = fakeDns({});
    expect(await resolveDestination({ host: "[2606:4700:0:0::1111]", port: 443 }, options(lookup))).toMatchObject({
      ok: true,
      host: "2606:4700::1111",
      address: "2606:4700::1111",
      family: 6,
      checked: ["2606:4700::1111"],
    });
    expect(lookup).not.toHaveBeenCalled();
  });

  it.each(["foo.127", "a..b", "[::1", "exa mple.com", "-bad.example", ""])("refuses the malformed host %j", async (host) => {
    const lookup = fakeDns({});
    expect(await resolveDestination({ host, port: 443 }, options(lookup))).toMatchObject({ ok: false, code: "invalid_host" });
    expect(lookup).not.toHaveBeenCalled();
  });
});

describe("ports", () => {
  const cases: { name: string; port: number; allowed: number[]; reason: string }[] = [
    { name: "not listed", port: 8443, allowed: [443], reason: "port 8443 is not one of the service's ports (443)" },
    { name: "zero", port: 0, allowed: [443], reason: "port 0 is not a valid TCP port" },
    { name: "above 65535", port: 65536, allowed: [65536], reason: "port 65536 is not a valid TCP port" },
    { name: "negative", port: -443, allowed: [443], reason: "port -443 is not a valid TCP port" },
    { name: "fractional", port: 443.5, allowed: [443], reason: "port 443.5 is not a valid TCP port" },
    { name: "NaN", port: Number.NaN, allowed: [443], reason: "port NaN is not a valid TCP port" },
    { name: "no allowed ports given", port: 443, allowed: [], reason: "no ports are allowed: the caller passed an empty list" },
  ];

  it.each(cases)("refuses before DNS: $name", async ({ port, allowed, reason }) => {
    const lookup = fakeDns({ "api.example.com.": ["140.82.112.3"] });
    const result = await resolveDestination({ host: "api.example.com", port }, options(lookup, { allowedPorts: allowed }));
    expect(result).toEqual({ ok: false, code: "port_forbidden", reason });
    expect(lookup).not.toHaveBeenCalled();
  });

  it.each([
    { name: "the proxy's port, even when listed", host: "127.0.0.1", port: PROXY_PORT, allowInternal: ["127.0.0.1/32"] },
    { name: "the health port on another loopback address", host: "127.0.0.2", port: HEALTH_PORT, allowInternal: ["127.0.0.0/8"] },
    { name: "the dashboard's port on an address of this machine", host: "10.0.0.5", port: DASHBOARD_PORT, allowInternal: ["10.0.0.0/8"] },
  ])("refuses Bulkhead's own port on Bulkhead's own address: $name", async ({ host, port, allowInternal }) => {
    const result = await resolveDestination(
      { host, port },
      options(fakeDns({}), { allowedPorts: [443, port], allowInternal, isOwnAddress: (a) => a === "10.0.0.5" || a.startsWith("127.") }),
    );
    expect(result).toEqual({ ok: false, code: "port_forbidden", reason: `port ${port} belongs to Bulkhead itself, and ${host} is one of Bulkhead's own addresses` });
  });

  it("refuses a name with any answer on Bulkhead's own address and port", async () => {
    const lookup = fakeDns({ "mixed.example.com.": ["10.1.2.3", "10.0.0.5"] });
    const result = await resolveDestination(
      { host: "mixed.example.com", port: PROXY_PORT },
      options(lookup, { allowedPorts: [PROXY_PORT], allowInternal: ["10.0.0.0/8"], isOwnAddress: (a) => a === "10.0.0.5" }),
    );
    expect(result).toMatchObject({ ok: false, code: "port_forbidden" });
  });

  it.each([PROXY_PORT, HEALTH_PORT, DASHBOARD_PORT])("allows a public API on port %i: Bulkhead's ports belong to Bulkhead's addresses only", async (port) => {
    const lookup = fakeDns({ "api.example.com.": ["140.82.112.3"] });
    expect(await resolveDestination({ host: "api.example.com", port }, options(lookup, { allowedPorts: [port] }))).toMatchObject({ ok: true, address: "140.82.112.3", port });
    expect(await resolveDestination({ host: "140.82.112.3", port }, options(fakeDns({}), { allowedPorts: [port] }))).toMatchObject({ ok: true, port });
  });

  it("counts loopback and this machine's interfaces as Bulkhead's own by default", async () => {
    const { isMachineAddress } = await import("@/lib/net/own-addresses");
    const os = await import("node:os");
    const mine = Object.values(os.networkInterfaces()).flat().find((e) => e && e.family === "IPv4" && !e.internal);
    expect(isMachineAddress("127.0.0.1")).toBe(true);
    expect(isMachineAddress("127.9.9.9")).toBe(true);
    expect(isMachineAddress("::1")).toBe(true);
    expect(isMachineAddress("0.0.0.0")).toBe(true);
    expect(isMachineAddress("140.82.112.3")).toBe(false);
    if (mine) expect(isMachineAddress(mine.address)).toBe(true);
  });

  it("derives the allowed list from a descriptor: its ports, or the scheme default", () => {
    expect(allowedPortsFor({ scheme: "https" })).toEqual([443]);
    expect(allowedPortsFor({ scheme: "http", ports: [] })).toEqual([80]);
    expect(allowedPortsFor({ scheme: "https", ports: [443, 8443] })).toEqual([443, 8443]);
  });
});

describe("allowInternal", () => {
  it("allows a literal inside a declared CIDR, and marks it internal", async () => {
    const result = await resolveDestination(
      { host: "10.1.2.3", port: 443 },
      options(fakeDns({}), { allowInternal: ["10.1.0.0/16"] }),
    );
    expect(result).toMatchObject({ ok: true, address: "10.1.2.3", internal: true });
  });

  it("allows a public name whose answers are all public or declared", async () => {
    const lookup = fakeDns({ "db.example.com.": ["10.1.2.3"] });
    const result = await resolveDestination({ host: "db.example.com", port: 443 }, options(lookup, { allowInternal: ["10.1.0.0/16"] }));
    expect(result).toMatchObject({ ok: true, address: "10.1.2.3", internal: true });
  });

  const refused: { name: string; host: string; cidrs: string[]; reason: string }[] = [
    { name: "an address outside the CIDR", host: "10.2.0.1", cidrs: ["10.1.0.0/16"], reason: "10.2.0.1 is private (RFC 1918)" },
    {
      name: "IPv4-mapped form of an allowed address (no embedded match, by choice)",
      host: "[::ffff:10.1.2.3]",
      cidrs: ["10.1.0.0/16"],
      reason: "IPv4-mapped ::ffff:10.1.2.3 is private (RFC 1918)",
    },
    {
      name: "NAT64 form of an allowed address",
      host: "[64:ff9b::10.1.2.3]",
      cidrs: ["10.1.0.0/16"],
      reason: "NAT64 64:ff9b::10.1.2.3 is private (RFC 1918)",
    },
    { name: "0.0.0.0 even when its /8 is listed", host: "0.0.0.0", cidrs: ["0.0.0.0/8"], reason: '0.0.0.0 is "this network" (0.0.0.0 reaches the local host)' },
    { name: "multicast even when listed", host: "224.0.0.1", cidrs: ["224.0.0.0/8"], reason: "224.0.0.1 is multicast" },
    { name: "an entry without a prefix", host: "10.1.2.3", cidrs: ["10.1.2.3"], reason: 'allowInternal entry "10.1.2.3" is not a CIDR such as 10.0.0.0/8 or fd00::/8' },
    { name: "a legacy-spelled entry", host: "10.1.2.3", cidrs: ["0xa.1.0.0/16"], reason: 'allowInternal entry "0xa.1.0.0/16" is not a CIDR such as 10.0.0.0/8 or fd00::/8' },
    { name: "an entry with a zone id", host: "10.1.2.3", cidrs: ["fe80::%eth0/64"], reason: 'allowInternal entry "fe80::%eth0/64" is not a CIDR such as 10.0.0.0/8 or fd00::/8' },
    { name: "an entry that allows everything", host: "127.0.0.1", cidrs: ["0.0.0.0/0"], reason: 'allowInternal entry "0.0.0.0/0" is broader than /8' },
    {
      name: "an IPv4-mapped entry",
      host: "127.0.0.1",
      cidrs: ["::ffff:127.0.0.0/104"],
      reason: 'allowInternal entry "::ffff:127.0.0.0/104" is IPv4 inside IPv6, which is never dialed; list the IPv4 CIDR',
    },
  ];

  it.each(refused)("refuses $name", async ({ host, cidrs, reason }) => {
    const result = await resolveDestination({ host, port: 443 }, options(fakeDns({}), { allowInternal: cidrs }));
    expect(result).toEqual({ ok: false, code: "destination_forbidden", reason });
  });

  it("allows loopback only when it is listed exactly", async () => {
    const open = await resolveDestination({ host: "127.0.0.1", port: 443 }, options(fakeDns({}), { allowInternal: ["127.0.0.1/32"] }));
    expect(open).toMatchObject({ ok: true, address: "127.0.0.1" });
    const other = await resolveDestination({ host: "127.0.0.2", port: 443 }, options(fakeDns({}), { allowInternal: ["127.0.0.1/32"] }));
    expect(other).toEqual({ ok: false, code: "destination_forbidden", reason: "127.0.0.2 is loopback" });
  });
});

describe("allowInternalNames", () => {
  const internal = { allowInternal: ["10.1.0.0/16"], allowInternalNames: ["DB.Internal."] };

  it("lets an internal service name a local host whose answers are inside its CIDRs", async () => {
    const lookup = fakeDns({ "db.internal.": ["10.1.2.3"] });
    const result = await resolveDestination({ host: "db.internal", port: 443 }, options(lookup, internal));
    expect(result).toMatchObject({ ok: true, host: "db.internal", address: "10.1.2.3", internal: true });
  });

  it("refuses a named local host whose answer is public (it must stay inside the CIDRs)", async () => {
    const lookup = fakeDns({ "db.internal.": ["140.82.112.3"] });
    const result = await resolveDestination({ host: "db.internal", port: 443 }, options(lookup, internal));
    expect(result).toEqual({
      ok: false,
      code: "destination_forbidden",
      reason:
        '"db.internal" resolved to a forbidden address (140.82.112.3 is outside the service\'s allowInternal CIDRs); a name with any forbidden answer is refused',
    });
  });

  it("refuses a named local host whose answer is outside the CIDRs", async () => {
    const lookup = fakeDns({ "db.internal.": ["169.254.169.254"] });
    const result = await resolveDestination({ host: "db.internal", port: 443 }, options(lookup, internal));
    expect(result).toMatchObject({ ok: false, code: "destination_forbidden" });
  });

  it("refuses another local name, before DNS", async () => {
    const lookup = fakeDns({ "metadata.google.internal.": ["10.1.2.3"] });
    const result = await resolveDestination({ host: "metadata.google.internal", port: 443 }, options(lookup, internal));
    expect(result).toMatchObject({ ok: false, code: "destination_forbidden" });
    expect(lookup).not.toHaveBeenCalled();
  });

  it("refuses a named local host when the service declares no CIDRs, before DNS", async () => {
    const lookup = fakeDns({ "db.internal.": ["10.1.2.3"] });
    const result = await resolveDestination({ host: "db.internal", port: 443 }, options(lookup, { allowInternalNames: ["db.internal"] }));
    expect(result).toEqual({
      ok: false,
      code: "destination_forbidden",
      reason: '"db.internal" is a local name (.internal); the service names it but declares no allowInternal CIDRs',
    });
    expect(lookup).not.toHaveBeenCalled();
  });
});

describe("results cannot be forged", () => {
  it("are frozen and recognised; a look-alike object is not", async () => {
    const result = await resolveDestination({ host: "140.82.112.3", port: 443 }, options(fakeDns({})));
    expect(isCheckedDestination(result)).toBe(true);
    expect(Object.isFrozen(result)).toBe(true);
    expect(() => {
      (result as { address: string }).address = "127.0.0.1";
    }).toThrow(TypeError);
    expect(isCheckedDestination({ ...result })).toBe(false);
  });
});
