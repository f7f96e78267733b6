import http from "node:http";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the dashboard's server (scripts/app-server.mjs), without types
import { guardConnections } from "../../../scripts/request-guard.mjs";

const guard = guardConnections as (server: http.Server, options: { headTimeoutMs: number; maxConnections: number }) => void;

// The dashboard's server (scripts/app-server.mjs) runs Next behind this guard; here a plain
// handler stands in for Next, on a real socket.
const HEAD_MS = 400;
let server: http.Server;
let port: number;

async function start(handler: http.RequestListener, maxConnections = 5): Promise<void> {
  server = http.createServer(handler);
  guard(server, { headTimeoutMs: HEAD_MS, maxConnections });
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

function connect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
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
});
