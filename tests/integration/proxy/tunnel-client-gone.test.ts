import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { waitFor } from "../../support/log-capture";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { connectTunnel } from "../../support/tunnel-client";
import { createTestPki, startHttpsUpstream, type Upstream } from "../../support/upstreams";

const GITHUB = "api.github.com";

/**
 * A client that opened an intercepted tunnel and left in the middle of the TLS handshake (its
 * last handshake message never sent) kept its connection on the worker, counted against the
 * task's and the agent's connection limits, until the 20 s head timeout: 256 such tunnels locked
 * the task out for 20 s although it held no connection. The worker now lets go when the client's
 * side closes.
 */
describe("a tunnel whose client left during the TLS handshake", () => {
  let h: ProxyHarness;
  let github: Upstream;
  let caPem: string;
  let token: string;

  beforeAll(async () => {
    const pki = await createTestPki();
    github = await startHttpsUpstream(pki, GITHUB);
    h = await startProxyHarness({ upstreamCaPem: pki.caPem });
    await h.addService(onLoopback("github", github.port));
    token = (await h.newTask("unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n")).token;
    caPem = (await getCaCertificatePem(h.t.db))!.certPem;
  });
  afterAll(async () => {
    await h.close();
    await github.close();
  });

  const open = () => (h.proxy.status() as { openConnections: number }).openConnections;

  it("is let go of within a second or two, not held until the head timeout", async () => {
    const before = open();
    for (let i = 0; i < 5; i++) {
      const tunnel = await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, { "proxy-authorization": `Bearer ${token}` });
      expect(tunnel.status).toBe(200);
      await new Promise<void>((resolve) => {
        const s = tls.connect({ socket: tunnel.socket, servername: GITHUB, ca: caPem });
        // Gone as soon as the client's side is done: the worker never sees the last message.
        s.once("secureConnect", () => {
          s.destroy();
          resolve();
        });
        s.once("error", () => resolve());
      });
    }
    await waitFor(() => open() <= before, 4_000, "the tunnels to be let go of");
  }, 30_000);
});
