/**
 * A client that sends its whole request and then shuts down its sending side (a TCP half-close)
 * gets its answer, and the audit says what happened: the request was forwarded and answered.
 * Node's default aborted the request on that FIN, after it had been forwarded: the write ran
 * upstream while the client got nothing and the audit said `client_gone`.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { connectTunnel } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

describe("a half-closed client connection", () => {
  let h: ProxyHarness;
  let upstream: Upstream;
  let token: string;

  beforeAll(async () => {
    upstream = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({
      id: "halfclose",
      hosts: ["halfclose.test"],
      scheme: "http",
      ports: [upstream.port],
      protocol: "rest",
      rest: { routes: [{ method: "POST", path: "/items", operation: "items.create", effect: "write" }] },
      proxy: { internalAddresses: ["127.0.0.1/32"] },
    });
    let taskId: string;
    ({ token, taskId } = await h.newTask("unlisted: deny\nrules:\n  - service: halfclose\n    effects: [read, write]\n"));
    await h.t.adminDb().sandbox.create({ data: { taskId, name: "sandbox-halfclose", sourceAddress: "127.0.0.3" } });
  });
  afterAll(async () => {
    await h.close();
    await upstream.close();
  });

  /** Writes `bytes`, half-closes, and returns everything the proxy sends until it closes. */
  const halfClosed = (socket: net.Socket | import("node:tls").TLSSocket, bytes: string) =>
    new Promise<string>((resolve, reject) => {
      let got = "";
      socket.setEncoding("latin1");
      socket.on("data", (chunk: string) => (got += chunk));
      socket.on("error", reject);
      socket.on("close", () => resolve(got));
      socket.end(bytes);
      setTimeout(() => resolve(got), 5_000).unref();
    });

  const request = (target: string, id: string) =>
    `POST ${target} HTTP/1.1\r\nHost: halfclose.test:${upstream.port}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${JSON.stringify({ id }).length}\r\n\r\n${JSON.stringify({ id })}`;

  it("explicit proxy: the answer comes back, and the write is recorded as forwarded", async () => {
    const before = upstream.hits.length;
    const socket = net.connect(h.proxyPort, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const answer = await halfClosed(socket, request(`http://halfclose.test:${upstream.port}/items`, "explicit-1"));
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(upstream.hits.length).toBe(before + 1);
    expect(JSON.stringify(await h.events())).not.toContain("client_gone");
  });

  it("inside a CONNECT tunnel: the same", async () => {
    const before = upstream.hits.length;
    const tunnel = await connectTunnel(h.proxyPort, `halfclose.test:${upstream.port}`, { "proxy-authorization": `Bearer ${token}` });
    expect(tunnel.status).toBe(200);
    const answer = await halfClosed(tunnel.socket as net.Socket, request("/items", "tunnel-1"));
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(upstream.hits.length).toBe(before + 1);
    expect(JSON.stringify(await h.events())).not.toContain("client_gone");
  });

  it("from a sandbox, on the transparent listener: the same", async () => {
    const before = upstream.hits.length;
    const socket = net.connect({ host: "127.0.0.1", port: h.transparentHttpPort, localAddress: "127.0.0.3" });
    await new Promise((r) => socket.once("connect", r));
    const answer = await halfClosed(socket, request("/items", "sandbox-1"));
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(upstream.hits.length).toBe(before + 1);
    expect(JSON.stringify(await h.events())).not.toContain("client_gone");
  });
});
