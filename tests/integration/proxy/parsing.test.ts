import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { closedAfter, connectTunnel, exchange, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/** Raw bytes to the explicit listener: the tests are about what the parser accepts. */
describe("parsing: one parsed request decides and dials", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let token: string;
  let taskId: string;
  let origin: string;

  const raw = async (bytes: string) => {
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    return exchange(socket, bytes, 800);
  };
  const auth = () => `Proxy-Authorization: Bearer ${token}\r\n`;

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness({ env: { BULKHEAD_MAX_BODY_BYTES: "4096", BULKHEAD_MAX_HEADER_BYTES: "4096", BULKHEAD_CLIENT_TIMEOUT_SECONDS: "1" } });
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", rest: { routes: [{ method: "GET", path: "/admin/{rest+}", operation: "admin", effect: "irreversible" }] }, proxy: { internalAddresses: ["127.0.0.1/32"] } });
    // A scope wider than the policy: the refusals here are the policy's (token-scope.test.ts covers the scope).
    ({ token, taskId } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read, write]\n", { scope: "api:*:irreversible" }));
    origin = `http://api.test:${up.port}`;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  it("forwards a plain allowed request (control)", async () => {
    const before = up.hits.length;
    const out = await raw(`GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`);
    expect(statuses(out)).toEqual([200]);
    expect(up.hits.length).toBe(before + 1);
  });

  it.each([
    ["dot segments", "/public/../admin/x"],
    ["encoded dots", "/public/%2e%2e/admin/x"],
    ["encoded slash", "/public%2F..%2Fadmin/x"],
    ["double slash", "//admin/x"],
    ["backslash", "/public\\..\\admin/x"],
    // "." and "/" to a lax UTF-8 decoder; refused or read otherwise by a strict one.
    ["overlong UTF-8 dots", "/public/%C0%AE%C0%AE/admin/x"],
    ["overlong UTF-8 slash", "/public%C0%AF..%C0%AFadmin/x"],
    // `..;` with its `;` escaped: decoded by a front server (nginx proxy_pass with a URI), Tomcat
    // strips the matrix parameter and resolves the `..`.
    ["dots before an escaped matrix parameter", "/public/..%3Bx/admin/x"],
    ["encoded dots before an escaped ;", "/public/%2e%2e%3b/admin/x"],
  ])("rejects %s in the path with 400, reaching nothing", async (_name, path) => {
    const before = up.hits.length;
    const out = await raw(`GET ${origin}${path} HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`);
    expect(statuses(out)[0]).toBe(400);
    expect(up.hits.length).toBe(before);
  });

  it("matches routes without matrix parameters, escaped or not: /admin;x/y and /admin%3Bx/y are the admin route", async () => {
    const before = up.hits.length;
    // What Tomcat runs for /admin;x/y, and for /admin%3Bx/y once a server in front has decoded it.
    for (const path of ["/admin;x/y", "/admin%3Bx/y", "/admin%3b/y"]) {
      const out = await raw(`GET ${origin}${path} HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`);
      expect(statuses(out)[0], path).toBe(403);
      expect(out, path).toContain("policy_deny");
    }
    expect(up.hits.length).toBe(before);
  });

  it("the path that was evaluated is the path that is forwarded (case and encoding normalised once)", async () => {
    const out = await raw(`GET ${origin}/items/%7euser HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`);
    expect(statuses(out)).toEqual([200]);
    expect(up.hits.at(-1)!.url).toBe("/items/~user");
    // Escaped UTF-8 goes as it came (the control for the overlong forms above).
    const utf8 = await raw(`GET ${origin}/items/caf%c3%a9 HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`);
    expect(statuses(utf8)).toEqual([200]);
    expect(up.hits.at(-1)!.url).toBe("/items/caf%C3%A9");
  });

  it("rejects userinfo in the authority, Host mismatch and duplicate Host", async () => {
    const before = up.hits.length;
    const cases = [
      `GET http://user:pw@api.test:${up.port}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`,
      `GET ${origin}/items HTTP/1.1\r\nHost: evil.test\r\n${auth()}Connection: close\r\n\r\n`,
      `GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\nHost: evil.test\r\n${auth()}Connection: close\r\n\r\n`,
    ];
    for (const c of cases) expect(statuses(await raw(c))[0], c.split("\r\n")[0]).toBe(400);
    expect(up.hits.length).toBe(before);
  });

  it("refuses two Content-Type or Content-Encoding headers (400 duplicate_header), reaching nothing", async () => {
    const before = up.hits.length;
    for (const [first, second] of [["Content-Type: text/plain", "Content-Type: application/x-www-form-urlencoded"], ["Content-Type: text/plain\r\nContent-Encoding: identity", "Content-Encoding: gzip"]]) {
      const out = await raw(`POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}${first}\r\n${second}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab`);
      expect(statuses(out), out).toEqual([400]);
      expect(out).toContain('"duplicate_header"');
    }
    expect(up.hits.length).toBe(before);
  });

  it("refuses request lines that claim HTTP/0.9 or HTTP/2.0 (400 unsupported_http_version), plain and CONNECT, reaching nothing", async () => {
    // Node's parser takes both, headers and all, and they were judged and forwarded as HTTP/1.1
    // (and an HTTP/0.9 line needed no Host): a guess about what the client meant.
    const before = up.hits.length;
    for (const version of ["HTTP/0.9", "HTTP/2.0"]) {
      const plain = await raw(`GET ${origin}/items ${version}\r\nHost: api.test:${up.port}\r\n${auth()}\r\n`);
      expect(statuses(plain), version).toEqual([400]);
      expect(plain).toContain('"unsupported_http_version"');
      const tunnel = await raw(`CONNECT api.test:${up.port} ${version}\r\nHost: api.test:${up.port}\r\n${auth()}\r\n`);
      expect(statuses(tunnel), `CONNECT ${version}`).toEqual([400]);
      expect(tunnel).toContain('"unsupported_http_version"');
    }
    expect(up.hits.length).toBe(before);
    // HTTP/1.0 is still served.
    expect(statuses(await raw(`GET ${origin}/items HTTP/1.0\r\n${auth()}\r\n`))).toEqual([200]);
  });

  it("refuses Transfer-Encoding on an HTTP/1.0 request (its framing is faulty), reading nothing after it", async () => {
    // RFC 9112 §6.1: HTTP/1.0 has no transfer codings, and a recipient must treat such a message's
    // framing as faulty. Node de-chunked it: it was forwarded, and a keep-alive connection went on
    // to read the next request from wherever that framing said the body ended.
    const before = up.hits.length;
    const out = await raw(`POST ${origin}/items HTTP/1.0\r\nHost: api.test:${up.port}\r\n${auth()}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nGET ${origin}/items/next HTTP/1.0\r\n${auth()}Connection: keep-alive\r\n\r\n`);
    expect(statuses(out)).toEqual([400]);
    expect(out).toContain('"unsupported_transfer_encoding"');
    expect(up.hits.length).toBe(before);
  });

  it("refuses request smuggling: Content-Length with Transfer-Encoding, and bad chunking", async () => {
    const before = up.hits.length;
    const smuggle = `POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET ${origin}/admin/x HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}\r\n\r\n`;
    const out = await raw(smuggle);
    expect(statuses(out)[0]).toBe(400);
    expect(up.hits.filter((hit) => hit.url.startsWith("/admin")).length).toBe(0);
    expect(up.hits.length).toBe(before);
  });

  it("answers oversized headers with 431 and oversized bodies with 413 before buffering them", async () => {
    const before = up.hits.length;
    const big = `GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}X-Big: ${"a".repeat(8000)}\r\n\r\n`;
    expect(statuses(await raw(big))[0]).toBe(431);
    const declared = `POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Content-Type: application/json\r\nContent-Length: 999999\r\n\r\n{`;
    expect(statuses(await raw(declared))[0]).toBe(413);
    const chunked = `POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n${"x".repeat(0x2000)}\r\n0\r\n\r\n`;
    expect(statuses(await raw(chunked))[0]).toBe(413);
    expect(up.hits.length).toBe(before);
  });

  it("refuses protocol upgrades (no uninspected tunnels)", async () => {
    const before = up.hits.length;
    const out = await raw(`GET ${origin}/ws HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    expect(statuses(out)[0]).toBe(403);
    expect(out).toContain("upgrade_refused");
    expect(up.hits.length).toBe(before);
  });

  it("strips routing and credential headers the agent sets, and never lets it pick the upstream", async () => {
    await raw(
      `GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Forwarded: host=evil.test\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-For: 10.0.0.1\r\nAuthorization: Bearer agent-own\r\nCookie: session=stolen\r\nConnection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\n` +
        // What a proxy or CDN in front of an upstream vouches for: the client's address, and the
        // method, path and scheme it saw (forward-auth services and frameworks trust these).
        `True-Client-IP: 10.0.0.1\r\nX-Client-IP: 10.0.0.1\r\nCF-Connecting-IP: 10.0.0.1\r\nX-Cluster-Client-IP: 10.0.0.1\r\nFastly-Client-IP: 10.0.0.1\r\n` +
        `X-Forwarded-Method: GET\r\nX-Forwarded-Uri: /items\r\nX-Forwarded-Prefix: /admin\r\nX-Original-Method: GET\r\nX-Original-URI: /items\r\nX-Envoy-Original-Path: /items\r\nFront-End-Https: on\r\nX-Url-Scheme: https\r\nX-Custom: kept\r\n\r\n`,
    );
    const hit = up.hits.at(-1)!;
    expect(hit.headers["x-custom"]).toBe("kept");
    for (const name of ["forwarded", "x-forwarded-host", "x-forwarded-for", "authorization", "cookie", "x-secret-hop", "proxy-authorization", "true-client-ip", "x-client-ip", "cf-connecting-ip", "x-cluster-client-ip", "fastly-client-ip", "x-forwarded-method", "x-forwarded-uri", "x-forwarded-prefix", "x-original-method", "x-original-uri", "x-envoy-original-path", "front-end-https", "x-url-scheme"]) {
      expect(hit.headers[name], name).toBeUndefined();
    }
    expect(hit.headers.host).toBe(`api.test:${up.port}`);
  });

  it("strips those headers in their underscore spellings too, which CGI, PHP and IIS read as the same", async () => {
    // X_Original_URL is $_SERVER['HTTP_X_ORIGINAL_URL'] to PHP (IIS and Zend route by it): the
    // upstream would serve a path the classifier never judged.
    await raw(
      `GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}X_Original_URL: /admin/drop\r\nX_Rewrite_URL: /admin/drop\r\nX_Forwarded_Host: evil.test\r\nX_Api_Key: agent-own\r\nProxy_Authorization: Bearer x\r\nX_Bulkhead_Task: t\r\nConnection: close\r\n\r\n`,
    );
    const hit = up.hits.at(-1)!;
    for (const name of ["x_original_url", "x_rewrite_url", "x_forwarded_host", "x_api_key", "proxy_authorization", "x_bulkhead_task"]) {
      expect(hit.headers[name], name).toBeUndefined();
    }
    expect(hit.url).toBe("/items");
  });

  it("gives up on a slow client (headers or body that never finish) with 408", async () => {
    const before = up.hits.length;
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const slowHead = await exchange(socket, `GET ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}X-Slow: 1`, 4000);
    expect(statuses(slowHead)[0], slowHead).toBe(408);
    const body = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => body.once("connect", r));
    const slowBody = await exchange(body, `POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`, 4000);
    expect(statuses(slowBody)[0], slowBody).toBe(408);
    expect(up.hits.length).toBe(before);
  }, 15_000);

  // Node's headers timeout starts with a request's first byte: a connection that sends nothing
  // was kept for ever, so enough of them filled the listener's connection cap before anyone
  // authenticated. The first request head must arrive within the head timeout of connecting.
  it("closes a connection that never sends a request (408, audited), on the listener and inside a tunnel", async () => {
    const idle = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => idle.once("connect", r));
    const since = performance.now();
    let answer = "";
    idle.on("data", (c: Buffer) => (answer += c.toString("utf8")));
    idle.on("error", () => undefined);
    expect(await closedAfter(idle, since, 5000)).toBeLessThan(3000);
    expect(statuses(answer), answer).toEqual([408]);
    const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { error: string; auditEventId: string };
    expect(body.error).toBe("client_timeout");
    expect((await h.events()).some((e) => e.data.eventId === body.auditEventId)).toBe(true);

    // A tunnel (a plain-HTTP service, so it carries HTTP) admitted and then left quiet.
    const tunnel = await connectTunnel(h.proxyPort, `api.test:${up.port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    let inside = "";
    tunnel.socket.on("data", (c: Buffer) => (inside += c.toString("utf8"))).on("error", () => undefined);
    expect(await closedAfter(tunnel.socket, performance.now(), 5000)).toBeLessThan(3000);
    expect(statuses(inside), inside).toEqual([408]);
  }, 15_000);

  it("refuses a CONNECT inside a tunnel and on the transparent listener (400, audited, closed), rather than keeping the connection unanswered", async () => {
    const refusedAndClosed = async (socket: net.Socket, bytes: string) => {
      let answer = "";
      socket.on("data", (c: Buffer) => (answer += c.toString("utf8"))).on("error", () => undefined);
      socket.write(bytes);
      expect(await closedAfter(socket, performance.now(), 5000), answer).toBeLessThan(3000);
      expect(statuses(answer), answer).toEqual([400]);
      const body = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { error: string; auditEventId: string };
      expect(body.error).toBe("unsupported_method");
      expect((await h.events()).some((e) => e.data.eventId === body.auditEventId)).toBe(true);
    };
    const before = up.hits.length;
    const connect = `CONNECT api.test:${up.port} HTTP/1.1\r\nHost: api.test:${up.port}\r\n\r\n`;
    // Inside an admitted tunnel (a plain-HTTP service, so it carries HTTP).
    const tunnel = await connectTunnel(h.proxyPort, `api.test:${up.port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    await refusedAndClosed(tunnel.socket, connect);
    // On the transparent HTTP listener, before anyone is identified.
    const transparent = net.connect(h.transparentHttpPort, "127.0.0.1");
    await new Promise((r) => transparent.once("connect", r));
    await refusedAndClosed(transparent, connect);
    expect(up.hits.length).toBe(before);
  }, 15_000);

  // Bytes after a request that closes its connection are not a request (RFC 9112 §9.6): that
  // request is answered and nothing after it is processed. Node's parser reports them as an
  // error, which destroyed the connection while the request was decided: no answer for an allowed
  // request, and a parse error audited for a request that had parsed.
  it.each([
    ["HTTP/1.0 without keep-alive", "HTTP/1.0", ""],
    ["HTTP/1.1 with Connection: close", "HTTP/1.1", "Connection: close\r\n"],
  ])("answers a request that closes its connection (%s) whatever follows it, and processes nothing after it", async (_name, version, close) => {
    const before = up.hits.length;
    const eventsBefore = (await h.events()).length;
    const first = `GET ${origin}/items?first=1 ${version}\r\nHost: api.test:${up.port}\r\n${auth()}${close}\r\n`;
    const second = `GET ${origin}/items?second=1 HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}\r\n`;
    const out = await raw(first + second);
    expect(statuses(out), out).toEqual([200]);
    expect(out).toContain('"url":"/items?first=1"');
    expect(up.hits.slice(before).map((hit) => hit.url)).toEqual(["/items?first=1"]);
    // Its completion is recorded after the answer.
    await expect.poll(async () => (await h.events()).slice(eventsBefore).filter((e) => e.type === "proxy.completed").map((e) => e.outcome), { timeout: 3000 }).toEqual(["forwarded"]);
    const events = (await h.events()).slice(eventsBefore);
    expect(events.filter((e) => e.outcome === "deny"), JSON.stringify(events)).toEqual([]);
  });

  // Node answered an HTTP/1.1 request without Host itself: a bare 400, no reason, no audit event.
  it("refuses an HTTP/1.1 request without Host with 400 host_missing, audited, on the listener and inside a tunnel", async () => {
    const before = up.hits.length;
    const refusedAsMissing = async (out: string) => {
      expect(statuses(out), out).toEqual([400]);
      const body = JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as { error: string; auditEventId: string };
      expect(body.error).toBe("host_missing");
      expect((await h.events()).some((e) => e.data.eventId === body.auditEventId && e.outcome === "deny")).toBe(true);
    };
    await refusedAsMissing(await raw(`GET ${origin}/items HTTP/1.1\r\n${auth()}Connection: close\r\n\r\n`));
    const tunnel = await connectTunnel(h.proxyPort, `api.test:${up.port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    await refusedAsMissing(await exchange(tunnel.socket, "GET /items HTTP/1.1\r\nConnection: close\r\n\r\n", 800));
    expect(up.hits.length).toBe(before);
    // HTTP/1.0 needs no Host: the absolute URL names the destination (the control).
    expect(statuses(await raw(`GET ${origin}/items HTTP/1.0\r\n${auth()}\r\n`))).toEqual([200]);
  });

  it("refuses an expectation other than 100-continue with 400, audited, reaching nothing", async () => {
    const before = up.hits.length;
    const out = await raw(`POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Expect: 200-ok\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab`);
    expect(statuses(out), out).toEqual([400]);
    const body = JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as { error: string; auditEventId: string };
    expect(body.error).toBe("expectation_unsupported");
    expect((await h.events()).some((e) => e.data.eventId === body.auditEventId)).toBe(true);
    expect(up.hits.length).toBe(before);
    // Values Node takes for 100-continue because they contain it carry another expectation too.
    for (const expect100 of ["100-continue, foo", "foo, 100-continue", "100-continue;x=1", "x 100-continue"]) {
      const other = await raw(`POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Expect: ${expect100}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab`);
      expect(statuses(other), `${expect100}: ${other}`).toEqual([400]);
      expect(other).toContain("expectation_unsupported");
    }
    expect(up.hits.length).toBe(before);
    // The bare value, in any case and with spaces around it, is 100-continue (the control).
    for (const expect100 of ["100-continue", " 100-Continue "]) {
      const ok = await raw(`POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Expect: ${expect100}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nab`);
      expect(statuses(ok), ok).toEqual(expect.arrayContaining([200]));
    }
  });

  it("rejects origin-form on the explicit listener", async () => {
    const out = await raw(`GET /items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`);
    expect(statuses(out)[0]).toBe(400);
    expect(out).toContain("not_absolute_form");
  });

  it("every refusal carries a machine-readable reason and an audit event id", async () => {
    const out = await raw(`GET ${origin}/admin/keys HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Connection: close\r\n\r\n`);
    expect(statuses(out)).toEqual([403]);
    const body = JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as { error: string; auditEventId: string };
    expect(body.error).toBe("policy_deny");
    const events = await h.events();
    expect(events.some((e) => e.data.eventId === body.auditEventId && e.outcome === "deny")).toBe(true);
  });

  // A request whose head was accepted but whose body cannot be parsed gets a clear 400, not a
  // connection closed without an answer, and nothing of it reaches the upstream.
  const chunkedHead = (te: string) => `POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\n${auth()}Content-Type: text/plain\r\nTransfer-Encoding: ${te}\r\n\r\n`;

  it.each([
    ["an unknown transfer coding", "xchunked", "4\r\nabcd\r\n0\r\n\r\n"],
    ["a chunk size that is not hex", "chunked", "zz\r\nabcd\r\n0\r\n\r\n"],
    ["a chunk extension broken by a bare LF", "chunked", "4;a\nb\r\nabcd\r\n0\r\n\r\n"],
    ["a chunk longer than its size", "chunked", "2\r\nabcd\r\n0\r\n\r\n"],
  ])("answers a body that cannot be parsed (%s) with 400, reaching nothing, audited once as the task's", async (_name, te, body) => {
    const before = up.hits.length;
    const since = await h.t.db.auditEvent.count();
    const out = await raw(chunkedHead(te) + body);
    expect(statuses(out), out).toEqual([400]);
    expect(out).toContain("http_parse_error");
    expect(up.hits.length).toBe(before);
    // One refusal, one event, under the task that sent it (it was recorded without the task, and
    // then a second time as a body "aborted" when the connection was closed under its handler).
    const { auditEventId } = JSON.parse(out.slice(out.indexOf("\r\n\r\n") + 4)) as { auditEventId: string };
    const denials = (await h.t.db.auditEvent.findMany({ orderBy: { id: "asc" }, skip: since })).filter((e) => e.outcome === "deny");
    expect(denials.map((e) => [(e.data as { eventId?: string }).eventId, e.taskId])).toEqual([[auditEventId, taskId]]);
  });

  it.each(["gzip, chunked", "deflate,chunked", "identity, chunked", "x-custom;q=1, chunked"])(
    "refuses a transfer coding besides chunked (Transfer-Encoding: %s) with 400, reaching nothing",
    async (te) => {
      // The parser takes away the chunking only: the body would reach the upstream still coded and
      // without the coding named (Transfer-Encoding is hop-by-hop), not as what the client sent.
      const before = up.hits.length;
      const out = await raw(chunkedHead(te) + "4\r\nabcd\r\n0\r\n\r\n");
      expect(statuses(out), out).toEqual([400]);
      expect(out).toContain('"unsupported_transfer_encoding"');
      expect(up.hits.length).toBe(before);
    },
  );

  it("forwards a good chunked body (the control for the refusals above)", async () => {
    const out = await raw(chunkedHead("chunked") + "4\r\nabcd\r\n0\r\n\r\n");
    expect(statuses(out)).toEqual([200]);
    expect(up.hits.at(-1)!.body).toBe("abcd");
  });
});
