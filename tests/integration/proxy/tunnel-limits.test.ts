import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { closedAfter, connectTunnel, requestOn, statuses, tlsOver } from "../../support/tunnel-client";
import { createTestPki, startHttpsUpstream, type Upstream } from "../../support/upstreams";

const GITHUB = "api.github.com";
const IDLE_MS = 1000;
const LIFETIME_MS = 3000;

/**
 * Tunnels do not stay open for ever: an uninspected (passthrough) tunnel with no traffic is
 * closed after the idle timeout, and no tunnel outlives the maximum lifetime, however busy.
 */
describe("tunnel idle timeout and maximum lifetime", () => {
  let h: ProxyHarness;
  let github: Upstream;
  let opaque: Upstream;
  let caPem: string;
  let upstreamCaPem: string;
  let token: string;

  beforeAll(async () => {
    const pki = await createTestPki();
    upstreamCaPem = pki.caPem;
    github = await startHttpsUpstream(pki, GITHUB);
    opaque = await startHttpsUpstream(pki, "tunnel.test");
    h = await startProxyHarness({
      upstreamCaPem: pki.caPem,
      env: { BULKHEAD_TUNNEL_IDLE_SECONDS: String(IDLE_MS / 1000), BULKHEAD_TUNNEL_MAX_LIFETIME_SECONDS: String(LIFETIME_MS / 1000) },
    });
    await h.addService(onLoopback("github", github.port));
    await h.addService({ id: "opaque", hosts: ["tunnel.test"], scheme: "https", ports: [opaque.port], protocol: "rest", proxy: { tls: "passthrough", internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask('unlisted: deny\nrules:\n  - service: github\n    resources: ["acme/app"]\n    effects: [read]\n  - service: opaque\n    operations: [tunnel]\n    effects: [irreversible]\n    waive_approval: true\n'));
    caPem = (await getCaCertificatePem(h.t.db))!.certPem;
  });
  afterAll(async () => {
    await h.close();
    await Promise.all([github.close(), opaque.close()]);
  });

  const passthrough = async () => {
    const tunnel = await connectTunnel(h.proxyPort, `tunnel.test:${opaque.port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    return tlsOver(tunnel.socket, "tunnel.test", upstreamCaPem);
  };

  /**
   * Sends a request every `everyMs` until the connection closes; returns how many were answered
   * and when the last answer came (performance.now()).
   */
  const keepBusy = async (send: () => Promise<string>, everyMs: number) => {
    let answered = 0;
    let lastAt = 0;
    for (;;) {
      const out = await send().catch(() => null);
      if (out === null) return { answered, lastAt };
      expect(statuses(out)).toEqual([200]);
      answered++;
      lastAt = performance.now();
      await new Promise((r) => setTimeout(r, everyMs));
    }
  };

  it("an idle passthrough tunnel is closed after the idle timeout", async () => {
    const secure = await passthrough();
    expect(statuses(await requestOn(secure, "GET /a HTTP/1.1\r\nHost: tunnel.test\r\n\r\n"))).toEqual([200]);
    const idleSince = performance.now();
    const ms = await closedAfter(secure, idleSince, LIFETIME_MS + 2000);
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 100);
    expect(ms).toBeLessThan(LIFETIME_MS);
  });

  it("a busy passthrough tunnel is closed at its maximum lifetime", async () => {
    const openedAt = performance.now();
    const secure = await passthrough();
    const closed = closedAfter(secure, openedAt, LIFETIME_MS + 3000);
    const { answered, lastAt } = await keepBusy(() => requestOn(secure, "GET /b HTTP/1.1\r\nHost: tunnel.test\r\n\r\n"), IDLE_MS / 4);
    const ms = await closed;
    // Busy: it carried answers after the point where an idle tunnel would have been closed.
    expect(answered).toBeGreaterThan(1);
    expect(lastAt - openedAt).toBeGreaterThan(IDLE_MS);
    expect(ms).toBeGreaterThanOrEqual(LIFETIME_MS - 100);
    expect(ms).toBeLessThan(LIFETIME_MS + 1500);
  }, 15_000);

  it("a busy intercepted tunnel is closed at its maximum lifetime", async () => {
    const openedAt = performance.now();
    const tunnel = await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, { "proxy-authorization": `Bearer ${token}` });
    const secure = await tlsOver(tunnel.socket, GITHUB, caPem);
    const closed = closedAfter(secure, openedAt, LIFETIME_MS + 3000);
    const { answered, lastAt } = await keepBusy(() => requestOn(secure, `GET /repos/acme/app HTTP/1.1\r\nHost: ${GITHUB}:${github.port}\r\n\r\n`), IDLE_MS / 4);
    const ms = await closed;
    // Busy: it carried answers after the point where an idle tunnel would have been closed.
    expect(answered).toBeGreaterThan(1);
    expect(lastAt - openedAt).toBeGreaterThan(IDLE_MS);
    expect(ms).toBeGreaterThanOrEqual(LIFETIME_MS - 100);
    expect(ms).toBeLessThan(LIFETIME_MS + 1500);
  }, 15_000);
});
