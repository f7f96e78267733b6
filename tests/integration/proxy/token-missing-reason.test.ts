import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endTask } from "@/lib/tasks/tasks";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { viaProxy } from "../../support/proxy-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * A 407 says why the proxy found no task token. Written as the proxy's user name
 * (`http://TOKEN@proxy:8080`, as some proxies take it), the token was sent and the answer was
 * still "a task token is required in Proxy-Authorization".
 */
describe("the explicit proxy's 407 says what is wrong with Proxy-Authorization", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let token: string;
  let url: string;
  const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString("base64")}`;

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    ({ token } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n", { scope: "api:*:read" }));
    url = `http://api.test:${up.port}/items`;
  });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  it("the token as the user name, with an empty password: says it goes in the password", async () => {
    const r = await viaProxy(h.proxyPort, url, { proxyAuthorization: basic(`${token}:`) });
    expect(r.status).toBe(407);
    expect(r.json).toMatchObject({ error: "token_missing" });
    expect(String((r.json as { reason: string }).reason)).toBe(
      "Proxy-Authorization has a user name and an empty password: the task token goes in the password, not the user name; send it as Bearer TOKEN, or as the proxy password (http://bulkhead:TOKEN@proxy:port)",
    );
    // The refusal never repeats what was sent.
    expect(r.text).not.toContain(token);
  });

  it("no header, and a scheme that carries no token, each say how to send it", async () => {
    const none = await viaProxy(h.proxyPort, url, {});
    expect((none.json as { reason: string }).reason).toBe("a task token is required in Proxy-Authorization: send it as Bearer TOKEN, or as the proxy password (http://bulkhead:TOKEN@proxy:port)");
    const digest = await viaProxy(h.proxyPort, url, { proxyAuthorization: "Digest username=x" });
    expect((digest.json as { reason: string }).reason).toMatch(/^Proxy-Authorization holds no task token \(it must be Bearer or Basic\): send it as Bearer TOKEN/);
  });

  it("the token in the password still works", async () => {
    expect((await viaProxy(h.proxyPort, url, { proxyAuthorization: basic(`bulkhead:${token}`) })).status).toBe(200);
  });

  it("a refused token is said in words with the next step, not as a bare code", async () => {
    const garbage = await viaProxy(h.proxyPort, url, { token: "not-a-token" });
    expect(garbage.status).toBe(407);
    expect((garbage.json as { reason: string }).reason).toBe("task token refused: task token is malformed; send the whole token exactly as minted (three dot-separated parts)");
    const ended = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n", { scope: "api:*:read" });
    await endTask(h.t.db, h.admin, ended.taskId);
    await h.sync();
    const r = await viaProxy(h.proxyPort, url, { token: ended.token });
    expect(r.status).toBe(407);
    expect((r.json as { error: string; reason: string })).toMatchObject({
      error: "token_task_revoked",
      reason: "task token refused: task token's task has ended or was revoked; the task is over; create a new task for further work",
    });
  });
});
