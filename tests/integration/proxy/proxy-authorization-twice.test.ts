import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    let out = "";
    socket.on("data", (c: Buffer) => {
      out += c.toString("latin1");
      // A tunnel that opened stays open: its status line is all this needs.
      if (/^HTTP\/1\.1 200 Connection Established\r\n\r\n/.test(out)) socket.destroy();
    });
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
    socket.setTimeout(3000, () => socket.destroy());
  });
}

/**
 * Two Proxy-Authorization headers are two credentials: which one the request acts under is a
 * guess, and Bulkhead does not guess. Node's parser keeps the first of them and drops the rest
 * without a word, so the refusal meant for this case never ran: a CONNECT opened its tunnel under
 * the first token, and a request was authenticated (and its duplicate-header refusal audited) as
 * the first token's task. Each listener now reads every copy from the raw headers and answers
 * 407, before any token is looked at.
 */
describe("Proxy-Authorization sent twice", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let first: string;
  let second: string;

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    const policy = "unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n";
    ({ token: first } = await h.newTask(policy, { scope: "api:*:read" }));
    ({ token: second } = await h.newTask(policy, { scope: "api:*:read" }));
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  it("a CONNECT with two (valid or not) is refused with 407 and no tunnel opens", async () => {
    for (const [a, b] of [
      [first, second],
      [first, first],
      [first, "garbage"],
      ["garbage", first],
    ]) {
      const answer = await rawRequest(h.proxyPort, `CONNECT api.test:${up.port} HTTP/1.1\r\nHost: api.test:${up.port}\r\nProxy-Authorization: Bearer ${a}\r\nProxy-Authorization: Bearer ${b}\r\n\r\n`);
      expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 407 Proxy Authentication Required");
      expect(answer).toContain("more than once");
    }
  });

  it("a request with two is refused with 407 before either is used, whatever their spelling", async () => {
    const before = up.hits.length;
    const basic = `Basic ${Buffer.from(`agent:${first}`).toString("base64")}`;
    for (const [a, b] of [
      [`Bearer ${first}`, `Bearer ${second}`],
      [`Bearer ${first}`, basic],
      [basic, `bearer ${first}`],
    ]) {
      const answer = await rawRequest(h.proxyPort, `GET http://api.test:${up.port}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\nproxy-authorization: ${a}\r\nPROXY-AUTHORIZATION: ${b}\r\nConnection: close\r\n\r\n`);
      expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 407 Proxy Authentication Required");
      expect(answer).toContain("more than once");
    }
    expect(up.hits.length).toBe(before);
    // Once is fine (the control).
    const once = await rawRequest(h.proxyPort, `GET http://api.test:${up.port}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\nProxy-Authorization: Bearer ${first}\r\nConnection: close\r\n\r\n`);
    expect(once.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
  });
});
