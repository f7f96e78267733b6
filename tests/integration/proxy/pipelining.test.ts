import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";

/**
 * Requests pipelined on one connection. They were judged and forwarded all at once: one
 * connection carried any number of requests in flight (each holding its body), past the per-task
 * connection caps, and a later request reached the upstream while an earlier one was still
 * being decided or waiting for its answer. They are judged one at a time now, in order, and a
 * connection with more than 32 waiting is cut (audited).
 */
describe("pipelined requests are judged one at a time", () => {
  let h: ProxyHarness;
  let token: string;
  let upstream: http.Server;
  let port = 0;
  let inFlight = 0;
  let mostAtOnce = 0;
  const arrived: string[] = [];

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      arrived.push(req.url ?? "");
      inFlight++;
      mostAtOnce = Math.max(mostAtOnce, inFlight);
      // A slow answer: anything judged meanwhile would reach the upstream beside it.
      setTimeout(() => {
        inFlight--;
        res.end(`answer to ${req.url}`);
      }, 150);
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    port = (upstream.address() as AddressInfo).port;
    h = await startProxyHarness();
    await h.addService({ id: "pipe", hosts: ["pipe.test"], scheme: "http", ports: [port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: pipe\n    effects: [read, write]\n"));
  });
  afterAll(async () => {
    await h.close();
    upstream.closeAllConnections();
    await new Promise((r) => upstream.close(r));
  });

  const request = (path: string, extra = "") => `GET http://pipe.test:${port}${path} HTTP/1.1\r\nHost: pipe.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n${extra}\r\n`;

  it("forwards five pipelined requests one after another, each answered in order", async () => {
    arrived.length = 0;
    mostAtOnce = 0;
    const client = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    let text = "";
    client.on("data", (c: Buffer) => (text += c.toString("latin1")));
    client.write([1, 2, 3, 4, 5].map((n) => request(`/r${n}`)).join(""));
    await expect.poll(() => (text.match(/answer to \/r\d/g) ?? []).length, { timeout: 10_000 }).toBe(5);
    expect(text.match(/answer to \/r\d/g)).toEqual(["answer to /r1", "answer to /r2", "answer to /r3", "answer to /r4", "answer to /r5"]);
    expect(arrived).toEqual(["/r1", "/r2", "/r3", "/r4", "/r5"]);
    expect(mostAtOnce).toBe(1);
    client.destroy();
  });

  it("a refused request in the line closes the connection: the requests after it are neither judged nor forwarded", async () => {
    arrived.length = 0;
    const client = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    let text = "";
    client.on("data", (c: Buffer) => (text += c.toString("latin1")));
    const closed = new Promise((r) => client.once("close", r));
    const denied = `DELETE http://pipe.test:${port}/gone HTTP/1.1\r\nHost: pipe.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`;
    client.write(request("/first") + denied + request("/after"));
    await closed;
    const first = text.indexOf("answer to /first");
    expect(first).toBeGreaterThanOrEqual(0);
    expect(text.indexOf("HTTP/1.1 403")).toBeGreaterThan(first);
    expect(text).not.toContain("answer to /after");
    // Judged while the refusal before it was still being decided, it used to reach the upstream.
    await new Promise((r) => setTimeout(r, 300));
    expect(arrived).toEqual(["/first"]);
  });

  it("cuts a connection with more than 32 requests waiting, and records why; the worker answers others", async () => {
    arrived.length = 0;
    const client = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    client.on("error", () => undefined);
    client.on("data", () => undefined);
    client.write(Array.from({ length: 60 }, (_, i) => request(`/flood${i}`)).join(""));
    await new Promise((r) => client.once("close", r));
    expect(arrived.length).toBeLessThanOrEqual(1);
    await expect.poll(async () => (await h.events()).filter((e) => e.reason === "pipeline_too_deep" || e.data.code === "pipeline_too_deep").length, { timeout: 5000 }).toBe(1);
    // Another client is served as before.
    const other = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => other.once("connect", r));
    let text = "";
    other.on("data", (c: Buffer) => (text += c.toString("latin1")));
    other.write(request("/other"));
    await expect.poll(() => text.includes("answer to /other"), { timeout: 5000 }).toBe(true);
    other.destroy();
  });
  /** Everything the connection answers until it closes. */
  const exchangeAll = async (bytes: string) => {
    const client = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => client.once("connect", r));
    let text = "";
    client.on("data", (c: Buffer) => (text += c.toString("latin1")));
    client.on("error", () => undefined);
    const closed = new Promise((r) => client.once("close", r));
    client.write(bytes);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
    client.destroy();
    return text;
  };
  const statusLines = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));

  it("a malformed request pipelined behind others: the earlier ones are answered in order, then it gets its 400", async () => {
    // The parse error used to destroy the connection while the requests before it were still
    // being decided: an allowed one was never forwarded nor answered, a refusal never reached the
    // client (a denial with no status), and the malformed bytes got no 400 either.
    arrived.length = 0;
    const denied = `DELETE http://pipe.test:${port}/gone HTTP/1.1\r\nHost: pipe.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`;
    const allowedThenGarbage = await exchangeAll(request("/before-garbage") + "GARBAGE\r\n\r\n");
    expect(statusLines(allowedThenGarbage)).toEqual([200, 400]);
    expect(allowedThenGarbage).toContain("answer to /before-garbage");
    expect(allowedThenGarbage).toContain('"http_parse_error"');
    expect(arrived).toEqual(["/before-garbage"]);
    // A refusal (it closes the connection) is sent; nothing after it is read.
    const deniedThenGarbage = await exchangeAll(denied + "GARBAGE\r\n\r\n");
    expect(statusLines(deniedThenGarbage)).toEqual([403]);
    expect(deniedThenGarbage).toContain('"kind":"denied"');
    const unauthenticated = `POST http://pipe.test:${port}/x HTTP/1.1\r\nHost: pipe.test:${port}\r\nContent-Length: 3\r\n\r\nabcGARBAGE\r\n\r\n`;
    const missingThenGarbage = await exchangeAll(unauthenticated);
    expect(statusLines(missingThenGarbage)).toEqual([407]);
    expect(arrived).toEqual(["/before-garbage"]);
  });

  it("a pipelined request whose body is malformed is refused in its turn, after the answers before it", async () => {
    arrived.length = 0;
    const badChunks = `POST http://pipe.test:${port}/bad-body HTTP/1.1\r\nHost: pipe.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`;
    const started = Date.now();
    const text = await exchangeAll(request("/before-bad-body") + badChunks);
    expect(statusLines(text)).toEqual([200, 400]);
    expect(text).toContain("answer to /before-bad-body");
    expect(text).toContain('"http_parse_error"');
    // Refused at once in its turn, not left to the body timeout.
    expect(Date.now() - started).toBeLessThan(3000);
    expect(arrived).toEqual(["/before-bad-body"]);
  });
});
