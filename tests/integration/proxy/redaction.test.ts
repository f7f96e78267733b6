import { connect } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";
import { secretForms } from "@/lib/vault/secret-forms";
import { rotateCredential } from "@/lib/vault/rotate-credential";
import { deleteCredential } from "@/lib/vault/delete-credential";

/** A secret with every character that encoders treat specially (printable ASCII, as `{secret}` requires). */
const SECRET = `Xk9"q\\w/e+r=t&y<u>i'o(p)a!s*d~f%g h_j-k.l`;

const strictPercent = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** How an upstream may hand the injected secret back: each one is a way to leak it to the agent. */
const FORMS: Record<string, (secret: string) => string> = {
  raw: (s) => s,
  "JSON string": (s) => JSON.stringify(s).slice(1, -1),
  "JSON with escaped slashes (PHP)": (s) => JSON.stringify(s).slice(1, -1).replace(/\//g, "\\/"),
  "JSON with HTML-safe escapes (Go)": (s) => JSON.stringify(s).slice(1, -1).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026"),
  "JSON with upper-case unicode escapes": (s) => JSON.stringify(s).slice(1, -1).replace(/</g, "\\u003C").replace(/>/g, "\\u003E").replace(/&/g, "\\u0026"),
  "percent-encoding (encodeURIComponent)": (s) => encodeURIComponent(s),
  "percent-encoding (RFC 3986 strict)": strictPercent,
  "percent-encoding, lower-case hex": (s) => strictPercent(s).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
  "form encoding (space as +)": (s) => encodeURIComponent(s).replace(/%20/g, "+"),
  base64: (s) => Buffer.from(s).toString("base64"),
  "base64 without padding": (s) => Buffer.from(s).toString("base64").replace(/=+$/, ""),
  base64url: (s) => Buffer.from(s).toString("base64url"),
  "base64 inside a larger blob (offset 1)": (s) => Buffer.from(`{"token":"${s}"}`).toString("base64"),
  "base64 inside a larger blob (offset 2)": (s) => Buffer.from(`ab${s}cd`).toString("base64"),
  "base64url inside a larger blob": (s) => Buffer.from(`{"a":"${s}","b":1}`).toString("base64url"),
  "base64 with escaped slashes (inside a PHP JSON string)": (s) => Buffer.from(s).toString("base64").replace(/\//g, "\\/"),
  hexadecimal: (s) => Buffer.from(s).toString("hex"),
  "hexadecimal, upper case": (s) => Buffer.from(s).toString("hex").toUpperCase(),
  "hexadecimal inside a larger dump": (s) => Buffer.from(`x${s}y`).toString("hex"),
  // Encoders wrap long base64 and hex at a line width: an echoed request, mail or file, encoded.
  "base64 wrapped at 76 with CRLF (MIME) inside a larger blob": (s) => wrap(Buffer.from(`Authorization: Bearer ${s}\r\n`).toString("base64"), 76, "\r\n"),
  "base64 wrapped at 64 with LF (PEM) inside a larger blob": (s) => wrap(Buffer.from(`GET /x HTTP/1.1\r\nauthorization: Bearer ${s}\r\n`).toString("base64"), 64, "\n"),
  "base64 wrapped at 20 inside a larger blob, at each offset": (s) => [0, 1, 2].map((i) => wrap(Buffer.from(`${"a".repeat(i)}${s}zz`).toString("base64"), 20, "\n")).join(" "),
  "base64url wrapped inside a JSON string (\\n)": (s) => wrap(Buffer.from(`{"token":"${s}"}`).toString("base64url"), 16, "\\n"),
  "base64 wrapped inside a JSON string (\\r\\n)": (s) => wrap(Buffer.from(`:${s}`).toString("base64"), 40, "\\r\\n"),
  "hexadecimal wrapped at 60 (xxd -p) inside a larger dump": (s) => wrap(Buffer.from(`token=${s}&x=1`).toString("hex"), 60, "\n"),
};

/** `text` cut into lines of `width` characters, joined with `eol`. */
function wrap(text: string, width: number, eol: string): string {
  return (text.match(new RegExp(`.{1,${width}}`, "g")) ?? []).join(eol);
}

/** Every base64, base64url or hex run in `text` (line breaks taken out), decoded at each alignment. */
function decodedRuns(text: string): string[] {
  const joined = text.replace(/\r?\n|\\r\\n|\\n/g, "");
  const out: string[] = [];
  for (const run of joined.match(/[A-Za-z0-9+/_-]{12,}={0,2}/g) ?? []) {
    for (let skip = 0; skip < 4; skip++) {
      out.push(Buffer.from(run.slice(skip), "base64").toString("latin1"), Buffer.from(run.slice(skip), "base64url").toString("latin1"));
    }
    if (/^[0-9a-fA-F]+$/.test(run)) out.push(Buffer.from(run.length % 2 ? run.slice(1) : run, "hex").toString("latin1"), Buffer.from(run.length % 2 ? run : run.slice(1), "hex").toString("latin1"));
  }
  return out;
}

/** Everything the proxy sends back on one connection, as bytes (1xx answers and trailers included). */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.on("error", reject);
    socket.write(request);
  });
}

/** A Basic credential's user:password, stored as its base64 (`Authorization: Basic {secret}`). */
const BASIC = "svc-robot:Pr3-encoded/basic+password-77";

/** The secret in `text`, in any of the forms above, or null. */
function leaked(text: string): string | null {
  for (const [name, encode] of Object.entries(FORMS)) {
    if (name.includes("larger blob") || name.includes("wrapped")) continue;
    if (text.includes(encode(SECRET))) return name;
  }
  // Line breaks taken out (raw and JSON-escaped), as whoever decodes a wrapped blob does.
  text = text.replace(/\r?\n|\\r\\n|\\n/g, "");
  for (const run of text.match(/[0-9a-fA-F]{16,}/g) ?? []) {
    if (Buffer.from(run.length % 2 ? run.slice(1) : run, "hex").toString("latin1").includes(SECRET) || Buffer.from(run.slice(1), "hex").toString("latin1").includes(SECRET)) return "embedded hexadecimal";
  }
  // Embedded base64: decode every base64-looking run and look for the secret inside.
  for (const run of text.match(/[A-Za-z0-9+/_-]{16,}={0,2}/g) ?? []) {
    for (const alphabet of ["base64", "base64url"] as const) {
      if (Buffer.from(run, alphabet).toString("latin1").includes(SECRET)) return `embedded ${alphabet}`;
    }
  }
  return null;
}

describe("redaction: an upstream that echoes the injected secret, in any encoding, never hands it to the agent", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let up2: Upstream;
  let token: string;
  let origin: string;
  const seen = new Map<string, string[]>();

  beforeAll(async () => {
    let remembered = "";
    let firstRotated = "";
    up = await startHttpUpstream((hit, res) => {
      const secret = String(hit.headers.authorization ?? "").replace(/^Bearer /, "");
      const url = new URL(hit.url, "http://x");
      // A request log per service (the host's last label before .test): every token it was ever sent.
      const service = (hit.headers.host ?? "").replace(/:\d+$/, "").split(".").at(-2) ?? "";
      if (secret) seen.set(service, [...new Set([...(seen.get(service) ?? []), secret])]);
      if (url.pathname === "/request-history") {
        const all = seen.get(service) ?? [];
        res.writeHead(200, { "content-type": "application/json", "x-history": all.join(" ") });
        res.end(JSON.stringify({ tokens: all, dump: Buffer.from(all.map((t) => `authorization: Bearer ${t}`).join("\r\n")).toString("base64"), note: "the upstream's own text" }));
        return;
      }
      if (hit.headers.host?.startsWith("api.multi.test") && secret) remembered = secret;
      if (hit.headers.host?.startsWith("rot.test") && secret) firstRotated ||= secret;
      if (url.pathname === "/first-token") {
        // A request log that still shows the first token it was ever sent.
        res.writeHead(200, { "content-type": "application/json", "x-first-token": firstRotated });
        res.end(JSON.stringify({ firstToken: firstRotated, note: "the upstream's own text" }));
        return;
      }
      if (url.pathname === "/remembered") {
        // Another host or port of the same service showing what it was sent (a request log, the
        // token's settings page): that endpoint has no credential of its own.
        res.writeHead(200, { "content-type": "application/json", "x-last-token": remembered });
        res.end(JSON.stringify({ lastToken: remembered, dump: Buffer.from(`authorization: Bearer ${remembered}`).toString("base64"), note: "the upstream's own text" }));
        return;
      }
      if (url.pathname === "/headers") {
        res.writeHead(200, {
          "content-type": "text/plain",
          "x-bulkhead-decision": "approved",
          "x-bulkhead-event": "forged-event-id",
          "X-Bulkhead-Approved-By": "mallory@example.com",
          "x-bulkhead-policy": "allow-all",
          "x-echo": FORMS["JSON string"]!(secret),
          // A header name carries only token characters: the hexadecimal and base64url forms fit.
          [`x-echo-${FORMS.hexadecimal!(secret)}`]: "1",
          [`x-echo64-${FORMS.base64url!(secret)}`]: "1",
          // Names are case-insensitive: Node lower-cases them, base64url's letters with them.
          [`x-echo64lc-${FORMS.base64url!(secret).toLowerCase()}`]: "1",
          [`x-echo64blob-${FORMS["base64url inside a larger blob"]!(secret).toUpperCase()}`]: "1",
        });
        res.end("ok");
        return;
      }
      if (url.pathname === "/compressed") {
        // An answer the redaction cannot read, sent in one write or after a pause (head first).
        res.writeHead(200, { "content-type": "application/json", "content-encoding": url.searchParams.get("encoding") ?? "gzip" });
        const body = gzipSync(`{"echo":"${secret}"}`);
        if (url.searchParams.has("slow")) {
          res.flushHeaders();
          setTimeout(() => res.end(body), 30);
        } else res.end(body);
        return;
      }
      if (url.pathname === "/everywhere") {
        // Every other place a response can carry the secret: a 1xx answer's headers, a redirect,
        // cookies, a challenge, trailers, an error page, the answer to HEAD.
        res.writeEarlyHints({ link: `</${encodeURIComponent(secret)}>; rel=preload`, "x-echo": secret });
        res.writeHead(hit.method === "HEAD" ? 200 : 500, {
          "content-type": "text/html",
          location: `https://elsewhere.test/cb?token=${encodeURIComponent(secret)}`,
          "set-cookie": [`a=${secret}`, `b=${Buffer.from(secret).toString("base64")}`],
          "www-authenticate": `Bearer error="invalid_token", error_description="${secret}"`,
          ...(hit.method === "HEAD" ? { "content-length": "64" } : { trailer: "x-echo-trailer", "transfer-encoding": "chunked" }),
        });
        if (hit.method === "HEAD") return void res.end();
        res.write(`<h1>500</h1><pre>Authorization: Bearer ${secret.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")}</pre>`);
        res.addTrailers({ "x-echo-trailer": secret });
        res.end();
        return;
      }
      if (url.pathname === "/request-log") {
        // A stored request log served as a file, as static file servers serve any file: a Range
        // request gets any slice of it, each too short to be recognised as the secret.
        const log = Buffer.from(`GET /items HTTP/1.1\nauthorization: Bearer ${secret}\n`);
        const range = /^bytes=(\d+)-(\d+)$/.exec(String(hit.headers.range ?? ""));
        if (range || url.searchParams.has("partial")) {
          const [from, to] = range ? [Number(range[1]), Math.min(Number(range[2]), log.length - 1)] : [0, 9];
          res.writeHead(206, { "content-type": "text/plain", "content-range": `bytes ${from}-${to}/${log.length}`, "accept-ranges": "bytes" });
          res.end(log.subarray(from, to + 1));
        } else {
          res.writeHead(200, { "content-type": "text/plain", "accept-ranges": "bytes" });
          res.end(log);
        }
        return;
      }
      if (url.pathname === "/transfer-coded") {
        // Compressed as a transfer coding (`Transfer-Encoding: gzip, chunked`): HTTP's parsers take
        // off the chunked framing only, so the gzip bytes reach the agent with no Content-Encoding.
        res.writeHead(200, { "content-type": "application/json", "transfer-encoding": url.searchParams.get("coding") ?? "gzip, chunked" });
        res.end(gzipSync(`{"echo":"${secret}"}`));
        return;
      }
      if (url.pathname === "/basic") {
        // What a server that decodes Basic credentials may say back (an error page, a debug echo).
        const decoded = Buffer.from(String(hit.headers.authorization ?? "").replace(/^Basic /, ""), "base64").toString("utf8");
        res.writeHead(200, { "content-type": "application/json", "x-echo": decoded });
        res.end(JSON.stringify({ credentials: decoded, password: decoded.slice(decoded.indexOf(":") + 1), note: "the upstream's own text" }));
        return;
      }
      const form = FORMS[url.searchParams.get("form") ?? "raw"]!;
      const text = `{"echo":"${form(secret)}","note":"the upstream's own text"}`;
      if (url.pathname === "/trickle") {
        // One byte per write: every occurrence straddles chunk boundaries.
        res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
        const bytes = Buffer.from(text);
        let i = 0;
        const next = () => {
          if (i >= bytes.length) return res.end();
          res.write(bytes.subarray(i, ++i), () => setImmediate(next));
        };
        next();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(text);
    });
    // The same server on a second port (another endpoint of the same service).
    up2 = await startHttpUpstream((hit, res) => {
      res.writeHead(200, { "content-type": "application/json", "x-last-token": remembered });
      res.end(JSON.stringify({ lastToken: remembered, dump: Buffer.from(`authorization: Bearer ${remembered}`).toString("base64"), note: "the upstream's own text" }));
    });
    h = await startProxyHarness();
    await h.addService({ id: "echo", hosts: ["echo.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "echo", scheme: "http", host: "echo.test", port: up.port, headerTemplate: "Authorization: Bearer {secret}", secret: SECRET });
    // Basic auth stored the way many services document it: the base64 of user:password, pasted whole.
    await h.addService({ id: "basic-echo", hosts: ["basic.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "basic-echo", scheme: "http", host: "basic.test", port: up.port, headerTemplate: "Authorization: Basic {secret}", secret: Buffer.from(BASIC).toString("base64") });
    // One service on two hosts and two ports; its credential is stored for one endpoint only.
    await h.addService({ id: "multi", hosts: ["api.multi.test", "logs.multi.test"], scheme: "http", ports: [up.port, up2.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "multi", scheme: "http", host: "api.multi.test", port: up.port, headerTemplate: "Authorization: Bearer {secret}", secret: SECRET });
    // Basic auth as the template encodes it: the header carries the base64 of user:password.
    await h.addService({ id: "basic64-echo", hosts: ["basic64.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "basic64-echo", scheme: "http", host: "basic64.test", port: up.port, headerTemplate: "Authorization: Basic {secret:base64}", secret: BASIC });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: echo\n    effects: [read]\n"));
    origin = `http://echo.test:${up.port}`;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
    await up2.close();
  });

  it("injects the secret upstream (the control)", async () => {
    const r = await viaProxy(h.proxyPort, `${origin}/echo?form=raw`, { token });
    expect(r.status).toBe(200);
    expect(up.hits.at(-1)!.headers.authorization).toBe(`Bearer ${SECRET}`);
  });

  it.each(Object.keys(FORMS))("redacts the %s form", async (form) => {
    for (const path of ["/echo", "/trickle"]) {
      const r = await viaProxy(h.proxyPort, `${origin}${path}?form=${encodeURIComponent(form)}`, { token });
      expect(r.status).toBe(200);
      expect(leaked(r.text), `${path}: ${r.text}`).toBeNull();
      // The upstream's own text survives, and the length is unchanged (Content-Length stays true).
      expect(r.text).toContain("the upstream's own text");
    }
  });

  it("redacts response headers too, and strips every upstream x-bulkhead-* header", async () => {
    const r = await viaProxy(h.proxyPort, `${origin}/headers`, { token });
    expect(r.status).toBe(200);
    expect(leaked(String(r.headers["x-echo"]))).toBeNull();
    // Nor in a header's name (an upstream reflecting what it was sent into names).
    expect(leaked(Object.keys(r.headers).join("\n")), Object.keys(r.headers).join(" ")).toBeNull();
    // Header names arrive lower-cased: a base64url echo is looked for in that spelling too.
    const names = Object.keys(r.headers).join("\n");
    for (const form of ["base64url", "base64url inside a larger blob"]) {
      const lower = FORMS[form]!(SECRET).toLowerCase();
      const core = form === "base64url" ? lower : Buffer.from(SECRET).toString("base64url").toLowerCase().slice(4, -4);
      expect(names.includes(core), `${form} lower-cased in a header name: ${names}`).toBe(false);
    }
    expect(Object.keys(r.headers).filter((k) => k.startsWith("x-echo")).length).toBe(5);
    const bulkhead = Object.keys(r.headers).filter((k) => k.startsWith("x-bulkhead-")).sort();
    expect(bulkhead).toEqual(["x-bulkhead-decision", "x-bulkhead-event"]);
    expect(r.headers["x-bulkhead-decision"]).toBe("allow");
    expect(r.headers["x-bulkhead-event"]).not.toBe("forged-event-id");
  });

  it("refuses an answer it cannot read for echoes (compressed) with 502, passes none of it on, and keeps serving", async () => {
    for (const query of ["", "?encoding=identity,%20gzip", "?slow=1", "?encoding=br&slow=1"]) {
      const r = await viaProxy(h.proxyPort, `${origin}/compressed${query}`, { token, headers: { "accept-encoding": "gzip, br" } });
      expect(r.status, query).toBe(502);
      expect(r.json?.error, query).toBe("upstream_encoded_body");
      expect(r.headers["content-encoding"], query).toBeUndefined();
      // The agent's accept-encoding is replaced: the upstream was asked for an identity body.
      expect(up.hits.at(-1)!.headers["accept-encoding"]).toBe("identity");
    }
    // The worker is still up and answering (a compressed answer once crashed it: an aborted body without a listener).
    await new Promise((r) => setTimeout(r, 100));
    const after = await viaProxy(h.proxyPort, `${origin}/echo?form=raw`, { token });
    expect(after.status).toBe(200);
  });

  it("hands the secret back nowhere else: 1xx headers, Location, Set-Cookie, WWW-Authenticate, trailers, an error page, HEAD", async () => {
    for (const method of ["GET", "HEAD"]) {
      const r = await rawExchange(h.proxyPort, `${method} ${origin}/everywhere HTTP/1.1\r\nHost: echo.test:${up.port}\r\nProxy-Authorization: Bearer ${token}\r\nTE: trailers\r\nConnection: close\r\n\r\n`);
      expect(r, method).toMatch(method === "HEAD" ? /^HTTP\/1\.1 200 / : /^HTTP\/1\.1 500 /);
      expect(r, method).toContain("location: https://elsewhere.test/cb?token=***");
      expect(r, method).toContain('error_description="***');
      expect(leaked(r), `${method}: ${r}`).toBeNull();
      for (const carrier of secretForms(SECRET)) expect(r.includes(carrier), carrier).toBe(false);
    }
  });

  it("does not let the agent read the secret a slice at a time with Range requests", async () => {
    let pieced = "";
    for (let from = 0; from < 120; from += 8) {
      const r = await viaProxy(h.proxyPort, `${origin}/request-log`, { token, headers: { range: `bytes=${from}-${from + 7}`, "if-range": "*" } });
      expect(r.status, r.text).toBe(200);
      expect(up.hits.at(-1)!.headers.range).toBeUndefined();
      expect(up.hits.at(-1)!.headers["if-range"]).toBeUndefined();
      pieced += r.status === 206 ? r.text : "";
      expect(leaked(r.text), r.text).toBeNull();
    }
    expect(pieced).not.toContain(SECRET);
    // A partial answer nobody asked for is refused: a slice cannot be checked for the secret.
    const partial = await viaProxy(h.proxyPort, `${origin}/request-log?partial=1`, { token });
    expect(partial.status).toBe(502);
    expect(partial.json?.error).toBe("upstream_partial_body");
  });

  it("refuses an answer compressed as a transfer coding (Transfer-Encoding: gzip, chunked) with 502", async () => {
    for (const coding of ["gzip, chunked", "deflate,chunked", "x-gzip , chunked", "br, chunked", "zstd, chunked", "identity, gzip, chunked"]) {
      const r = await viaProxy(h.proxyPort, `${origin}/transfer-coded?coding=${encodeURIComponent(coding)}`, { token });
      expect(r.status, coding).toBe(502);
      expect(r.json?.error, coding).toBe("upstream_encoded_body");
    }
    const after = await viaProxy(h.proxyPort, `${origin}/echo?form=raw`, { token });
    expect(after.status).toBe(200);
  });

  it("redacts the secret from every host and port of the credential's service, not only from its own endpoint", async () => {
    const multiToken = (await h.newTask("unlisted: deny\nrules:\n  - service: multi\n    effects: [read]\n")).token;
    const sent = await viaProxy(h.proxyPort, `http://api.multi.test:${up.port}/echo?form=raw`, { token: multiToken });
    expect(sent.status).toBe(200);
    expect(up.hits.at(-1)!.headers.authorization).toBe(`Bearer ${SECRET}`);
    for (const origin of [`http://logs.multi.test:${up.port}`, `http://api.multi.test:${up2.port}`, `http://logs.multi.test:${up2.port}`]) {
      const r = await viaProxy(h.proxyPort, `${origin}/remembered`, { token: multiToken, headers: { "accept-encoding": "gzip" } });
      expect(r.status, origin).toBe(200);
      expect(up.hits.at(-1)!.headers.authorization ?? up2.hits.at(-1)?.headers.authorization).toBeUndefined();
      expect(r.text).toContain("the upstream's own text");
      expect(leaked(r.text), `${origin}: ${r.text}`).toBeNull();
      expect(leaked(String(r.headers["x-last-token"])), origin).toBeNull();
    }
  });

  it("still redacts the secret a rotation replaced: an upstream's request log can show it, and it may not be revoked yet", async () => {
    const OLD = "rot-old-secret-0123456789abcdef";
    const NEW = "rot-new-secret-fedcba9876543210";
    await h.addService({ id: "rot", hosts: ["rot.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "rot", scheme: "http", host: "rot.test", port: up.port, headerTemplate: "Authorization: Bearer {secret}", secret: OLD });
    const rotToken = (await h.newTask("unlisted: deny\nrules:\n  - service: rot\n    effects: [read]\n")).token;
    expect((await viaProxy(h.proxyPort, `http://rot.test:${up.port}/echo`, { token: rotToken })).status).toBe(200);
    expect(up.hits.at(-1)!.headers.authorization).toBe(`Bearer ${OLD}`);
    const id = (await h.t.db.credential.findFirstOrThrow({ where: { name: "rot" } })).id;
    await rotateCredential(h.t.db, h.admin, h.keys.workerKey, id, NEW);
    await h.sync();
    const r = await viaProxy(h.proxyPort, `http://rot.test:${up.port}/first-token`, { token: rotToken });
    expect(r.status).toBe(200);
    // The new secret is the one injected; the old one is redacted, never sent.
    expect(up.hits.at(-1)!.headers.authorization).toBe(`Bearer ${NEW}`);
    expect(r.text).toContain("the upstream's own text");
    expect(r.text, r.text).not.toContain(OLD);
    expect(String(r.headers["x-first-token"])).not.toContain(OLD);
    const kept = await h.t.db.retiredSecret.findMany({ where: { credentialId: id } });
    expect(kept.map((r) => r.reason)).toEqual(["rotated"]);
    expect(kept[0]!.secretSealed).not.toContain(OLD);
  });

  /** Whether `text` or what its base64 and hex runs decode to holds `secret`. */
  const shows = (text: string, secret: string) => text.includes(secret) || decodedRuns(text).some((d) => d.includes(secret));

  it("still redacts every secret rotations replaced, not only the last: rotated twice, the first one is redacted too", async () => {
    const [S1, S2, S3] = ["twice-first-secret-0123456789ab", "twice-second-secret-456789abcdef", "twice-third-secret-89abcdef012345"] as const;
    await h.addService({ id: "twice", hosts: ["twice.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "twice", scheme: "http", host: "twice.test", port: up.port, headerTemplate: "Authorization: Bearer {secret}", secret: S1 });
    const twiceToken = (await h.newTask("unlisted: deny\nrules:\n  - service: twice\n    effects: [read]\n")).token;
    const id = (await h.t.db.credential.findFirstOrThrow({ where: { name: "twice" } })).id;
    for (const [current, next] of [[S1, S2], [S2, S3]] as const) {
      expect((await viaProxy(h.proxyPort, `http://twice.test:${up.port}/echo`, { token: twiceToken })).status).toBe(200);
      expect(up.hits.at(-1)!.headers.authorization).toBe(`Bearer ${current}`);
      await rotateCredential(h.t.db, h.admin, h.keys.workerKey, id, next);
      await h.sync();
    }
    // The upstream's request log shows all three; only the current one was injected.
    const r = await viaProxy(h.proxyPort, `http://twice.test:${up.port}/request-history`, { token: twiceToken });
    expect(r.status).toBe(200);
    expect(up.hits.at(-1)!.headers.authorization).toBe(`Bearer ${S3}`);
    expect(seen.get("twice")).toEqual([S1, S2, S3]);
    expect(r.text).toContain("the upstream's own text");
    for (const secret of [S1, S2, S3]) {
      expect(shows(r.text, secret), `${secret}: ${r.text}`).toBe(false);
      expect(String(r.headers["x-history"]), secret).not.toContain(secret);
    }
    expect((await h.t.db.retiredSecret.findMany({ where: { credentialId: id } })).map((row) => row.reason)).toEqual(["rotated", "rotated"]);
  });

  it("still redacts a deleted credential's secret from its service's answers (every endpoint), and never injects it", async () => {
    const GONE = "deleted-secret-0123456789abcdef";
    const NEXT = "readded-secret-fedcba9876543210";
    await h.addService({ id: "del", hosts: ["api.del.test", "logs.del.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    await h.addCredential({ name: "del", scheme: "http", host: "api.del.test", port: up.port, headerTemplate: "Authorization: Bearer {secret}", secret: GONE });
    const delToken = (await h.newTask("unlisted: deny\nrules:\n  - service: del\n    effects: [read]\n")).token;
    expect((await viaProxy(h.proxyPort, `http://api.del.test:${up.port}/echo`, { token: delToken })).status).toBe(200);
    expect(up.hits.at(-1)!.headers.authorization).toBe(`Bearer ${GONE}`);
    const id = (await h.t.db.credential.findFirstOrThrow({ where: { name: "del" } })).id;
    await deleteCredential(h.t.db, h.admin, id);
    await h.sync();
    for (const host of ["api.del.test", "logs.del.test"]) {
      const r = await viaProxy(h.proxyPort, `http://${host}:${up.port}/request-history`, { token: delToken });
      expect(r.status, host).toBe(200);
      // Nothing is injected any more: the deleted secret is only ever redacted.
      expect(up.hits.at(-1)!.headers.authorization, host).toBeUndefined();
      expect(r.text).toContain("the upstream's own text");
      expect(shows(r.text, GONE), `${host}: ${r.text}`).toBe(false);
      expect(String(r.headers["x-history"]), host).not.toContain(GONE);
    }
    expect((await h.t.db.retiredSecret.findMany({ where: { credentialId: id } })).map((row) => row.reason)).toEqual(["deleted"]);

    // A credential added again for the endpoint: its secret is injected, the deleted one never.
    await h.addCredential({ name: "del-again", scheme: "http", host: "api.del.test", port: up.port, headerTemplate: "Authorization: Bearer {secret}", secret: NEXT });
    const r = await viaProxy(h.proxyPort, `http://api.del.test:${up.port}/request-history`, { token: delToken });
    expect(r.status).toBe(200);
    expect(up.hits.at(-1)!.headers.authorization).toBe(`Bearer ${NEXT}`);
    for (const secret of [GONE, NEXT]) expect(shows(r.text, secret), `${secret}: ${r.text}`).toBe(false);
  });

  it("redacts the header as it was sent, encoded again: a Basic value echoed in a base64 or hex dump of the request", async () => {
    const basicToken = (await h.newTask("unlisted: deny\nrules:\n  - service: basic64-echo\n    effects: [read]\n")).token;
    const forms = Object.keys(FORMS).filter((f) => /base64|hex/.test(f));
    for (const form of forms) {
      const r = await viaProxy(h.proxyPort, `http://basic64.test:${up.port}/echo?form=${encodeURIComponent(form)}`, { token: basicToken });
      expect(r.status).toBe(200);
      expect(up.hits.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from(BASIC).toString("base64")}`);
      // Whoever reads the dump decodes it, then decodes the Basic value in it.
      const password = BASIC.slice(BASIC.indexOf(":") + 1);
      const once = decodedRuns(r.text).join("\n");
      const twice = decodedRuns(once).join("\n");
      expect(`${once}\n${twice}`.includes(password), `${form}: ${r.text}`).toBe(false);
      expect(once.includes(Buffer.from(BASIC).toString("base64").slice(0, 24)), `${form}: ${once}`).toBe(false);
    }
  });

  it("redacts the decoded user:password and password of a Basic credential stored already encoded", async () => {
    const basicToken = (await h.newTask("unlisted: deny\nrules:\n  - service: basic-echo\n    effects: [read]\n")).token;
    const r = await viaProxy(h.proxyPort, `http://basic.test:${up.port}/basic`, { token: basicToken });
    expect(r.status).toBe(200);
    expect(up.hits.at(-1)!.headers.authorization).toBe(`Basic ${Buffer.from(BASIC).toString("base64")}`);
    expect(r.text).toContain("the upstream's own text");
    for (const carrier of [BASIC, BASIC.slice(BASIC.indexOf(":") + 1), JSON.stringify(BASIC).slice(1, -1)]) {
      expect(r.text, r.text).not.toContain(carrier);
      expect(String(r.headers["x-echo"])).not.toContain(carrier);
    }
  });
});
