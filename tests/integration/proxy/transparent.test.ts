import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCaCertificatePem } from "@/lib/tls/ca-store";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { connectTunnel, exchange, statuses, tlsOver } from "../../support/tunnel-client";
import { createTestPki, startHttpUpstream, startHttpsUpstream, type Upstream } from "../../support/upstreams";

describe("transparent listeners (sandboxes) and host-only passthrough services", () => {
  let h: ProxyHarness;
  let plain: Upstream;
  let github: Upstream;
  let tunnelTarget: Upstream;
  let caPem: string;
  let upstreamCaPem: string;

  const fromAddress = async (localAddress: string, port: number) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    await new Promise((r) => socket.once("connect", r));
    return socket;
  };

  beforeAll(async () => {
    const pki = await createTestPki();
    upstreamCaPem = pki.caPem;
    plain = await startHttpUpstream();
    github = await startHttpsUpstream(pki, "api.github.com");
    tunnelTarget = await startHttpsUpstream(pki, "tunnel.test");
    h = await startProxyHarness({ upstreamCaPem: pki.caPem });
    await h.addService({ id: "plain", hosts: ["plain.test"], scheme: "http", ports: [plain.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addService(onLoopback("github", github.port));
    await h.addService({ id: "opaque", hosts: ["tunnel.test"], scheme: "https", ports: [tunnelTarget.port], protocol: "rest", proxy: { tls: "passthrough", internalAddresses: ["127.0.0.1/32"] } });
    const { taskId } = await h.newTask('unlisted: deny\nrules:\n  - service: plain\n    effects: [read]\n  - service: github\n    resources: ["acme/app"]\n    effects: [read]\n');
    await h.t.adminDb().sandbox.create({ data: { taskId, name: "sandbox-a", sourceAddress: "127.0.0.2" } });
    await h.sync();
    caPem = (await getCaCertificatePem(h.t.db))!.certPem;
  });
  afterAll(async () => {
    await h.close();
    await Promise.all([plain.close(), github.close(), tunnelTarget.close()]);
  });

  it("identifies a sandbox by its source address (plain HTTP); other addresses get 407", async () => {
    const before = plain.hits.length;
    const ok = await exchange(await fromAddress("127.0.0.2", h.transparentHttpPort), `GET /items HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(ok)).toEqual([200]);
    expect(plain.hits.length).toBe(before + 1);
    const stranger = await exchange(await fromAddress("127.0.0.3", h.transparentHttpPort), `GET /items HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(stranger)).toEqual([407]);
    expect(stranger).toContain("sandbox_unknown");
    expect(plain.hits.length).toBe(before + 1);
  });

  it("intercepts TLS by SNI for a sandbox and judges what is inside", async () => {
    const before = github.hits.length;
    const socket = tls.connect({ socket: await fromAddress("127.0.0.2", h.transparentTlsPort), servername: "api.github.com", ca: caPem });
    await new Promise((r, j) => {
      socket.once("secureConnect", r);
      socket.once("error", j);
    });
    const out = await exchange(socket, `GET /repos/acme/app HTTP/1.1\r\nHost: api.github.com:${github.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(out)).toEqual([200]);
    expect(github.hits.length).toBe(before + 1);
    const del = tls.connect({ socket: await fromAddress("127.0.0.2", h.transparentTlsPort), servername: "api.github.com", ca: caPem });
    await new Promise((r) => del.once("secureConnect", r));
    const denied = await exchange(del, `DELETE /repos/acme/app HTTP/1.1\r\nHost: api.github.com:${github.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(denied)).toEqual([403]);
    const other = tls.connect({ socket: await fromAddress("127.0.0.2", h.transparentTlsPort), servername: "api.github.com", ca: caPem });
    await new Promise((r) => other.once("secureConnect", r));
    const mismatch = await exchange(other, `GET /repos/acme/app HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(mismatch)).toEqual([400]);
    expect(github.hits.filter((x) => x.method === "DELETE").length).toBe(0);
    expect(github.hits.length).toBe(before + 1);
  });

  // Inside TLS the request's socket is the TLS layer. Over a relayed stream (the namespace
  // sandbox's listener) it has no address of its own, and a check binding a token to the sandbox
  // it is presented from found no sandbox (tests/integration/isolation/sandbox-traffic.test.ts).
  // Here, on the transparent TLS listener, the sandbox is the identity and its address is recorded.
  it("judges a request inside a sandbox's intercepted TLS as the sandbox, whatever token it carries, and records the sandbox's address", async () => {
    const other = await h.newTask('unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n');
    const before = github.hits.length;
    const socket = tls.connect({ socket: await fromAddress("127.0.0.2", h.transparentTlsPort), servername: "api.github.com", ca: caPem });
    await new Promise((r, j) => {
      socket.once("secureConnect", r);
      socket.once("error", j);
    });
    const out = await exchange(socket, `GET /repos/acme/other HTTP/1.1\r\nHost: api.github.com:${github.port}\r\nProxy-Authorization: Bearer ${other.token}\r\nConnection: close\r\n\r\n`);
    expect(statuses(out), out).toEqual([403]);
    expect(github.hits.length).toBe(before);
    const eventId = (JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as { auditEventId: string }).auditEventId;
    await expect.poll(async () => (await h.events()).find((e) => e.data.eventId === eventId)?.data.client, { timeout: 5000 }).toBe("127.0.0.2");
  });

  // An external sandbox chose any SNI and the worker made a leaf for each, without limit, pushing
  // every other task's leaves out of the shared cache.
  it("makes no leaf for a name the sandbox's task could never reach", async () => {
    const leaves = () => h.proxy.status().leafCache as { misses: number; size: number };
    const before = leaves();
    for (let i = 0; i < 5; i++) {
      const socket = tls.connect({ socket: await fromAddress("127.0.0.2", h.transparentTlsPort), servername: `unreached-${i}.example.com`, ca: caPem });
      const outcome = await new Promise<string>((r) => {
        socket.once("secureConnect", () => r("connected"));
        socket.once("error", () => r("refused"));
        socket.once("close", () => r("refused"));
      });
      socket.destroy();
      expect(outcome).toBe("refused");
    }
    expect(leaves().misses).toBe(before.misses);
    // A name its policy reaches still gets its leaf.
    const ok = tls.connect({ socket: await fromAddress("127.0.0.2", h.transparentTlsPort), servername: "api.github.com", ca: caPem });
    await new Promise((r, j) => {
      ok.once("secureConnect", r);
      ok.once("error", j);
    });
    ok.destroy();
  });

  it("closes a TLS connection from an address no sandbox owns before its handshake: no leaf is minted, the cache is untouched", async () => {
    const leaves = () => h.proxy.status().leafCache as { hits: number; misses: number; coalesced: number; size: number };
    const before = leaves();
    for (let i = 0; i < 5; i++) {
      const raw = await fromAddress("127.0.0.9", h.transparentTlsPort);
      const socket = tls.connect({ socket: raw, servername: `stranger-${i}.example`, rejectUnauthorized: false });
      const outcome = await new Promise<{ certificate: boolean; error: string | null }>((resolve) => {
        socket.once("secureConnect", () => resolve({ certificate: Object.keys(socket.getPeerCertificate()).length > 0, error: null }));
        socket.once("error", (error: NodeJS.ErrnoException) => resolve({ certificate: false, error: error.code ?? error.message }));
        socket.once("close", () => resolve({ certificate: false, error: "closed" }));
      });
      socket.destroy();
      expect(outcome.certificate, `stranger-${i}.example`).toBe(false);
      expect(outcome.error).not.toBeNull();
    }
    // A bound sandbox still gets its leaf, so the cache is live: the strangers made it do nothing.
    expect(leaves()).toEqual(before);
    await expect.poll(async () => (await h.events()).filter((e) => e.data.code === "sandbox_unknown" && e.data.client === "127.0.0.9" && e.data.listener === "transparent").length, { timeout: 5_000 }).toBeGreaterThan(0);
  });

  it("a refusal before a sandbox connection's first request is audited under the sandbox's task", async () => {
    const { taskId, agentId } = await h.newTask("unlisted: deny\nrules:\n  - service: plain\n    effects: [read]\n");
    await h.t.adminDb().sandbox.create({ data: { taskId, name: "sandbox-c", sourceAddress: "127.0.0.6" } });
    await h.sync();
    // Not TLS at all on the TLS listener: the handshake fails before any request names a task.
    const garbage = await fromAddress("127.0.0.6", h.transparentTlsPort);
    garbage.on("error", () => undefined);
    garbage.write("GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n");
    // Nor is this HTTP on the HTTP listener.
    const broken = await fromAddress("127.0.0.6", h.transparentHttpPort);
    broken.on("error", () => undefined);
    broken.write("NOT HTTP\r\n\r\n");
    await expect
      .poll(
        async () =>
          (await h.t.db.auditEvent.findMany({ where: { type: { startsWith: "proxy." } }, select: { taskId: true, agentId: true, data: true } }))
            .map((e) => ({ ...e, data: e.data as Record<string, unknown> }))
            .filter((e) => e.data.client === "127.0.0.6" && (e.data.code === "tls_handshake_failed" || e.data.code === "http_parse_error"))
            .map((e) => `${String(e.data.code)} ${e.taskId} ${e.agentId}`)
            .sort(),
        { timeout: 5_000 },
      )
      .toEqual([`http_parse_error ${taskId} ${agentId}`, `tls_handshake_failed ${taskId} ${agentId}`]);
    garbage.destroy();
    broken.destroy();
  });

  it("a sandbox that lost its task is refused", async () => {
    const { taskId } = await h.newTask("unlisted: deny\nrules:\n  - service: plain\n    effects: [read]\n");
    await h.t.adminDb().sandbox.create({ data: { taskId, name: "sandbox-b", sourceAddress: "127.0.0.4" } });
    await h.t.db.task.update({ where: { id: taskId }, data: { status: "ended", endedAt: new Date() } });
    await h.sync();
    const out = await exchange(await fromAddress("127.0.0.4", h.transparentHttpPort), `GET /items HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(out)).toEqual([407]);
  });

  it("a passthrough service tunnels only when a rule allows its irreversible 'tunnel' action explicitly", async () => {
    // A scope that allows the tunnel, so the policy is what refuses it (token-scope.test.ts covers the scope).
    const { token: readOnly } = await h.newTask("unlisted: deny\nrules:\n  - service: opaque\n    effects: [read, write]\n", { scope: "opaque:*:irreversible" });
    const refused = await connectTunnel(h.proxyPort, `tunnel.test:${tunnelTarget.port}`, { "proxy-authorization": `Bearer ${readOnly}` });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatch(/host-only service, contents not inspected/);

    const { token: allowed } = await h.newTask("unlisted: deny\nrules:\n  - service: opaque\n    operations: [tunnel]\n    effects: [irreversible]\n    waive_approval: true\n");
    const before = tunnelTarget.hits.length;
    const tunnel = await connectTunnel(h.proxyPort, `tunnel.test:${tunnelTarget.port}`, { "proxy-authorization": `Bearer ${allowed}` });
    expect(tunnel.status).toBe(200);
    // End to end: the certificate is the upstream's own (Bulkhead's CA does not vouch for it).
    await expect(tlsOver(tunnel.socket, "tunnel.test", caPem)).rejects.toThrow();
    const again = await connectTunnel(h.proxyPort, `tunnel.test:${tunnelTarget.port}`, { "proxy-authorization": `Bearer ${allowed}` });
    const secure = await tlsOver(again.socket, "tunnel.test", upstreamCaPem);
    const out = await exchange(secure, `GET /anything HTTP/1.1\r\nHost: tunnel.test\r\nConnection: close\r\n\r\n`);
    expect(statuses(out)).toEqual([200]);
    expect(tunnelTarget.hits.length).toBe(before + 1);
    const events = await h.events();
    expect(events.some((e) => e.data.hostOnly === true && e.outcome === "allow")).toBe(true);
  });
});
