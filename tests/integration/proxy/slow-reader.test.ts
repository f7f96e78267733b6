import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";

/**
 * A client that stops reading its answer. The upstream is paused while the client's side is
 * full, and undici does not time a paused body: the upstream connection (one of the pool's few
 * for that origin) was held for as long as the client liked, so enough such clients left every
 * other task's requests to that service waiting in the pool's queue, unanswered.
 */
describe("a client that stops reading its answer does not hold the upstream", () => {
  let h: ProxyHarness;
  let token: string;
  let upstream: http.Server;
  let port = 0;
  /** When each streamed answer's upstream connection closed (ms after it started), by path. */
  const closedAfter = new Map<string, number>();

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      const started = performance.now();
      res.on("close", () => closedAfter.set(req.url ?? "", performance.now() - started));
      res.writeHead(200, { "content-type": "application/octet-stream" });
      // An answer that goes on as long as anyone takes it (a large download).
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on("drain", pump);
      pump();
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    port = (upstream.address() as AddressInfo).port;
    h = await startProxyHarness({ env: { BULKHEAD_UPSTREAM_TIMEOUT_SECONDS: "1" } });
    await h.addService({ id: "dl", hosts: ["dl.test"], scheme: "http", ports: [port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: dl\n    effects: [read]\n"));
  });
  afterAll(async () => {
    await h.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  it("cuts an answer the client takes nothing of for the upstream timeout: the upstream connection is released, the cut recorded", async () => {
    const client = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    client.on("error", () => undefined);
    let head = "";
    // Read the head, then stop reading for good.
    client.once("data", (c: Buffer) => {
      head = c.toString("latin1");
      client.pause();
    });
    client.write(`GET http://dl.test:${port}/stalled HTTP/1.1\r\nHost: dl.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    await expect.poll(() => closedAfter.get("/stalled"), { timeout: 8000, interval: 100 }).toBeDefined();
    // Released within about the upstream timeout (1 s) of the client's side filling up.
    expect(closedAfter.get("/stalled")).toBeLessThan(5000);
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const eventId = /x-bulkhead-event: (\S+)/i.exec(head)?.[1];
    expect(eventId, head).toBeDefined();
    await expect
      .poll(async () => {
        const events = (await h.events()).filter((e) => e.data.eventId === eventId || e.data.decisionEventId === eventId);
        const completion = events.find((e) => e.type === "proxy.completed")?.data ?? (events.find((e) => e.type === "proxy.decision")?.data.completion as Record<string, unknown> | undefined);
        return completion?.cut ?? null;
      }, { timeout: 5000 })
      .toBe("client_timeout");
    client.destroy();
  }, 20_000);

  it("lets a client that pauses for less than that, and then reads on, have the stream (the control)", async () => {
    const client = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    client.on("error", () => undefined);
    let received = 0;
    client.on("data", (c: Buffer) => (received += c.length));
    client.pause();
    client.write(`GET http://dl.test:${port}/paused HTTP/1.1\r\nHost: dl.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 600));
    client.resume();
    await new Promise((r) => setTimeout(r, 2500));
    expect(client.destroyed).toBe(false);
    expect(closedAfter.has("/paused")).toBe(false);
    expect(received).toBeGreaterThan(1024 * 1024);
    client.destroy();
  }, 20_000);
});
