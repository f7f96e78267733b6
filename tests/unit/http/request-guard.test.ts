import { describe, expect, it, onTestFinished } from "vitest";
import os from "node:os";
// @ts-expect-error: a plain .mjs module of the dashboard's server (scripts/app-server.mjs), without types
import * as requestGuard from "../../../scripts/request-guard.mjs";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { actionManifestFile, readActionIds } from "@/lib/http/server-actions.mjs";
import path from "node:path";
import http from "node:http";
import net from "node:net";
import { FORM_BODY_LIMIT_BYTES } from "@/lib/http/form-limit";

const { addressMatcher, allowedHostNames, dropForwardedHeaders, malformedPath, malformedRouterState, misdirectedHost, servedMethod, unknownAction } = requestGuard;
import { MAX_JSON_BODY_BYTES } from "@/lib/http/body-limit";

const check = malformedPath as (url: string) => string | null;
const served = servedMethod as (method: string | undefined) => boolean;
const allowed = allowedHostNames as (env: Record<string, string | undefined>) => Set<string>;
const misdirected = misdirectedHost as (host: string | undefined, allowed: Set<string>) => string | null;

describe("the dashboard server's malformed-path guard", () => {
  it("refuses every path segment whose percent-encoding does not decode", () => {
    for (const url of ["/agents/%ff", "/api/v1/tasks/%E0%A4%A", "/api/v1/agents/%", "/audit/%c0%af", "/x/%zz", "/tasks/ok/%ff%fe/report", "/setup/%80?next=/", "/api/auth/%ED%A0%80"]) {
      expect(check(url), url).toMatch(/not valid percent-encoding/);
    }
  });

  it("refuses a target that is not a path: the absolute form named a host the Host check never saw (Next.js redirected to it)", () => {
    for (const url of ["http://evil.example/agents", "https://evil.example/", "HTTP://127.0.0.1:3000/agents", "evil.example:443", "agents"]) {
      expect(check(url), url).toMatch(/must be a path/);
    }
  });

  it("lets through what decodes, and never looks at the query", () => {
    for (const url of ["/", "/agents", "/agents/%25", "/tasks/a%20b", "/api/v1/audit/12", "/agents/%E2%9C%93", "/audit?q=%ff", "/api/v1/audit?q=%", "*", "/a/%2F/b"]) {
      expect(check(url), url).toBeNull();
    }
  });

  it("serves the methods pages and route handlers use, and nothing else", () => {
    for (const m of ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]) expect(served(m), m).toBe(true);
    for (const m of ["TRACE", "TRACK", "CONNECT", "PROPFIND", "PURGE", "QUERY", "get", "", undefined]) expect(served(m), String(m)).toBe(false);
  });

  it("answers only the dashboard's own names: a page that rebinds its name to the dashboard's address is refused", () => {
    const names = allowed({ BULKHEAD_PUBLIC_URL: "https://Bulkhead.Example.com:8443", BULKHEAD_APP_HOST: "0.0.0.0", BULKHEAD_ALLOWED_HOSTS: " dash.internal , Other.Svc. " });
    for (const host of ["bulkhead.example.com:8443", "BULKHEAD.example.com", "bulkhead.example.com.", "dash.internal:3000", "other.svc", "127.0.0.1:3000", "10.1.2.3", "[::1]:3000", "[2001:db8::1]", "localhost:3000", "LOCALHOST", "bulkhead.localhost:3000", undefined, ""]) {
      expect(misdirected(host, names), String(host)).toBeNull();
    }
    for (const host of ["rebind.attacker.test:3000", "attacker.test", "bulkhead.example.com.attacker.test", "localhost.attacker.test", "127.0.0.1.nip.io", "0x7f.1", "evil:3000:1", "a b", "[::1"]) {
      expect(misdirected(host, names), host).not.toBeNull();
    }
    // The defaults: the listening address, loopback names and the machine's own name.
    const defaults = allowed({});
    expect(misdirected("127.0.0.1:3000", defaults)).toBeNull();
    expect(misdirected(`${os.hostname()}:3000`, defaults)).toBeNull();
    expect(misdirected("localhost:3000", defaults)).toBeNull();
    expect(misdirected("rebind.attacker.test:3000", defaults)).toMatch(/not a name of this dashboard.*BULKHEAD_ALLOWED_HOSTS/);
  });
});

describe("the dashboard server's forwarded headers", () => {
  type Req = { headers: Record<string, string>; rawHeaders: string[]; socket: { remoteAddress: string } };
  const drop = dropForwardedHeaders as (req: Req, trusted: (address: string | undefined) => boolean) => void;
  const trusted = addressMatcher as (value: string | undefined) => (address: string | undefined) => boolean;
  const request = (remoteAddress: string): Req => {
    const raw = ["Host", "127.0.0.1:3000", "X-Forwarded-Host", "evil.example", "x-forwarded-proto", "https", "X-Forwarded-Port", "443", "Forwarded", "host=evil.example;proto=https", "X-Forwarded-For", "203.0.113.9", "Cookie", "a=b"];
    const headers: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
    return { headers, rawHeaders: raw, socket: { remoteAddress } };
  };

  it("drops the host and scheme a client claims, unless it is a configured reverse proxy", () => {
    const direct = request("198.51.100.7");
    drop(direct, trusted("10.0.0.0/8"));
    expect(Object.keys(direct.headers).sort()).toEqual(["cookie", "host", "x-forwarded-for"]);
    expect(direct.rawHeaders).toEqual(["Host", "127.0.0.1:3000", "X-Forwarded-For", "203.0.113.9", "Cookie", "a=b"]);
    const proxied = request("10.1.2.3");
    drop(proxied, trusted("10.0.0.0/8"));
    expect(proxied.headers["x-forwarded-host"]).toBe("evil.example");
    expect(proxied.headers["forwarded"]).toBe("host=evil.example;proto=https");
    const none = request("127.0.0.1");
    drop(none, trusted(undefined));
    expect(none.headers["x-forwarded-proto"]).toBeUndefined();
  });
});

describe("the dashboard server's router state guard", () => {
  const routerState = malformedRouterState as (headers: Record<string, string | undefined>) => string | null;
  it("refuses a Next-Router-State-Tree that Next.js cannot parse, and lets a valid one and none through", () => {
    for (const value of ["garbage", "%5B%5D", "[", "%E0%A4%A", "%7B%7D", encodeURIComponent('["",{"children":1}]'), '["",{}], ["",{}]', encodeURIComponent(JSON.stringify(["", {}])).padEnd(40_001, " ")]) {
      expect(routerState({ "next-router-state-tree": value }), value.slice(0, 40)).toMatch(/Next-Router-State-Tree/);
    }
    expect(routerState({})).toBeNull();
    expect(routerState({ "next-router-state-tree": encodeURIComponent(JSON.stringify(["", { children: ["agents", { children: ["__PAGE__", {}] }] }])) })).toBeNull();
  });

  it("answers a POST naming a server action the build does not have as Next.js would (409, or 400 for an id of no valid shape), and lets every other request through", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "bulkhead-actions-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const known = "00" + "ab".repeat(20);
    mkdirSync(path.join(dir, ".next", "server"), { recursive: true });
    writeFileSync(path.join(dir, ".next", "server", "server-reference-manifest.json"), JSON.stringify({ node: { [known]: { workers: {} } }, edge: {} }));
    const ids = readActionIds(actionManifestFile(dir));
    expect(ids).toEqual(new Set([known]));
    const verdict = unknownAction as (req: { method?: string; url?: string; headers: Record<string, string | undefined> }, known: Set<string> | null) => number | null;
    const post = (id: string | undefined, url = "/agents/new", method = "POST") => verdict({ method, url, headers: id === undefined ? {} : { "next-action": id } }, ids);
    expect(post(known)).toBeNull();
    expect(post(undefined)).toBeNull();
    expect(post("7f" + "0".repeat(40))).toBe(409);
    expect(post("00" + "cd".repeat(20), "/login")).toBe(409);
    for (const id of ["x", "", "toString", "__proto__", "constructor", "a".repeat(5_000), `${known}, ${known}`]) expect(post(id), id.slice(0, 20)).toBe(400);
    // Only POSTs run actions; route handlers do not run them.
    expect(post("x", "/agents/new", "GET")).toBeNull();
    expect(post("x", "/api/v1/agents")).toBeNull();
    // No manifest (a build that has none, or one that cannot be read): Next.js answers, as before.
    expect(readActionIds(actionManifestFile(path.join(dir, "missing")))).toBeNull();
    expect(readActionIds(undefined)).toBeNull();
    expect(verdict({ method: "POST", url: "/agents/new", headers: { "next-action": "x" } }, null)).toBeNull();
  });
});

describe("the dashboard server's body limits", () => {
  const guard = requestGuard as {
    FORM_BODY_LIMIT_BYTES: number;
    DISCARD_MAX_BYTES: number;
    API_BODY_LIMIT_BYTES: number;
    bodyLimit: (url: string) => number;
    declaredTooLarge: (req: http.IncomingMessage) => number | null;
    refuseTooLarge: (req: http.IncomingMessage, res: http.ServerResponse, limit: number) => void;
    limitStreamedBody: (req: http.IncomingMessage, res: http.ServerResponse, limit: number) => void;
  };

  it("are the limits the forms and the route handlers enforce themselves", () => {
    expect(guard.FORM_BODY_LIMIT_BYTES).toBe(FORM_BODY_LIMIT_BYTES);
    expect(guard.API_BODY_LIMIT_BYTES).toBe(MAX_JSON_BODY_BYTES);
    expect(guard.bodyLimit("/api/v1/agents")).toBe(MAX_JSON_BODY_BYTES);
    expect(guard.bodyLimit("/api/auth/callback/credentials")).toBe(MAX_JSON_BODY_BYTES);
    for (const url of ["/agents", "/", "/tasks/new", "/apix", "/ap/i/"]) expect(guard.bodyLimit(url), url).toBe(FORM_BODY_LIMIT_BYTES);
  });

  /** A server wired as scripts/app-server.mjs wires it, whose handler reads the whole body as Next.js's copy of it does. */
  async function guarded(): Promise<{ port: number; received: number[]; close: () => Promise<void> }> {
    const received: number[] = [];
    const server = http.createServer((req, res) => {
      const limit = guard.declaredTooLarge(req);
      if (limit !== null) return guard.refuseTooLarge(req, res, limit);
      guard.limitStreamedBody(req, res, guard.bodyLimit(req.url ?? ""));
      // What the handler has been handed so far, kept up to date as it arrives.
      const at = received.push(0) - 1;
      req.on("data", (chunk: Buffer) => (received[at]! += chunk.length));
      req.on("end", () => res.end(`read ${received[at]}\n`));
      req.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    return { port, received, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  /**
   * Sends `head`, then `chunks` one after another while the connection takes them, then ends its
   * side; what came back, how many chunks were written and the connection's error, if any. With
   * `readAfterWriting`, nothing is read before every chunk is written (as most HTTP clients do).
   */
  function exchange(port: number, head: string, chunks: Buffer[], { readAfterWriting = false } = {}): Promise<{ answer: string; written: number; error?: string }> {
    return new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      let answer = "";
      let written = 0;
      let error: string | undefined;
      if (readAfterWriting) socket.pause();
      socket.on("data", (d) => (answer += d.toString("latin1")));
      socket.on("error", (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      socket.on("close", () => resolve({ answer, written, ...(error ? { error } : {}) }));
      socket.write(head);
      const next = () => {
        while (written < chunks.length && !socket.destroyed) {
          const ok = socket.write(chunks[written++]!);
          if (!ok) return void socket.once("drain", next);
        }
        if (!socket.destroyed) socket.end(() => socket.resume());
      };
      next();
    });
  }

  it("refuses a declared body over the limit with 413 before reading any of it; a client that sends it anyway still gets the answer", async () => {
    const s = await guarded();
    const head = (path: string, length: number) => `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
    try {
      for (const [path, limit] of [["/agents", FORM_BODY_LIMIT_BYTES], ["/api/v1/agents", MAX_JSON_BODY_BYTES]] as const) {
        const says = path.startsWith("/api/") ? '"error":"payload_too_large"' : "Payload too large";
        // Far over: the head alone is answered (the body never comes, so nothing waited for it),
        // and the connection closes without reading any of it.
        const far = await exchange(s.port, head(path, guard.DISCARD_MAX_BYTES + 1), []);
        expect(far.answer, path).toMatch(/^HTTP\/1\.1 413 /);
        expect(far.answer.toLowerCase(), path).toContain("connection: close");
        expect(far.answer, path).toContain(says);
        // Just over, sent whole by a client that reads only once it has sent it: the body is thrown
        // away as it arrives and the answer reaches the client, not a reset connection.
        const sent = await exchange(s.port, head(path, limit + 1), [Buffer.alloc(limit + 1, "x")], { readAfterWriting: true });
        expect(sent.error, path).toBeUndefined();
        expect(sent.written, path).toBe(1);
        expect(sent.answer, path).toMatch(/^HTTP\/1\.1 413 /);
        expect(sent.answer, path).toContain(says);
      }
      expect(s.received, "no handler ran").toEqual([]);
      // At the limit: read whole, as before.
      const body = Buffer.alloc(FORM_BODY_LIMIT_BYTES, "x");
      const { answer } = await exchange(s.port, `POST /agents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`, [body]);
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 200 [^]*read ${FORM_BODY_LIMIT_BYTES}\\n$`));
    } finally {
      await s.close();
    }
  });

  it("stops a chunked body at the limit: 413, the connection closed, and nothing past the limit handed on", async () => {
    const s = await guarded();
    try {
      const piece = Buffer.alloc(64 * 1024, "y");
      const chunk = Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from("\r\n")]);
      for (const [path, limit] of [["/agents", FORM_BODY_LIMIT_BYTES], ["/api/v1/agents", MAX_JSON_BODY_BYTES]] as const) {
        const chunks = Array.from({ length: 1024 }, () => chunk); // 64 MiB: more than either limit and all the socket buffers between
        const { answer, written } = await exchange(s.port, `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n`, chunks);
        expect(answer, path).toMatch(/^HTTP\/1\.1 413 /);
        expect(written, `${path}: the client could not send it all`).toBeLessThan(chunks.length);
        const handedOn = s.received.at(-1)!;
        expect(handedOn, path).toBeLessThanOrEqual(limit);
      }
      // A HEAD answer has no body, however it arrives: the head alone, its content-length that of a GET's.
      const head = await exchange(s.port, `HEAD /api/v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n`, Array.from({ length: 1024 }, () => chunk));
      expect(head.answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(head.answer.endsWith("\r\n\r\n"), "nothing after the head").toBe(true);
      // Under the limit, chunked: read whole.
      const { answer } = await exchange(s.port, `POST /agents HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`, [chunk, Buffer.from("0\r\n\r\n")]);
      expect(answer).toMatch(/read 65536\n$/);
    } finally {
      await s.close();
    }
  });
});
