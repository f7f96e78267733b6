import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { generateCertificateAuthority } from "@/lib/tls/ca";
import { issueLeafCertificate } from "@/lib/tls/leaf";
import { importCaPrivateKey } from "@/lib/tls/x509";

/** What reached an upstream: every test asserts denied requests are absent from here. */
export interface Hit {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface Upstream {
  port: number;
  hits: Hit[];
  close(): Promise<void>;
}

type Responder = (hit: Hit, res: http.ServerResponse) => void;

const defaultResponder: Responder = (hit, res) => {
  const body = JSON.stringify({ ok: true, method: hit.method, url: hit.url, sawAuthorization: hit.headers.authorization ?? null });
  res.writeHead(200, { "content-type": "application/json" });
  res.end(body);
};

function handler(hits: Hit[], respond: Responder): http.RequestListener {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const hit = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      hits.push(hit);
      respond(hit, res);
    });
  };
}

async function listening(server: http.Server | https.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return (server.address() as AddressInfo).port;
}

/** A plain HTTP upstream on loopback that records what reaches it. */
export async function startHttpUpstream(respond: Responder = defaultResponder): Promise<Upstream> {
  const hits: Hit[] = [];
  const server = http.createServer(handler(hits, respond));
  const port = await listening(server);
  return { port, hits, close: () => new Promise((r) => server.close(() => r())) };
}

export interface TestPki {
  caPem: string;
  /** A server certificate for `names`, signed by the test CA. */
  serverCert(names: string): Promise<{ certPem: string; keyPem: string }>;
}

/** A test CA standing in for a public one: upstream HTTPS servers present certs it signed. */
export async function createTestPki(): Promise<TestPki> {
  const ca = await generateCertificateAuthority({ now: new Date(), commonName: "Test upstream CA" });
  const privateKey = await importCaPrivateKey(ca.privateKeyPkcs8Pem);
  return {
    caPem: ca.certPem,
    serverCert: async (name) => {
      const leaf = await issueLeafCertificate({ ca: { certPem: ca.certPem, privateKey }, serverName: name, now: new Date() });
      return { certPem: leaf.certPem, keyPem: leaf.keyPem };
    },
  };
}

/** An HTTPS upstream on loopback presenting a certificate for `name` from the test CA. */
export async function startHttpsUpstream(pki: TestPki, name: string, respond: Responder = defaultResponder): Promise<Upstream> {
  const hits: Hit[] = [];
  const cert = await pki.serverCert(name);
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, handler(hits, respond));
  const port = await listening(server);
  return {
    port,
    hits,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
