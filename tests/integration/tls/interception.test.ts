import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureCertificateAuthority, loadCertificateAuthority } from "@/lib/tls/ca-store";
import { InvalidServerNameError, type ServerNameProblem } from "@/lib/tls/leaf";
import { createInterceptingTlsOptions, LeafCertificateCache, ServerNameMismatchError } from "@/proxy-worker/tls/leaf-cache";
import { generateCertificateAuthority } from "@/lib/tls/ca";
import { createTestDatabase, type TestDatabase } from "../../support/database";
import { establishTestKeys } from "../../support/keys";

interface Handshake {
  ok: boolean;
  cert?: tls.PeerCertificate;
  authorized?: boolean;
  error?: NodeJS.ErrnoException;
  body?: string;
}

/** Connects to 127.0.0.1:port and reports how the handshake went (never throws). */
function handshake(port: number, options: tls.ConnectionOptions): Promise<Handshake> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ...options });
    socket.setTimeout(5000, () => socket.destroy(new Error("timeout")));
    socket.once("secureConnect", () => {
      const result: Handshake = { ok: true, cert: socket.getPeerCertificate(), authorized: socket.authorized };
      let body = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => (body += d));
      socket.once("end", () => {
        socket.destroy();
        resolve({ ...result, body });
      });
    });
    socket.once("error", (error: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve({ ok: false, error });
    });
  });
}

async function until(check: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}

describe("TLS interception on loopback with the CA from Postgres", () => {
  let t: TestDatabase;
  let caPem: string;
  let cache: LeafCertificateCache;
  let server: tls.Server;
  let port: number;
  const serverErrors: Error[] = [];

  beforeAll(async () => {
    t = await createTestDatabase();
    const { workerKey } = await establishTestKeys(t.db, { signingKey: false });
    await ensureCertificateAuthority(t.db, workerKey);
    const ca = await loadCertificateAuthority(t.db, workerKey);
    caPem = ca.certPem;
    cache = new LeafCertificateCache({ ca, maxEntries: 100 });
    server = tls.createServer(createInterceptingTlsOptions(cache), (socket) => socket.end(`hello ${socket.servername}`));
    server.on("tlsClientError", (error) => serverErrors.push(error));
    port = await listen(server);
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await t.drop();
  });

  it("completes the handshake for api.github.com with a client that trusts the CA, presenting a leaf for that name", async () => {
    const r = await handshake(port, { servername: "api.github.com", ca: caPem });
    expect(r.error).toBeUndefined();
    expect(r.ok).toBe(true);
    expect(r.authorized).toBe(true);
    expect(r.cert?.subject.CN).toBe("api.github.com");
    expect(r.cert?.subjectaltname).toBe("DNS:api.github.com");
    expect(r.cert?.issuer.CN).toMatch(/^Bulkhead interception CA \([0-9a-f]{8}\)$/);
    expect(r.body).toBe("hello api.github.com");
  });

  it("is rejected by a client that does not trust the CA (default trust store, or another Bulkhead CA)", async () => {
    const untrusted = await handshake(port, { servername: "api.github.com" });
    expect(untrusted.ok).toBe(false);
    expect(untrusted.error?.code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");

    const otherCa = await generateCertificateAuthority({ now: new Date() });
    const wrongCa = await handshake(port, { servername: "api.github.com", ca: otherCa.certPem });
    expect(wrongCa.ok).toBe(false);
    expect(wrongCa.error?.code).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });

  it("is rejected by a client that checks the name it asked for: the leaf is for the SNI only", async () => {
    // SNI says one name, the client verifies another: the leaf does not cover it.
    const r = await handshake(port, { servername: "api.github.com", ca: caPem, checkServerIdentity: (_h, cert) => tls.checkServerIdentity("uploads.github.com", cert) });
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("refuses a handshake without SNI: no certificate at all, not even for a client that accepts anything", async () => {
    const before = cache.stats();
    const errorsBefore = serverErrors.length;
    for (const options of [{ ca: caPem }, { rejectUnauthorized: false }, { servername: "", rejectUnauthorized: false }] as tls.ConnectionOptions[]) {
      const r = await handshake(port, options);
      expect(r.ok, JSON.stringify(options)).toBe(false);
      expect(r.cert).toBeUndefined();
    }
    // OpenSSL found no certificate to present (there is no default one), so each handshake died.
    // (Resets from the earlier tests' aborted clients may still arrive; they are not counted.)
    const noCertificate = () => serverErrors.slice(errorsBefore).filter((e) => (e as NodeJS.ErrnoException).code === "ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM");
    await until(() => noCertificate().length === 3);
    expect(cache.stats()).toEqual(before);
  });

  it("refuses a handshake with an invalid SNI before minting anything", async () => {
    const before = cache.stats();
    const cases: Array<[string, ServerNameProblem]> = [
      ["*.github.com", "wildcard"],
      ["a..b", "empty_label"],
      ["-a.com", "label_hyphen"],
      ["a b", "invalid_character"],
      ["_x.github._com", "invalid_character"],
      ["1.2.3", "numeric_tld"],
      [`${"x".repeat(64)}.com`, "label_too_long"],
    ];
    for (const [servername, reason] of cases) {
      const errorsBefore = serverErrors.length;
      const r = await handshake(port, { servername, rejectUnauthorized: false });
      expect(r.ok, servername).toBe(false);
      expect(r.cert, servername).toBeUndefined();
      const refusals = () => serverErrors.slice(errorsBefore).filter((e) => e instanceof InvalidServerNameError);
      await until(() => refusals().length > 0);
      const refusal = refusals()[0];
      expect(refusal, servername).toBeInstanceOf(InvalidServerNameError);
      expect((refusal as InvalidServerNameError).reason, servername).toBe(reason);
    }
    expect(cache.stats()).toEqual(before);
  });

  it("mints once for two concurrent handshakes on one name", async () => {
    const before = cache.stats();
    const [a, b] = await Promise.all([
      handshake(port, { servername: "concurrent.example.com", ca: caPem }),
      handshake(port, { servername: "concurrent.example.com", ca: caPem }),
    ]);
    expect(a.ok && b.ok).toBe(true);
    expect(a.cert?.fingerprint256).toBe(b.cert?.fingerprint256);
    const after = cache.stats();
    expect(after.misses - before.misses).toBe(1);
    expect(after.coalesced - before.coalesced + (after.hits - before.hits)).toBe(1);

    // And a later handshake is a cache hit with the same certificate.
    const c = await handshake(port, { servername: "concurrent.example.com", ca: caPem });
    expect(c.cert?.fingerprint256).toBe(a.cert?.fingerprint256);
    expect(cache.stats().misses).toBe(after.misses);
  });

  it("in a CONNECT tunnel, refuses an SNI other than the authorised host (no mint for it)", async () => {
    // The proxy wraps the tunnel's socket itself, knowing the host the agent was authorised for.
    const tunnelErrors: Error[] = [];
    const tunnel = net.createServer((socket) => {
      const secure = new tls.TLSSocket(socket, { isServer: true, ...createInterceptingTlsOptions(cache, { expectedServerName: "api.github.com" }) });
      secure.on("secure", () => secure.end(`tunnel ${secure.servername}`));
      secure.on("error", (error) => {
        tunnelErrors.push(error);
        secure.destroy();
      });
    });
    const tunnelPort = await listen(tunnel);
    try {
      const before = cache.stats();
      const evil = await handshake(tunnelPort, { servername: "evil.example.com", rejectUnauthorized: false });
      expect(evil.ok).toBe(false);
      expect(evil.cert).toBeUndefined();
      expect(cache.stats().misses).toBe(before.misses);
      await until(() => tunnelErrors.length > 0);
      expect(tunnelErrors[0]).toBeInstanceOf(ServerNameMismatchError);

      const good = await handshake(tunnelPort, { servername: "API.GITHUB.COM", ca: caPem, checkServerIdentity: (_h, cert) => tls.checkServerIdentity("api.github.com", cert) });
      expect(good.error).toBeUndefined();
      expect(good.cert?.subject.CN).toBe("api.github.com");
      // socket.servername is the client's raw SNI: compare it to the inner Host canonicalised.
      expect(good.body).toBe("tunnel API.GITHUB.COM");
    } finally {
      await new Promise((r) => tunnel.close(r));
    }
  });
});
