import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the dashboard's server (scripts/app-server.mjs), without types
import { addressMatcher, connectionKey, guardConnections } from "../../../scripts/request-guard.mjs";

type GuardOptions = { headTimeoutMs: number; maxConnections: number; maxPerAddress?: number; unlimited?: (address: string | undefined) => boolean };
const guard = guardConnections as (server: http.Server, options: GuardOptions) => void;
const matcher = addressMatcher as (list: string | undefined) => (address: string | undefined) => boolean;
const keyOf = connectionKey as (address: string | undefined) => string;

// The dashboard's server (scripts/app-server.mjs) runs Next behind this guard; here a plain
// handler stands in for Next, on a real socket.
const HEAD_MS = 400;
let server: http.Server;
let port: number;

async function start(handler: http.RequestListener, maxConnections = 5, more: Partial<GuardOptions> = {}): Promise<void> {
  server = http.createServer(handler);
  guard(server, { headTimeoutMs: HEAD_MS, maxConnections, ...more });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as net.AddressInfo).port;
}

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** Resolves with the ms until the server closed the connection (or null if it still stands after `waitMs`). */
function closedWithin(socket: net.Socket, waitMs: number): Promise<number | null> {
  const started = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), waitMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

function connect(from?: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", ...(from ? { localAddress: from } : {}) }, () => resolve(socket));
    socket.on("error", reject);
  });
}

describe("the dashboard server's connection guard", () => {
  it("closes a connection that never sends a byte, and one that sends its head a byte at a time", async () => {
    await start((_req, res) => res.end("ok"));
    const silent = await connect();
    const slow = await connect();
    const head = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let i = 0;
    const drip = setInterval(() => !slow.destroyed && i < head.length && slow.write(head[i++]!), 50);
    const [a, b] = await Promise.all([closedWithin(silent, 5_000), closedWithin(slow, 5_000)]);
    clearInterval(drip);
    expect(a, "silent connection").not.toBeNull();
    expect(b, "slow head").not.toBeNull();
    expect(b!).toBeLessThan(HEAD_MS * 4);
  });

  it("never cuts a request in progress, however long its response, and serves keep-alive requests one after another", async () => {
    await start((req, res) => {
      if (req.url === "/stream") {
        res.writeHead(200, { "content-type": "text/plain" });
        let n = 0;
        const tick = setInterval(() => {
          res.write(`${n}\n`);
          if (++n === 6) {
            clearInterval(tick);
            res.end();
          }
        }, HEAD_MS / 2);
        return;
      }
      res.end("ok");
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (path: string) =>
      new Promise<string>((resolve, reject) => {
        http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve(body));
          res.on("error", reject);
        }).on("error", reject);
      });
    // Three times the head's time limit, on one connection, then two more requests on it.
    expect(await get("/stream")).toBe("0\n1\n2\n3\n4\n5\n");
    expect(await get("/")).toBe("ok");
    expect(await get("/")).toBe("ok");
    agent.destroy();
  });

  it("gives each request on a kept-alive connection the time limit anew, and closes one that sends no next request", async () => {
    await start((_req, res) => res.end("ok"));
    const socket = await connect();
    let answers = "";
    socket.on("data", (d: Buffer) => (answers += d.toString("latin1")));
    socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await new Promise((r) => setTimeout(r, HEAD_MS * 0.75));
    socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await new Promise((r) => setTimeout(r, HEAD_MS * 0.75));
    expect(answers.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    // Then a head that never ends: closed within the limit, not kept until the keep-alive timeout.
    socket.write("GET / HTTP/1.1\r\nHost: 1");
    expect(await closedWithin(socket, HEAD_MS * 4)).not.toBeNull();
  });

  it("closes connections beyond the cap at once and still serves the ones it holds", async () => {
    await start((_req, res) => res.end("ok"), 3);
    const held = await Promise.all([connect(), connect(), connect()]);
    await new Promise((r) => setTimeout(r, 50));
    const extra = await connect();
    expect(await closedWithin(extra, HEAD_MS / 2)).not.toBeNull();
    let answer = "";
    held[0]!.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    held[0]!.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await new Promise((r) => setTimeout(r, 100));
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    for (const s of held) s.destroy();
  });

  it("holds one client address to its share, so it cannot lock out the others; a trusted proxy only to the overall cap", async () => {
    await start((_req, res) => res.end("ok"), 10, { maxPerAddress: 2 });
    const mine = await Promise.all([connect("127.0.0.1"), connect("127.0.0.1")]);
    await new Promise((r) => setTimeout(r, 50));
    const third = await connect("127.0.0.1");
    expect(await closedWithin(third, HEAD_MS / 2)).not.toBeNull();
    // Another client is served meanwhile.
    const other = await connect("127.0.0.2");
    expect(await closedWithin(other, 100)).toBeNull();
    let answer = "";
    other.on("data", (d: Buffer) => (answer += d.toString("latin1")));
    other.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await new Promise((r) => setTimeout(r, 100));
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    // A connection closed gives its place back.
    mine[0]!.destroy();
    await new Promise((r) => setTimeout(r, 50));
    const again = await connect("127.0.0.1");
    expect(await closedWithin(again, 100)).toBeNull();
    for (const s of [mine[1]!, other, again]) s.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));

    await start((_req, res) => res.end("ok"), 4, { maxPerAddress: 2, unlimited: matcher("10.0.0.0/8, 127.0.0.1") });
    const proxied = await Promise.all([connect("127.0.0.1"), connect("127.0.0.1"), connect("127.0.0.1"), connect("127.0.0.1")]);
    expect(await Promise.all(proxied.map((s) => closedWithin(s, 100)))).toEqual([null, null, null, null]);
    const beyond = await connect("127.0.0.1");
    expect(await closedWithin(beyond, HEAD_MS / 2)).not.toBeNull();
    for (const s of proxied) s.destroy();
  });

  it("counts an IPv6 client by its /64 and an IPv4-mapped address as IPv4, and matches trusted proxies by address or range", () => {
    expect(keyOf("2001:db8:1:2:aaaa::1")).toBe(keyOf("2001:db8:1:2:ffff:ffff:ffff:ffff"));
    expect(keyOf("2001:db8:1:2::1")).not.toBe(keyOf("2001:db8:1:3::1"));
    expect(keyOf("::ffff:192.0.2.7")).toBe("192.0.2.7");
    expect(keyOf("192.0.2.7")).toBe("192.0.2.7");
    const trusted = matcher("10.0.0.0/8, 192.0.2.1, 2001:db8::/32");
    expect(trusted("10.1.2.3")).toBe(true);
    expect(trusted("::ffff:10.1.2.3")).toBe(true);
    expect(trusted("192.0.2.1")).toBe(true);
    expect(trusted("192.0.2.2")).toBe(false);
    expect(trusted("2001:db8:5::1")).toBe(true);
    expect(trusted("2001:db9::1")).toBe(false);
    expect(trusted(undefined)).toBe(false);
    // The app's own match (lib/http/client-addresses.mjs, as X-Forwarded-For is believed): an IPv4
    // peer is also inside an IPv4-mapped IPv6 range, and junk is never trusted.
    expect(matcher("::ffff:10.0.0.0/104")("10.1.2.3")).toBe(true);
    expect(matcher("10.0.0.0/8")("not an address")).toBe(false);
    expect(matcher("")("127.0.0.1")).toBe(false);
    expect(matcher(undefined)("127.0.0.1")).toBe(false);
  });
});
