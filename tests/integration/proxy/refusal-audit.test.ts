import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../support/log-capture";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { connectTunnel, exchange, requestOn, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

interface Refusal {
  error: string;
  kind: string;
  auditEventId: string | null;
}

/**
 * Every refusal is audited, including the ones Node's HTTP parser and the raw CONNECT/upgrade
 * paths produce before any request object exists, and every refusal body names its audit event.
 * A flood of refusals from one client is recorded individually up to a burst and then as one
 * aggregate event per window, so an attacker cannot flood the hash chain.
 */
describe("every refusal is recorded, parser-level ones too", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let token: string;
  let origin: string;

  const raw = async (bytes: string, idleMs = 800) => {
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    return exchange(socket, bytes, idleMs);
  };
  const refusalOf = (out: string): Refusal => JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as Refusal;
  const auth = () => `Proxy-Authorization: Bearer ${token}\r\n`;
  const eventFor = async (id: string | null) => (id ? (await h.events()).find((e) => e.data.eventId === id) : undefined);

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness({
      env: {
        BULKHEAD_MAX_BODY_BYTES: "4096",
        BULKHEAD_MAX_HEADER_BYTES: "4096",
        BULKHEAD_CLIENT_TIMEOUT_SECONDS: "1",
        BULKHEAD_REFUSAL_AUDIT_BURST: "5",
        BULKHEAD_REFUSAL_AUDIT_WINDOW_SECONDS: "1",
      },
    });
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addService({ id: "secure", hosts: ["secure.test"], scheme: "https", ports: [443], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read, write]\n"));
    origin = `http://api.test:${up.port}`;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  it.each([
    ["a request the HTTP parser rejects", () => "GARBAGE / HTTP/1.1\r\n\r\n", 400, "http_parse_error"],
    ["a CONNECT target that is not host:port", () => `CONNECT user@api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n${auth()}\r\n`, 400, "connect_target"],
    ["an oversized head", () => `GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}X-Big: ${"a".repeat(8000)}\r\n\r\n`, 431, "headers_too_large"],
    ["an oversized declared body", () => `POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Content-Type: application/json\r\nContent-Length: 999999\r\n\r\n{`, 413, "body_too_large"],
    ["a protocol upgrade", () => `GET ${origin}/ws HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`, 403, "upgrade_refused"],
    ["origin-form on the explicit listener", () => `GET /items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`, 400, "not_absolute_form"],
  ])("records %s and names the event in the refusal", async (_name, bytes, status, code) => {
    const before = up.hits.length;
    const out = await raw(bytes());
    expect(statuses(out)[0], out).toBe(status);
    const refusal = refusalOf(out);
    expect(refusal.error).toBe(code);
    expect(refusal.auditEventId).toBeTruthy();
    const event = await eventFor(refusal.auditEventId);
    expect(event, `audit event for ${code}`).toBeDefined();
    expect(event?.outcome).toBe("deny");
    expect(event?.data.code).toBe(code);
    expect(up.hits.length).toBe(before);
  });

  it("records a client that is too slow to send its head (408)", async () => {
    // The 408 comes after the 1 s client timeout plus up to the server's 1 s check interval, and
    // ends the connection, which ends the wait; the long idle only leaves room for a loaded machine.
    const out = await raw(`GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}X-Slow: 1`, 10_000);
    expect(statuses(out)[0], out).toBe(408);
    const refusal = refusalOf(out);
    expect(refusal.auditEventId).toBeTruthy();
    expect((await eventFor(refusal.auditEventId))?.data.code).toBe("client_timeout");
  }, 25_000);

  it("closes and records a tunnel whose client never finishes the TLS handshake", async () => {
    const tunnel = await connectTunnel(h.proxyPort, "secure.test:443", { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    await new Promise((resolve) => tunnel.socket.once("close", resolve));
    await waitFor(async () => ((await h.events()).some((e) => e.data.code === "tls_handshake_failed" && /handshake_timeout/.test(String(e.reason))) ? true : null), 10_000, "the handshake timeout in the audit");
  });

  it("audits a refusal the listener makes on a connection that has authenticated under that connection's task and agent", async () => {
    const task = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n");
    const row = async (id: string | null) => {
      const events = await h.t.db.auditEvent.findMany({ where: { type: { startsWith: "proxy." } }, orderBy: { id: "asc" } });
      return events.find((e) => (e.data as Record<string, unknown>).eventId === id);
    };
    const authenticatedConnection = async () => {
      const socket = net.connect(h.proxyPort, "127.0.0.1");
      await new Promise((r) => socket.once("connect", r));
      const first = await requestOn(socket, `GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\nProxy-Authorization: Bearer ${task.token}\r\n\r\n`);
      expect(statuses(first)).toEqual([200]);
      return socket;
    };
    const cases: Array<[string, string, number]> = [
      // An upgrade on the keep-alive connection, without the token this time.
      ["upgrade_refused", `GET ${origin}/ws HTTP/1.1\r\nHost: api.test:${up.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`, 403],
      // Bytes the parser rejects between two requests.
      ["http_parse_error", "GARBAGE / HTTP/1.1\r\n\r\n", 400],
      // A request refused before its own authentication.
      ["host_missing", `GET ${origin}/items HTTP/1.1\r\nConnection: close\r\n\r\n`, 400],
    ];
    for (const [code, bytes, status] of cases) {
      const out = await exchange(await authenticatedConnection(), bytes, 800);
      expect(statuses(out), `${code}: ${out}`).toEqual([status]);
      const refusal = refusalOf(out);
      expect(refusal.error).toBe(code);
      const event = await row(refusal.auditEventId);
      expect(event, code).toBeDefined();
      expect({ code, taskId: event?.taskId, agentId: event?.agentId }).toEqual({ code, taskId: task.taskId, agentId: task.agentId });
    }
    // A TLS handshake that fails inside an authenticated CONNECT tunnel.
    const tunnel = await connectTunnel(h.proxyPort, "secure.test:443", { "proxy-authorization": `Bearer ${task.token}` });
    expect(tunnel.status).toBe(200);
    tunnel.socket.end("not a ClientHello\r\n\r\n");
    const handshake = await waitFor(async () => {
      const events = await h.t.db.auditEvent.findMany({ where: { type: { startsWith: "proxy." }, taskId: task.taskId } });
      return events.find((e) => (e.data as Record<string, unknown>).code === "tls_handshake_failed") ?? null;
    }, 10_000, "the failed handshake under its task");
    expect(handshake.agentId).toBe(task.agentId);
    // A connection that never authenticated is still audited without a task.
    const stranger = refusalOf(await raw("GARBAGE / HTTP/1.1\r\n\r\n"));
    expect((await row(stranger.auditEventId))?.taskId).toBeNull();
  });

  it("aggregates a flood per client and reason: every refusal carries an id, the chain gets a bounded number of events", async () => {
    const flood = 40;
    const ids: Array<string | null> = [];
    for (let i = 0; i < flood; i++) ids.push(refusalOf(await raw("BREW /pot HTCPCP/1.0\r\n\r\n", 300)).auditEventId);
    expect(ids.every((id) => typeof id === "string" && id.length > 0)).toBe(true);
    // The aggregate is written when its window closes.
    const aggregates = await waitFor(async () => {
      const events = (await h.events()).filter((e) => e.data.code === "http_parse_error");
      const counted = events.reduce((sum, e) => sum + (typeof e.data.count === "number" ? e.data.count : 1), 0);
      return counted >= flood + 1 ? events : null; // +1: the single parse error of the earlier test
    }, 15_000, "the aggregated refusals");
    expect(aggregates.length).toBeLessThan(20);
    const aggregated = aggregates.filter((e) => e.data.aggregated === true);
    expect(aggregated.length).toBeGreaterThan(0);
    // Every id a client was given names an event that exists.
    const known = new Set(aggregates.map((e) => e.data.eventId));
    expect(ids.every((id) => known.has(id))).toBe(true);
  }, 30_000);
});
