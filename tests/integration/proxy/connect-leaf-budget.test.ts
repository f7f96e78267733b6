import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { connectTunnel, tlsOver } from "../../support/tunnel-client";
import { createTestPki, startHttpsUpstream, type Upstream } from "../../support/upstreams";

const GITHUB = "api.github.com";
const BUDGET = 3;

/**
 * A CONNECT on the explicit listener to any address (1.2.3.4:443: no DNS answer, no upstream
 * needed) had the worker mint a leaf certificate for it, without limit: a task could spend the
 * worker's CPU on a thousand addresses and push every other task's certificates out of the shared
 * cache. New names are now made within a per-task budget (the sandboxes' budget,
 * BULKHEAD_SANDBOX_LEAVES_PER_MINUTE); a name the cache holds costs nothing.
 */
describe("leaf certificates for explicit tunnels are made within the task's budget", () => {
  let h: ProxyHarness;
  let github: Upstream;
  let caPem: string;
  let a: string;
  let b: string;

  beforeAll(async () => {
    const pki = await createTestPki();
    github = await startHttpsUpstream(pki, GITHUB);
    h = await startProxyHarness({ upstreamCaPem: pki.caPem, leavesPerMinute: BUDGET });
    await h.addService(onLoopback("github", github.port));
    const policy = "unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n";
    a = (await h.newTask(policy)).token;
    b = (await h.newTask(policy)).token;
    caPem = (await getCaCertificatePem(h.t.db))!.certPem;
  });
  afterAll(async () => {
    await h.close();
    await github.close();
  });

  const connect = (token: string, target: string) => connectTunnel(h.proxyPort, target, { "proxy-authorization": `Bearer ${token}` });
  const leafStats = () => h.proxy.status().leafCache as { size: number; misses: number };

  it("mints for new names up to the budget, then refuses the CONNECT (429, audited) without minting", async () => {
    // An IP literal's leaf is made as the tunnel opens (a client sends no SNI for an address).
    for (const n of [1, 2, 3]) {
      const t = await connect(a, `1.2.3.${n}:443`);
      expect(t.status, `1.2.3.${n}`).toBe(200);
      t.socket.destroy();
    }
    const before = leafStats();
    const over = await connect(a, "1.2.3.4:443");
    expect(over.status).toBe(429);
    expect(JSON.parse(over.body)).toMatchObject({ error: "certificate_limit", kind: "rate_limited" });
    expect(leafStats().misses).toBe(before.misses);
    const events = await h.events();
    expect(events.filter((e) => JSON.stringify(e).includes("certificate_limit")).length).toBeGreaterThanOrEqual(1);
  });

  it("a name the cache already holds opens past the budget, and another task has its own budget", async () => {
    const again = await connect(a, "1.2.3.1:443");
    expect(again.status).toBe(200);
    again.socket.destroy();
    const other = await connect(b, "1.2.3.9:443");
    expect(other.status).toBe(200);
    other.socket.destroy();
  });

  it("the task's own service still works for a task over its budget when its leaf is held", async () => {
    const tunnel = await connect(b, `${GITHUB}:${github.port}`);
    expect(tunnel.status).toBe(200);
    const secured = await tlsOver(tunnel.socket, GITHUB, caPem);
    secured.destroy();
  });
});
