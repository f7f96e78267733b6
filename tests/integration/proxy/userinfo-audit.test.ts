/**
 * A request whose target carries user-info (`user:password@`) is refused for it; what it carries
 * is a credential (here the agent's own task token, as a client configured with
 * `http://agent:TOKEN@host` sends it), and it must not end up in the audit, where anyone who may
 * read the audit could take it. Real proxy and real database.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordedTarget } from "@/lib/semantics/canonical";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    let out = "";
    socket.on("data", (c: Buffer) => (out += c.toString("latin1")));
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
    socket.setTimeout(3000, () => socket.destroy());
  });
}

describe("user-info in a request target never reaches the audit", () => {
  let h: ProxyHarness;
  let up: Upstream;
  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "echo", hosts: ["echo.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  it("is masked in the refusal's recorded URL, whatever the form of the target", async () => {
    const { token } = await h.newTask("unlisted: deny\nrules:\n  - service: echo\n    effects: [read]\n");
    const signature = token.split(".")[2]!;
    const before = up.hits.length;
    const absolute = await viaProxy(h.proxyPort, `http://agent:${token}@echo.test:${up.port}/x`, { token, headers: { host: `echo.test:${up.port}` } });
    expect(absolute.status).toBe(400);
    expect(absolute.json?.error).toBe("userinfo");
    // Without a task token too (refused before identity), and as a CONNECT target.
    expect((await viaProxy(h.proxyPort, `http://agent:${token}@echo.test:${up.port}/y`, { token: null, headers: { host: `echo.test:${up.port}` } })).status).toBeGreaterThanOrEqual(400);
    const connect = await rawRequest(h.proxyPort, `CONNECT agent:${token}@echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`);
    expect(connect).toMatch(/^HTTP\/1\.1 4\d\d/);
    expect(up.hits.length).toBe(before);

    let rejected: unknown[] = [];
    for (let i = 0; i < 100 && rejected.length < 3; i++) {
      rejected = (await h.events()).filter((e) => JSON.stringify(e).includes("***@"));
      if (rejected.length < 3) await new Promise((r) => setTimeout(r, 20));
    }
    expect(rejected.length).toBeGreaterThanOrEqual(3);
    expect(JSON.stringify(await h.events())).not.toContain(signature);
    expect(JSON.stringify(rejected)).toContain(`http://***@echo.test:${up.port}/x`);
  });

  it("masks every spelling of user-info and leaves other targets as they were", () => {
    expect(recordedTarget("http://u:p@ss@host/a?b=c@d")).toBe("http://***@host/a?b=c@d");
    expect(recordedTarget("u:tok@host:443")).toBe("***@host:443");
    expect(recordedTarget("http:\\\\u:tok@host/")).toBe("***@host/");
    expect(recordedTarget("http://host:80http://u:tok@host/x")).toBe("http://host:80http://***@host/x");
    expect(recordedTarget("http://host/users/a@b.example")).toBe("http://host/users/a@b.example");
    expect(recordedTarget("/users/a@b.example")).toBe("/users/a@b.example");
    expect(recordedTarget("host:443")).toBe("host:443");
    expect(recordedTarget(`http://h/${"x".repeat(3000)}`)).toHaveLength(2048);
  });
});
