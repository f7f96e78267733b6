import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onLoopback, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * Generated request heads, CONNECT targets, TLS ClientHellos and bodies, thrown at the real
 * listeners. Whatever arrives, the worker answers with a refusal that names its audit event (or
 * just closes the connection), never reports an internal error, and is still serving afterwards.
 *
 * In `npm test` it runs a bounded number of cases with a fixed seed; `npm run fuzz` runs many
 * more with a fresh seed (FUZZ_RUNS, FUZZ_SEED (a number, or "random") and FUZZ_SECONDS override
 * both). A failure report names the seed and the shrunk input that reproduces it.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
const SEED = process.env.FUZZ_SEED === "random" ? Date.now() % 2 ** 31 : Number(process.env.FUZZ_SEED ?? 20261201);
const SECONDS = Number(process.env.FUZZ_SECONDS ?? 20);
const TIMEOUT_MS = (SECONDS + 90) * 1000;
const settings = { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false, endOnFailure: true };

describe(`fuzz: the listeners survive whatever the agent sends (seed ${SEED})`, () => {
  let h: ProxyHarness;
  let api: Upstream;
  let railway: Upstream;
  let token: string;
  const problems: string[] = [];

  /** Writes `bytes` (then `more`, if the first answer opened a tunnel) and returns what came back. */
  const send = async (port: number, bytes: Buffer, more?: (answer: string) => Buffer | null): Promise<string> => {
    const socket = net.connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let sentMore = false;
    return new Promise<string>((resolve) => {
      let timer: NodeJS.Timeout;
      const done = () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(Buffer.concat(chunks).toString("latin1"));
      };
      const idle = () => {
        clearTimeout(timer);
        timer = setTimeout(done, 250);
      };
      socket.on("connect", () => {
        socket.write(bytes);
        idle();
      });
      socket.on("data", (c: Buffer) => {
        chunks.push(c);
        const answer = Buffer.concat(chunks).toString("latin1");
        if (more && !sentMore && answer.startsWith("HTTP/1.1 200 Connection Established\r\n\r\n")) {
          sentMore = true;
          const next = more(answer);
          if (next) socket.write(next);
        }
        idle();
      });
      socket.on("error", done);
      socket.on("close", done);
    });
  };

  /** Every refusal Bulkhead wrote (JSON with x-bulkhead-decision) names an audit event, and none is an internal error. */
  const check = (raw: string, what: string) => {
    for (const m of raw.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n(\{[^\r\n]*\})?/g)) {
      const headers = m[2] ?? "";
      if (!/x-bulkhead-decision: (deny|error)/i.test(headers) || !m[3]) continue;
      let body: { error?: string; auditEventId?: string | null; auditWarning?: string };
      try {
        body = JSON.parse(m[3]) as typeof body;
      } catch {
        continue; // a refusal cut off by the idle timeout
      }
      if (body.error === "internal_error") problems.push(`internal_error for ${what}`);
      if (!body.auditEventId && !body.auditWarning) problems.push(`refusal ${body.error} without an audit event for ${what}`);
    }
  };

  /** The worker still serves, and nothing it answered so far broke the rules above. */
  const alive = async () => {
    const r = await viaProxy(h.proxyPort, `http://api.test:${api.port}/items`, { token });
    expect(r.status).toBe(200);
    expect(problems).toEqual([]);
  };

  beforeAll(async () => {
    api = await startHttpUpstream();
    railway = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_CLIENT_TIMEOUT_SECONDS: "2", BULKHEAD_MAX_BODY_BYTES: "4096", BULKHEAD_MAX_HEADER_BYTES: "4096", BULKHEAD_TASK_REQUESTS_PER_SECOND: "100000", BULKHEAD_AGENT_REQUESTS_PER_SECOND: "100000" } });
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [api.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addService({ id: "secure", hosts: ["secure.test"], scheme: "https", ports: [443], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addService(onLoopback("railway", railway.port, { scheme: "http" }));
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read, write]\n  - service: railway\n    effects: [read]\n  - service: secure\n    effects: [read]\n"));
  }, 120_000);
  afterAll(async () => {
    await h.close();
    await api.close();
    await railway.close();
  });

  // --- generators ---------------------------------------------------------------------------
  const ascii = (maxLength: number) => fc.string({ unit: "binary-ascii", maxLength });
  const hostArb = () =>
    fc.oneof(
      fc.constant("api.test:PORT"),
      fc.constant("api.test.:PORT"),
      fc.domain(),
      fc.ipV4(),
      fc.ipV4Extended(),
      fc.ipV6().map((a) => `[${a}]`),
      fc.integer({ min: 0, max: 2 ** 32 + 5 }).map(String),
      fc.constantFrom("pub%6cic.test", "127.1", "0x7f.1", "[::ffff:127.0.0.1]", "[fe80::1%25eth0]", "localhost", "a..b", "-x.test", "x_y.test", "xn--nxasmq6b.example", ".", ""),
      ascii(40),
    );
  const portArb = () => fc.oneof(fc.constant("PORT"), fc.integer({ min: 0, max: 70000 }).map(String), fc.constantFrom("", "443", "80", "0x50", "+80", "08080"));
  const withPort = (host: string, port: string) => (host.includes(":PORT") ? host : `${host}:${port}`);
  const bodyArb = () =>
    fc.oneof(
      fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)),
      fc.json({ maxDepth: 3 }).map((j) => Buffer.from(j)),
      fc.record({ query: fc.constantFrom("query { me { id } }", "mutation { volumeDelete(volumeId: \"v\") }", "{", "subscription { x }", ""), variables: fc.jsonValue({ maxDepth: 2 }), operationName: fc.option(ascii(10)) }).map((g) => Buffer.from(JSON.stringify(g))),
      fc.array(fc.record({ query: ascii(60) }), { maxLength: 4 }).map((a) => Buffer.from(JSON.stringify(a))),
    );
  const headerArb = () =>
    fc.tuple(
      fc.oneof(fc.constantFrom("Host", "Content-Length", "Transfer-Encoding", "Proxy-Authorization", "Connection", "Upgrade", "Expect", "Content-Type", "Content-Encoding", "X-Bulkhead-Decision", "Authorization"), ascii(16)),
      fc.oneof(fc.constantFrom("chunked", "close", "websocket", "100-continue", "application/json", "gzip", "0", "-1", "99999999999", "Bearer TOKEN", "Basic Og=="), ascii(40)),
    );
  const fill = (text: string, port: number) => text.replace(/PORT/g, String(port)).replace(/TOKEN/g, token);

  /** A TLS ClientHello: mostly well-formed, with a generated SNI, extensions, and sometimes broken lengths or truncation. */
  const clientHelloArb = () =>
    fc
      .record({
        sni: fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6(), fc.constantFrom("secure.test", "SECURE.TEST.", "evil.test", "", "x".repeat(300)), fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("latin1"))),
        version: fc.constantFrom(0x0301, 0x0303, 0x0304, 0x0200, 0xffff),
        ciphers: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 20 }),
        extensions: fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 40 })), { maxLength: 6 }),
        corrupt: fc.option(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }))),
        truncate: fc.option(fc.nat()),
      })
      .map(({ sni, version, ciphers, extensions, corrupt, truncate }) => {
        const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
        const name = Buffer.from(sni, "latin1");
        const sniExt = Buffer.concat([u16(0), u16(name.length + 5), u16(name.length + 3), Buffer.from([0]), u16(name.length), name]);
        const others = extensions.map(([type, data]) => Buffer.concat([u16(type), u16(data.length), Buffer.from(data)]));
        const exts = Buffer.concat([sniExt, ...others]);
        const suites = Buffer.concat(ciphers.length ? ciphers.map(u16) : [u16(0x1301), u16(0xc02f)]);
        const body = Buffer.concat([u16(version), Buffer.alloc(32, 7), Buffer.from([0]), u16(suites.length), suites, Buffer.from([1, 0]), u16(exts.length), exts]);
        const handshake = Buffer.concat([Buffer.from([1, (body.length >> 16) & 0xff, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
        let record = Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(handshake.length), handshake]);
        if (corrupt) record[corrupt[0] % record.length] = corrupt[1];
        if (truncate !== null) record = record.subarray(0, truncate % (record.length + 1));
        return record;
      });

  // --- properties ---------------------------------------------------------------------------
  it("survives generated request heads and bodies on the explicit listener", async () => {
    const requestArb = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .record({
            method: fc.oneof(fc.constantFrom("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "PRI", "get", "M-SEARCH"), ascii(10)),
            scheme: fc.constantFrom("http://", "https://", "HTTP://", "ftp://", "", "//"),
            host: hostArb(),
            port: portArb(),
            path: fc.oneof(fc.constantFrom("/items", "/graphql/v2", "/", "/a/../b", "/%2e%2e/x", "//x", "/x?y#z", "*", "/\\x"), ascii(30).map((p) => `/${p}`)),
            version: fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "", "http/1.1"),
            auth: fc.constantFrom(true, true, false),
            headers: fc.array(headerArb(), { maxLength: 6 }),
            body: bodyArb(),
            railway: fc.boolean(),
          })
          .map((r) => {
            const host = r.railway ? `backboard.railway.com:${railway.port}` : withPort(r.host, r.port);
            const target = r.path === "*" ? "*" : `${r.scheme}${host}${r.path}`;
            const lines = [`${r.method} ${target} ${r.version}`, `Host: ${host}`];
            if (r.auth) lines.push("Proxy-Authorization: Bearer TOKEN");
            for (const [n, v] of r.headers) lines.push(`${n}: ${v}`);
            if (!r.headers.some(([n]) => /^(content-length|transfer-encoding)$/i.test(n))) lines.push(`Content-Length: ${r.body.length}`);
            return Buffer.concat([Buffer.from(`${fill(lines.join("\r\n"), api.port)}\r\n\r\n`, "latin1"), r.body]);
          }),
      },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((b) => Buffer.from(b)) },
    );
    await fc.assert(
      fc.asyncProperty(requestArb, async (bytes) => {
        check(await send(h.proxyPort, bytes), JSON.stringify(bytes.toString("latin1").slice(0, 200)));
      }),
      settings,
    );
    await alive();
  }, TIMEOUT_MS);

  it("survives generated CONNECT targets, and ClientHellos or garbage inside the tunnels it opens", async () => {
    const connectArb = fc.record({
      host: fc.oneof(hostArb(), fc.constantFrom("secure.test", "SECURE.test.", "api.test")),
      port: fc.oneof(portArb(), fc.constant("443")),
      auth: fc.constantFrom(true, true, false),
      inside: fc.oneof(clientHelloArb(), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), fc.constant(Buffer.from("GET /items HTTP/1.1\r\nHost: api.test:PORT\r\n\r\n"))),
    });
    await fc.assert(
      fc.asyncProperty(connectArb, async ({ host, port, auth, inside }) => {
        const target = fill(withPort(host, port), api.port);
        const head = `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth ? `Proxy-Authorization: Bearer ${token}\r\n` : ""}\r\n`;
        const answer = await send(h.proxyPort, Buffer.from(head, "latin1"), () => Buffer.from(fill(inside.toString("latin1"), api.port), "latin1"));
        check(answer, `CONNECT ${JSON.stringify(target)}`);
      }),
      settings,
    );
    await alive();
  }, TIMEOUT_MS);

  it("survives generated ClientHellos on the transparent TLS listener and garbage on the transparent HTTP listener", async () => {
    await fc.assert(
      fc.asyncProperty(clientHelloArb(), fc.uint8Array({ maxLength: 300 }), async (hello, garbage) => {
        await send(h.transparentTlsPort, hello);
        check(await send(h.transparentHttpPort, Buffer.from(garbage)), "transparent HTTP garbage");
      }),
      settings,
    );
    await alive();
  }, TIMEOUT_MS);
});
