import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { exchange, statuses } from "../../support/tunnel-client";

/**
 * The forwarder keeps a pool of upstream connections per (origin, checked address), each idle
 * connection kept alive for 30 s and each pool for 5 minutes. A service declared with a wildcard
 * host (`*.wild.test`) lets a task name a new origin with every request: each one left a new
 * pool and an idle upstream connection behind, so a task at its request rate held thousands of
 * the worker's file descriptors, enough to leave it unable to accept or dial for anyone.
 */
describe("the forwarder's upstream pools are bounded", () => {
  let h: ProxyHarness;
  let token: string;
  let upstream: http.Server;
  let port = 0;

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => res.end("ok"));
    // Idle connections kept as long as the forwarder keeps them (30 s), as many servers do.
    upstream.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    port = (upstream.address() as AddressInfo).port;
    h = await startProxyHarness();
    await h.addService({ id: "wild", hosts: ["*.wild.test"], scheme: "http", ports: [port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: wild\n    effects: [read]\n"));
  });
  afterAll(async () => {
    await h.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  it("keeps no more idle upstream connections than its pool limit, however many origins a task names", async () => {
    const origins = 320;
    for (let i = 0; i < origins; i++) {
      const socket = net.connect(h.proxyPort, "127.0.0.1");
      await new Promise((r) => socket.once("connect", r));
      const name = `h${i}.wild.test:${port}`;
      const out = await exchange(socket, `GET http://${name}/ HTTP/1.1\r\nHost: ${name}\r\nProxy-Authorization: Bearer ${token}\r\nConnection: close\r\n\r\n`, 2000);
      expect(statuses(out), out).toEqual([200]);
    }
    // Every answer is in; the connections left open to the upstream are the idle ones kept.
    await new Promise((r) => setTimeout(r, 300));
    const open = await new Promise<number>((resolve, reject) => upstream.getConnections((error, count) => (error ? reject(error) : resolve(count))));
    expect(open).toBeLessThanOrEqual(256);
    // And the origins still work (the control): an evicted origin gets a new pool.
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const again = await exchange(socket, `GET http://h0.wild.test:${port}/ HTTP/1.1\r\nHost: h0.wild.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\nConnection: close\r\n\r\n`, 2000);
    expect(statuses(again)).toEqual([200]);
  }, 120_000);
});
