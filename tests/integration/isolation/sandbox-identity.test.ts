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
    h = await startProxyHarness({ env: { BULKHEAD_TASK_MAX_CONNECTIONS: "4" } });
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

  // Connections were counted against the task only from their first authenticated request: an
  // external sandbox could hold any number whose request head never ends (each open for the head
  // timeout), every one a file descriptor of the worker shared with every other client.
  it("caps an external sandbox's connections at the task's limit from the accept; a neighbour is served, and the sandbox again once it closed them", async () => {
    const hog = await h.newTask(policy);
    const neighbour = await h.newTask(policy);
    await h.t.db.sandbox.create({ data: { taskId: hog.taskId, name: "identity-hog", sourceAddress: "127.0.0.11", addresses: "127.0.0.11" } });
    await h.t.db.sandbox.create({ data: { taskId: neighbour.taskId, name: "identity-neighbour", sourceAddress: "127.0.0.12", addresses: "127.0.0.12" } });
    await h.sync();
    const stalled: net.Socket[] = [];
    const closed = new Set<net.Socket>();
    for (let i = 0; i < 12; i++) {
      const socket = await from("127.0.0.11", h.transparentHttpPort);
      socket.on("error", () => undefined);
      socket.once("close", () => closed.add(socket));
      socket.write(`GET /stall-${i} HTTP/1.1\r\nHost: plain.test:${plain.port}\r\n`);
      stalled.push(socket);
    }
    const deadline = Date.now() + 10_000;
    while (stalled.length - closed.size > 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(stalled.length - closed.size, "connections the hog still holds").toBe(4);
    const get = `GET /x HTTP/1.1\r\nHost: plain.test:${plain.port}\r\nConnection: close\r\n\r\n`;
    expect(statuses(await exchange(await from("127.0.0.12", h.transparentHttpPort), get))).toEqual([200]);
    const audited = async () => (await h.t.db.auditEvent.findMany({ where: { taskId: hog.taskId, outcome: "deny" } })).some((e) => (e.data as { code?: string }).code === "sandbox_connection_limit");
    const until = Date.now() + 10_000;
    while (!(await audited()) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(await audited()).toBe(true);
    for (const socket of stalled) socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect(statuses(await exchange(await from("127.0.0.11", h.transparentHttpPort), get))).toEqual([200]);
  });
});
