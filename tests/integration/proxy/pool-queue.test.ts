import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { exchange, statuses } from "../../support/tunnel-client";

/**
 * The forwarder keeps 64 connections per origin, shared by every task. A request waiting in the
 * pool's queue for one of them was timed by nothing (undici's headers timeout starts once a
 * request is written to a connection), so while 64 answers streamed (server-sent events the
 * agent reads), every other request to that service waited, unanswered, for as long as they did.
 */
describe("a request waiting for a pooled upstream connection still ends", () => {
  let h: ProxyHarness;
  let token: string;
  let upstream: http.Server;
  let port = 0;
  const streams: net.Socket[] = [];

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      if (req.url === "/quick") {
        res.end("ok");
        return;
      }
      // An event stream that goes on while anyone reads it.
      res.writeHead(200, { "content-type": "text/event-stream" });
      const timer = setInterval(() => res.write("data: tick\n\n"), 200);
      res.on("close", () => clearInterval(timer));
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    port = (upstream.address() as AddressInfo).port;
    h = await startProxyHarness({ env: { BULKHEAD_UPSTREAM_TIMEOUT_SECONDS: "1", BULKHEAD_UPSTREAM_CONNECT_TIMEOUT_SECONDS: "1", BULKHEAD_TASK_MAX_CONNECTIONS: "200", BULKHEAD_AGENT_MAX_CONNECTIONS: "200" } });
    await h.addService({ id: "sse", hosts: ["sse.test"], scheme: "http", ports: [port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: sse\n    effects: [read]\n"));
  });
  afterAll(async () => {
    for (const s of streams) s.destroy();
    await h.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  it("answers 504 upstream_timeout, within the connect and upstream timeouts, while every pooled connection is busy", async () => {
    const request = (path: string) => `GET http://sse.test:${port}${path} HTTP/1.1\r\nHost: sse.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`;
    // 64 streams, read as they come: every connection of the pool is in use.
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        const s = net.connect(h.proxyPort, "127.0.0.1");
        streams.push(s);
        s.on("error", () => undefined);
        await new Promise((r) => s.once("connect", r));
        await new Promise<void>((resolve) => {
          s.once("data", () => resolve());
          s.write(request("/stream"));
        });
      }),
    );
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const started = performance.now();
    const out = await exchange(socket, request("/quick").replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"), 6000);
    expect(statuses(out), out).toEqual([504]);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4))).toMatchObject({ error: "upstream_timeout" });
    // The streams were not disturbed.
    expect(streams.every((s) => !s.destroyed)).toBe(true);
  }, 30_000);
});
