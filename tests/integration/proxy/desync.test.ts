import net from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { connectTunnel, exchange, statuses } from "../../support/tunnel-client";

/**
 * The upstream runs what Bulkhead judged, at the level of HTTP framing: what reaches it is one
 * request per request judged, with nothing in a body or a header that it could read as another.
 * The upstream is a raw TCP server on loopback that records the bytes it gets and plays a server
 * with a known framing weakness where a test needs one.
 */
describe("framing: the upstream runs the request that was judged", () => {
  let h: ProxyHarness;
  let token: string;
  let upstream: net.Server;
  let port = 0;
  /** Every byte the upstream received, and the request lines it acted on, in order. */
  let received = "";
  let executed: string[] = [];
  /** Methods whose bodies the upstream does not read: a CL.0 server (RFC 9110 §9.3.1 warns of them) takes such a body for the next request. */
  let ignoresBodiesOf = new Set<string>();

  beforeAll(async () => {
    // Parses requests one after another on each connection, answers each, and stops at one that
    // asks to close the connection (RFC 9112 §9.6: nothing after it is processed).
    upstream = net.createServer((socket) => {
      let buffered = "";
      let closing = false;
      socket.on("error", () => undefined);
      socket.on("data", (chunk: Buffer) => {
        received += chunk.toString("latin1");
        buffered += chunk.toString("latin1");
        while (!closing) {
          const end = buffered.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = buffered.slice(0, end);
          const line = head.split("\r\n")[0] ?? "";
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          const body = ignoresBodiesOf.has(line.split(" ")[0] ?? "") ? 0 : length;
          if (buffered.length < end + 4 + body) return;
          buffered = buffered.slice(end + 4 + body);
          executed.push(line);
          closing = /\r\nconnection: *close/i.test(head);
          const answer = `ran ${line}`;
          const close = closing;
          const reply = () => {
            socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${answer.length}\r\n${close ? "Connection: close\r\n" : ""}\r\n${answer}`);
            if (close) socket.end();
          };
          // `/slow` is answered late: a request pipelined behind it is still waiting its turn.
          if (line.includes("/slow")) setTimeout(reply, 300);
          else reply();
        }
      });
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    port = (upstream.address() as net.AddressInfo).port;
    h = await startProxyHarness({ env: { BULKHEAD_UPSTREAM_TIMEOUT_SECONDS: "2" } });
    await h.addService({
      id: "raw",
      hosts: ["raw.test"],
      scheme: "http",
      ports: [port],
      protocol: "rest",
      rest: { routes: [{ method: "DELETE", path: "/items/{id}", operation: "delete", effect: "destructive" }] },
      proxy: { internalAddresses: ["127.0.0.1/32"] },
    });
    // Reads and writes: every DELETE (destructive) is refused.
    let taskId: string;
    ({ token, taskId } = await h.newTask("unlisted: deny\nrules:\n  - service: raw\n    effects: [read, write]\n", { scope: "raw:*:irreversible" }));
    // The same task behind a sandbox at 127.0.0.2, for the transparent listener.
    await h.t.adminDb().sandbox.create({ data: { taskId, name: "sandbox-desync", sourceAddress: "127.0.0.2" } });
    await h.addCredential({ name: "raw", scheme: "http", host: "raw.test", port, headerTemplate: "Authorization: Bearer {secret}", secret: "raw_secret_value_0123456789" });
  });
  afterAll(async () => {
    await h.close();
    await new Promise((r) => upstream.close(r));
  });
  beforeEach(() => {
    received = "";
    executed = [];
    ignoresBodiesOf = new Set();
  });

  const send = async (bytes: string) => {
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    return exchange(socket, bytes, 800);
  };
  /** The same raw request on every entry path: absolute-form to the explicit listener, origin-form inside a CONNECT tunnel and from a sandbox. */
  const viaEveryPath = async (method: string, path: string, rest: string): Promise<Record<string, string>> => {
    const explicit = await send(`${head(`${method} ${origin()}${path}`)}${rest}`);
    const tunnel = await connectTunnel(h.proxyPort, `raw.test:${port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    const intercepted = await exchange(tunnel.socket, `${method} ${path} HTTP/1.1\r\nHost: raw.test:${port}\r\n${rest}`, 800);
    const sandbox = net.connect({ host: "127.0.0.1", port: h.transparentHttpPort, localAddress: "127.0.0.2" });
    await new Promise((r) => sandbox.once("connect", r));
    const transparent = await exchange(sandbox, `${method} ${path} HTTP/1.1\r\nHost: raw.test:${port}\r\n${rest}`, 800);
    return { explicit, intercepted, transparent };
  };
  const head = (line: string, extra = "") => `${line} HTTP/1.1\r\nHost: raw.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n${extra}`;
  const origin = () => `http://raw.test:${port}`;

  it("a body that is itself an HTTP request is refused, whatever the method, on every path: an upstream that does not read bodies never runs it", async () => {
    // The control: the DELETE on its own is refused, and never reaches the upstream.
    expect(statuses(await send(`${head(`DELETE ${origin()}/items/1`)}Connection: close\r\n\r\n`))).toEqual([403]);
    expect(executed).toEqual([]);

    // An upstream that reads no body at all. Bulkhead judges (and allows) the read or the write;
    // such an upstream reads the body as the next request on that connection: a whole DELETE ran
    // there, and a partial one took the head of the next request sent on the pooled connection
    // (the injected credential with it).
    ignoresBodiesOf = new Set(["GET", "POST", "PUT", "PATCH", "OPTIONS"]);
    const hidden = [
      `DELETE /items/1 HTTP/1.1\r\nHost: raw.test:${port}\r\n\r\n`,
      "DELETE /items/2 HTTP/1.1\r\nX-Swallow-Next: ",
      `\r\n\r\n delete\t/items/3 http/1.1\r\nHost: raw.test:${port}\r\n\r\n`,
      "\u0000\u000bPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      // A request line longer than the scan (its target a long query string), and one the body
      // leaves unfinished for the next request's head to complete.
      `DELETE /items/4?p=${"A".repeat(8200)} HTTP/1.1\r\nX: `,
      "DELETE /items/5?x=",
    ];
    for (const method of ["POST", "GET", "PATCH"]) {
      for (const body of hidden) {
        const answers = await viaEveryPath(method, "/items", `Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body, "latin1")}\r\nConnection: close\r\n\r\n${body}`);
        for (const [path, out] of Object.entries(answers)) {
          expect(statuses(out), `${method} ${JSON.stringify(body)} via ${path}`).toEqual([400]);
          expect(out, path).toContain("body_is_request");
        }
      }
    }
    // A POST after them on the same upstream pool finds no half request waiting there.
    expect(statuses(await send(`${head(`POST ${origin()}/items`, "Content-Type: text/plain\r\nContent-Length: 2\r\n")}Connection: close\r\n\r\nhi`))).toEqual([200]);
    await new Promise((r) => setTimeout(r, 200));
    expect(executed).toEqual(["POST /items HTTP/1.1"]);
    expect(received).not.toMatch(/items\/[12345]|PRI \*/i);

    // A request line anywhere but at the start is data (a JSON note, a log line), forwarded as judged.
    ignoresBodiesOf = new Set();
    received = "";
    const note = JSON.stringify({ note: "DELETE /items/1 HTTP/1.1" });
    expect(statuses(await send(`${head(`POST ${origin()}/items`, `Content-Type: application/json\r\nContent-Length: ${note.length}\r\n`)}Connection: close\r\n\r\n${note}`))).toEqual([200]);
    expect(received.endsWith(note)).toBe(true);
  });

  it("a body on a GET, DELETE or OPTIONS goes on a connection that closes after it: an upstream that does not read it never reads the bytes as more", async () => {
    for (const method of ["OPTIONS", "GET"]) {
      received = "";
      expect(statuses(await send(`${head(`${method} ${origin()}/items`, "Content-Type: text/plain\r\nContent-Length: 2\r\n")}Connection: close\r\n\r\nhi`)), method).toEqual([200]);
      expect(received, method).toMatch(/\r\nconnection: close\r\n/);
      // The body still reaches the upstream as it was judged: it is not dropped, only not followed by anything.
      expect(received.endsWith("\r\n\r\nhi"), method).toBe(true);
    }
    received = "";
    expect(statuses(await send(`${head(`GET ${origin()}/items`)}Connection: close\r\n\r\n`))).toEqual([200]);
    expect(received, "a GET without a body keeps the upstream connection").toMatch(/\r\nconnection: keep-alive\r\n/);
    received = "";
    expect(statuses(await send(`${head(`POST ${origin()}/items`, "Content-Type: text/plain\r\nContent-Length: 2\r\n")}Connection: close\r\n\r\nhi`))).toEqual([200]);
    expect(received, "a POST's body is expected: its upstream connection is kept").toMatch(/\r\nconnection: keep-alive\r\n/);
  });

  it("never forwards trailers: a chunked body's trailer cannot add a method override or another Content-Type after the judgement", async () => {
    const out = await send(
      `${head(`OPTIONS ${origin()}/items`, "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-HTTP-Method-Override, Content-Type\r\n")}Connection: close\r\n\r\n` +
        "5;name=value\r\nhello\r\n0\r\nX-HTTP-Method-Override: DELETE\r\nContent-Type: application/json\r\n\r\n",
    );
    expect(statuses(out)).toEqual([200]);
    expect(executed).toEqual(["OPTIONS /items HTTP/1.1"]);
    expect(received).not.toMatch(/method-override|application\/json|trailer|transfer-encoding/i);
    expect(received).toMatch(/\r\ncontent-length: 5\r\n/);
    expect(received.endsWith("\r\n\r\nhello")).toBe(true);
  });

  it("never forwards an Upgrade (h2c included), with or without Connection naming it, so no answer can turn the connection into an unjudged tunnel", async () => {
    // Named in Connection: Node hands it over as an upgrade, refused (403) before anything is judged.
    const named = await send(`${head(`GET ${origin()}/items`)}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`);
    expect(statuses(named)).toEqual([403]);
    expect(named).toContain("upgrade_refused");
    // Not named: an ordinary request, forwarded without the upgrade headers.
    const bare = await send(`${head(`GET ${origin()}/items`)}Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: HTTP2-Settings, close\r\n\r\n`);
    expect(statuses(bare)).toEqual([200]);
    expect(executed).toEqual(["GET /items HTTP/1.1"]);
    expect(received).not.toMatch(/upgrade|http2-settings/i);
  });

  it("a header the agent names in Connection cannot take away what Bulkhead sets (the credential, Host, Content-Length), nor reach the upstream itself", async () => {
    const out = await send(
      `${head(`POST ${origin()}/items`, "Content-Type: text/plain\r\nContent-Length: 2\r\nX-HTTP-Method-Override: DELETE\r\nAuthorization: Bearer agent-own\r\n")}` +
        "Connection: close, authorization, host, content-length, content-type, x-http-method-override, proxy-authorization\r\n\r\nhi",
    );
    // Judged as the upstream gets it: a POST (a write), no override, no type.
    expect(statuses(out), out).toEqual([200]);
    expect(executed).toEqual(["POST /items HTTP/1.1"]);
    expect(received).toContain(`\r\nhost: raw.test:${port}\r\n`);
    expect(received).toContain("\r\nauthorization: Bearer raw_secret_value_0123456789\r\n");
    expect(received).toMatch(/\r\ncontent-length: 2\r\n/);
    expect(received).not.toMatch(/override|agent-own|content-type|proxy-authorization/i);
  });

  // Node hands the socket of a CONNECT or an upgrade over as soon as it is parsed, while the
  // requests before it on the connection may still be decided or forwarded: what was written on
  // the raw socket (the upgrade's refusal, the tunnel's 200) went out ahead of their answers, which
  // the client read as the answer to its earlier request.
  it("answers a CONNECT or an upgrade pipelined behind a request only after that request's answer, in order", async () => {
    const upgrade = await send(`${head(`GET ${origin()}/slow`)}\r\n${head(`GET ${origin()}/ws`)}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    expect(statuses(upgrade), upgrade).toEqual([200, 403]);
    expect(upgrade.indexOf("ran GET /slow")).toBeLessThan(upgrade.indexOf("upgrade_refused"));

    executed = [];
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const tunnel = await exchange(
      socket,
      `${head(`GET ${origin()}/slow`)}\r\nCONNECT raw.test:${port} HTTP/1.1\r\nHost: raw.test:${port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n` +
        `GET /items HTTP/1.1\r\nHost: raw.test:${port}\r\nConnection: close\r\n\r\n`,
      1500,
    );
    expect(statuses(tunnel), tunnel).toEqual([200, 200, 200]);
    const order = ["ran GET /slow", "200 Connection Established", "ran GET /items"].map((text) => tunnel.indexOf(text));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(executed).toEqual(["GET /slow HTTP/1.1", "GET /items HTTP/1.1"]);
  });
});
