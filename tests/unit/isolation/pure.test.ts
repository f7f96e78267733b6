import { chownSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { describe, expect, it } from "vitest";
import { instanceIdFor, loadIsolationConfig, sandboxUserProblem } from "@/lib/config/isolation";
import { ResolverMemory } from "@/proxy-worker/isolation/answers";
import { COUNTER_MS, counterReadDue, IDLE_COUNTER_MS } from "@/proxy-worker/isolation/counters";
import { interfacesOverlap, renderFence } from "@/proxy-worker/isolation/fence";
import { isOwnNetns, sandboxNames, slotOfInterface } from "@/proxy-worker/isolation/names";
import { freeSlot, poolSize, slotAddresses, slotOfAddress } from "@/proxy-worker/isolation/pool";
import { sniff } from "@/proxy-worker/isolation/sniff";

const config = loadIsolationConfig("/var/lib/bulkhead", { BULKHEAD_INSTANCE_ID: "ab12" });

/** The bytes a real TLS client sends first, captured on a local socket pair. */
async function clientHello(servername?: string): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => server.once("connection", (s) => s.once("data", (d: Buffer) => { resolve(d); s.destroy(); })));
  const client = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
  client.on("error", () => undefined);
  const bytes = await got;
  client.destroy();
  server.close();
  return bytes;
}

describe("isolation configuration", () => {
  it("derives gateways from the pools and a stable instance id from the data folder", () => {
    expect(config.gatewayV4).toBe("10.213.0.1");
    expect(config.gatewayV6).toBe("fd42:b17e:ad00::1");
    expect(instanceIdFor("/var/lib/bulkhead")).toBe(instanceIdFor("/var/lib/bulkhead"));
    expect(instanceIdFor("/var/lib/bulkhead")).not.toBe(instanceIdFor("/srv/other"));
    expect(instanceIdFor("/x")).toMatch(/^[a-z0-9]{4}$/);
  });
  it("names each bad variable", () => {
    expect(() => loadIsolationConfig("/d", { BULKHEAD_INSTANCE_ID: "TOO-LONG" })).toThrow(/BULKHEAD_INSTANCE_ID must be 1 to 4/);
    expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_POOL_V4: "fd00::/8" })).toThrow(/BULKHEAD_SANDBOX_POOL_V4 must be an IPv4 CIDR/);
    expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_USER: "nobody" })).toThrow(/BULKHEAD_SANDBOX_USER must be uid:gid/);
  });

  // A sandbox's command has no capabilities, but needs none to read its own user's files: as root,
  // as the user Bulkhead runs as, or as the data folder's owner it could read the master key and
  // mint task tokens for any task.
  it("refuses a sandbox user that owns Bulkhead's files", () => {
    for (const user of ["0:0", "0:65534", "65534:0", "00:1"]) {
      expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_USER: user })).toThrow(/BULKHEAD_SANDBOX_USER must not be root/);
    }
    expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_USER: "4294967295:1" })).toThrow(/at most 4294967294/);
    const own = process.getuid!();
    if (own !== 0) expect(() => loadIsolationConfig("/d", { BULKHEAD_SANDBOX_USER: `${own}:${own}` })).toThrow(/must not be the user Bulkhead runs as/);
    expect(sandboxUserProblem(4242, "/nonexistent", 4242)).toMatch(/must not be the user Bulkhead runs as \(uid 4242\)/);
    const dir = mkdtempSync(path.join(tmpdir(), "bh-sandbox-user-"));
    try {
      const owner = process.getuid!() === 0 ? 4243 : process.getuid!();
      if (process.getuid!() === 0) chownSync(dir, owner, owner);
      expect(sandboxUserProblem(owner, dir, 1)).toMatch(/must not be the owner of the data folder/);
      expect(sandboxUserProblem(owner + 1, dir, 1)).toBeNull();
      expect(sandboxUserProblem(65534, "/nonexistent", 0)).toBeNull();
      expect(loadIsolationConfig(dir, { BULKHEAD_SANDBOX_USER: "65534:65534" }).uid).toBe(65534);
      // Isolation off: no sandbox runs, so a worker running as that user is not stopped for it.
      if (process.getuid!() === 0) {
        expect(() => loadIsolationConfig(dir, { BULKHEAD_SANDBOX_USER: `${owner}:${owner}` })).toThrow(/owner of the data folder/);
        expect(loadIsolationConfig(dir, { BULKHEAD_ISOLATION: "off", BULKHEAD_SANDBOX_USER: `${owner}:${owner}` }).uid).toBe(owner);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("names and pools", () => {
  it("keeps interface names within 15 characters and recognises only this instance's", () => {
    const n = sandboxNames("ab12", 999_999, "deadbeef");
    expect(n.hostIf.length).toBeLessThanOrEqual(15);
    expect(n.sandboxIf.length).toBeLessThanOrEqual(15);
    expect(slotOfInterface("ab12", n.hostIf)).toBe(999_999);
    expect(slotOfInterface("ab1", n.hostIf)).toBeNull();
    expect(isOwnNetns("ab12", n.netns)).toBe(true);
    expect(isOwnNetns("ab1", n.netns)).toBe(false);
    expect(isOwnNetns("ab12", "bh-ab12-x")).toBe(false);
  });
  it("gives every slot its own IPv4 and IPv6 address and finds the slot back", () => {
    expect(slotAddresses(config, 0)).toEqual({ slot: 0, v4: "10.213.0.2", v6: "fd42:b17e:ad00::2" });
    expect(slotAddresses(config, 300).v4).toBe("10.213.1.46");
    expect(slotOfAddress(config, "10.213.1.46")).toBe(300);
    expect(slotOfAddress(config, "fd42:b17e:ad00::2")).toBe(0);
    expect(slotOfAddress(config, "10.214.0.2")).toBeNull();
    expect(slotOfAddress(config, "10.213.0.1")).toBeNull();
  });
  it("reports exhaustion instead of reusing a slot", () => {
    const tiny = loadIsolationConfig("/d", { BULKHEAD_SANDBOX_POOL_V4: "10.9.0.0/30" });
    expect(poolSize(tiny)).toBe(1);
    expect(freeSlot(tiny, new Set())).toBe(0);
    expect(freeSlot(tiny, new Set([0]))).toBeNull();
  });
});

describe("the fence ruleset", () => {
  const rules = renderFence(config);
  it("captures all TCP and DNS of both families to the gateway and drops and counts everything else", () => {
    expect(rules).toMatch(/^table inet bulkhead_ab12 \{/);
    expect(rules).toContain('iifname "bhab12h*" meta nfproto ipv4 meta l4proto tcp dnat ip to 10.213.0.1:15001');
    expect(rules).toContain('iifname "bhab12h*" meta nfproto ipv6 meta l4proto tcp dnat ip6 to [fd42:b17e:ad00::1]:15001');
    expect(rules).toContain("th dport 53 dnat ip to 10.213.0.1:15053");
    expect(rules).toContain("th dport 53 dnat ip6 to [fd42:b17e:ad00::1]:15053");
    expect(rules).toContain("fib saddr . iif oif missing counter drop");
    expect(rules).toMatch(/chain relay \{[^}]*jump blocked[^}]*oifname "bhab12h\*" counter drop/);
    expect(rules).toMatch(/chain blocked \{[\s\S]*update @drops4[\s\S]*update @drops6[\s\S]*counter drop\n  \}/);
    expect(rules).toMatch(/comment "bulkhead fence [0-9a-f]{12}"/);
  });
  it("knows which instance ids would match each other's interfaces", () => {
    expect(interfacesOverlap("a", "ah12")).toBe(true);
    expect(interfacesOverlap("ah12", "a")).toBe(true);
    expect(interfacesOverlap("ab", "abh1")).toBe(true);
    expect(interfacesOverlap("a", "a")).toBe(false);
    expect(interfacesOverlap("a", "ab12")).toBe(false);
    expect(interfacesOverlap("ab12", "ab13")).toBe(false);
    expect(interfacesOverlap("t3f9", "p3f9")).toBe(false);
  });
  it("changes version when anything in it changes", () => {
    const other = renderFence({ ...config, listenPort: 15002 });
    expect(/fence ([0-9a-f]+)/.exec(other)?.[1]).not.toBe(/fence ([0-9a-f]+)/.exec(rules)?.[1]);
  });
});

describe("sniffing the first bytes", () => {
  it("finds the SNI of a real ClientHello, also when it arrives in pieces", async () => {
    const hello = await clientHello("API.Example.com");
    expect(sniff(hello)).toEqual({ kind: "tls", serverName: "api.example.com" });
    expect(sniff(hello.subarray(0, 20))).toEqual({ kind: "more" });
    expect(sniff(await clientHello())).toEqual({ kind: "tls", serverName: null });
  });
  it("tells HTTP from raw TCP", () => {
    expect(sniff(Buffer.from("GET / HTTP/1.1\r\n"))).toEqual({ kind: "http" });
    expect(sniff(Buffer.from("GE"))).toEqual({ kind: "more" });
    expect(sniff(Buffer.from("SSH-2.0-OpenSSH_9.2\r\n"))).toEqual({ kind: "raw" });
    expect(sniff(Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]))).toEqual({ kind: "raw" });
    expect(sniff(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0]))).toEqual({ kind: "raw" });
  });
});

describe("what the resolver told each sandbox", () => {
  it("agrees only for the sandbox, name and address it answered, until forgotten", () => {
    const m = new ResolverMemory(1000);
    m.remember("s1", "api.example.com", ["203.0.113.5"], 30_000, 0);
    expect(m.agrees("s1", "api.example.com", "203.0.113.5", 10)).toBe(true);
    expect(m.agrees("s1", "api.example.com", "203.0.113.6", 10)).toBe(false);
    expect(m.agrees("s2", "api.example.com", "203.0.113.5", 10)).toBe(false);
    expect(m.agrees("s1", "api.example.com", "203.0.113.5", 40_000)).toBe(false);
    expect(m.namesFor("s1", "203.0.113.5", 10)).toEqual(["api.example.com"]);
    m.retain(new Set());
    expect(m.agrees("s1", "api.example.com", "203.0.113.5", 10)).toBe(false);
  });
});

describe("docs/isolation.md", () => {
  it("prints exactly the ruleset Bulkhead installs", async () => {
    const { readFileSync } = await import("node:fs");
    const doc = readFileSync("docs/isolation.md", "utf8");
    const printed = /```nft\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(printed).toBe(renderFence(loadIsolationConfig(".data", { BULKHEAD_INSTANCE_ID: "a1b2" })));
  });
});

describe("fence drop counters: when they are read", () => {
  it("reads every COUNTER_MS while a sandbox is bound", () => {
    expect(counterReadDue({ bound: true, boundAtLastRead: true, msSinceLastRead: COUNTER_MS })).toBe(true);
    expect(counterReadDue({ bound: true, boundAtLastRead: false, msSinceLastRead: COUNTER_MS })).toBe(true);
    expect(counterReadDue({ bound: true, boundAtLastRead: true, msSinceLastRead: 10 })).toBe(false);
  });

  it("reads once more after the last sandbox went, for its final drops", () => {
    expect(counterReadDue({ bound: false, boundAtLastRead: true, msSinceLastRead: COUNTER_MS })).toBe(true);
  });

  it("with no sandbox bound spawns nft only every IDLE_COUNTER_MS", () => {
    let reads = 0;
    let last = { at: 0, bound: false };
    // Ten minutes of ticks every COUNTER_MS, never a sandbox.
    for (let now = COUNTER_MS; now <= 600_000; now += COUNTER_MS) {
      if (counterReadDue({ bound: false, boundAtLastRead: last.bound, msSinceLastRead: now - last.at })) {
        reads++;
        last = { at: now, bound: false };
      }
    }
    expect(reads).toBe(600_000 / IDLE_COUNTER_MS);
    expect(IDLE_COUNTER_MS).toBeGreaterThanOrEqual(30 * COUNTER_MS);
  });
});
