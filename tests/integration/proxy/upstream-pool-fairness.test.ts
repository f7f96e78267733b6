import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * An origin's pooled upstream connections are bounded (64). One task holding all of them with
 * long answers it reads as they come (event streams, long polls) must not leave another task's
 * requests to the same service queued behind its own.
 */
describe("upstream connections are not shared between tasks", () => {
  let h: ProxyHarness;
  let upstream: Upstream;
  const held: http.ServerResponse[] = [];

  beforeAll(async () => {
    upstream = await startHttpUpstream((hit, res) => {
      if (hit.url.startsWith("/stream")) {
        // An event stream that goes on: a line now and then, never the end.
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write("data: hello\n\n");
        held.push(res);
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
    h = await startProxyHarness();
    await h.addService(onLoopback("github", upstream.port, { scheme: "http" }));
  });
  afterAll(async () => {
    for (const res of held) res.destroy();
    await h?.close();
    await upstream?.close();
  });

  it("a task with 64 open streams to a service does not delay another task's request to it", async () => {
    const policy = "rules:\n  - service: github\n    effects: [read]\n";
    const streamer = await h.newTask(policy);
    const other = await h.newTask(policy);
    const url = (path: string) => `http://api.github.com:${upstream.port}${path}`;
    const clients: http.ClientRequest[] = [];
    const opened = Array.from({ length: 64 }, (_, i) =>
      new Promise<void>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: h.proxyPort, path: url(`/stream/${i}`), headers: { host: `api.github.com:${upstream.port}`, "proxy-authorization": `Bearer ${streamer.token}` }, agent: false }, (res) => {
          res.once("data", () => resolve());
          res.resume();
        });
        req.once("error", reject);
        req.end();
        clients.push(req);
      }),
    );
    await Promise.all(opened);
    expect(held.length).toBe(64);
    try {
      const started = Date.now();
      const answer = await viaProxy(h.proxyPort, url("/repos/acme/app"), { token: other.token });
      expect(answer.status).toBe(200);
      // Queued behind the streams it would have waited for the upstream timeout (60 s) and failed.
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const req of clients) req.destroy();
    }
  }, 30_000);
});
