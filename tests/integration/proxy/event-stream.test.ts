import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * A server-sent event stream from an endpoint with a stored credential: its answers are searched
 * for the echoed secret, which holds back what may be the start of one. The stream's head and
 * each event must still reach the agent as they come, not when the next event pushes them out.
 */
describe("event streams through an endpoint with a credential", () => {
  const SECRET = "ghp_streamSecret0123456789abcdefABCDEF";
  let h: ProxyHarness;
  let upstream: Upstream;
  const open: http.ServerResponse[] = [];

  beforeAll(async () => {
    upstream = await startHttpUpstream((hit, res) => {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      open.push(res);
      // The head alone first; events only when the test sends them.
    });
    h = await startProxyHarness();
    await h.addService(onLoopback("github", upstream.port, { scheme: "http" }));
    await h.addCredential({ name: "gh", scheme: "http", host: "api.github.com", port: upstream.port, headerTemplate: "Authorization: Bearer {secret}", secret: SECRET });
  });
  afterAll(async () => {
    for (const res of open) res.destroy();
    await h?.close();
    await upstream?.close();
  });

  it("passes the head at once and every event whole as it comes; an echoed secret is still redacted", async () => {
    const { token } = await h.newTask("rules:\n  - service: github\n    effects: [read]\n");
    const received: string[] = [];
    let onData: () => void = () => undefined;
    const head = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: h.proxyPort, path: `http://api.github.com:${upstream.port}/events`, headers: { host: `api.github.com:${upstream.port}`, "proxy-authorization": `Bearer ${token}` }, agent: false }, (res) => {
        res.setEncoding("latin1");
        res.on("data", (c: string) => {
          received.push(c);
          onData();
        });
        resolve(res);
      });
      req.once("error", reject);
      req.end();
    });
    expect(head.statusCode).toBe(200);
    expect(head.headers["content-type"]).toBe("text/event-stream");
    const upstreamSide = open.at(-1)!;
    const next = (event: string) =>
      new Promise<string>((resolve) => {
        const before = received.join("").length;
        onData = () => {
          const text = received.join("");
          if (text.length > before && text.endsWith("\n\n")) resolve(text.slice(before));
        };
        upstreamSide.write(event);
      });
    expect(await next("data: tick 1\n\n")).toBe("data: tick 1\n\n");
    expect(await next(": ping\n\n")).toBe(": ping\n\n");
    expect(await next(`data: echo ${SECRET}\n\n`)).toBe(`data: echo ${"*".repeat(SECRET.length)}\n\n`);
    head.destroy();
  }, 15_000);
});
