import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getCaCertificatePem, rotateCertificateAuthority } from "@/lib/tls/ca-store";
import { waitFor } from "../../support/log-capture";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { connectTunnel, exchange, statuses, tlsOver } from "../../support/tunnel-client";
import { createTestPki, startHttpsUpstream, type Upstream } from "../../support/upstreams";

const GITHUB = "api.github.com";

describe("CONNECT with TLS interception: the tunnel is not a blank cheque", () => {
  let h: ProxyHarness;
  let github: Upstream;
  let caPem: string;
  let token: string;

  beforeAll(async () => {
    const pki = await createTestPki();
    github = await startHttpsUpstream(pki, GITHUB);
    h = await startProxyHarness({ upstreamCaPem: pki.caPem });
    await h.addService(onLoopback("github", github.port));
    // The same upstream by address: a tunnel to an IP literal is served that address's leaf.
    await h.addService({ id: "by-address", hosts: ["127.0.0.1"], scheme: "https", ports: [github.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "github", scheme: "https", host: GITHUB, port: github.port, headerTemplate: "Authorization: Bearer {secret}", secret: "ghp_realsecretvalue000" });
    ({ token } = await h.newTask('unlisted: deny\nrules:\n  - service: github\n    resources: ["acme/app"]\n    effects: [read]\n'));
    caPem = (await getCaCertificatePem(h.t.db))!.certPem;
  });
  afterAll(async () => {
    await h.close();
    await github.close();
  });

  const open = async (t: string | null = token, sni = GITHUB) => {
    const tunnel = await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, t ? { "proxy-authorization": `Bearer ${t}` } : {});
    expect(tunnel.status).toBe(200);
    return tlsOver(tunnel.socket, sni, caPem);
  };
  /** Waits until no request is being handled, so one still in flight from an earlier step has landed before counting. */
  const settle = () => waitFor(() => h.proxy.status().inFlight === 0, 10_000, "requests in flight to finish");
  const get = (path: string, host = `${GITHUB}:${github.port}`, extra = "") => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: token agent-own\r\n${extra}Connection: close\r\n\r\n`;

  it("judges each request inside the tunnel: a read is forwarded with the injected credential", async () => {
    const before = github.hits.length;
    const out = await exchange(await open(), get("/repos/acme/app/issues"));
    expect(statuses(out)).toEqual([200]);
    expect(github.hits.length).toBe(before + 1);
    expect(github.hits.at(-1)!.headers.authorization).toBe("Bearer ghp_realsecretvalue000");
    expect(out).not.toContain("ghp_realsecretvalue000");
  });

  it("refuses repository deletion inside an authorised tunnel", async () => {
    const before = github.hits.length;
    const out = await exchange(await open(), `DELETE /repos/acme/app HTTP/1.1\r\nHost: ${GITHUB}:${github.port}\r\nConnection: close\r\n\r\n`);
    expect(statuses(out)).toEqual([403]);
    expect(out).toMatch(/irreversible/);
    expect(github.hits.length).toBe(before);
  });

  it("judges pipelined requests on one connection one by one", async () => {
    const before = github.hits.length;
    const raw =
      `GET /repos/acme/app/pulls HTTP/1.1\r\nHost: ${GITHUB}:${github.port}\r\n\r\n` +
      `DELETE /repos/acme/app HTTP/1.1\r\nHost: ${GITHUB}:${github.port}\r\n\r\n` +
      `GET /repos/acme/app/issues HTTP/1.1\r\nHost: ${GITHUB}:${github.port}\r\nConnection: close\r\n\r\n`;
    const out = await exchange(await open(), raw);
    expect(statuses(out)[0]).toBe(200);
    expect(statuses(out)[1]).toBe(403);
    await settle();
    // The refusal closes the connection; the GET after it may or may not have been judged first.
    expect(github.hits.length - before).toBeLessThanOrEqual(2);
    expect(github.hits.slice(before).every((hit) => hit.method === "GET")).toBe(true);
  });

  it("refuses an inner Host that differs from the CONNECT authority", async () => {
    await settle();
    const before = github.hits.length;
    const out = await exchange(await open(), get("/repos/acme/app/issues", `evil.example:${github.port}`));
    expect(statuses(out)).toEqual([400]);
    expect(github.hits.length).toBe(before);
  });

  it("refuses an SNI that differs from the CONNECT authority (no certificate is minted)", async () => {
    const tunnel = await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, { "proxy-authorization": `Bearer ${token}` });
    await expect(tlsOver(tunnel.socket, "evil.example", caPem)).rejects.toThrow();
  });

  it("refuses TLS renegotiation inside a tunnel, to a name or an IP literal: a handshake one connection could repeat without end", async () => {
    // The tunnel's TLS is a TLSSocket made by hand, not by a tls.Server, so Node's limit on
    // client-initiated renegotiations (3 per 10 minutes) never applied: one connection could make
    // the worker compute a full handshake after another, past every connection and request limit.
    for (const [target, servername] of [[`${GITHUB}:${github.port}`, GITHUB], [`127.0.0.1:${github.port}`, undefined]] as const) {
      const tunnel = await connectTunnel(h.proxyPort, target, { "proxy-authorization": `Bearer ${token}` });
      expect(tunnel.status, target).toBe(200);
      const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
        const s = tls.connect({ socket: tunnel.socket, servername, ca: caPem, maxVersion: "TLSv1.2", checkServerIdentity: () => undefined });
        s.once("secureConnect", () => resolve(s));
        s.once("error", reject);
      });
      const outcome = await new Promise<string>((resolve) => {
        secure.once("error", () => resolve("refused"));
        if (!secure.renegotiate({}, (error) => resolve(error ? "refused" : "renegotiated"))) resolve("refused");
        setTimeout(() => resolve("no answer"), 3000);
      });
      expect(outcome, target).toBe("refused");
      secure.destroy();
    }
  });

  it("refuses a CONNECT without a valid token before any TLS, and CONNECT targets that are not host:port", async () => {
    expect((await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`)).status).toBe(407);
    expect((await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, { "proxy-authorization": "Bearer nope" })).status).toBe(407);
    for (const target of [`user@${GITHUB}:443`, `${GITHUB}`, `http://${GITHUB}:443`, `${GITHUB}:443/path`, `${GITHUB}:99999`]) {
      expect((await connectTunnel(h.proxyPort, target, { "proxy-authorization": `Bearer ${token}` })).status, target).toBe(400);
    }
  });

  it("a rotated CA signs the next tunnels of a running worker", async () => {
    const rotated = await rotateCertificateAuthority(h.t.db, h.admin, h.keys.workerKey);
    await h.sync();
    const tunnel = await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, { "proxy-authorization": `Bearer ${token}` });
    await expect(tlsOver(tunnel.socket, GITHUB, caPem)).rejects.toThrow();
    const fresh = await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, { "proxy-authorization": `Bearer ${token}` });
    const secure = await tlsOver(fresh.socket, GITHUB, rotated.certPem);
    expect(statuses(await exchange(secure, get("/repos/acme/app/issues")))).toEqual([200]);
    caPem = rotated.certPem;
  });

  it("a revoked token closes the open tunnel: its next request reaches nothing", async () => {
    const own = await h.newTask('unlisted: deny\nrules:\n  - service: github\n    resources: ["acme/app"]\n    effects: [read]\n');
    const socket = await open(own.token);
    const closed = new Promise((r) => socket.once("close", r));
    await settle();
    const before = github.hits.length;
    await h.t.db.task.update({ where: { id: own.taskId }, data: { status: "ended", endedAt: new Date() } });
    await h.sync();
    await closed;
    const out = await exchange(socket, get("/repos/acme/app/issues"));
    expect(statuses(out)).toEqual([]);
    expect(github.hits.length).toBe(before);
  });
});

describe("a tunnel whose client attempted a renegotiation still closes on time", () => {
  let h: ProxyHarness;
  let github: Upstream;
  let caPem: string;
  let token: string;

  beforeAll(async () => {
    const pki = await createTestPki();
    github = await startHttpsUpstream(pki, GITHUB);
    // A head timeout of one second: the tunnel gets its 408 then.
    h = await startProxyHarness({ upstreamCaPem: pki.caPem, env: { BULKHEAD_CLIENT_TIMEOUT_SECONDS: "1" } });
    await h.addService(onLoopback("github", github.port));
    ({ token } = await h.newTask('unlisted: deny\nrules:\n  - service: github\n    effects: [read]\n'));
    caPem = (await getCaCertificatePem(h.t.db))!.certPem;
  });
  afterAll(async () => {
    await h.close();
    await github.close();
  });

  it("closes the worker's side when the 408 cannot be written: a refused renegotiation leaves OpenSSL unable to write", async () => {
    // The 408 went into a TLS layer that could no longer write, and `end()` waited for it for
    // ever: the connection stayed open, and after the client left, half-closed, until the
    // tunnel's maximum lifetime (an hour), holding a file descriptor and a connection slot.
    const before = h.proxy.status().openConnections;
    const tunnel = await connectTunnel(h.proxyPort, `${GITHUB}:${github.port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: tunnel.socket, servername: GITHUB, ca: caPem, maxVersion: "TLSv1.2" });
      s.once("secureConnect", () => resolve(s));
      s.once("error", reject);
    });
    secure.on("error", () => undefined);
    secure.renegotiate({}, () => undefined);
    const closed = new Promise<void>((resolve) => tunnel.socket.once("close", () => resolve()));
    await waitFor(() => h.proxy.status().openConnections === before + 1, 5_000, "the tunnel to be registered");
    // The head timeout (1 s) and the refusal's grace, well inside the tunnel's lifetime.
    await waitFor(() => h.proxy.status().openConnections === before, 12_000, "the worker to close the tunnel");
    await closed;
  });
});
