import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { exchange, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * A request whose head was accepted but whose body cannot be parsed gets a clear 400, not a
 * connection closed without an answer, and nothing of it reaches the upstream.
 */
describe("a body that cannot be parsed is answered with 400", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let token: string;
  let origin: string;

  const raw = async (bytes: string) => {
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    return exchange(socket, bytes, 1500);
  };

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read, write]\n"));
    origin = `http://api.test:${up.port}`;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  const head = (te: string) => `POST ${origin}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: text/plain\r\nTransfer-Encoding: ${te}\r\n\r\n`;

  it.each([
    ["an unknown transfer coding", "xchunked", "4\r\nabcd\r\n0\r\n\r\n"],
    ["a chunk size that is not hex", "chunked", "zz\r\nabcd\r\n0\r\n\r\n"],
    ["a chunk extension broken by a bare LF", "chunked", "4;a\nb\r\nabcd\r\n0\r\n\r\n"],
    ["a chunk longer than its size", "chunked", "2\r\nabcd\r\n0\r\n\r\n"],
  ])("%s", async (_name, te, body) => {
    const before = up.hits.length;
    const out = await raw(head(te) + body);
    expect(statuses(out), out).toEqual([400]);
    expect(out).toContain("http_parse_error");
    expect(up.hits.length).toBe(before);
  });

  it("a good chunked body still goes through (the control), and the proxy answers after the refusals", async () => {
    const out = await raw(head("chunked") + "4\r\nabcd\r\n0\r\n\r\n");
    expect(statuses(out)).toEqual([200]);
    expect(up.hits.at(-1)!.body).toBe("abcd");
  });
});
