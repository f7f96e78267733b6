import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { exchange, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/**
 * A sandbox's identity from the attacker's side, on the worker's listeners (loopback addresses
 * stand in for sandbox addresses): a token for another task presented from a sandbox's address is
 * refused, and a sandbox whose task expired between two snapshot reloads is refused at once.
 */
describe("sandbox identity", () => {
  let h: ProxyHarness;
  let plain: Upstream;
  const policy = "unlisted: deny\nrules:\n  - service: plain\n    effects: [read]\n";
  const from = async (localAddress: string, port: number) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    await new Promise((r) => socket.once("connect", r));
    return socket;
  };

  beforeAll(async () => {
    plain = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "plain", hosts: ["plain.test"], scheme: "http", ports: [plain.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
  });
  afterAll(async () => {
    await h.close();
    await plain.close();
  });

  it("refuses a token for another task presented from a sandbox's address; the same token works from elsewhere", async () => {
    const sandboxed = await h.newTask(policy);
    const other = await h.newTask(policy);
    await h.t.db.sandbox.create({ data: { taskId: sandboxed.taskId, name: "identity-a", sourceAddress: "127.0.0.7", addresses: "127.0.0.7" } });
    await h.sync();
    const request = `GET http://plain.test:${plain.port}/x HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nProxy-Authorization: Bearer ${other.token}\r\nConnection: close\r\n\r\n`;
    const before = plain.hits.length;
    const refused = await exchange(await from("127.0.0.7", h.proxyPort), request);
    expect(statuses(refused)).toEqual([407]);
    expect(refused).toContain("token_sandbox_mismatch");
    expect(plain.hits.length).toBe(before);
    const allowed = await exchange(await from("127.0.0.8", h.proxyPort), request);
    expect(statuses(allowed)).toEqual([200]);
  });

  it("checks the sandbox task's expiry on every request, not only at the next snapshot", async () => {
    const { taskId } = await h.newTask(policy);
    await h.t.db.sandbox.create({ data: { taskId, name: "identity-b", sourceAddress: "127.0.0.9", addresses: "127.0.0.9" } });
    // Expires in a moment; the worker's snapshot still holds it as active afterwards.
    const expiresAt = new Date(Date.now() + 8000);
    await h.t.db.task.update({ where: { id: taskId }, data: { expiresAt } });
    await h.sync();
    const get = () => `GET /x HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nConnection: close\r\n\r\n`;
    expect(statuses(await exchange(await from("127.0.0.9", h.transparentHttpPort), get()))).toEqual([200]);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt.getTime() - Date.now()) + 100));
    const before = plain.hits.length;
    const late = await exchange(await from("127.0.0.9", h.transparentHttpPort), get());
    expect(statuses(late), late).toEqual([407]);
    // Refused at once either way: by the per-request expiry check, or (when the worker's kill
    // switch has already recorded the expiry and the snapshot dropped the task) as no longer active.
    expect(late).toMatch(/"error":"(task_expired|task_revoked)"/);
    expect(plain.hits.length).toBe(before);
  });
});
