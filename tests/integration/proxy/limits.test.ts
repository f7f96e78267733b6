import http from "node:http";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../support/log-capture";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { exchange, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * The agent cannot stall the worker or starve other agents: bodies are read only after the
 * client is authenticated, and each task and agent has a bound on concurrent connections and on
 * requests per second (429 with the reason, audited); the listeners cap connections overall.
 */
const policy = "unlisted: deny\nrules:\n  - service: api\n    effects: [read, write]\n";

/** A proxy in front of one counting upstream, with the given limits. */
function setup(env: Record<string, string>) {
  const s = {} as { h: ProxyHarness; up: Upstream; origin: string };
  beforeAll(async () => {
    s.up = await startHttpUpstream();
    s.h = await startProxyHarness({ env: { BULKHEAD_CLIENT_TIMEOUT_SECONDS: "20", BULKHEAD_MAX_BODY_BYTES: "4096", ...env } });
    await s.h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [s.up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    s.origin = `http://api.test:${s.up.port}`;
  });
  afterAll(async () => {
    await s.h.close();
    await s.up.close();
  });
  const connect = async () => {
    const socket = net.connect(s.h.proxyPort, "127.0.0.1");
    await new Promise((r, j) => {
      socket.once("connect", r);
      socket.once("error", j);
    });
    return socket;
  };
  return { s, connect };
}

/** Sends one request on a kept-alive socket and resolves with the whole response (or what came before a close). */
function requestOn(socket: net.Socket, head: string): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    const onData = (c: Buffer) => {
      text += c.toString("utf8");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
      if (text.length >= end + 4 + length) {
        socket.off("data", onData);
        resolve(text);
      }
    };
    socket.on("data", onData);
    socket.once("close", () => resolve(text));
    socket.write(head);
  });
}

describe("limits: authenticate before buffering; requests per second per task and per agent", () => {
  const { s, connect } = setup({ BULKHEAD_TASK_REQUESTS_PER_SECOND: "3", BULKHEAD_AGENT_REQUESTS_PER_SECOND: "4", BULKHEAD_TASK_MAX_CONNECTIONS: "1000", BULKHEAD_AGENT_MAX_CONNECTIONS: "1000" });

  it("refuses an unauthenticated client at once, without waiting for (or buffering) its body", async () => {
    const started = Date.now();
    // A declared body that never arrives: only a body read would wait for it.
    const waiting = await exchange(await connect(), `POST ${s.origin}/items HTTP/1.1\r\nHost: api.test:${s.up.port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n`, 3000);
    expect(statuses(waiting)).toEqual([407]);
    expect(Date.now() - started).toBeLessThan(3000);
    // A declared body over the limit: identity is refused first, so nothing about the body is considered.
    const big = await exchange(await connect(), `POST ${s.origin}/items HTTP/1.1\r\nHost: api.test:${s.up.port}\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n`, 1000);
    expect(statuses(big)).toEqual([407]);
    // Nor is it invited to send the body it announced.
    const expecting = await exchange(await connect(), `POST ${s.origin}/items HTTP/1.1\r\nHost: api.test:${s.up.port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n`, 1000);
    expect(statuses(expecting)).toEqual([407]);
    expect(expecting).not.toContain("100 Continue");
  });

  it("invites an authenticated client that expects 100-continue to send its body", async () => {
    const { token } = await s.h.newTask(policy);
    const socket = await connect();
    const body = '{"a":1}';
    const out = await new Promise<string>((resolve) => {
      let text = "";
      socket.on("data", (c: Buffer) => {
        text += c.toString("utf8");
        if (text.startsWith("HTTP/1.1 100 Continue\r\n\r\n") && !text.includes("200")) socket.write(body);
        if (/HTTP\/1\.1 200[\s\S]*\r\n0\r\n\r\n$/.test(text) || (/HTTP\/1\.1 200/.test(text) && text.endsWith("}"))) resolve(text);
      });
      socket.on("close", () => resolve(text));
      socket.write(`POST ${s.origin}/items HTTP/1.1\r\nHost: api.test:${s.up.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
    });
    socket.destroy();
    expect(statuses(out)).toEqual([100, 200]);
    expect(s.up.hits.at(-1)!.body).toBe(body);
  });

  it("invites no body it will refuse or not read: 413 for a declared length over the limit, nothing for a request without one or over HTTP/1.0", async () => {
    const { token } = await s.h.newTask(policy);
    const head = (first: string, rest: string) => `${first}\r\nHost: api.test:${s.up.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n${rest}\r\n`;
    const big = await exchange(await connect(), head(`POST ${s.origin}/items HTTP/1.1`, "Content-Length: 99999\r\n"), 800);
    expect(statuses(big)).toEqual([413]);
    const none = await exchange(await connect(), head(`GET ${s.origin}/items HTTP/1.1`, "Connection: close\r\n"), 800);
    expect(statuses(none)).toEqual([200]);
    // HTTP/1.0 (its status lines are HTTP/1.1's): the expectation is ignored, the body awaited.
    const old = await exchange(await connect(), head(`POST ${s.origin}/items HTTP/1.0`, "Content-Length: 7\r\n"), 800);
    expect(old).not.toContain("100 Continue");
  });

  it("gives an authenticated client its time to send the body (the control for the test above)", async () => {
    const { token } = await s.h.newTask(policy);
    const started = Date.now();
    const body = await exchange(await connect(), `POST ${s.origin}/items HTTP/1.1\r\nHost: api.test:${s.up.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n`, 500);
    // Still waiting for the body after 500 ms: the authenticated client gets its full timeout.
    expect(statuses(body)).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });

  it("limits requests per second per task: 429 with the reason, audited, nothing beyond the budget reaches the upstream", async () => {
    const { token } = await s.h.newTask(policy);
    const before = s.up.hits.length;
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 15 }, () => viaProxy(s.h.proxyPort, `${s.origin}/items`, { token })));
    const seconds = (performance.now() - started) / 1000;
    const limited = results.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]!.json).toMatchObject({ error: "task_rate_limited", kind: "rate_limited" });
    expect(String(limited[0]!.json?.reason)).toMatch(/requests per second/);
    expect(limited.every((r) => typeof r.json?.auditEventId === "string")).toBe(true);
    const forwarded = results.filter((r) => r.status === 200).length;
    expect(forwarded).toBeLessThanOrEqual(Math.floor(3 + 3 * seconds)); // a burst of 3 plus what refills while they run
    expect(s.up.hits.length - before).toBe(forwarded);
    await waitFor(async () => {
      const known = new Set((await s.h.events()).map((e) => e.data.eventId));
      return limited.every((r) => known.has(r.json?.auditEventId)) ? true : null;
    }, 10_000, "the rate-limit refusals in the audit");
  });

  it("limits requests per second per agent across its tasks", async () => {
    const first = await s.h.newTask(policy);
    const second = await s.h.newTask(policy, { agentId: first.agentId });
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 30 }, (_v, i) => viaProxy(s.h.proxyPort, `${s.origin}/items`, { token: i % 2 ? first.token : second.token })));
    const seconds = (performance.now() - started) / 1000;
    const codes = new Set(results.filter((r) => r.status === 429).map((r) => r.json?.error));
    expect(codes.has("agent_rate_limited")).toBe(true);
    // Each task alone may send 3 per second: together they would pass 6; the agent's budget is 4.
    expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(Math.floor(4 + 4 * seconds));
  });
});

describe("limits: concurrent connections per task, per agent and per listener", () => {
  const { s, connect } = setup({ BULKHEAD_TASK_MAX_CONNECTIONS: "2", BULKHEAD_AGENT_MAX_CONNECTIONS: "3", BULKHEAD_MAX_CONNECTIONS: "12" });

  it("limits concurrent connections per task and per agent", async () => {
    const one = await s.h.newTask(policy);
    const keepAlive = (socket: net.Socket, token: string) => requestOn(socket, `GET ${s.origin}/items HTTP/1.1\r\nHost: api.test:${s.up.port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    const sockets = [await connect(), await connect(), await connect()];
    const answers: string[] = [];
    for (const s of sockets) answers.push(await keepAlive(s, one.token));
    expect(answers.map((a) => statuses(a)[0])).toEqual([200, 200, 429]);
    expect(answers[2]).toContain("task_connection_limit");
    // Closing one frees a slot for the task.
    sockets[0]!.destroy();
    await waitFor(async () => {
      const s = await connect();
      const out = await keepAlive(s, one.token);
      s.destroy();
      return statuses(out)[0] === 200 ? true : null;
    }, 5000, "a freed connection slot");
    for (const s of sockets) s.destroy();

    const two = await s.h.newTask(policy);
    const three = await s.h.newTask(policy, { agentId: two.agentId });
    const agentSockets = [await connect(), await connect(), await connect(), await connect()];
    const agentAnswers: string[] = [];
    for (const [i, s] of agentSockets.entries()) agentAnswers.push(await keepAlive(s, i < 2 ? two.token : three.token));
    expect(agentAnswers.map((a) => statuses(a)[0])).toEqual([200, 200, 200, 429]);
    expect(agentAnswers[3]).toContain("agent_connection_limit");
    for (const s of agentSockets) s.destroy();
  });

  it("caps connections on the listener and audits what it drops", async () => {
    const held: net.Socket[] = [];
    for (let i = 0; i < 12; i++) held.push(await connect());
    const extra = net.connect(s.h.proxyPort, "127.0.0.1");
    const closed = await new Promise<boolean>((resolve) => {
      extra.once("close", () => resolve(true));
      extra.once("error", () => resolve(true));
      extra.once("data", () => resolve(false));
      setTimeout(() => resolve(false), 3000);
    });
    expect(closed).toBe(true);
    for (const s of held) s.destroy();
    await waitFor(async () => ((await s.h.events()).some((e) => e.data.code === "connection_limit") ? true : null), 10_000, "the dropped connection in the audit");
    // The listener serves again once connections are released.
    await waitFor(async () => {
      const r = await new Promise<number>((resolve) => {
        const req = http.request({ host: "127.0.0.1", port: s.h.proxyPort, path: `${s.origin}/items`, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", () => resolve(0));
        req.end();
      });
      return r === 407 ? true : null;
    }, 5000, "the listener to accept again");
  });
});

describe("limits: one source's share of a listener before its connections authenticate", () => {
  const { s } = setup({ BULKHEAD_SOURCE_MAX_CONNECTIONS: "4", BULKHEAD_MAX_CONNECTIONS: "40", BULKHEAD_TASK_MAX_CONNECTIONS: "10", BULKHEAD_AGENT_MAX_CONNECTIONS: "20" });
  const held: net.Socket[] = [];
  afterAll(() => {
    for (const socket of held) socket.destroy();
  });

  const from = async (localAddress: string, port = s.h.proxyPort) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    socket.on("error", () => undefined);
    await new Promise((r, j) => {
      socket.once("connect", r);
      socket.once("error", j);
    });
    held.push(socket);
    return socket;
  };
  /** "closed" when the worker closed it within `ms` without a byte, "open" when it is still open then. */
  const fate = (socket: net.Socket, ms = 1500) =>
    new Promise<"closed" | "open" | "answered">((resolve) => {
      if (socket.destroyed) return resolve("closed");
      const timer = setTimeout(() => resolve("open"), ms);
      socket.once("data", () => {
        clearTimeout(timer);
        resolve("answered");
      });
      socket.once("close", () => {
        clearTimeout(timer);
        resolve("closed");
      });
    });
  const get = (socket: net.Socket, token: string) => requestOn(socket, `GET ${s.origin}/items HTTP/1.1\r\nHost: api.test:${s.up.port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);

  it("a source past its share loses its oldest idle connections, never a new one; another source is still served", async () => {
    const evicted = () => (s.h.proxy.status() as { sourceShare?: { evicted: number } }).sourceShare?.evicted;
    const evictedBefore = evicted() ?? 0;
    // One client opens far more idle connections than its share (each would be held up to the head timeout).
    const greedy: net.Socket[] = [];
    for (let i = 0; i < 12; i++) greedy.push(await from("127.0.0.1"));
    const fates = await Promise.all(greedy.map((socket) => fate(socket)));
    expect(fates).toEqual([...Array<string>(8).fill("closed"), ...Array<string>(4).fill("open")]);
    expect((evicted() ?? 0) - evictedBefore).toBe(8);
    // Another agent behind the same address, with the share full of idle connections, connects,
    // authenticates and is served: the idle ones cannot keep it out.
    const { token } = await s.h.newTask(policy);
    const neighbour = await from("127.0.0.1");
    expect(statuses(await get(neighbour, token))).toEqual([200]);
    // So is one from another address.
    const other = await from("127.0.0.2");
    expect(statuses(await get(other, token))).toEqual([200]);
    // Audited (a flood aggregated), under the greedy client's address.
    await waitFor(async () => ((await s.h.events()).some((e) => e.data.code === "source_connection_limit" && e.data.client === "127.0.0.1") ? true : null), 10_000, "the closed connections in the audit");
    for (const socket of [...greedy, neighbour, other]) socket.destroy();
  });

  it("counts a connection only until it authenticates: the task's own caps bound it from then on", async () => {
    const { token } = await s.h.newTask(policy);
    const authenticated: net.Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const socket = await from("127.0.0.3");
      expect(statuses(await get(socket, token)), `connection ${i}`).toEqual([200]);
      authenticated.push(socket);
    }
    // Six authenticated connections hold none of the share: four idle ones fit, a fifth pushes out
    // the oldest idle one, never an authenticated one.
    const idle: net.Socket[] = [];
    for (let i = 0; i < 5; i++) idle.push(await from("127.0.0.3"));
    expect(await Promise.all(idle.map((socket) => fate(socket)))).toEqual(["closed", "open", "open", "open", "open"]);
    // The authenticated ones still carry requests.
    expect(statuses(await get(authenticated[5]!, token))).toEqual([200]);
    for (const socket of [...authenticated, ...idle]) socket.destroy();
    // Closed connections free their places: four new idle ones fit again, nobody pushed out.
    await new Promise((r) => setTimeout(r, 200));
    const again: net.Socket[] = [];
    for (let i = 0; i < 4; i++) again.push(await from("127.0.0.3"));
    expect(await Promise.all(again.map((socket) => fate(socket, 500)))).toEqual(["open", "open", "open", "open"]);
    for (const socket of again) socket.destroy();
  });

  it("holds an address no sandbox owns to its share on the transparent listener, and a sandbox to its own cap", async () => {
    const { taskId } = await s.h.newTask(policy);
    await s.h.t.adminDb().sandbox.create({ data: { taskId, name: `share-${taskId.slice(0, 8)}`, sourceAddress: "127.0.0.5" } });
    await s.h.sync();
    const stranger: net.Socket[] = [];
    for (let i = 0; i < 6; i++) stranger.push(await from("127.0.0.4", s.h.transparentHttpPort));
    expect(await Promise.all(stranger.map((socket) => fate(socket)))).toEqual(["closed", "closed", "open", "open", "open", "open"]);
    // A sandbox's connections are its own (BULKHEAD_TASK_MAX_CONNECTIONS, 10 here), not the share's.
    const sandbox: net.Socket[] = [];
    for (let i = 0; i < 6; i++) sandbox.push(await from("127.0.0.5", s.h.transparentHttpPort));
    expect((await Promise.all(sandbox.map((socket) => fate(socket)))).every((f) => f === "open")).toBe(true);
    for (const socket of [...stranger, ...sandbox]) socket.destroy();
  });
});
