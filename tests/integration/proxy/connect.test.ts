import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { connectTunnel, exchange, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * What a CONNECT can be refused for is refused before `200 Connection Established`: identity,
 * destination, port and Bulkhead's own ports. A client that opens a forbidden tunnel and then
 * sends nothing still leaves a refusal in the audit. Authorities are compared in one canonical
 * form on both sides of the tunnel (IPv6 brackets, trailing dots), and percent-encoded
 * authorities are refused rather than decoded.
 */
describe("CONNECT: the answer is decided before the tunnel opens", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let token: string;
  let denyAll: string;
  let caPem: string;

  const bearer = (t: string) => ({ "proxy-authorization": `Bearer ${t}` });
  const body = (raw: string) => JSON.parse(raw.slice(raw.indexOf("{"))) as { error: string; reason: string; auditEventId: string | null };

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "plain", hosts: ["public.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    // A service that lists Bulkhead's own explicit port: the port is still never dialed on loopback.
    await h.addService({ id: "selfish", hosts: ["self.test"], scheme: "http", ports: [h.proxyPort], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: plain\n    effects: [read]\n  - service: selfish\n    effects: [read]\n  - service: unknown\n    effects: [read]\n"));
    // Unrestricted scope: a deny-all policy (layer 2) judges what the tunnels carry.
    ({ token: denyAll } = await h.newTask("unlisted: deny\nrules: []\n", { scope: "*:*:irreversible" }));
    caPem = (await getCaCertificatePem(h.t.db))!.certPem;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  it.each([
    ["a loopback address", "127.0.0.1:443", "destination_forbidden"],
    ["a numeric shorthand of loopback", "127.1:443", "destination_forbidden"],
    ["a decimal spelling of loopback", "2130706433:443", "destination_forbidden"],
    ["the metadata service", "169.254.169.254:443", "destination_forbidden"],
    ["IPv6 loopback", "[::1]:443", "destination_forbidden"],
    ["IPv4-mapped IPv6 loopback", "[::ffff:127.0.0.1]:443", "destination_forbidden"],
    ["a port the service does not list", "public.test:OTHER", "port_forbidden"],
    ["Bulkhead's own port on loopback", "self.test:PROXY", "port_forbidden"],
    ["a local name", "metadata.google.internal:443", "destination_forbidden"],
  ])("refuses a tunnel to %s before answering 200, and audits it", async (_name, rawTarget, code) => {
    const target = rawTarget.replace("PROXY", String(h.proxyPort)).replace("OTHER", String(up.port + 1));
    const tunnel = await connectTunnel(h.proxyPort, target, bearer(token));
    expect(tunnel.status, tunnel.body).toBe(403);
    const refusal = body(tunnel.body);
    expect(refusal.error).toBe(code);
    expect(refusal.auditEventId).toBeTruthy();
    const event = (await h.events()).find((e) => e.data.eventId === refusal.auditEventId);
    expect(event).toMatchObject({ outcome: "deny" });
    expect(event?.data.code).toBe(code);
  });

  it("a host a service claims, on a port it does not list, is refused naming that service's ports (not 443)", async () => {
    const tunnel = await connectTunnel(h.proxyPort, `public.test:${up.port + 1}`, bearer(token));
    expect(tunnel.status, tunnel.body).toBe(403);
    expect(body(tunnel.body).reason).toContain(`(${up.port})`);
    expect(body(tunnel.body).reason).not.toContain("443");
  });

  it("the database's port on this machine is Bulkhead's own: never dialled, whatever service lists it", async () => {
    const dbPort = Number(new URL(h.t.workerUrl).port);
    await h.addService({ id: "ownpg", hosts: ["ownpg.test"], scheme: "http", ports: [dbPort], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    const { token: own } = await h.newTask("unlisted: deny\nrules:\n  - service: ownpg\n    effects: [read, write, destructive, irreversible]\n    waive_approval: true\n");
    const tunnel = await connectTunnel(h.proxyPort, `ownpg.test:${dbPort}`, bearer(own));
    expect(tunnel.status, tunnel.body).toBe(403);
    expect(body(tunnel.body).error).toBe("port_forbidden");
    const plain = await viaProxy(h.proxyPort, `http://ownpg.test:${dbPort}/`, { token: own });
    expect(plain.status).toBe(403);
    expect(plain.json?.error).toBe("port_forbidden");
  });

  it("keeps the reason for an IPv6 destination: loopback is refused as loopback", async () => {
    const tunnel = await connectTunnel(h.proxyPort, "[::1]:443", bearer(token));
    expect(body(tunnel.body).reason).toMatch(/::1 is loopback/);
  });

  it("compares canonical forms inside an IPv6 tunnel: the inner request is judged, not refused as a mismatch", async () => {
    // With an IP SNI (Node still sends one) and without SNI (curl's behaviour for IP literals).
    for (const servername of ["2606:4700::1111", undefined]) {
      const tunnel = await connectTunnel(h.proxyPort, "[2606:4700::1111]:443", bearer(denyAll));
      expect(tunnel.status, tunnel.body).toBe(200);
      const secure = tls.connect({ socket: tunnel.socket, ca: caPem, ...(servername ? { servername } : {}), checkServerIdentity: () => undefined });
      await new Promise((resolve, reject) => {
        secure.once("secureConnect", resolve);
        secure.once("error", reject);
      });
      const out = await exchange(secure, "GET /v1/zones HTTP/1.1\r\nHost: [2606:4700:0:0::1111]\r\nConnection: close\r\n\r\n");
      expect(statuses(out), out).toEqual([403]);
      expect(out).toContain("policy_deny");
    }
  });

  it("treats a trailing-dot host the same in CONNECT, absolute-form and the Host inside the tunnel", async () => {
    const before = up.hits.length;
    const absolute = await viaProxy(h.proxyPort, `http://public.test.:${up.port}/items`, { token });
    expect(absolute.status).toBe(200);
    const tunnel = await connectTunnel(h.proxyPort, `public.test.:${up.port}`, bearer(token));
    expect(tunnel.status, tunnel.body).toBe(200);
    const inner = await exchange(tunnel.socket, `GET /items HTTP/1.1\r\nHost: public.test.:${up.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(inner)).toEqual([200]);
    const plain = await connectTunnel(h.proxyPort, `public.test:${up.port}`, bearer(token));
    const dotted = await exchange(plain.socket, `GET /items HTTP/1.1\r\nHost: public.test.:${up.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(dotted)).toEqual([200]);
    expect(up.hits.length).toBe(before + 3);
    expect(up.hits.slice(before).every((hit) => hit.headers.host === `public.test:${up.port}`)).toBe(true);
  });

  it("refuses a percent-encoded authority instead of decoding it: absolute-form, CONNECT and Host inside a tunnel", async () => {
    const before = up.hits.length;
    const absolute = await viaProxy(h.proxyPort, `http://pub%6cic.test:${up.port}/items`, { token, headers: { host: `public.test:${up.port}` } });
    expect(absolute.status).toBe(400);
    expect(absolute.json?.auditEventId).toBeTruthy();
    const hostOnly = await viaProxy(h.proxyPort, `http://public.test:${up.port}/items`, { token, headers: { host: `pub%6cic.test:${up.port}` } });
    expect(hostOnly.status).toBe(400);
    const connect = await connectTunnel(h.proxyPort, `pub%6cic.test:${up.port}`, bearer(token));
    expect(connect.status).toBe(400);
    const tunnel = await connectTunnel(h.proxyPort, `public.test:${up.port}`, bearer(token));
    const inner = await exchange(tunnel.socket, `GET /items HTTP/1.1\r\nHost: pub%6cic.test:${up.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(inner)).toEqual([400]);
    expect(up.hits.length).toBe(before);
  });

  it("never answers 200 to a CONNECT whose tunnel it will refuse, even when the client sends nothing after", async () => {
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const out = await exchange(socket, `CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    expect(statuses(out)).toEqual([403]);
    expect(out).not.toContain("Connection Established");
  });
});
