import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { saveCustomService } from "@/lib/services/services";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

const WRITES = "unlisted: deny\nrules:\n  - service: api\n    effects: [read, write]\n";
const READS = "unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n";

/** Sends the head and half the body, waits for `meanwhile`, then the rest; resolves with the answer. */
function slowPost(port: number, url: string, host: string, token: string, meanwhile: () => Promise<void>): Promise<string> {
  const body = JSON.stringify({ name: "x".repeat(64) });
  const half = Math.floor(body.length / 2);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => {
      socket.write(`POST ${url} HTTP/1.1\r\nHost: ${host}\r\nProxy-Authorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, half)}`);
      setTimeout(() => {
        meanwhile().then(
          () => socket.write(body.slice(half)),
          (error: unknown) => {
            socket.destroy();
            reject(error instanceof Error ? error : new Error(String(error)));
          },
        );
      }, 200);
    });
    let out = "";
    socket.on("data", (c: Buffer) => (out += c.toString("latin1")));
    socket.on("close", () => resolve(out));
    socket.on("error", reject);
    socket.setTimeout(10_000, () => socket.destroy());
  });
}

/**
 * A request is judged by the policy in force when its body has arrived, not when its head did: the
 * enforcement state was read once when the request began, and a client that trickles its body
 * (for up to BULKHEAD_CLIENT_TIMEOUT_SECONDS, 30 s by default) was decided under a policy that had
 * been narrowed seconds before, and forwarded. A policy narrows a running task within a second.
 */
describe("a policy narrowed while a request's body is still arriving", () => {
  let h: ProxyHarness;
  let up: Upstream;

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService(api(["127.0.0.1/32"]));
  });
  const api = (internalAddresses: string[]) => ({ id: "api", hosts: ["api.test"], scheme: "http" as const, ports: [up.port], protocol: "rest" as const, proxy: { internalAddresses } });
  afterAll(async () => {
    await h.close();
    await up.close();
  });

  it("is refused under the narrowed policy, and nothing reaches the upstream", async () => {
    const task = await h.newTask(WRITES, { scope: "api:*:write" });
    const before = up.hits.length;
    const answer = await slowPost(h.proxyPort, `http://api.test:${up.port}/items`, `api.test:${up.port}`, task.token, async () => {
      await updateTaskPolicy(h.t.db, h.admin, task.taskId, READS);
      await h.sync();
    });
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 403 Forbidden");
    expect(answer).toContain('"error":"policy_changed"');
    expect(up.hits.length).toBe(before);
    let refusal = null;
    for (let i = 0; i < 100 && !refusal; i++) {
      refusal = await h.t.db.auditEvent.findFirst({ where: { taskId: task.taskId, data: { path: ["code"], equals: "policy_changed" } } });
      if (!refusal) await new Promise((r) => setTimeout(r, 20));
    }
    expect(refusal?.data).toMatchObject({ decidedUnderPolicyVersion: 1, policyVersion: 2 });
  });

  it("a policy change that still allows it lets it through (the control)", async () => {
    const task = await h.newTask(WRITES, { scope: "api:*:write" });
    const before = up.hits.length;
    const answer = await slowPost(h.proxyPort, `http://api.test:${up.port}/items`, `api.test:${up.port}`, task.token, async () => {
      await updateTaskPolicy(h.t.db, h.admin, task.taskId, `${WRITES}  - service: github\n    effects: [read]\n`);
      await h.sync();
    });
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    expect(up.hits.length).toBe(before + 1);
  });

  it("an address taken from the service while the body arrives is not dialled", async () => {
    const task = await h.newTask(WRITES, { scope: "api:*:write" });
    const before = up.hits.length;
    const answer = await slowPost(h.proxyPort, `http://api.test:${up.port}/items`, `api.test:${up.port}`, task.token, async () => {
      await saveCustomService(h.t.db, h.admin, stringify(api([])));
      await h.sync();
    });
    expect(answer.split("\r\n")[0]).toBe("HTTP/1.1 403 Forbidden");
    expect(answer).toContain('"error":"destination_forbidden"');
    expect(up.hits.length).toBe(before);
    await saveCustomService(h.t.db, h.admin, stringify(api(["127.0.0.1/32"])));
    await h.sync();
  });
});
