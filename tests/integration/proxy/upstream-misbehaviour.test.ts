import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { exchange, statuses } from "../../support/tunnel-client";

/**
 * Upstreams that misbehave on the wire (a raw TCP server on loopback plays the upstream): the
 * agent's request still ends, with a clear status, and its completion is audited.
 */
describe("upstream misbehaviour: the agent's request always ends", () => {
  let h: ProxyHarness;
  let token: string;
  let upstream: net.Server;
  let port = 0;
  let answer: (socket: net.Socket) => void = () => undefined;

  const send = async (path: string, idleMs = 8000) => {
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const started = performance.now();
    const out = await exchange(socket, `GET http://raw.test:${port}${path} HTTP/1.1\r\nHost: raw.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\nConnection: close\r\n\r\n`, idleMs);
    return { out, ms: performance.now() - started };
  };

  beforeAll(async () => {
    upstream = net.createServer((socket) => {
      socket.on("error", () => undefined);
      socket.once("data", () => answer(socket));
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    port = (upstream.address() as net.AddressInfo).port;
    h = await startProxyHarness({ env: { BULKHEAD_UPSTREAM_TIMEOUT_SECONDS: "1", BULKHEAD_UPSTREAM_CONNECT_TIMEOUT_SECONDS: "1" } });
    await h.addService({ id: "raw", hosts: ["raw.test"], scheme: "http", ports: [port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: raw\n    effects: [read]\n"));
  });
  afterAll(async () => {
    await h.close();
    await new Promise((r) => upstream.close(r));
  });

  it("passes an informational answer on to the final one (control)", async () => {
    answer = (socket) => socket.end("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    const { out } = await send("/hints", 1000);
    expect(statuses(out), out).toContain(200);
    expect(out.endsWith("ok")).toBe(true);
  });

  // undici's headers timeout restarts with every informational answer: an upstream sending
  // `102 Processing` forever held the request, the agent's connection and the worker's in-flight
  // count for ever. The final head must come within the connect and upstream timeouts.
  it("answers 504 when the upstream sends informational answers and never a final one", async () => {
    answer = (socket) => {
      const timer = setInterval(() => socket.write("HTTP/1.1 102 Processing\r\n\r\n"), 100);
      socket.once("close", () => clearInterval(timer));
    };
    const { out, ms } = await send("/forever");
    expect(statuses(out), out).toEqual([504]);
    expect(ms).toBeLessThan(4000);
    const body = JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as { error: string; auditEventId: string };
    expect(body.error).toBe("upstream_timeout");
    // The decision and its completion (failed) are both in the audit.
    await expect.poll(async () => (await h.events()).filter((e) => e.data.eventId === body.auditEventId || e.data.decisionEventId === body.auditEventId).map((e) => [e.type, e.outcome]), { timeout: 5000 }).toEqual([
      ["proxy.decision", "allow"],
      ["proxy.completed", "failed"],
    ]);
  }, 15_000);

  it("answers 502 upstream_bad_response, not 'unreachable', to an upstream whose answer is not HTTP it can relay", async () => {
    const answers = [
      `HTTP/1.1 200 OK\r\nX-Big: ${"b".repeat(128 * 1024)}\r\nContent-Length: 2\r\n\r\nok`,
      "HTTP/1.1 200 OK\r\nContent Length: 2\r\n\r\nok",
      "NOT HTTP AT ALL\r\n\r\n",
      // A protocol switch nobody asked for (the request carried no Upgrade).
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw bytes",
      // The same after an informational answer, and a `100 Continue` nobody asked for (no
      // Expect was sent): undici refuses both ("bad response"), which read as "unreachable".
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nraw bytes",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      // Statuses outside 100-599: undici asserts on the first two (read as "unreachable"), and
      // relayed the others as they came.
      "HTTP/1.1 000 X\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 099 X\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 600 X\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n",
      // Only a proxy asks for proxy authentication: relayed, it read as Bulkhead refusing the token.
      'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="x"\r\nContent-Length: 0\r\n\r\n',
    ];
    for (const raw of answers) {
      answer = (socket) => socket.end(raw);
      const { out } = await send("/bad", 3000);
      expect(statuses(out), raw.slice(0, 40)).toEqual([502]);
      expect(JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4))).toMatchObject({ error: "upstream_bad_response" });
    }
  }, 20_000);

  // A head followed, in the same packet, by framing undici refuses: nothing had left for the agent
  // (Node sends the head with the first byte of the body), yet it got an empty reply and the log
  // said 200. The head is now kept until the body's first byte, so the agent gets the 502.
  it("answers 502 when the upstream's framing breaks before any of its body", async () => {
    for (const raw of [
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nok\r\n",
    ]) {
      answer = (socket) => socket.end(raw);
      const { out } = await send("/framing", 3000);
      expect(statuses(out), raw.slice(0, 60)).toEqual([502]);
      expect(JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4))).toMatchObject({ kind: "bad_gateway" });
    }
  }, 20_000);

  // The agent sees a cut connection (the declared length is kept); the audit must say so too, not
  // record an answer that never arrived whole as a plain "upstream answered 200".
  it("records an answer the upstream cut short as cut, in its completion", async () => {
    answer = (socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n" + "a".repeat(100));
      setTimeout(() => socket.destroy(), 50);
    };
    const { out } = await send("/cut", 3000);
    expect(statuses(out), out).toEqual([200]);
    const eventId = /x-bulkhead-event: (\S+)/i.exec(out)?.[1];
    expect(eventId, out).toBeDefined();
    await expect
      .poll(async () => {
        const events = (await h.events()).filter((e) => e.data.eventId === eventId || e.data.decisionEventId === eventId);
        const completion = events.find((e) => e.type === "proxy.completed")?.data ?? (events.find((e) => e.type === "proxy.decision")?.data.completion as Record<string, unknown> | undefined);
        // The harness records every event as a row of its own: the completion's outcome is its row's.
        const outcome = events.find((e) => e.type === "proxy.completed")?.outcome ?? completion?.outcome;
        return completion ? { cut: completion.cut, upstreamStatus: completion.upstreamStatus, outcome } : null;
      }, { timeout: 5000 })
      .toEqual({ cut: "upstream_closed", upstreamStatus: 200, outcome: "failed" });
  }, 15_000);

  // undici counts a 204's or 304's Content-Length as a body that never came and fails the
  // exchange after the head was relayed: the agent got an empty reply (its connection cut).
  it("relays a 304 or 204 that carries a Content-Length whole", async () => {
    for (const [raw, status] of [
      ['HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 1234\r\n\r\n', 304],
      ["HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204],
    ] as const) {
      answer = (socket) => socket.write(raw);
      const socket = net.connect(h.proxyPort, "127.0.0.1");
      await new Promise((r) => socket.once("connect", r));
      const out = await exchange(socket, `GET http://raw.test:${port}/cond HTTP/1.1\r\nHost: raw.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`, 1000);
      expect(statuses(out), out).toEqual([status]);
      // Kept alive: the answer ended as HTTP ends it, not by a cut connection.
      expect(out).not.toMatch(/connection: close/i);
      if (status === 204) expect(out).not.toMatch(/content-length/i);
      const eventId = /x-bulkhead-event: (\S+)/i.exec(out)?.[1];
      await expect
        .poll(async () => {
          const events = (await h.events()).filter((e) => e.data.eventId === eventId || e.data.decisionEventId === eventId);
          const completion = events.find((e) => e.type === "proxy.completed")?.data ?? (events.find((e) => e.type === "proxy.decision")?.data.completion as Record<string, unknown> | undefined);
          const outcome = events.find((e) => e.type === "proxy.completed")?.outcome ?? completion?.outcome;
          return completion ? { cut: completion.cut ?? null, outcome } : null;
        }, { timeout: 5000 })
        .toEqual({ cut: null, outcome: "forwarded" });
    }
  }, 20_000);
});
