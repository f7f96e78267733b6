import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrismaClient } from "@/lib/db/client";
import { loadWorkerConfig } from "@/lib/config/worker";
import { createLogger } from "@/lib/log";
import { updateTaskPolicy } from "@/lib/tasks/policy";
import { endTask } from "@/lib/tasks/tasks";
import { startEnforcementCore } from "@/proxy-worker/core";
import { startProxyService, type ProxyService } from "@/proxy-worker/proxy/service";
import type { AddressInfo } from "node:net";
import { viaProxy } from "../../support/proxy-client";
import { identity, loopbackLookup, startProxyHarness, type ProxyHarness } from "../../support/proxy-harness";
import { closedAfter, requestOn, statuses } from "../../support/tunnel-client";
import { startHttpUpstream, type Upstream } from "../../support/upstreams";

/** Two workers on one database: a policy change and a revocation reach both within a second. */
describe("policy changes and revocations reach every running worker", () => {
  let h: ProxyHarness;
  let up: Upstream;
  let second: { proxy: ProxyService; port: number; close: () => Promise<void> };

  beforeAll(async () => {
    up = await startHttpUpstream();
    h = await startProxyHarness();
    await h.addService({ id: "api", hosts: ["api.test"], scheme: "http", ports: [up.port], protocol: "rest", proxy: { internalAddresses: ["127.0.0.1/32"] } });
    const db = createPrismaClient(h.t.workerUrl, 4);
    const log = createLogger("second-worker", "silent");
    const core = await startEnforcementCore({ db, databaseUrl: h.t.workerUrl, log, identity, reconcileIntervalMs: 60_000 });
    const config = { ...loadWorkerConfig({}), proxyPort: 0, transparentHttpPort: 0, transparentTlsPort: 0 };
    const proxy = await startProxyService({
      config,
      db,
      databaseUrl: h.t.workerUrl,
      workerKey: h.keys.workerKey,
      core,
      audit: { record: async () => undefined },
      log,
      lookup: loopbackLookup,
    });
    second = {
      proxy,
      port: (proxy.explicit.address() as AddressInfo).port,
      close: async () => {
        await proxy.close();
        await core.close();
        await db.$disconnect();
      },
    };
  });
  afterAll(async () => {
    await second.close();
    await h.close();
    await up.close();
  });

  /** Polls a worker until the request gets `status`; returns the milliseconds it took. */
  const until = async (port: number, token: string, method: string, status: number) => {
    const start = performance.now();
    for (;;) {
      // A request in flight when its task is revoked has its connection closed (the kill switch):
      // that counts as "not yet", and the next one is asked.
      const r = await viaProxy(port, `http://api.test:${up.port}/items`, { token, method, body: method === "GET" ? undefined : "{}", headers: method === "GET" ? {} : { "content-type": "application/json" } }).catch(
        () => ({ status: 0 }),
      );
      if (r.status === status) return performance.now() - start;
      if (performance.now() - start > 3000) throw new Error(`worker on ${port} still answers ${r.status}`);
      await new Promise((r2) => setTimeout(r2, 5));
    }
  };

  it("a policy change (write now allowed) is enforced by both workers within a second", async () => {
    // The scope allows writes: the policy, not the scope, is what changes here.
    const { token, taskId } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n", { scope: "api:*:write" });
    await until(h.proxyPort, token, "GET", 200);
    await until(second.port, token, "GET", 200);
    expect((await viaProxy(second.port, `http://api.test:${up.port}/items`, { token, method: "POST", body: "{}", headers: { "content-type": "application/json" } })).status).toBe(403);
    const committed = performance.now();
    await updateTaskPolicy(h.t.db, h.admin, taskId, "unlisted: deny\nrules:\n  - service: api\n    effects: [read, write]\n");
    await Promise.all([until(h.proxyPort, token, "POST", 200), until(second.port, token, "POST", 200)]);
    expect(performance.now() - committed).toBeLessThan(1000);
  });

  it("ending a task closes its open connection and answers its held requests on both workers within a second", async () => {
    const { token, taskId } = await h.newTask("unlisted: hold\nrules:\n  - service: api\n    effects: [read]\n");
    await until(second.port, token, "GET", 200);
    const socket = net.connect({ host: "127.0.0.1", port: second.port });
    await new Promise((r) => socket.once("connect", r));
    const get = `GET http://api.test:${up.port}/items HTTP/1.1\r\nHost: api.test:${up.port}\r\nProxy-Authorization: Bearer ${token}\r\n\r\n`;
    expect(statuses(await requestOn(socket, get))).toEqual([200]);
    // A write is unlisted: held, on each worker.
    const post = (port: number) => viaProxy(port, `http://api.test:${up.port}/items`, { token, method: "POST", body: "{}", headers: { "content-type": "application/json" } });
    const held = [post(h.proxyPort), post(second.port)];
    while ((await h.t.db.approval.count({ where: { taskId, status: "pending" } })) < 2) await new Promise((r) => setTimeout(r, 10));
    const before = up.hits.length;
    const committed = performance.now();
    const closed = closedAfter(socket, committed);
    await endTask(h.t.db, h.admin, taskId);
    const answers = await Promise.all(held);
    const answeredAfter = performance.now() - committed;
    expect(await closed).toBeLessThan(1000);
    expect(answeredAfter).toBeLessThan(1000);
    for (const r of answers) expect(r.json).toMatchObject({ error: "approval_cancelled" });
    expect(up.hits.length).toBe(before);
  });

  it("suspending the agent stops its token on both workers within a second", async () => {
    const { token, agentId } = await h.newTask("unlisted: deny\nrules:\n  - service: api\n    effects: [read]\n");
    await until(second.port, token, "GET", 200);
    const committed = performance.now();
    await h.t.db.agent.update({ where: { id: agentId }, data: { status: "suspended" } });
    await Promise.all([until(h.proxyPort, token, "GET", 407), until(second.port, token, "GET", 407)]);
    expect(performance.now() - committed).toBeLessThan(1000);
  });
});
