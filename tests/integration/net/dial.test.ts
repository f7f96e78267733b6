/**
 * Dialing with real sockets, loopback only. Names are resolved by injected lookups; nothing here
 * sends a packet to any address other than 127.0.0.1. Each upstream counts the TCP connections it
 * accepts, so "refused" means "no connection was opened", not just "the request failed".
 */
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type tls from "node:tls";
import { Agent, Pool, request } from "undici";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { checkedConnector, DialError, dialChecked } from "@/lib/net/dial";
import {
  resolveDestination,
  type CheckedDestination,
  type Lookup,
  type ResolveOptions,
} from "@/lib/net/resolve";
import { TEST_CERT, TEST_KEY } from "../../fixtures/loopback-tls";

interface Upstream {
  port: number;
  connections: number;
  servernames: (string | false | null | undefined)[];
  close(): Promise<void>;
}

async function listen(server: net.Server, counted: "connection" | "secureConnection" = "connection"): Promise<Upstream> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const upstream = { connections: 0, servernames: [] as Upstream["servernames"] };
  server.on(counted, (socket: net.Socket | tls.TLSSocket) => {
    upstream.connections += 1;
    if ("servername" in socket) upstream.servernames.push(socket.servername);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return Object.assign(upstream, {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  });
}

/** Resolves once the server has recorded more than `count` TLS connections (its side finishes last). */
async function untilServed(upstream: Upstream, count: number): Promise<void> {
  for (let i = 0; i < 200 && upstream.servernames.length <= count; i++) await new Promise((r) => setTimeout(r, 5));
}

function httpUpstream(name: string): Promise<Upstream> {
  return listen(http.createServer((_req, res) => res.end(name)));
}

function httpsUpstream(name: string): Promise<Upstream> {
  return listen(https.createServer({ key: TEST_KEY, cert: TEST_CERT }, (_req, res) => res.end(name)), "secureConnection");
}

/** Accepts TCP and never answers: a TLS handshake against it can only time out. */
function silentUpstream(): Promise<Upstream> {
  return listen(net.createServer(() => {}));
}

const lookupServiceTest = () =>
  vi.fn<Lookup>(async (hostname) => {
    if (hostname !== "service.test.") throw Object.assign(new Error(`ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    return [{ address: "127.0.0.1", family: 4 }];
  });

function resolveOptions(port: number, extra: Partial<ResolveOptions> = {}): ResolveOptions {
  return { lookup: lookupServiceTest(), allowedPorts: [port], deniedPorts: [], ...extra };
}

async function checked(host: string, port: number, extra: Partial<ResolveOptions> = {}): Promise<CheckedDestination> {
  const result = await resolveDestination({ host, port }, resolveOptions(port, { allowInternal: ["127.0.0.1/32"], ...extra }));
  if (!result.ok) throw new Error(`expected a checked destination, got ${result.reason}`);
  return result;
}

/** One HTTP/1.1 exchange over a socket we were handed. */
function rawGet(socket: net.Socket, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (data += chunk));
    socket.on("end", () => resolve(data));
    socket.on("error", reject);
    socket.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  });
}

describe("dialChecked", () => {
  let a: Upstream;
  let b: Upstream;
  let tlsUpstream: Upstream;

  beforeAll(async () => {
    a = await httpUpstream("A");
    b = await httpUpstream("B");
    tlsUpstream = await httpsUpstream("TLS");
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close(), tlsUpstream.close()]);
  });

  it("connects to a loopback server only when 127.0.0.1 is in allowInternal", async () => {
    const before = a.connections;
    const refused = await resolveDestination({ host: "127.0.0.1", port: a.port }, resolveOptions(a.port));
    expect(refused).toEqual({ ok: false, code: "destination_forbidden", reason: "127.0.0.1 is loopback" });
    expect(a.connections).toBe(before);

    const allowed = await checked("127.0.0.1", a.port);
    const socket = await dialChecked(allowed, { timeoutMs: 2000 });
    expect(socket.remoteAddress).toBe("127.0.0.1");
    expect(await rawGet(socket, `127.0.0.1:${a.port}`)).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*\r\n\r\nA$/);
    expect(a.connections).toBe(before + 1);
  });

  it("dials the address the injected lookup returned, and never resolves the name itself", async () => {
    const lookup = lookupServiceTest();
    const destination = await checked("service.test", a.port, { lookup });
    const socket = await dialChecked(destination, { timeoutMs: 2000 });
    expect(await rawGet(socket, `service.test:${a.port}`)).toMatch(/\r\n\r\nA$/);
    expect(lookup).toHaveBeenCalledTimes(1);
  });

  it("refuses a destination that resolveDestination did not make, before opening a socket", async () => {
    const before = b.connections;
    const forged = { ok: true, host: "127.0.0.1", address: "127.0.0.1", family: 4, port: b.port, checked: ["127.0.0.1"], internal: true } as const;
    await expect(dialChecked(forged, { timeoutMs: 2000 })).rejects.toMatchObject({
      code: "dial_refused",
      message: "only destinations returned by resolveDestination may be dialed",
    });
    expect(() => checkedConnector(forged, { timeoutMs: 2000 })).toThrow(DialError);
    expect(b.connections).toBe(before);
  });

  it("reports a refused connection as connect_failed", async () => {
    const closed = await httpUpstream("closed");
    await closed.close();
    const destination = await checked("127.0.0.1", closed.port);
    await expect(dialChecked(destination, { timeoutMs: 2000 })).rejects.toMatchObject({ code: "connect_failed" });
  });

  it("times out a handshake that never completes", async () => {
    const silent = await silentUpstream();
    try {
      const destination = await checked("service.test", silent.port);
      const dial = dialChecked(destination, { timeoutMs: 100, tls: { servername: "service.test", ca: TEST_CERT } });
      await expect(dial).rejects.toMatchObject({
        code: "connect_timeout",
        message: `connect to service.test (127.0.0.1):${silent.port} timed out after 100 ms`,
      });
    } finally {
      await silent.close();
    }
  });

  describe("TLS", () => {
    it("connects to the checked IP with the original host as SNI and verifies the certificate for it", async () => {
      const destination = await checked("service.test", tlsUpstream.port);
      const socket = (await dialChecked(destination, {
        timeoutMs: 2000,
        tls: { servername: "service.test", ca: TEST_CERT },
      })) as tls.TLSSocket;
      expect(socket.authorized).toBe(true);
      expect(socket.remoteAddress).toBe("127.0.0.1");
      expect(await rawGet(socket, "service.test")).toMatch(/\r\n\r\nTLS$/);
      expect(tlsUpstream.servernames.at(-1)).toBe("service.test");
    });

    it("sends no SNI for an IP-literal host and verifies the certificate's IP", async () => {
      const served = tlsUpstream.servernames.length;
      const destination = await checked("127.0.0.1", tlsUpstream.port);
      const socket = (await dialChecked(destination, {
        timeoutMs: 2000,
        tls: { servername: "127.0.0.1", ca: TEST_CERT },
      })) as tls.TLSSocket;
      expect(socket.authorized).toBe(true);
      await untilServed(tlsUpstream, served);
      expect(tlsUpstream.servernames.at(-1)).toBe(false);
      socket.destroy();
    });

    it("refuses a servername other than the checked host, before connecting", async () => {
      const before = tlsUpstream.connections;
      const destination = await checked("service.test", tlsUpstream.port);
      await expect(
        dialChecked(destination, { timeoutMs: 2000, tls: { servername: "other.test", ca: TEST_CERT } }),
      ).rejects.toMatchObject({ code: "dial_refused", message: 'TLS servername "other.test" is not the checked host "service.test"' });
      expect(tlsUpstream.connections).toBe(before);
    });

    it("verifies certificates (an untrusted one fails)", async () => {
      const destination = await checked("service.test", tlsUpstream.port);
      await expect(dialChecked(destination, { timeoutMs: 2000, tls: { servername: "service.test" } })).rejects.toMatchObject({
        code: "connect_failed",
      });
    });
  });
});

describe("checkedConnector with undici", () => {
  let a: Upstream;
  let b: Upstream;
  let tlsUpstream: Upstream;

  beforeAll(async () => {
    a = await httpUpstream("A");
    b = await httpUpstream("B");
    tlsUpstream = await httpsUpstream("TLS");
  });
  afterAll(async () => {
    await Promise.all([a.close(), b.close(), tlsUpstream.close()]);
  });

  it("lets a Pool reach its checked destination by name, without DNS", async () => {
    const destination = await checked("service.test", a.port);
    const pool = new Pool(`http://service.test:${a.port}`, { connect: checkedConnector(destination, { timeoutMs: 2000 }) });
    try {
      const response = await pool.request({ method: "GET", path: "/" });
      expect(await response.body.text()).toBe("A");
    } finally {
      await pool.close();
    }
  });

  const mismatches: { name: string; origin: (a: number, b: number) => string; why: string }[] = [
    { name: "another port (a second server)", origin: (_a, b) => `http://127.0.0.1:${b}`, why: "port is not the checked port" },
    { name: "the checked name on another port", origin: (_a, b) => `http://service.test:${b}`, why: "port is not the checked port" },
    { name: "another name on the checked port", origin: (a) => `http://localhost:${a}`, why: "host is not the checked host or address" },
    { name: "another scheme", origin: (a) => `https://service.test:${a}`, why: "protocol is not http:" },
  ];

  it.each(mismatches)("refuses $name before any connection is made", async ({ origin, why }) => {
    const before = { a: a.connections, b: b.connections };
    const destination = await checked("service.test", a.port);
    const url = origin(a.port, b.port);
    const pool = new Pool(url, { connect: checkedConnector(destination, { timeoutMs: 2000 }) });
    try {
      await expect(pool.request({ method: "GET", path: "/" })).rejects.toMatchObject({
        code: "dial_refused",
        message: `connector for service.test (127.0.0.1):${a.port} refuses ${url}: ${why}`,
      });
    } finally {
      await pool.close();
    }
    expect(b.connections).toBe(before.b);
    expect(a.connections).toBe(before.a);
  });

  it("binds an Agent to one destination whatever origin a request names", async () => {
    const before = b.connections;
    const destination = await checked("service.test", a.port);
    const agent = new Agent({ connect: checkedConnector(destination, { timeoutMs: 2000 }) });
    try {
      await expect(request(`http://127.0.0.1:${b.port}/`, { dispatcher: agent })).rejects.toMatchObject({ code: "dial_refused" });
      const ok = await request(`http://service.test:${a.port}/`, { dispatcher: agent });
      expect(await ok.body.text()).toBe("A");
    } finally {
      await agent.close();
    }
    expect(b.connections).toBe(before);
  });

  it("over TLS: verifies the checked host, and refuses a Host header that would change the servername", async () => {
    const destination = await checked("service.test", tlsUpstream.port);
    const connect = checkedConnector(destination, { timeoutMs: 2000, tls: { servername: "service.test", ca: TEST_CERT } });
    const pool = new Pool(`https://service.test:${tlsUpstream.port}`, { connect });
    try {
      const ok = await pool.request({ method: "GET", path: "/" });
      expect(await ok.body.text()).toBe("TLS");
      expect(tlsUpstream.servernames.at(-1)).toBe("service.test");

      const before = tlsUpstream.connections;
      await expect(pool.request({ method: "GET", path: "/", headers: { host: "other.test" } })).rejects.toMatchObject({
        code: "dial_refused",
        message: `connector for service.test (127.0.0.1):${tlsUpstream.port} refuses https://service.test:${tlsUpstream.port}: TLS servername "other.test" is not the checked host`,
      });
      expect(tlsUpstream.connections).toBe(before);
    } finally {
      await pool.close();
    }
  });
});
